"""Latency profiler: where every millisecond of the top-down chain goes, per stage,
per batch size and per model, with the environment it was measured in.

Stages (STAGES), in milliseconds per call:
  read           video only: cv2.VideoCapture.read (container demux + decode)
  preprocess     boxes → centers/scales → affine crops → normalised tensor
  h2d            TensorRT only: pinned host → device copy (CUDA events)
  infer          ONNX Runtime: the whole `runner.infer` call (perf_counter_ns);
                 TensorRT: the engine's GPU time (CUDA events)
  d2h            TensorRT only: device → pinned host copy (CUDA events)
  host_overhead  TensorRT only: the runner's host time outside the three events
                 (staging copy into pinned memory, launches, synchronisation)
  decode         heatmap copy (+ flip average) → argmax/refine → image pixels → Poses
  end_to_end     the whole call; the other stages of a call add up to it
On ONNX Runtime h2d, d2h and host_overhead are absent (not zero): the CPU has no
copies to time. Every call is timed with perf_counter_ns between contiguous
checkpoints, so a call's stages sum to its end_to_end exactly; on TensorRT the
event times replace the host time of `infer`, and host_overhead is what remains
(clamped at 0 when event and host clocks disagree by a few microseconds).

The chain is the one TopDownPipeline runs, rebuilt from the same public functions
(TopDownPipeline.centers_scales, affine_matrices, crop_batch, normalize_to_tensor,
runner.infer, the pipeline's decoder) and configured from a TopDownPipeline of the
same runner, so it decodes exactly what the pipeline decodes.

This module imports only the standard library, numpy and OpenCV; backends load
when a model is opened, tqdm when a progress bar is drawn.
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import cv2
import numpy as np

from edgepose.backends import ENGINE_SUFFIXES
from edgepose.errors import BackendError, InputError
from edgepose.io import read_image, write_image_atomic, write_json_atomic
from edgepose.pipeline import TopDownPipeline, person_scores
from edgepose.poses import Poses
from edgepose.preprocess import (affine_matrices, crop_batch,
                                 normalize_to_tensor, validate_boxes)

_log = logging.getLogger(__name__)

STAGES = ("read", "preprocess", "h2d", "infer", "d2h", "host_overhead", "decode", "end_to_end")
STAGE_LABELS: Mapping[str, str] = {
    "read": "video read", "preprocess": "preprocess", "h2d": "h2d copy", "infer": "infer",
    "d2h": "d2h copy", "host_overhead": "runner host", "decode": "decode",
    "end_to_end": "end to end",
}
DEFAULT_WARMUP = 50
DEFAULT_ITERS = 500
DEFAULT_VIDEO_WARMUP = 10
#: The default frame: what a 720p camera hands over. Crop cost depends on the
#: network input size, not the frame, so the size matters little; the content is
#: seeded noise so runs repeat.
SYNTHETIC_FRAME_SIZE = (1280, 720)  # (width, height)
#: Engine calls with TensorRT's layer profiler attached, after LAYER_WARMUP more.
LAYER_RUNS = 50
LAYER_WARMUP = 5
TOP_LAYERS = 15
#: `ProfileReport.to_dict()["schema"]`; a breaking change to the JSON bumps it.
REPORT_SCHEMA = 1
#: The TensorRT names the layer profiler touches, by class, beside the runner's own
#: TENSORRT_RUNTIME_NAMES; tests/edgepose/test_profile.py checks them against the
#: TensorRT 11 lean bindings.
TENSORRT_PROFILER_NAMES: Mapping[str, tuple[str, ...]] = {
    "tensorrt": ("IProfiler",),
    "IProfiler": ("report_layer_time",),
    "IExecutionContext": ("profiler",),
}

#: (model path, *, cuda_graph) → an open Runner that `profile_model` closes.
RunnerFactory = Callable[..., Any]

#: The stage clock. A module attribute so tests can run the chain on a virtual clock
#: and check the accounting exactly, free of the noise of a shared machine.
_now_ns: Callable[[], int] = time.perf_counter_ns


# ---------------------------------------------------------------------------------------------
# Results

def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _optional_count(value: Any, name: str) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
        raise InputError(f"{name} is {value!r}; expected a byte count ≥ 0 or None")


@dataclass(frozen=True)
class StageStats:
    """Summary of one stage's samples in milliseconds.

    std is the population standard deviation (ddof=0); percentiles are numpy's
    linear interpolation (np.percentile's default).
    """

    mean: float
    std: float
    min: float
    p50: float
    p90: float
    p99: float
    max: float
    count: int

    def __post_init__(self) -> None:
        if not isinstance(self.count, int) or isinstance(self.count, bool) or self.count < 1:
            raise InputError(f"StageStats.count is {self.count!r}; expected at least 1 sample")
        values = {name: getattr(self, name)
                  for name in ("mean", "std", "min", "p50", "p90", "p99", "max")}
        bad = {k: v for k, v in values.items() if not _finite(v) or v < 0}
        if bad:
            raise InputError(f"StageStats: expected finite non-negative milliseconds, got {bad}")
        order = [self.min, self.p50, self.p90, self.p99, self.max]
        # A relative slack: interpolation rounds in the last bit.
        if any(b < a - 1e-9 * max(1.0, abs(a)) for a, b in zip(order, order[1:])):
            raise InputError(f"StageStats: expected min ≤ p50 ≤ p90 ≤ p99 ≤ max, got {order}")
        for name, value in values.items():
            object.__setattr__(self, name, float(value))


def stage_stats(samples_ms: Sequence[float] | np.ndarray) -> StageStats:
    """StageStats of recorded samples (ms); InputError for none, negative or non-finite ones."""
    samples = np.asarray(samples_ms, dtype=np.float64).reshape(-1)
    if samples.size == 0:
        raise InputError("no samples to summarise; time at least one call")
    if not np.all(np.isfinite(samples)) or samples.min() < 0:
        raise InputError(f"samples must be finite and non-negative milliseconds; got min "
                         f"{samples.min()!r}")
    p50, p90, p99 = np.percentile(samples, [50, 90, 99])
    return StageStats(mean=float(samples.mean()), std=float(samples.std()),
                      min=float(samples.min()), p50=float(p50), p90=float(p90), p99=float(p99),
                      max=float(samples.max()), count=int(samples.size))


def _check_stage_names(names: Iterable[str], where: str) -> None:
    unknown = sorted(set(names) - set(STAGES))
    if unknown:
        raise InputError(f"{where}: unknown stage(s) {unknown}; expected some of {STAGES}")


def _stage_map(stages: Mapping[str, StageStats], where: str) -> dict[str, StageStats]:
    result = dict(stages)
    _check_stage_names(result, where)
    wrong = [k for k, v in result.items() if not isinstance(v, StageStats)]
    if wrong:
        raise InputError(f"{where}: stage(s) {wrong} are not StageStats")
    return result


@dataclass(frozen=True)
class BatchProfile:
    """Steady-state timings of `iterations` calls with `batch` people on one frame.

    stages: stage name → StageStats, only the stages this backend has.
    first_call_ms: stage name → the first call at this batch size, timed alone and
        left out of `stages` (ONNX Runtime's lazy set-up, TensorRT's shape set-up
        and CUDA-graph capture land here).
    samples_ms: every end-to-end sample, for histograms.
    input_bytes, output_bytes: bytes of one call's network input and outputs.
    """

    batch: int
    iterations: int
    stages: Mapping[str, StageStats]
    first_call_ms: Mapping[str, float]
    samples_ms: tuple[float, ...]
    input_bytes: int
    output_bytes: int

    def __post_init__(self) -> None:
        if not isinstance(self.batch, int) or isinstance(self.batch, bool) or self.batch < 1:
            raise InputError(f"BatchProfile.batch is {self.batch!r}; expected an integer ≥ 1")
        stages = _stage_map(self.stages, f"batch {self.batch}")
        if "end_to_end" not in stages:
            raise InputError(f"batch {self.batch}: stages lack 'end_to_end'")
        first = {str(k): float(v) for k, v in dict(self.first_call_ms).items()}
        _check_stage_names(first, f"batch {self.batch} first call")
        samples = tuple(float(v) for v in self.samples_ms)
        if len(samples) != self.iterations or stages["end_to_end"].count != self.iterations:
            raise InputError(f"batch {self.batch}: {self.iterations} iterations but "
                             f"{len(samples)} samples and {stages['end_to_end'].count} counted")
        _optional_count(self.input_bytes, "input_bytes")
        _optional_count(self.output_bytes, "output_bytes")
        object.__setattr__(self, "stages", stages)
        object.__setattr__(self, "first_call_ms", first)
        object.__setattr__(self, "samples_ms", samples)

    @property
    def frames_per_s(self) -> float:
        """Frames (calls) per second from the mean end-to-end latency."""
        mean = self.stages["end_to_end"].mean
        return 1000.0 / mean if mean else math.inf

    @property
    def people_per_s(self) -> float:
        return self.batch * self.frames_per_s


@dataclass(frozen=True)
class VideoProfile:
    """The full chain over a video: one call per frame, with the people its boxes give.

    stages: per frame; frames without boxes run `read` only and count in `read` and
    `end_to_end` but not in the other stages. wall_s: the whole loop, so `fps`
    includes everything between frames too.
    """

    path: str
    frames: int
    people: int
    frame_size: tuple[int, int]  # (width, height)
    wall_s: float
    stages: Mapping[str, StageStats]
    first_frame_ms: Mapping[str, float]
    samples_ms: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.frames < 1 or self.people < 0 or not _finite(self.wall_s) or self.wall_s <= 0:
            raise InputError(f"VideoProfile: frames {self.frames}, people {self.people}, wall "
                             f"{self.wall_s} s; expected ≥ 1 frame, ≥ 0 people, wall time > 0")
        stages = _stage_map(self.stages, "video")
        first = {str(k): float(v) for k, v in dict(self.first_frame_ms).items()}
        _check_stage_names(first, "video first frame")
        object.__setattr__(self, "stages", stages)
        object.__setattr__(self, "first_frame_ms", first)
        object.__setattr__(self, "frame_size", tuple(int(v) for v in self.frame_size))
        object.__setattr__(self, "samples_ms", tuple(float(v) for v in self.samples_ms))

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s

    @property
    def people_per_s(self) -> float:
        return self.people / self.wall_s


@dataclass(frozen=True)
class LayerTime:
    """One engine layer: mean milliseconds per call and its share of the layers' total."""

    name: str
    mean_ms: float
    share: float

    def __post_init__(self) -> None:
        if not _finite(self.mean_ms) or self.mean_ms < 0 or not _finite(self.share) \
                or not 0 <= self.share <= 1 + 1e-9:
            raise InputError(f"layer {self.name!r}: mean {self.mean_ms!r} ms, share "
                             f"{self.share!r}; expected ms ≥ 0 and a share in [0, 1]")


@dataclass(frozen=True)
class MemoryStats:
    """Memory in bytes; None where this platform or backend cannot tell.

    host_rss_bytes: resident set after the runs (VmRSS). host_peak_rss_bytes: the
    process's peak so far (VmHWM) — it includes models profiled earlier in the run.
    host_rss_growth_bytes: resident set after the runs minus before the model opened.
    gpu_activation_bytes: TensorRT execution-context memory. gpu_buffer_bytes: the
    runner's device I/O buffers (mapped pinned memory on zero-copy GPUs).
    pinned_host_bytes: the runner's pinned host I/O buffers.
    """

    host_rss_bytes: int | None = None
    host_peak_rss_bytes: int | None = None
    host_rss_growth_bytes: int | None = None
    gpu_activation_bytes: int | None = None
    gpu_buffer_bytes: int | None = None
    pinned_host_bytes: int | None = None

    def __post_init__(self) -> None:
        for name in ("host_rss_bytes", "host_peak_rss_bytes", "gpu_activation_bytes",
                     "gpu_buffer_bytes", "pinned_host_bytes"):
            _optional_count(getattr(self, name), name)
        growth = self.host_rss_growth_bytes
        if growth is not None and (not isinstance(growth, int) or isinstance(growth, bool)):
            raise InputError(f"host_rss_growth_bytes is {growth!r}; expected an integer or None")

    @property
    def gpu_bytes(self) -> int | None:
        """Engine activations + our device buffers, where the runner reports both."""
        if self.gpu_activation_bytes is None:
            return None
        return self.gpu_activation_bytes + (self.gpu_buffer_bytes or 0)


@dataclass(frozen=True)
class ModelProfile:
    """Everything measured for one model file.

    backend: "onnxruntime" or "tensorrt". timing: "perf_counter_ns" or "cuda-events".
    copies: how engine I/O moves ("pinned", "zero-copy"), None on ONNX Runtime.
    load_ms: opening the runner (session creation / engine deserialisation).
    source: what the frames were ("synthetic 1280x720 frame", an image or a video path).
    batches: one per batch size (empty for a video run); video: the video run or None.
    layers: TensorRT per-layer times at the first batch size, slowest first; empty
    unless asked for.
    """

    path: str
    name: str
    backend: str
    device: str
    precision: str
    family: str
    variant: str
    input_size: tuple[int, int]  # (width, height)
    timing: str
    copies: str | None
    cuda_graph: bool
    flip_test: bool
    load_ms: float
    warmup: int
    source: str
    batches: tuple[BatchProfile, ...]
    memory: MemoryStats
    video: VideoProfile | None = None
    layers: tuple[LayerTime, ...] = ()
    layer_batch: int | None = None

    def __post_init__(self) -> None:
        batches = tuple(self.batches)
        if not batches and self.video is None:
            raise InputError(f"{self.name}: a profile needs batch results or a video run")
        sizes = [b.batch for b in batches]
        if len(set(sizes)) != len(sizes):
            raise InputError(f"{self.name}: batch sizes repeat: {sizes}")
        object.__setattr__(self, "batches", batches)
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "layers", tuple(self.layers))

    def batch(self, size: int) -> BatchProfile | None:
        return next((b for b in self.batches if b.batch == size), None)


