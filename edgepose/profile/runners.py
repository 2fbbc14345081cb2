"""Opening the runner a profile times, and reading what it knows about itself.

Runners share the Runner protocol (card, inputs, outputs, max_batch, infer); the rest
(CUDA-event timings, device, buffers, engine facts) is TensorRTRunner's or
OnnxRuntimeRunner's own, so it is probed here, in `runner_facts` and
`attach_layer_profiler`, and nowhere else in the profiler.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from edgepose.backends import ENGINE_SUFFIXES
from edgepose.errors import BackendError, InputError
from edgepose.profile.environment import available_memory, host_memory
from edgepose.profile.stats import MemoryStats

#: (model path, *, cuda_graph) → an open Runner that `profile_model` closes.
RunnerFactory = Callable[..., Any]

#: The TensorRT names the layer profiler touches, by class, beside the runner's own
#: TENSORRT_RUNTIME_NAMES; tests/edgepose/test_profile.py checks them against the
#: TensorRT 11 lean bindings.
TENSORRT_PROFILER_NAMES: Mapping[str, tuple[str, ...]] = {
    "tensorrt": ("IProfiler",),
    "IProfiler": ("report_layer_time",),
    "IExecutionContext": ("profiler",),
}


def is_engine(path: str | Path) -> bool:
    return Path(path).suffix.lower() in ENGINE_SUFFIXES


def open_profiling_runner(path: str | Path, *, cuda_graph: bool = False) -> Any:
    """The runner `profile_model` uses by default: engines with CUDA-event timing on."""
    if is_engine(path):
        from edgepose.backends.tensorrt import TensorRTRunner

        return TensorRTRunner(path, cuda_graph=cuda_graph, timing=True)
    from edgepose.backends import open_runner

    return open_runner(path, cuda_graph=cuda_graph)


@dataclass(frozen=True)
class RunnerFacts:
    """What the profiler reads off an open runner.

    gpu_timed: the runner records CUDA events per call (TensorRTRunner(timing=True))
        and hands them out as `last_timings` (h2d_ms, compute_ms, d2h_ms).
    device: "CPU", the ONNX Runtime providers, or the GPU with its compute capability.
    copies: "pinned" or "zero-copy" when GPU-timed, else None.
    min_batch, max_batch: the batch range (max None: unbounded).
    activation_bytes: TensorRT execution-context memory; buffer_bytes: (device,
        pinned host) bytes of the planned I/O buffers (GPU-timed runners only).
    """

    gpu_timed: bool
    device: str
    copies: str | None
    min_batch: int
    max_batch: int | None
    activation_bytes: int | None
    buffer_bytes: tuple[int | None, int | None]


def runner_facts(runner: Any, path: str | Path) -> RunnerFacts:
    """The RunnerFacts of `runner`, opened from `path` (whose suffix says engine or ONNX)."""
    gpu_timed = getattr(runner, "timing", False) is True and hasattr(runner, "last_timings")
    low = 1
    info = getattr(runner, "engine_info", None)
    profiles = getattr(info, "profiles", ()) if info is not None else ()
    if profiles and runner.inputs:
        entry = profiles[0].get(runner.inputs[0].name)
        if entry and entry.get("min"):
            low = int(entry["min"][0])
    activation = getattr(runner, "activation_bytes", None)
    planned = getattr(runner, "buffer_bytes", None) if gpu_timed else None
    copies = None
    if gpu_timed:
        copies = "zero-copy" if getattr(runner, "zero_copy", False) else "pinned"
    return RunnerFacts(
        gpu_timed=gpu_timed, device=_device(runner, Path(path)), copies=copies, min_batch=low,
        max_batch=runner.max_batch,
        activation_bytes=int(activation) if activation is not None else None,
        buffer_bytes=(None, None) if planned is None else (int(planned[0]), int(planned[1])))


def _device(runner: Any, path: Path) -> str:
    device = getattr(runner, "device", None)
    if device is not None and hasattr(device, "name"):
        capability = getattr(device, "compute_capability", None)
        return f"{device.name}" + (f" (compute capability {capability})" if capability else "")
    providers = getattr(runner, "providers", None)
    if providers:
        return "CPU" if tuple(providers) == ("CPUExecutionProvider",) else ", ".join(providers)
    return "CPU" if not is_engine(path) else "GPU"


def attach_layer_profiler(runner: Any, path: Path) -> Any:
    """Attach a TensorRT IProfiler to the runner's execution context; returns it.

    Its `times` maps each layer name to the milliseconds TensorRT reported, one per run.
    """
    from edgepose.backends.tensorrt import load_tensorrt

    info = getattr(runner, "engine_info", None)
    if info is None:
        raise InputError(f"per-layer times need a TensorRT engine; {path.name} opened as "
                         f"{type(runner).__name__}")
    context = getattr(runner, "execution_context", None)
    if context is None:
        raise BackendError(f"{type(runner).__name__} exposes no TensorRT execution context; "
                           "per-layer times need a TensorRTRunner")
    trt = load_tensorrt(info)

    class _LayerProfiler(trt.IProfiler):
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)
            self.times: dict[str, list[float]] = {}

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            self.times.setdefault(str(layer_name), []).append(float(ms))

    profiler = _LayerProfiler()
    context.profiler = profiler
    return profiler


def output_bytes(runner: Any, batch: int) -> int:
    """Bytes of the runner's outputs for `batch` people."""
    total = 0
    for spec in runner.outputs:
        dims = [batch if i == 0 and v is None else (v or 0) for i, v in enumerate(spec.shape)]
        total += int(np.prod(dims, dtype=np.int64)) * np.dtype(spec.dtype).itemsize
    return total