@dataclass(frozen=True)
class Environment:
    """Where the figures were measured; None for what could not be read."""

    python: str
    platform: str
    numpy: str
    opencv: str
    onnxruntime: str | None = None
    tensorrt: str | None = None
    cpu: str | None = None
    board: str | None = None
    cpu_count: int | None = None
    cpus_usable: int | None = None
    cpu_mhz: float | None = None
    cpu_max_mhz: float | None = None
    cpu_governor: str | None = None
    load_average: tuple[float, float, float] | None = None
    gpu: str | None = None
    gpu_driver: str | None = None
    gpu_clocks: str | None = None
    cuda_devices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "cuda_devices", tuple(self.cuda_devices))
        if self.load_average is not None:
            object.__setattr__(self, "load_average", tuple(float(v) for v in self.load_average))

    def summary(self) -> str:
        """One line for the table's header."""
        cpu = self.cpu or "unknown CPU"
        if self.cpu_count:
            cpu += f", {self.cpu_count} CPUs"
            if self.cpus_usable and self.cpus_usable != self.cpu_count:
                cpu += f" ({self.cpus_usable} usable)"
        if self.cpu_mhz:
            cpu += f" at {self.cpu_mhz:.0f}"
            cpu += f"/{self.cpu_max_mhz:.0f} MHz" if self.cpu_max_mhz else " MHz"
        if self.cpu_governor:
            cpu += f" ({self.cpu_governor})"
        if self.load_average is not None:
            # Other work on the machine skews every figure; the load says how much there was.
            cpu += f", load {self.load_average[0]:.2f} at the start"
        parts = [cpu]
        if self.board:
            parts.append(self.board)
        gpu = self.gpu or (", ".join(self.cuda_devices) if self.cuda_devices else None)
        if gpu:
            detail = ", ".join(v for v in (f"driver {self.gpu_driver}" if self.gpu_driver else "",
                                            self.gpu_clocks or "") if v)
            parts.append(f"GPU {gpu}" + (f" ({detail})" if detail else ""))
        versions = [f"Python {self.python}", f"numpy {self.numpy}", f"OpenCV {self.opencv}"]
        if self.onnxruntime:
            versions.append(f"ONNX Runtime {self.onnxruntime}")
        if self.tensorrt:
            versions.append(f"TensorRT {self.tensorrt}")
        return " · ".join(parts) + "\n" + " · ".join(versions) + f" · {self.platform}"