def check_batches_fit(runner: Any, facts: RunnerFacts, path: Path, sizes: Sequence[int]) -> None:
    """InputError for a batch size outside the runner's range or too large for the memory."""
    low, high = facts.min_batch, facts.max_batch
    outside = [s for s in sizes if s < low or (high is not None and s > high)]
    if not outside:
        _check_batch_memory(runner, path, sizes)
        return
    if is_engine(path):
        raise InputError(f"batch size(s) {outside} are outside the engine {path.name}'s "
                         f"optimisation profile {low}..{high}; profile batches within it, or "
                         "rebuild with 'edgepose build --batch MIN:OPT:MAX'")
    raise InputError(f"batch size(s) {outside} are outside {path.name}'s batch range "
                     f"{low}..{high} (its input has a fixed batch axis); profile batches within "
                     "it, or re-export with a dynamic batch axis")


def _check_batch_memory(runner: Any, path: Path, sizes: Sequence[int]) -> None:
    """Refuse a batch whose host buffers alone would take over half the free memory.

    Only the crops, the input tensor and the outputs are counted, a lower bound (the
    backend's activations come on top), so a refused batch could never have run.
    """
    available = available_memory()
    spec = runner.card.input
    per_person = (spec.height * spec.width * 3 * (1 + 4)) + output_bytes(runner, 1)
    largest = max(sizes)
    if available is not None and largest * per_person > available // 2:
        fits = max(1, available // 2 // per_person)
        raise InputError(f"batch size {largest} needs at least {largest * per_person / 2**30:.1f} "
                         f"GiB of host buffers for {path.name}, over half of the "
                         f"{available / 2**30:.1f} GiB free; profile batches up to {fits}")


def memory_stats(runner: Any, path: Path, rss_before: int | None) -> MemoryStats:
    """Host memory now and the runner's GPU memory (read after the timed runs)."""
    rss, peak = host_memory()
    facts = runner_facts(runner, path)
    device, pinned = facts.buffer_bytes
    return MemoryStats(
        host_rss_bytes=rss, host_peak_rss_bytes=peak,
        host_rss_growth_bytes=(rss - rss_before) if rss is not None and rss_before is not None
        else None,
        gpu_activation_bytes=facts.activation_bytes, gpu_buffer_bytes=device,
        pinned_host_bytes=pinned)