@dataclass(frozen=True)
class ProfileReport:
    """Several models profiled in one run, for side-by-side comparison.

    Ratios compare each model with the first one (`models[0]`), so order the
    models with the reference first (e.g. FP32, then FP16, then INT8).
    """

    models: tuple[ModelProfile, ...]
    environment: Environment
    created: str = field(default_factory=lambda: datetime.now(timezone.utc)
                         .isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        models = tuple(self.models)
        if not models:
            raise InputError("a ProfileReport needs at least one model")
        object.__setattr__(self, "models", models)

    def ratio(self, model: int, batch: int | None = None, stage: str = "end_to_end"
              ) -> float | None:
        """Mean of `stage` of models[model] over that of models[0] (batch None: the video run).

        None when either model lacks the stage or batch, or the reference mean is 0.
        """
        ours, reference = (_stage_of(self.models[model], batch, stage),
                           _stage_of(self.models[0], batch, stage))
        if ours is None or reference is None or reference.mean <= 0:
            return None
        return ours.mean / reference.mean

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every figure, derived throughputs and ratios included."""
        models = []
        for index, model in enumerate(self.models):
            data = asdict(model)
            data["memory"]["gpu_bytes"] = model.memory.gpu_bytes
            for entry, batch in zip(data["batches"], model.batches):
                entry["frames_per_s"] = batch.frames_per_s
                entry["people_per_s"] = batch.people_per_s
                entry["ratio_to_first"] = {s: self.ratio(index, batch.batch, s)
                                           for s in batch.stages}
            if model.video is not None:
                data["video"]["fps"] = model.video.fps
                data["video"]["people_per_s"] = model.video.people_per_s
                data["video"]["ratio_to_first"] = {s: self.ratio(index, None, s)
                                                   for s in model.video.stages}
            models.append(data)
        return {"schema": REPORT_SCHEMA, "created": self.created,
                "environment": asdict(self.environment), "models": models}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ProfileReport":
        """Inverse of to_dict; derived figures in the data are recomputed, not read."""
        if not isinstance(data, Mapping):
            raise InputError(f"a profile report is a JSON object, got {type(data).__name__}")
        schema = data.get("schema")
        if schema != REPORT_SCHEMA:
            raise InputError(f"profile report schema is {schema!r}; this edgepose reads schema "
                             f"{REPORT_SCHEMA} — re-run 'edgepose profile'")
        try:
            return cls(models=tuple(_model_from_dict(m) for m in data["models"]),
                       environment=Environment(**data["environment"]),
                       created=str(data["created"]))
        except (KeyError, TypeError) as exc:
            raise InputError(f"profile report is missing or has a malformed field: {exc}") from None

    def format_table(self, top_layers: int = TOP_LAYERS) -> str:
        """The side-by-side table as plain text (see the module docstring for the stages)."""
        return _format_report(self, top_layers)


def _stage_of(model: ModelProfile, batch: int | None, stage: str) -> StageStats | None:
    if batch is None:
        return model.video.stages.get(stage) if model.video is not None else None
    found = model.batch(batch)
    return found.stages.get(stage) if found is not None else None


def _batch_from_dict(data: Mapping[str, Any]) -> BatchProfile:
    return BatchProfile(
        batch=data["batch"], iterations=data["iterations"],
        stages={k: StageStats(**v) for k, v in data["stages"].items()},
        first_call_ms=data["first_call_ms"], samples_ms=tuple(data["samples_ms"]),
        input_bytes=data["input_bytes"], output_bytes=data["output_bytes"])


def _video_from_dict(data: Mapping[str, Any]) -> VideoProfile:
    return VideoProfile(
        path=data["path"], frames=data["frames"], people=data["people"],
        frame_size=tuple(data["frame_size"]), wall_s=data["wall_s"],
        stages={k: StageStats(**v) for k, v in data["stages"].items()},
        first_frame_ms=data["first_frame_ms"], samples_ms=tuple(data["samples_ms"]))


def _model_from_dict(data: Mapping[str, Any]) -> ModelProfile:
    memory = {k: v for k, v in data["memory"].items() if k != "gpu_bytes"}
    return ModelProfile(
        path=data["path"], name=data["name"], backend=data["backend"], device=data["device"],
        precision=data["precision"], family=data["family"], variant=data["variant"],
        input_size=tuple(data["input_size"]), timing=data["timing"], copies=data["copies"],
        cuda_graph=data["cuda_graph"], flip_test=data["flip_test"], load_ms=data["load_ms"],
        warmup=data["warmup"], source=data["source"],
        batches=tuple(_batch_from_dict(b) for b in data["batches"]),
        memory=MemoryStats(**memory),
        video=_video_from_dict(data["video"]) if data.get("video") else None,
        layers=tuple(LayerTime(**layer) for layer in data.get("layers", ())),
        layer_batch=data.get("layer_batch"))


# ---------------------------------------------------------------------------------------------
# Argument parsing the CLI shares

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|min|h)\s*$")
_DURATION_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds from "10s", "500ms", "2m" (also "1.5s", "2min", "1h"); the unit is required."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise InputError(f"duration {text!r} is not a number with a unit; expected e.g. '10s', "
                         "'500ms' or '2m'")
    seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds <= 0:
        raise InputError(f"duration {text!r} is zero; expected a positive time such as '10s'")
    return seconds


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """Batch sizes from "1,2,4,8", in the order given."""
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        sizes = ()
    if not sizes:
        raise InputError(f"batch sizes {text!r}: expected comma-separated integers such as "
                         "'1,2,4,8'")
    return _check_batch_sizes(sizes)


def read_frame_boxes(path: str | Path) -> tuple[np.ndarray, ...]:
    """Per-frame boxes from a JSON list, entry i for frame i: [[x,y,w,h], …] or
    [{"bbox": [x,y,w,h], "score": s}, …]; an empty list means nobody in that frame."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"per-frame boxes file {str(path)!r} does not exist")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"per-frame boxes file {str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(frame, list) for frame in data):
        raise InputError(f"per-frame boxes file {str(path)!r} must hold a JSON list with one list "
                         "of boxes per frame: [[[x,y,w,h], …], …]")
    frames = []
    for index, frame in enumerate(data):
        rows = []
        for item in frame:
            bbox = item.get("bbox") if isinstance(item, dict) else item
            if not (isinstance(bbox, list) and len(bbox) == 4
                    and all(_finite(v) for v in bbox)):
                raise InputError(f"per-frame boxes file {str(path)!r}, frame {index}: {item!r}; "
                                 'expected [x, y, w, h] or {"bbox": [x, y, w, h], "score": s}')
            rows.append(bbox)
        frames.append(np.asarray(rows, np.float32).reshape(-1, 4))
    return tuple(frames)


def _check_batch_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    sizes = tuple(sizes)
    if not sizes:
        raise InputError("no batch sizes; expected e.g. (1, 2, 4, 8)")
    bad = [s for s in sizes if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 1]
    if bad:
        raise InputError(f"batch sizes {list(sizes)}: {bad} are not positive integers")
    if len(set(sizes)) != len(sizes):
        raise InputError(f"batch sizes {list(sizes)} repeat a size; give each once")
    return tuple(int(s) for s in sizes)


def _check_count(value: Any, name: str, minimum: int, hint: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise InputError(f"{name} is {value!r}; expected an integer ≥ {minimum} ({hint})")
    return int(value)


def _check_run_length(iters: int | None, duration_s: float | None, default: int | None
                      ) -> tuple[int | None, float | None]:
    if iters is not None and duration_s is not None:
        raise InputError(f"give an iteration count ({iters}) or a duration ({duration_s} s), "
                         "not both")
    if duration_s is not None:
        if not _finite(duration_s) or duration_s <= 0:
            raise InputError(f"duration is {duration_s!r} s; expected a positive number of seconds")
        return None, float(duration_s)
    if iters is None:
        return default, None
    return _check_count(iters, "iteration count", 1, "timed calls per batch size"), None


# ---------------------------------------------------------------------------------------------
# Opening runners and reading what they know

def _is_engine(path: str | Path) -> bool:
    return Path(path).suffix.lower() in ENGINE_SUFFIXES


def open_profiling_runner(path: str | Path, *, cuda_graph: bool = False) -> Any:
    """The runner `profile_model` uses by default: engines with CUDA-event timing on."""
    if _is_engine(path):
        from edgepose.backends.tensorrt import TensorRTRunner

        return TensorRTRunner(path, cuda_graph=cuda_graph, timing=True)
    from edgepose.backends import open_runner

    return open_runner(path, cuda_graph=cuda_graph)


def _gpu_timed(runner: Any) -> bool:
    return getattr(runner, "timing", False) is True and hasattr(runner, "last_timings")


def _batch_range(runner: Any, path: Path) -> tuple[int, int | None]:
    """(min, max) batch the runner accepts; max None when unbounded."""
    high = runner.max_batch
    low = 1
    info = getattr(runner, "engine_info", None)
    profiles = getattr(info, "profiles", ()) if info is not None else ()
    if profiles and runner.inputs:
        entry = profiles[0].get(runner.inputs[0].name)
        if entry and entry.get("min"):
            low = int(entry["min"][0])
    return low, high


def _available_memory() -> int | None:
    """Bytes of memory the system can still give (Linux MemAvailable); None where unknown."""
    text = _read("/proc/meminfo") or ""
    for line in text.splitlines():
        if line.startswith("MemAvailable:") and line.rstrip().endswith("kB"):
            return int(line.split()[1]) * 1024
    return None


def _check_batch_memory(runner: Any, path: Path, sizes: Sequence[int]) -> None:
    """Refuse a batch whose host buffers alone would take over half the free memory.

    Only the crops, the input tensor and the outputs are counted, a lower bound (the
    backend's activations come on top), so a refused batch could never have run.
    """
    available = _available_memory()
    spec = runner.card.input
    per_person = (spec.height * spec.width * 3 * (1 + 4)) + _output_bytes(runner, 1)
    largest = max(sizes)
    if available is not None and largest * per_person > available // 2:
        fits = max(1, available // 2 // per_person)
        raise InputError(f"batch size {largest} needs at least {largest * per_person / 2**30:.1f} "
                         f"GiB of host buffers for {path.name}, over half of the "
                         f"{available / 2**30:.1f} GiB free; profile batches up to {fits}")


def _check_batches_fit(runner: Any, path: Path, sizes: Sequence[int]) -> None:
    low, high = _batch_range(runner, path)
    outside = [s for s in sizes if s < low or (high is not None and s > high)]
    if not outside:
        _check_batch_memory(runner, path, sizes)
        return
    if _is_engine(path):
        raise InputError(f"batch size(s) {outside} are outside the engine {path.name}'s "
                         f"optimisation profile {low}..{high}; profile batches within it, or "
                         "rebuild with 'edgepose build --batch MIN:OPT:MAX'")
    raise InputError(f"batch size(s) {outside} are outside {path.name}'s batch range "
                     f"{low}..{high} (its input has a fixed batch axis); profile batches within "
                     "it, or re-export with a dynamic batch axis")


def _runner_device(runner: Any, path: Path) -> str:
    device = getattr(runner, "device", None)
    if device is not None and hasattr(device, "name"):
        capability = getattr(device, "compute_capability", None)
        return f"{device.name}" + (f" (compute capability {capability})" if capability else "")
    providers = getattr(runner, "providers", None)
    if providers:
        return "CPU" if tuple(providers) == ("CPUExecutionProvider",) else ", ".join(providers)
    return "CPU" if not _is_engine(path) else "GPU"


def _execution_context(runner: Any) -> Any:
    """The runner's TensorRT IExecutionContext, where the layer profiler attaches."""
    context = getattr(runner, "execution_context", None)
    if context is None:
        raise BackendError(f"{type(runner).__name__} exposes no TensorRT execution context; "
                           "per-layer times need a TensorRTRunner")
    return context


def _buffer_bytes(runner: Any) -> tuple[int | None, int | None]:
    """(device, pinned host) bytes of the runner's planned I/O buffers; None without a plan."""
    planned = getattr(runner, "buffer_bytes", None)
    return (None, None) if planned is None else (int(planned[0]), int(planned[1]))


def host_memory() -> tuple[int | None, int | None]:
    """(resident set, peak resident set) of this process in bytes; None where unreadable."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        text = ""
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM") and rest.strip().endswith("kB"):
            values[key] = int(rest.split()[0]) * 1024
    if values:
        return values.get("VmRSS"), values.get("VmHWM")
    try:
        import resource
    except ImportError:  # Windows
        return None, None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    return None, int(peak if sys.platform == "darwin" else peak * 1024)


# ---------------------------------------------------------------------------------------------
# The timed chain

@dataclass(frozen=True)
class _CallTimes:
    """One call: host stages in ns; CUDA-event stages in ms (None without GPU timing)."""

    preprocess_ns: int
    infer_ns: int
    decode_ns: int
    end_to_end_ns: int
    people: int
    h2d_ms: float | None = None
    compute_ms: float | None = None
    d2h_ms: float | None = None


class _TopDownChain:
    """TopDownPipeline's chain, timed between contiguous checkpoints.

    Settings (decoder, flip test, box padding, input size, heatmap output) come from
    a TopDownPipeline of the same runner, so both decode the same keypoints.
    chunk: people per runner call (the pipeline's own chunk for video; the whole
    batch for a batch-size sweep).
    """

    def __init__(self, runner: Any, chunk: int | None = None) -> None:
        pipeline = TopDownPipeline(runner)  # InputError for a model that is not top-down
        self.runner = runner
        self.pipeline = pipeline
        self.chunk = chunk or pipeline.chunk
        spec = pipeline.card.input
        self.spec = spec
        self.input_size = pipeline.input_size
        self.input_name = spec.name
        self.gpu_timed = _gpu_timed(runner)
        self._crops = np.empty((self.chunk, spec.height, spec.width, 3), np.uint8)
        self._width_axis = 3 if spec.layout == "NCHW" else 2

    @property
    def flip_test(self) -> bool:
        return bool(self.pipeline.flip_test)

    def _infer(self, tensor: np.ndarray) -> tuple[np.ndarray, Any]:
        outputs = self.runner.infer({self.input_name: tensor})
        timings = self.runner.last_timings if self.gpu_timed else None
        return outputs[self.pipeline.heatmap_name], timings

    def run(self, image: np.ndarray, boxes: np.ndarray) -> tuple[_CallTimes, Any]:
        """Time one call on `image` with person `boxes` (N, 4) xywh; returns (times, Poses)."""
        clock = _now_ns
        pipeline, spec = self.pipeline, self.spec
        start = mark = clock()
        height, width = image.shape[:2]
        boxes = validate_boxes(boxes, width, height)
        people = boxes.shape[0]
        centers, scales = pipeline.centers_scales(boxes)
        matrices = affine_matrices(centers, scales, self.input_size)
        now = clock()
        pre, infer, decode = now - mark, 0, 0
        mark = now
        h2d = compute = d2h = 0.0
        parts = []
        for first in range(0, people, self.chunk):
            count = min(self.chunk, people - first)
            crops = crop_batch(image, matrices[first:first + count], self.input_size,
                               out=self._crops[:count], border_value=spec.pad_value)
            tensor = normalize_to_tensor(crops, spec.mean, spec.std, color=spec.color,
                                         layout=spec.layout)
            mirrored = (np.ascontiguousarray(np.flip(tensor, axis=self._width_axis))
                        if self.flip_test else None)
            now = clock()
            pre += now - mark
            mark = now
            calls = [tensor] if mirrored is None else [tensor, mirrored]
            maps = []
            for array in calls:
                view, timings = self._infer(array)
                now = clock()
                infer += now - mark
                mark = now
                if timings is not None:
                    h2d += timings.h2d_ms
                    compute += timings.compute_ms
                    d2h += timings.d2h_ms
                # Copied as the pipeline does: runners may reuse the buffer on the next call.
                maps.append(np.array(view, dtype=np.float32, copy=True))
                now = clock()
                decode += now - mark
                mark = now
            heatmaps = maps[0] if len(maps) == 1 else pipeline.merge_flip(maps[0], maps[1])
            parts.append(heatmaps)
        heatmaps = parts[0] if len(parts) == 1 else np.concatenate(parts)
        xy, scores = pipeline.decoder.decode(heatmaps, centers, scales)
        poses = Poses(xy=xy, scores=scores,
                      person_scores=person_scores(scores, np.ones(people, np.float32)),
                      keypoint_set=pipeline.keypoint_set.name, boxes=boxes)
        end = clock()
        decode += end - mark
        gpu = (h2d, compute, d2h) if self.gpu_timed else (None, None, None)
        return _CallTimes(pre, infer, decode, end - start, people, *gpu), poses


class _Recorder:
    """Per-stage samples (ms) of many calls."""

    def __init__(self, gpu: bool, video: bool = False) -> None:
        self.gpu = gpu
        self.samples: dict[str, list[float]] = {s: [] for s in self.stage_names(gpu, video)}

    @staticmethod
    def stage_names(gpu: bool, video: bool) -> tuple[str, ...]:
        names = ["preprocess", "infer", "decode", "end_to_end"]
        if gpu:
            names += ["h2d", "d2h", "host_overhead"]
        if video:
            names.append("read")
        return tuple(s for s in STAGES if s in names)

    def add(self, call: _CallTimes | None, read_ns: int | None = None) -> dict[str, float]:
        """Record one call (None: a frame with nobody in it); returns its stages in ms."""
        stages: dict[str, float] = {}
        if read_ns is not None:
            stages["read"] = read_ns / 1e6
        total = stages.get("read", 0.0)
        if call is not None:
            stages["preprocess"] = call.preprocess_ns / 1e6
            stages["decode"] = call.decode_ns / 1e6
            host_infer = call.infer_ns / 1e6
            if self.gpu:
                events = call.h2d_ms + call.compute_ms + call.d2h_ms
                stages.update(h2d=call.h2d_ms, infer=call.compute_ms, d2h=call.d2h_ms,
                              host_overhead=max(0.0, host_infer - events))
            else:
                stages["infer"] = host_infer
            total += call.end_to_end_ns / 1e6
        stages["end_to_end"] = total
        for name, value in stages.items():
            self.samples[name].append(value)
        return stages

    def stats(self) -> dict[str, StageStats]:
        return {name: stage_stats(values) for name, values in self.samples.items() if values}


class _Progress:
    """tqdm when installed and wanted; otherwise nothing."""

    def __init__(self, enabled: bool, total: int | None, desc: str, unit: str = "call") -> None:
        self._bar = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False, mininterval=0.25)

    def update(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


# ---------------------------------------------------------------------------------------------
# Frames and boxes

def synthetic_frame(size: tuple[int, int] = SYNTHETIC_FRAME_SIZE, seed: int = 0) -> np.ndarray:
    """A seeded noise frame (height, width, 3) BGR uint8."""
    width, height = size
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def grid_boxes(count: int, width: int, height: int) -> np.ndarray:
    """`count` person-shaped boxes (N, 4) xywh laid out on a grid over a width×height frame."""
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    cell_w, cell_h = width / columns, height / rows
    boxes = [(c * cell_w + 0.1 * cell_w, r * cell_h + 0.05 * cell_h, 0.8 * cell_w, 0.9 * cell_h)
             for r in range(rows) for c in range(columns)][:count]
    return np.asarray(boxes, np.float32)


def _load_frame(image: str | Path | np.ndarray | None) -> tuple[np.ndarray, str]:
    if image is None:
        width, height = SYNTHETIC_FRAME_SIZE
        return synthetic_frame(), f"synthetic {width}x{height} frame"
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f"image must be a BGR uint8 array (h, w, 3), got {image.dtype} "
                             f"{image.shape}")
        return image, f"{image.shape[1]}x{image.shape[0]} array"
    array = read_image(image)
    return array, str(image)


def _boxes_for(batch: int, boxes: np.ndarray | None, width: int, height: int) -> np.ndarray:
    if boxes is None:
        return grid_boxes(batch, width, height)
    # Given boxes fill a batch in order, repeating from the first when there are fewer.
    return boxes[np.arange(batch) % boxes.shape[0]]


def _fixed_boxes(boxes: Any, width: int, height: int) -> np.ndarray | None:
    if boxes is None:
        return None
    array = validate_boxes(np.asarray(boxes, np.float32), width, height)
    if array.shape[0] == 0:
        raise InputError("boxes are empty; give at least one x,y,w,h box, or none for the default")
    return array


# ---------------------------------------------------------------------------------------------
# Profiling

def _memory(runner: Any, rss_before: int | None) -> MemoryStats:
    rss, peak = host_memory()
    activation = getattr(runner, "activation_bytes", None)
    device, pinned = _buffer_bytes(runner) if _gpu_timed(runner) else (None, None)
    return MemoryStats(
        host_rss_bytes=rss, host_peak_rss_bytes=peak,
        host_rss_growth_bytes=(rss - rss_before) if rss is not None and rss_before is not None
        else None,
        gpu_activation_bytes=int(activation) if activation is not None else None,
        gpu_buffer_bytes=device, pinned_host_bytes=pinned)


def _output_bytes(runner: Any, batch: int) -> int:
    total = 0
    for spec in runner.outputs:
        dims = [batch if i == 0 and v is None else (v or 0) for i, v in enumerate(spec.shape)]
        total += int(np.prod(dims, dtype=np.int64)) * np.dtype(spec.dtype).itemsize
    return total


def profile_model(model_path: str | Path, *, batch_sizes: Sequence[int] = (1,),
                  warmup: int = DEFAULT_WARMUP, iters: int | None = None,
                  duration_s: float | None = None,
                  image: str | Path | np.ndarray | None = None,
                  boxes: np.ndarray | None = None, cuda_graph: bool = False,
                  layers: bool = False, progress: bool = True,
                  runner_factory: RunnerFactory | None = None) -> ModelProfile:
    """Time the top-down chain of one model at each batch size.

    For each batch size B: one call with B people on the frame, timed alone as the
    first call; `warmup` − 1 more untimed calls; then `iters` timed calls (default
    500), or as many as fit in `duration_s` seconds.
    image: a path, a BGR uint8 array, or None for a seeded 1280x720 noise frame.
    boxes: (M, 4) xywh person boxes on that image, used in order and repeated to fill
        a batch; None lays B boxes out on a grid.
    cuda_graph: TensorRT only: replay a CUDA graph per batch size.
    layers: TensorRT only: per-layer times (LAYER_RUNS calls at the first batch size
        with TensorRT's IProfiler attached, on a separate runner after the timed runs).
    runner_factory: `(path, *, cuda_graph) -> Runner`, for tests and custom backends;
        default `open_profiling_runner`.
    Raises InputError for bad arguments, a batch outside the model's range, or
    `layers` on an ONNX model.
    """
    path = Path(model_path)
    sizes = _check_batch_sizes(batch_sizes)
    warmup = _check_count(warmup, "warmup", 1, "calls before timing; the first is reported "
                          "alone as the first-call latency")
    iters, duration_s = _check_run_length(iters, duration_s, DEFAULT_ITERS)
    if layers and not _is_engine(path):
        raise InputError(f"per-layer times need a TensorRT engine ({', '.join(ENGINE_SUFFIXES)});"
                         f" {path.name} is run by ONNX Runtime — build an engine with "
                         "'edgepose build' or leave out --layers")
    frame, source = _load_frame(image)
    height, width = frame.shape[:2]
    fixed = _fixed_boxes(boxes, width, height)
    factory = runner_factory or open_profiling_runner
    rss_before, _ = host_memory()
    began = _now_ns()
    runner = factory(path, cuda_graph=cuda_graph)
    load_ms = (_now_ns() - began) / 1e6
    with runner:
        _check_batches_fit(runner, path, sizes)
        chain = _TopDownChain(runner, chunk=max(sizes))
        gpu = chain.gpu_timed
        results = []
        for batch in sizes:
            results.append(_profile_batch(chain, frame, _boxes_for(batch, fixed, width, height),
                                          warmup, iters, duration_s, progress,
                                          f"{path.name} batch {batch}"))
        memory = _memory(runner, rss_before)
        card = runner.card
        device = _runner_device(runner, path)
        copies = None
        if gpu:
            copies = "zero-copy" if getattr(runner, "zero_copy", False) else "pinned"
        flip = chain.flip_test
    layer_times: tuple[LayerTime, ...] = ()
    if layers:
        layer_times = _profile_layers(path, factory, frame,
                                      _boxes_for(sizes[0], fixed, width, height), progress)
    return ModelProfile(
        path=str(path), name=path.name, backend="tensorrt" if _is_engine(path) else "onnxruntime",
        device=device, precision=card.precision, family=card.family, variant=card.variant,
        input_size=(card.input.width, card.input.height),
        timing="cuda-events" if gpu else "perf_counter_ns", copies=copies,
        cuda_graph=cuda_graph, flip_test=flip, load_ms=load_ms, warmup=warmup, source=source,
        batches=tuple(results), memory=memory, layers=layer_times,
        layer_batch=sizes[0] if layers else None)


def _profile_batch(chain: _TopDownChain, frame: np.ndarray, boxes: np.ndarray, warmup: int,
                   iters: int | None, duration_s: float | None, progress: bool,
                   desc: str) -> BatchProfile:
    batch = boxes.shape[0]
    recorder = _Recorder(chain.gpu_timed)
    bar = _Progress(progress, warmup + iters if iters is not None else None, desc)
    try:
        first = _Recorder(chain.gpu_timed).add(chain.run(frame, boxes)[0])
        bar.update()
        for _ in range(warmup - 1):
            chain.run(frame, boxes)
            bar.update()
        if iters is not None:
            for _ in range(iters):
                recorder.add(chain.run(frame, boxes)[0])
                bar.update()
        else:
            deadline = time.perf_counter() + duration_s
            while True:
                recorder.add(chain.run(frame, boxes)[0])
                bar.update()
                if time.perf_counter() >= deadline:
                    break
    finally:
        bar.close()
    samples = recorder.samples["end_to_end"]
    spec = chain.spec
    input_bytes = batch * 3 * spec.height * spec.width * 4 * (2 if chain.flip_test else 1)
    output_bytes = _output_bytes(chain.runner, batch) * (2 if chain.flip_test else 1)
    _log.info("%s: %d calls, end to end mean %.3f ms", desc, len(samples), float(np.mean(samples)))
    return BatchProfile(batch=batch, iterations=len(samples), stages=recorder.stats(),
                        first_call_ms=first, samples_ms=tuple(samples), input_bytes=input_bytes,
                        output_bytes=output_bytes)


def _make_layer_profiler(trt: Any) -> Any:
    """A trt.IProfiler that keeps every reported layer time: {layer name: [ms, …]}."""

    class _LayerProfiler(trt.IProfiler):
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)
            self.times: dict[str, list[float]] = {}

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            self.times.setdefault(str(layer_name), []).append(float(ms))

    return _LayerProfiler()


def summarize_layers(times: Mapping[str, Sequence[float]]) -> tuple[LayerTime, ...]:
    """Mean ms per layer and share of the sum of means, slowest first."""
    means = {name: float(np.mean(values)) for name, values in times.items() if len(values)}
    total = sum(means.values())
    ordered = sorted(means.items(), key=lambda item: -item[1])
    return tuple(LayerTime(name, mean, mean / total if total > 0 else 0.0)
                 for name, mean in ordered)


def _profile_layers(path: Path, factory: RunnerFactory, frame: np.ndarray, boxes: np.ndarray,
                    progress: bool) -> tuple[LayerTime, ...]:
    # A runner of its own, without CUDA graphs: a replayed graph reports no layers,
    # and the profiler's synchronisation would distort the timed runs.
    from edgepose.backends.tensorrt import load_tensorrt

    runner = factory(path, cuda_graph=False)
    with runner:
        info = getattr(runner, "engine_info", None)
        if info is None:
            raise InputError(f"per-layer times need a TensorRT engine; {path.name} opened as "
                             f"{type(runner).__name__}")
        trt = load_tensorrt(info)
        profiler = _make_layer_profiler(trt)
        context = _execution_context(runner)
        context.profiler = profiler
        chain = _TopDownChain(runner, chunk=boxes.shape[0])
        for _ in range(LAYER_WARMUP):
            chain.run(frame, boxes)
        profiler.times.clear()
        bar = _Progress(progress, LAYER_RUNS, f"{path.name} layers")
        try:
            for _ in range(LAYER_RUNS):
                chain.run(frame, boxes)
                bar.update()
        finally:
            bar.close()
        if not profiler.times:
            _log.warning("%s: TensorRT reported no layer times", path.name)
        return summarize_layers(profiler.times)


def _frame_boxes_source(boxes: Any) -> Callable[[int], np.ndarray | None] | None:
    """frame index → boxes, or None past the end of per-frame boxes; None: the whole frame."""
    if boxes is None:
        return None
    if isinstance(boxes, (str, Path)):
        boxes = read_frame_boxes(boxes)
    if isinstance(boxes, np.ndarray):
        array = np.asarray(boxes, np.float32).reshape(-1, 4)
        return lambda index: array
    per_frame = tuple(np.asarray(b, np.float32).reshape(-1, 4) for b in boxes)
    return lambda index: per_frame[index] if index < len(per_frame) else None


def profile_video(model_path: str | Path, video: str | Path, *,
                  boxes: np.ndarray | Sequence[np.ndarray] | str | Path | None = None,
                  warmup: int = DEFAULT_VIDEO_WARMUP, max_frames: int | None = None,
                  duration_s: float | None = None, cuda_graph: bool = False,
                  progress: bool = True, runner_factory: RunnerFactory | None = None
                  ) -> ModelProfile:
    """End-to-end frames per second over a video with the full chain, frame by frame.

    Each frame: cv2 read/decode, then preprocess → infer (in chunks of the runner's
    max batch, as TopDownPipeline does) → decode.
    boxes: None (the whole frame is one person), an (M, 4) xywh array for every
        frame, or per-frame boxes — a sequence of (M_i, 4) arrays or the path of a
        JSON file (see read_frame_boxes). With per-frame boxes the run stops where
        they end; a frame with no boxes is read but runs no model.
    warmup: calls on the first frame before timing; the first is reported alone.
    max_frames / duration_s: stop early (default: the whole video).
    """
    path, video = Path(model_path), Path(video)
    warmup = _check_count(warmup, "warmup", 1, "calls on the first frame before timing; the "
                          "first is reported alone")
    if max_frames is not None:
        max_frames = _check_count(max_frames, "frame limit", 1, "frames to profile")
    _, duration_s = _check_run_length(None, duration_s, None)
    if not video.is_file():
        raise InputError(f"video {str(video)!r} does not exist")
    boxes_of = _frame_boxes_source(boxes)
    capture = cv2.VideoCapture(str(video))
    try:
        if not capture.isOpened():
            raise InputError(f"video {str(video)!r} could not be opened (not a format this OpenCV "
                             "build reads)")
        clock = _now_ns
        began = clock()
        ok, frame = capture.read()
        first_read = clock() - began
        if not ok or frame is None:
            raise InputError(f"video {str(video)!r} has no frame OpenCV can decode")
        height, width = frame.shape[:2]
        if isinstance(boxes, np.ndarray):
            _fixed_boxes(boxes, width, height)  # a bad box fails before the model loads
        factory = runner_factory or open_profiling_runner
        rss_before, _ = host_memory()
        began = clock()
        runner = factory(path, cuda_graph=cuda_graph)
        load_ms = (clock() - began) / 1e6
        with runner:
            chain = _TopDownChain(runner)
            whole = np.array([[0.0, 0.0, width, height]], np.float32)

            def frame_boxes(index: int, image: np.ndarray) -> np.ndarray | None:
                if boxes_of is None:
                    return np.array([[0.0, 0.0, image.shape[1], image.shape[0]]], np.float32)
                return boxes_of(index)

            warm_boxes = frame_boxes(0, frame)
            if warm_boxes is None or warm_boxes.shape[0] == 0:
                warm_boxes = whole  # nobody in frame 0: warm the model up on the whole frame
            first = _Recorder(chain.gpu_timed, video=True).add(chain.run(frame, warm_boxes)[0])
            for _ in range(warmup - 1):
                chain.run(frame, warm_boxes)
            recorder = _Recorder(chain.gpu_timed, video=True)
            bar = _Progress(progress, max_frames, f"{path.name} on {video.name}", unit="frame")
            frames = people = 0
            read_ns = first_read
            loop_start = time.perf_counter()
            deadline = loop_start + duration_s if duration_s is not None else None
            try:
                while True:
                    current = frame_boxes(frames, frame)
                    if current is None:
                        _log.warning("the per-frame boxes end at frame %d; the video goes on, "
                                     "the profile stops there", frames)
                        break
                    call = chain.run(frame, current)[0] if current.shape[0] else None
                    recorder.add(call, read_ns=read_ns)
                    frames += 1
                    people += current.shape[0]
                    bar.update()
                    if (max_frames is not None and frames >= max_frames) or \
                            (deadline is not None and time.perf_counter() >= deadline):
                        break
                    began = clock()
                    ok, frame = capture.read()
                    read_ns = clock() - began
                    if not ok or frame is None:
                        break
            finally:
                bar.close()
            wall_s = time.perf_counter() - loop_start
            if frames == 0:
                raise InputError(f"no frame of {str(video)!r} had boxes to profile")
            memory = _memory(runner, rss_before)
            card = runner.card
            device = _runner_device(runner, path)
            gpu = chain.gpu_timed
            copies = ("zero-copy" if getattr(runner, "zero_copy", False) else "pinned") \
                if gpu else None
            flip = chain.flip_test
    finally:
        capture.release()
    samples = recorder.samples["end_to_end"]
    result = VideoProfile(path=str(video), frames=frames, people=people,
                          frame_size=(width, height), wall_s=wall_s, stages=recorder.stats(),
                          first_frame_ms=first, samples_ms=tuple(samples))
    _log.info("%s on %s: %d frames, %.1f frames/s", path.name, video.name, frames, result.fps)
    return ModelProfile(
        path=str(path), name=path.name, backend="tensorrt" if _is_engine(path) else "onnxruntime",
        device=device, precision=card.precision, family=card.family, variant=card.variant,
        input_size=(card.input.width, card.input.height),
        timing="cuda-events" if gpu else "perf_counter_ns", copies=copies, cuda_graph=cuda_graph,
        flip_test=flip, load_ms=load_ms, warmup=warmup, source=str(video), batches=(),
        memory=memory, video=result)


def profile_models(model_paths: Sequence[str | Path], *,
                   batch_sizes: Sequence[int] | None = None,
                   warmup: int | None = None, iters: int | None = None,
                   duration_s: float | None = None,
                   image: str | Path | np.ndarray | None = None,
                   video: str | Path | None = None,
                   boxes: np.ndarray | Sequence[np.ndarray] | str | Path | None = None,
                   cuda_graph: bool = False, layers: bool = False, progress: bool = True,
                   runner_factory: RunnerFactory | None = None) -> ProfileReport:
    """Profile several models one after the other in this process; one ProfileReport.

    Ratios in the report compare with the first model. With `video`, each model runs
    `profile_video` (iters = most frames, default the whole video; duration_s bounds
    each model's run); otherwise `profile_model` at every batch size (default (1,);
    iters and duration_s apply per batch size). warmup None: 50 calls per batch
    size, 10 on a video. Arguments are checked for every model before any is timed.
    """
    load = _load_average()
    paths = [Path(p) for p in model_paths]
    if not paths:
        raise InputError("no models to profile; give at least one ONNX or engine file")
    if image is not None and video is not None:
        raise InputError("give an image or a video to profile on, not both")
    _check_run_length(iters, duration_s, DEFAULT_ITERS)
    if layers:
        onnx = [p.name for p in paths if not _is_engine(p)]
        if onnx:
            raise InputError(f"per-layer times need TensorRT engines "
                             f"({', '.join(ENGINE_SUFFIXES)}); {', '.join(onnx)} would run on "
                             "ONNX Runtime — leave out --layers or profile engines only")
    if cuda_graph:
        onnx = [p.name for p in paths if not _is_engine(p)]
        if onnx:
            raise InputError(f"CUDA graphs apply to TensorRT engines; {', '.join(onnx)} would run "
                             "on ONNX Runtime — leave out --cuda-graph or profile engines only")
    if runner_factory is None:
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise InputError(f"model file(s) {missing} do not exist")
    models = []
    if video is not None:
        if layers:
            raise InputError("per-layer times come from the batch runs; leave out --layers with "
                             "--video")
        if batch_sizes is not None:
            raise InputError("batch sizes do not apply to a video: each frame runs the people its "
                             "boxes give; leave out --batch with --video")
        for path in paths:
            models.append(profile_video(
                path, video, boxes=boxes,
                warmup=DEFAULT_VIDEO_WARMUP if warmup is None else warmup, max_frames=iters,
                duration_s=duration_s, cuda_graph=cuda_graph, progress=progress,
                runner_factory=runner_factory))
    else:
        sizes = _check_batch_sizes((1,) if batch_sizes is None else batch_sizes)
        if boxes is not None and not isinstance(boxes, np.ndarray):
            raise InputError("per-frame boxes apply to a video; on an image give an (M, 4) array")
        _load_frame(image)  # a bad image fails here, before any model loads
        for path in paths:
            models.append(profile_model(
                path, batch_sizes=sizes, warmup=DEFAULT_WARMUP if warmup is None else warmup,
                iters=iters, duration_s=duration_s, image=image, boxes=boxes,
                cuda_graph=cuda_graph, layers=layers, progress=progress,
                runner_factory=runner_factory))
    return ProfileReport(models=tuple(models), environment=collect_environment(models, load))


# ---------------------------------------------------------------------------------------------
# Environment

def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip("\x00 \n")
    except OSError:
        return None


def _cpu_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {"cpu_count": os.cpu_count()}
    try:
        facts["cpus_usable"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        facts["cpus_usable"] = None
    info = _read("/proc/cpuinfo") or ""
    fields: dict[str, str] = {}
    for line in info.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    facts["cpu"] = (fields.get("model name") or fields.get("Model") or fields.get("Hardware")
                    or platform.processor() or None)
    current = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")
    maximum = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    try:
        facts["cpu_mhz"] = (int(current) / 1000 if current else
                            float(fields["cpu MHz"]) if "cpu MHz" in fields else None)
    except ValueError:
        facts["cpu_mhz"] = None
    facts["cpu_max_mhz"] = int(maximum) / 1000 if maximum and maximum.isdigit() else None
    facts["cpu_governor"] = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    facts["board"] = _read("/proc/device-tree/model")  # Jetson: "NVIDIA Jetson AGX Orin …"
    return facts


def _load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except (AttributeError, OSError):  # Windows
        return None


def _gpu_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {}
    driver = _read("/proc/driver/nvidia/version")
    if driver:
        match = re.search(r"Kernel Module(?: for \S+)?\s+(\S+)", driver)
        facts["gpu_driver"] = match.group(1) if match else driver.splitlines()[0]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return facts
    query = "name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem"
    try:
        done = subprocess.run([smi, f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        _log.debug("nvidia-smi failed: %r", exc)
        return facts
    line = done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() \
        else ""
    values = [v.strip() for v in line.split(",")]
    if len(values) == 6:
        name, version, sm, sm_max, mem, mem_max = values
        facts["gpu"] = name
        facts["gpu_driver"] = version
        facts["gpu_clocks"] = f"SM {sm}/{sm_max} MHz, memory {mem}/{mem_max} MHz"
    return facts


def _distribution_version(*names: str) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def collect_environment(models: Sequence[ModelProfile] = (),
                        load_average: tuple[float, float, float] | None = None) -> Environment:
    """What this machine is: CPU, clocks, load, GPU and driver, library versions.

    TensorRT's version is the TensorRT module loaded in this process (the one that ran
    the engines; nothing is imported to find it), the CUDA devices those of the
    engines profiled, ONNX Runtime's version that of its installed distribution.
    load_average: os.getloadavg() from before the runs; None reads it now.
    """
    tensorrt = None
    loaded = [sys.modules[n] for n in ("tensorrt", "tensorrt_lean", "tensorrt_dispatch")
              if n in sys.modules]
    for module in loaded:
        version = getattr(module, "__version__", None)
        if version:
            tensorrt = f"{module.__name__} {version}"
            break
    onnxruntime = (getattr(sys.modules["onnxruntime"], "__version__", None)
                   if "onnxruntime" in sys.modules else None) or \
        _distribution_version("onnxruntime", "onnxruntime-gpu")
    devices = tuple(dict.fromkeys(m.device for m in models if m.backend == "tensorrt"))
    return Environment(
        python=platform.python_version(), platform=platform.platform(), numpy=np.__version__,
        opencv=cv2.__version__, onnxruntime=onnxruntime, tensorrt=tensorrt,
        cuda_devices=devices, load_average=load_average or _load_average(), **_cpu_facts(),
        **_gpu_facts())


# ---------------------------------------------------------------------------------------------
# The table

def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if value < 10 else f"{value:.2f}" if value < 100 else f"{value:.1f}"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}" if value < 1000 else f"{value:.0f}"


def _mib(value: int | None) -> str:
    return "—" if value is None else f"{value / 2**20:.1f}"


def _times(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


_CELL = 8  # width of one number


def _format_report(report: ProfileReport, top_layers: int) -> str:
    models = report.models
    lines = [f"edgepose profile · {report.created}", report.environment.summary(), ""]
    for index, model in enumerate(models, 1):
        what = f"{model.family} {model.variant} {model.precision}"
        how = f"{model.backend} on {model.device}, {model.timing}"
        if model.copies:
            how += f", {model.copies} copies"
        if model.cuda_graph:
            how += ", CUDA graph"
        if model.flip_test:
            how += ", flip test (2 runs per crop)"
        runs = (f"{model.video.frames} frames" if model.video is not None else
                ", ".join(f"B{b.batch}×{b.iterations}" for b in model.batches))
        lines.append(f"[{index}] {model.name}: {what}; {how}; load {_ms(model.load_ms)} ms; "
                     f"{model.source}; {model.warmup} warm-up, timed {runs}")
    lines.append("")
    header_cells = []
    for index in range(len(models)):
        cells = f"{'mean':>{_CELL}}{'p50':>{_CELL}}{'p99':>{_CELL}}"
        if index:
            cells += f"{'ratio':>{_CELL}}"
        header_cells.append(cells)
    titles = []
    for index in range(1, len(models) + 1):
        width = _CELL * (3 if index == 1 else 4)
        title = f"[{index}]" + (" vs [1]" if index > 1 else "")
        titles.append(f"{title:^{width}}")
    label_width = 23
    lines.append(f"{'ms':<{label_width}}" + "  ".join(titles))
    lines.append(f"{'batch  stage':<{label_width}}" + "  ".join(header_cells))

    def stage_row(label: str, getter: Callable[[ModelProfile], StageStats | None],
                  ratio: Callable[[int], float | None]) -> str:
        cells = []
        for index, model in enumerate(models):
            stats = getter(model)
            cell = (f"{_ms(stats.mean if stats else None):>{_CELL}}"
                    f"{_ms(stats.p50 if stats else None):>{_CELL}}"
                    f"{_ms(stats.p99 if stats else None):>{_CELL}}")
            if index:
                cell += f"{_times(ratio(index)):>{_CELL}}"
            cells.append(cell)
        return f"{label:<{label_width}}" + "  ".join(cells)

    def value_row(label: str, values: list[str], ratios: list[float | None]) -> str:
        cells = []
        for index, value in enumerate(values):
            cell = f"{value:>{_CELL}}{'':>{2 * _CELL}}"
            if index:
                cell += f"{_times(ratios[index]):>{_CELL}}"
            cells.append(cell)
        return f"{label:<{label_width}}" + "  ".join(cells)

    def relative(values: list[float | None]) -> list[float | None]:
        first = values[0]
        return [None if v is None or not first else v / first for v in values]

    sizes = sorted({b.batch for m in models for b in m.batches})
    for size in sizes:
        present = [s for s in STAGES if any(m.batch(size) and s in m.batch(size).stages
                                             for m in models)]
        for stage in present:
            lines.append(stage_row(f"{size:<5}  {STAGE_LABELS[stage]}",
                                   lambda m, st=stage: _stage_of(m, size, st),
                                   lambda i, st=stage: report.ratio(i, size, st)))
        first_calls = [m.batch(size).first_call_ms.get("end_to_end") if m.batch(size) else None
                       for m in models]
        lines.append(value_row(f"{size:<5}  first call ms", [_ms(v) for v in first_calls],
                               relative(first_calls)))
        fps = [m.batch(size).frames_per_s if m.batch(size) else None for m in models]
        pps = [m.batch(size).people_per_s if m.batch(size) else None for m in models]
        lines.append(value_row(f"{size:<5}  frames/s", [_rate(v) for v in fps], relative(fps)))
        lines.append(value_row(f"{size:<5}  people/s", [_rate(v) for v in pps], relative(pps)))
    if any(m.video is not None for m in models):
        present = [s for s in STAGES if any(m.video and s in m.video.stages for m in models)]
        for stage in present:
            lines.append(stage_row(f"video  {STAGE_LABELS[stage]}",
                                   lambda m, st=stage: _stage_of(m, None, st),
                                   lambda i, st=stage: report.ratio(i, None, st)))
        first_frames = [m.video.first_frame_ms.get("end_to_end") if m.video else None
                        for m in models]
        lines.append(value_row("video  first frame ms", [_ms(v) for v in first_frames],
                               relative(first_frames)))
        fps = [m.video.fps if m.video else None for m in models]
        pps = [m.video.people_per_s if m.video else None for m in models]
        lines.append(value_row("video  frames/s", [_rate(v) for v in fps], relative(fps)))
        lines.append(value_row("video  people/s", [_rate(v) for v in pps], relative(pps)))
    # Host figures are process-wide (shared libraries load once), so no ratio for them.
    memory_rows = (("host RSS MiB", lambda m: m.memory.host_rss_bytes, False),
                   ("RSS growth MiB", lambda m: m.memory.host_rss_growth_bytes, False),
                   ("GPU MiB", lambda m: m.memory.gpu_bytes, True))
    for label, getter, compare in memory_rows:
        values = [getter(m) for m in models]
        lines.append(value_row(f"mem    {label}", [_mib(v) for v in values],
                               relative(values) if compare else [None] * len(values)))
    for index, model in enumerate(models, 1):
        if not model.layers:
            continue
        shown = model.layers[:top_layers]
        lines += ["", f"[{index}] {model.name}: top {len(shown)} of {len(model.layers)} layers "
                      f"(batch {model.layer_batch}, mean of {LAYER_RUNS} calls with TensorRT's "
                      "profiler attached)"]
        for layer in shown:
            name = layer.name if len(layer.name) <= 60 else layer.name[:57] + "..."
            lines.append(f"  {name:<60} {_ms(layer.mean_ms):>{_CELL}} ms {layer.share:>7.1%}")
    lines += ["", "The stages of a call add up to its 'end to end'. vs [1]: mean / model [1]'s "
                  "mean (other rows: value / model [1]'s value)."]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The plot (OpenCV only)

_COLORS = ((180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148),
           (75, 86, 140), (194, 119, 227), (127, 127, 127))
_INK, _GRID, _PAPER = (40, 40, 40), (225, 225, 225), (255, 255, 255)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if not high > low:
        high = low + 1.0
    raw = (high - low) / count
    step = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * step:
            step *= factor
            break
    # From the tick at or below `low` to the first at or above `high`: data stays inside.
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(i * step, 10) for i in range(first, max(last, first + 1) + 1)]


def _tick_text(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e4 else f"{value:.0e}"


class _Axes:
    """A plot area in a canvas: data coordinates → pixels, with axes and grid."""

    def __init__(self, canvas: np.ndarray, box: tuple[int, int, int, int],
                 x_range: tuple[float, float], y_ticks: list[float], title: str, x_label: str,
                 y_label: str) -> None:
        self.canvas = canvas
        self.left, self.top, self.right, self.bottom = box
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_ticks[0], y_ticks[-1]
        cv2.putText(canvas, title, (self.left, self.top - 28), _FONT, 0.6, _INK, 1, cv2.LINE_AA)
        cv2.putText(canvas, y_label, (self.left - 50, self.top - 8), _FONT, 0.45, _INK, 1,
                    cv2.LINE_AA)
        (w, _), _ = cv2.getTextSize(x_label, _FONT, 0.45, 1)
        cv2.putText(canvas, x_label, ((self.left + self.right - w) // 2, self.bottom + 42), _FONT,
                    0.45, _INK, 1, cv2.LINE_AA)
        for tick in y_ticks:
            y = self.py(tick)
            cv2.line(canvas, (self.left, y), (self.right, y), _GRID, 1)
            text = _tick_text(tick)
            (w, h), _ = cv2.getTextSize(text, _FONT, 0.4, 1)
            cv2.putText(canvas, text, (self.left - w - 6, y + h // 2), _FONT, 0.4, _INK, 1,
                        cv2.LINE_AA)
        cv2.rectangle(canvas, (self.left, self.top), (self.right, self.bottom), _INK, 1)

    def px(self, x: float) -> int:
        span = self.x1 - self.x0 or 1.0
        return int(round(self.left + (x - self.x0) / span * (self.right - self.left)))

    def py(self, y: float) -> int:
        span = self.y1 - self.y0 or 1.0
        y = min(max(y, self.y0), self.y1)
        return int(round(self.bottom - (y - self.y0) / span * (self.bottom - self.top)))

    def x_tick(self, x: float, text: str) -> None:
        px = self.px(x)
        cv2.line(self.canvas, (px, self.bottom), (px, self.bottom + 4), _INK, 1)
        (w, h), _ = cv2.getTextSize(text, _FONT, 0.4, 1)
        cv2.putText(self.canvas, text, (px - w // 2, self.bottom + 8 + h), _FONT, 0.4, _INK, 1,
                    cv2.LINE_AA)


def plot_image(report: ProfileReport, size: tuple[int, int] = (1400, 620)) -> np.ndarray:
    """The plot as a BGR uint8 image: end-to-end latency per batch size (mean, with a
    p50–p99 bar) and a histogram of end-to-end latency (first batch size, or the video)."""
    width, height = size
    canvas = np.full((height, width, 3), _PAPER, np.uint8)
    models = report.models
    legend_w = 230
    panel_w = (width - legend_w - 80) // 2
    top, bottom = 80, height - 70
    # Left: latency per batch size.
    sizes = sorted({b.batch for m in models for b in m.batches})
    if sizes:
        highs = [b.stages["end_to_end"].p99 for m in models for b in m.batches]
        ticks = _nice_ticks(0.0, max(highs) * 1.05)
        axes = _Axes(canvas, (80, top, 80 + panel_w - 40, bottom), (-0.5, len(sizes) - 0.5), ticks,
                     "end-to-end latency per batch size (mean; bar p50-p99)", "batch size", "ms")
        for slot, batch in enumerate(sizes):
            axes.x_tick(slot, str(batch))
        for index, model in enumerate(models):
            color = _COLORS[index % len(_COLORS)]
            offset = (index - (len(models) - 1) / 2) * 0.06
            points = []
            for slot, batch in enumerate(sizes):
                found = model.batch(batch)
                if found is None:
                    continue
                stats = found.stages["end_to_end"]
                x = axes.px(slot + offset)
                cv2.line(canvas, (x, axes.py(stats.p50)), (x, axes.py(stats.p99)), color, 2)
                points.append((x, axes.py(stats.mean)))
            for a, b in zip(points, points[1:]):
                cv2.line(canvas, a, b, color, 2, cv2.LINE_AA)
            for point in points:
                cv2.circle(canvas, point, 4, color, -1, cv2.LINE_AA)
    else:
        cv2.putText(canvas, "no batch runs (video only)", (100, height // 2), _FONT, 0.6, _INK, 1,
                    cv2.LINE_AA)
    # Right: histogram of end-to-end samples.
    series = []
    for model in models:
        if model.batches:
            series.append((model.batches[0].samples_ms, f"batch {model.batches[0].batch}"))
        elif model.video is not None:
            series.append((model.video.samples_ms, "video frames"))
    every = np.concatenate([np.asarray(s, np.float64) for s, _ in series])
    low, high = float(every.min()), float(np.percentile(every, 99.5))
    if high <= low:
        high = low + max(1e-3, abs(low) * 0.01)
    bins = np.linspace(low, high, 41)
    counts = [np.histogram(np.clip(np.asarray(s, np.float64), low, high), bins=bins)[0]
              for s, _ in series]
    ticks = _nice_ticks(0.0, max(int(c.max()) for c in counts) * 1.05)
    left = 80 + panel_w + 60
    what = sorted({label for _, label in series})
    axes = _Axes(canvas, (left, top, left + panel_w - 40, bottom), (low, high), ticks,
                 f"end-to-end latency histogram ({', '.join(what)}; last bin holds > p99.5)",
                 "ms", "calls")
    for tick in _nice_ticks(low, high, 6):
        if low <= tick <= high:
            axes.x_tick(tick, _tick_text(tick))
    for index, count in enumerate(counts):
        color = _COLORS[index % len(_COLORS)]
        layer = canvas.copy()
        for b, value in enumerate(count):
            if value:
                cv2.rectangle(layer, (axes.px(bins[b]), axes.py(float(value))),
                              (axes.px(bins[b + 1]), axes.bottom - 1), color, -1)
        # Translucent bars so overlapping models stay visible.
        cv2.addWeighted(layer, 0.35, canvas, 0.65, 0, dst=canvas)
        outline = []
        for b, value in enumerate(count):
            y = axes.py(float(value))
            outline += [(axes.px(bins[b]), y), (axes.px(bins[b + 1]), y)]
        cv2.polylines(canvas, [np.asarray(outline, np.int32)], False, color, 2, cv2.LINE_AA)
    # Legend.
    x = axes.right + 20
    cv2.putText(canvas, "models", (x, top), _FONT, 0.5, _INK, 1, cv2.LINE_AA)
    for index, model in enumerate(models):
        y = top + 24 + index * 22
        color = _COLORS[index % len(_COLORS)]
        cv2.rectangle(canvas, (x, y - 10), (x + 14, y + 2), color, -1)
        label = f"[{index + 1}] {model.name}"
        cv2.putText(canvas, label[:26], (x + 20, y), _FONT, 0.4, _INK, 1, cv2.LINE_AA)
    cv2.putText(canvas, f"edgepose profile {report.created}", (20, height - 15), _FONT, 0.4,
                (120, 120, 120), 1, cv2.LINE_AA)
    return canvas


def write_plot(report: ProfileReport, path: str | Path) -> Path:
    """Write `plot_image(report)` as a PNG, atomically."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"the plot is a PNG; name the file *.png, not {path.name!r}")
    return write_image_atomic(path, plot_image(report))


def write_report_json(report: ProfileReport, path: str | Path) -> Path:
    """Write `report.to_dict()` as JSON, atomically."""
    return write_json_atomic(path, report.to_dict())


def read_report_json(path: str | Path) -> ProfileReport:
    """A report written by write_report_json."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"profile report {str(path)!r} does not exist")
    try:
        return ProfileReport.from_dict(json.loads(path.read_text()))
    except json.JSONDecodeError as exc:
        raise InputError(f"profile report {str(path)!r} is not valid JSON: {exc}") from None


__all__ = [
    "STAGES", "StageStats", "stage_stats", "BatchProfile", "VideoProfile", "LayerTime",
    "MemoryStats", "ModelProfile", "Environment", "ProfileReport", "profile_model",
    "profile_video", "profile_models", "parse_duration", "parse_batch_sizes", "read_frame_boxes",
    "collect_environment", "host_memory", "plot_image", "write_plot", "write_report_json",
    "read_report_json", "summarize_layers", "open_profiling_runner", "synthetic_frame",
    "grid_boxes",
]
