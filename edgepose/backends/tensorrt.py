"""TensorRT backend: runs an engine built by 'edgepose build' on an NVIDIA GPU.

Works with TensorRT 10.3 (JetPack 6) and 11.x: every TensorRT attribute used
here is listed in TENSORRT_RUNTIME_NAMES, and the contract test checks each one
against the real TensorRT 11 lean bindings (the 10.3 bindings have them too; see
tests/edgepose/backends/test_tensorrt_contract.py).

Per call the hot path allocates no buffers: I/O buffers are planned once for the
largest profile shape, tensor addresses are bound once, and per input shape the
output views (and, with cuda_graph, a CUDA graph) are made once and reused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping

import numpy as np

from edgepose import _optional
from edgepose import cuda as cuda_layer
from edgepose.backends.base import (Card, FeedContract, RunnerBase, TensorSpec, check_card_against_io,
                                    check_feeds)
from edgepose.backends.buffers import (BufferPlan, ProfileRange, Shape, TensorDesc,
                                       check_input_shape, nbytes, numpy_dtype, plan_buffers)
from edgepose.card import ModelCard
from edgepose.cuda.base import Cuda, DeviceBuffer, DeviceInfo, Event, Graph, HostBuffer, Stream
from edgepose.errors import (BackendError, EdgeposeError, InputError, MissingDependencyError,
                             ModelFileError)
from edgepose.sidecar import EngineInfo, check_plan, read_sidecar

_log = logging.getLogger(__name__)

#: Every TensorRT name the runtime touches, by class ("tensorrt" is the module).
#: tests/edgepose/backends/test_tensorrt_contract.py checks each against tensorrt_lean 11.4,
#: and the unit tests' double exposes exactly these, so a name used here but
#: missing from this table fails the unit tests.
TENSORRT_RUNTIME_NAMES: Mapping[str, tuple[str, ...]] = {
    "tensorrt": ("__version__", "ILogger", "Runtime", "TensorIOMode"),
    "ILogger": ("log",),
    "Runtime": ("deserialize_cuda_engine", "engine_host_code_allowed"),
    "ICudaEngine": ("num_io_tensors", "get_tensor_name", "get_tensor_mode", "get_tensor_dtype",
                    "get_tensor_shape", "get_tensor_profile_shape", "num_optimization_profiles",
                    "create_execution_context", "device_memory_size_v2"),
    "IExecutionContext": ("set_input_shape", "set_tensor_address", "execute_async_v3",
                          "get_tensor_shape"),
    "TensorIOMode": ("INPUT", "OUTPUT"),
}

# TensorRT's log severities (enum member names) → logging levels. INFO is chatty
# (per-layer timing on load), so it goes to DEBUG.
_SEVERITY_LEVELS = {"INTERNAL_ERROR": logging.CRITICAL, "ERROR": logging.ERROR,
                    "WARNING": logging.WARNING, "INFO": logging.DEBUG, "VERBOSE": logging.DEBUG}


def choose_tensorrt_module(info: EngineInfo, available: Mapping[str, str]) -> str:
    """Which TensorRT Python module runs this plan, given {importable module: its version}.

    The full `tensorrt` runs every plan. The lean and dispatch runtimes run only
    version-compatible plans: `tensorrt_lean` those built with its own version,
    `tensorrt_dispatch` any compatible one (it loads the lean runtime embedded in
    the plan). A lean runtime of another version is the last resort: it is tried,
    with a warning, rather than refused on a guess.
    """
    if "tensorrt" in available:
        return "tensorrt"
    if not info.version_compatible:
        if available:
            raise ModelFileError(
                f"this engine was built without --version-compatible, so it needs the full "
                f"TensorRT runtime (pip install 'edgepose[trt]'); {', '.join(sorted(available))} "
                "run only version-compatible plans — or rebuild with 'edgepose build "
                "--version-compatible'"
            )
        raise MissingDependencyError("tensorrt", "trt", "Running TensorRT engines")
    lean = available.get("tensorrt_lean")
    if lean is not None and lean == info.tensorrt_version:
        return "tensorrt_lean"
    if "tensorrt_dispatch" in available:
        return "tensorrt_dispatch"
    if lean is not None:
        _log.warning("engine built with TensorRT %s; trying tensorrt_lean %s, which may only run "
                     "plans built with its own version (tensorrt_dispatch runs any)",
                     info.tensorrt_version, lean)
        return "tensorrt_lean"
    raise MissingDependencyError("tensorrt", "trt", "Running TensorRT engines")


def load_tensorrt(info: EngineInfo) -> ModuleType:
    """Import the module `choose_tensorrt_module` picks; only the full one if it is there."""
    found: dict[str, ModuleType] = {}
    for name in _optional.TENSORRT_MODULES:
        try:
            found[name] = _optional.tensorrt(name)
        except MissingDependencyError:
            continue
        if name == "tensorrt":
            break  # it runs every plan; no need to load the others
    chosen = choose_tensorrt_module(info, {k: str(m.__version__) for k, m in found.items()})
    return found[chosen]


def _make_logger(trt: ModuleType) -> Any:
    """A TensorRT logger that writes to `logging` and keeps the last error for messages."""

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            name = getattr(severity, "name", str(severity))
            level = _SEVERITY_LEVELS.get(name, logging.WARNING)
            if level >= logging.ERROR:
                self.errors.append(msg)
                del self.errors[:-5]
            _log.log(level, "TensorRT: %s", msg)

    return _Logger()


@dataclass(frozen=True)
class CallTimings:
    """GPU time of the stages of one `infer` call, from CUDA events, in milliseconds.

    On integrated GPUs (zero-copy) there are no copies and h2d_ms, d2h_ms are ~0.
    """

    h2d_ms: float
    compute_ms: float
    d2h_ms: float

    @property
    def total_ms(self) -> float:
        return self.h2d_ms + self.compute_ms + self.d2h_ms


@dataclass
class _Binding:
    """One I/O tensor: its plan and the memory behind it."""

    plan: BufferPlan
    desc: TensorDesc
    host: HostBuffer
    device: DeviceBuffer | None  # None when zero-copy: the engine reads `host` directly
    address: int


@dataclass
class _ShapeState:
    """What one combination of input shapes needs, made on its first call."""

    input_views: tuple[np.ndarray, ...]
    input_nbytes: tuple[int, ...]
    output_views: dict[str, np.ndarray]
    output_nbytes: tuple[int, ...]
    graph: Graph | None = None


class TensorRTRunner(RunnerBase):
    """Runs an engine (`.engine`/`.plan` with its `<engine>.json` sidecar) with TensorRT.

    OUTPUTS ARE VIEWS INTO PINNED HOST MEMORY THAT THE NEXT `infer` CALL OVERWRITES,
    and that `close()` frees. Copy what you keep (`np.array(out, copy=True)`), or
    pass `copy_outputs=True` to get arrays you own at the cost of a copy per call.

    cuda_graph: capture one CUDA graph per input shape (on its first call) and
        replay it on later calls with that shape; cuts launch overhead for small
        batches. Engines with data-dependent shapes cannot be captured.
    cuda_impl: "auto" (cuda-python, else pycuda), "cuda-python" or "pycuda".
    timing: record CUDA events around the copies and the engine; `last_timings`
        then holds the stages of the last call.

    Runs on CUDA device 0 (select another with CUDA_VISIBLE_DEVICES). On an
    integrated GPU (Jetson) all I/O lives in mapped pinned memory and there are
    no copies. Not thread-safe: one runner per thread.
    """

    # Defaults so that _release can run after a constructor that failed half way.
    _cuda: Cuda | None = None
    _stream: Stream | None = None
    _events: tuple[Event, ...] = ()
    _bindings: tuple[_Binding, ...] = ()
    _shapes: dict[tuple[Shape, ...], _ShapeState] = {}
    _context: Any = None
    _engine: Any = None
    _runtime: Any = None
    _logger: Any = None

    def __init__(self, path: str | Path, *, cuda_graph: bool = False, cuda_impl: str = "auto",
                 copy_outputs: bool = False, timing: bool = False,
                 card_type: type[Card] = ModelCard) -> None:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"engine file {str(path)!r} does not exist")
        self.path = path
        self.card: Card
        self.card, self.engine_info = read_sidecar(path, card_type)
        plan = path.read_bytes()
        self.cuda_graph = cuda_graph
        self.copy_outputs = copy_outputs
        self.timing = timing
        self.last_timings: CallTimings | None = None
        self._shapes = {}
        self._active: tuple[Shape, ...] | None = None
        try:
            self._cuda = cuda_layer.get_cuda(cuda_impl)
            # Before any TensorRT runtime exists: without a device TensorRT crashes
            # the process while deserialising instead of raising.
            self.device: DeviceInfo = self._cuda.require_device()
            trt = load_tensorrt(self.engine_info)
            self.tensorrt_module = f"{trt.__name__} {trt.__version__}"
            check_plan(plan, self.engine_info, engine_path=path,
                       runtime_version=str(trt.__version__),
                       compute_capability=self.device.compute_capability)
            self._open_engine(trt, plan)
            self._bind(trt)
        except BaseException:
            self.close()
            raise
        _log.info("%s on %s (%s, compute capability %s) with %s via %s%s", path.name,
                  self.device.name, "integrated, zero-copy" if self.zero_copy else "discrete",
                  self.device.compute_capability, self.tensorrt_module, self._cuda.name,
                  ", CUDA graphs" if cuda_graph else "")

    # -- opening ---------------------------------------------------------------------------

    def _open_engine(self, trt: ModuleType, plan: bytes) -> None:
        self._logger = _make_logger(trt)  # must outlive the runtime and engine
        self._runtime = trt.Runtime(self._logger)
        if self.engine_info.version_compatible:
            # Such a plan carries its own lean runtime, host code TensorRT refuses to
            # load unless told the file is trusted; the sha256 check above is that trust.
            self._runtime.engine_host_code_allowed = True
        engine = self._runtime.deserialize_cuda_engine(plan)
        if engine is None:
            detail = "; ".join(self._logger.errors) or "no error was logged"
            raise ModelFileError(
                f"{self.path}: {self.tensorrt_module} could not deserialise the plan ({detail}); "
                "rebuild it with 'edgepose build' for this TensorRT and GPU"
            )
        self._engine = engine
        context = engine.create_execution_context()
        if context is None:
            raise BackendError(
                f"{self.path}: TensorRT could not create an execution context; the engine needs "
                f"{self.activation_bytes / 2**20:.1f} MiB of GPU memory for activations — "
                "free GPU memory or rebuild with a smaller --batch maximum"
            )
        self._context = context
        if engine.num_optimization_profiles > 1:
            _log.info("%s has %d optimisation profiles; using profile 0", self.path.name,
                      engine.num_optimization_profiles)

    def _describe(self, trt: ModuleType) -> list[TensorDesc]:
        engine = self._engine
        tensors = []
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            dtype = numpy_dtype(engine.get_tensor_dtype(name).name, name)
            shape = tuple(int(v) for v in engine.get_tensor_shape(name))
            profile = None
            if is_input and any(v < 0 for v in shape):
                low, opt, high = engine.get_tensor_profile_shape(name, 0)
                profile = ProfileRange(tuple(low), tuple(opt), tuple(high))
            tensors.append(TensorDesc(name, is_input, dtype, shape, profile))
        return tensors

    def _bind(self, trt: ModuleType) -> None:
        tensors = self._describe(trt)
        by_name = {t.name: t for t in tensors}
        card_inputs = [self.card.input.name]
        card_outputs = list(self.card.output_names)
        engine_inputs = [t.name for t in tensors if t.is_input]
        engine_outputs = [t.name for t in tensors if not t.is_input]
        missing = ([n for n in card_inputs if n not in engine_inputs]
                   + [n for n in card_outputs if n not in engine_outputs])
        if missing:
            raise ModelFileError(
                f"{self.path}: the card names tensor(s) {missing} that the engine lacks; the "
                f"engine has inputs {engine_inputs} and outputs {engine_outputs} — the sidecar "
                "belongs to another engine"
            )
        # Before any buffer exists: a sidecar whose card disagrees with the engine's shapes.
        check_card_against_io(self.card, [_spec(t) for t in tensors if t.is_input],
                              [_spec(t) for t in tensors if not t.is_input], str(self.path),
                              "engine")
        # The card's order first: it is the contract callers read; engine extras after.
        ordered = ([by_name[n] for n in card_inputs]
                   + [t for t in tensors if t.is_input and t.name not in card_inputs]
                   + [by_name[n] for n in card_outputs]
                   + [t for t in tensors if not t.is_input and t.name not in card_outputs])
        output_names = [t.name for t in ordered if not t.is_input]

        def largest_outputs(inputs: Mapping[str, Shape]) -> dict[str, Shape]:
            for name, shape in inputs.items():
                if not self._context.set_input_shape(name, shape):
                    raise BackendError(f"TensorRT refused the profile's largest shape {shape} "
                                       f"for input {name!r}: {self._last_errors()}")
            return {n: tuple(int(v) for v in self._context.get_tensor_shape(n))
                    for n in output_names}

        plans = plan_buffers(ordered, largest_outputs)
        self.zero_copy = self.device.zero_copy
        cuda = self._cuda
        bindings = []
        for desc, plan in zip(ordered, plans):
            host = cuda.host_buffer(plan.nbytes, mapped=self.zero_copy)
            device = None if self.zero_copy else cuda.device_buffer(plan.nbytes)
            address = host.device_ptr if device is None else device.ptr
            bindings.append(_Binding(plan, desc, host, device, address))
            self._bindings = tuple(bindings)  # so close() frees what exists if the next fails
            # Bound once: the buffers never move, so no call needs to bind again.
            if not self._context.set_tensor_address(desc.name, address):
                raise BackendError(f"TensorRT refused the address of tensor {desc.name!r}")
        self._inputs = tuple(b for b in self._bindings if b.desc.is_input)
        self._outputs = tuple(b for b in self._bindings if not b.desc.is_input)
        self._stream = cuda.stream()
        if self.timing:
            self._events = tuple(cuda.event() for _ in range(4))
        self.inputs = tuple(_spec(b.desc) for b in self._inputs)
        self.outputs = tuple(_spec(b.desc) for b in self._outputs)
        first = self._inputs[0].desc
        self.max_batch = first.max_shape[0] if first.shape else None
        low = first.profile.min[0] if first.profile is not None and first.shape else self.max_batch
        self._feeds = FeedContract(
            self.inputs, owner="engine", min_batch=1 if low is None else low,
            max_batch=self.max_batch, batch_range="profile",
            batch_fix=f"split the batch into calls of at most {self.max_batch}, or rebuild the "
                      "engine with a batch profile that covers it")

    def _set_input_shapes(self, shapes: tuple[Shape, ...]) -> None:
        for binding, shape in zip(self._inputs, shapes):
            if not self._context.set_input_shape(binding.desc.name, shape):
                raise BackendError(f"TensorRT refused shape {shape} for input "
                                   f"{binding.desc.name!r}: {self._last_errors()}")

    # -- running ---------------------------------------------------------------------------

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the engine once; returns views valid until the next call (see the class doc)."""
        self._require_open()
        check_feeds(feeds, self._feeds)
        arrays = tuple(feeds[b.desc.name] for b in self._inputs)
        # The profile's range of axes other than the batch, which the contract leaves open.
        key = tuple(check_input_shape(b.desc, a.shape) for b, a in zip(self._inputs, arrays))
        state = self._shapes.get(key)
        if state is None:
            state = self._prepare(key)
        elif key != self._active:
            self._set_input_shapes(key)
            self._active = key
        for view, array in zip(state.input_views, arrays):
            np.copyto(view, array, casting="no")
        capture = self.cuda_graph and state.graph is None
        self._enqueue(state)
        if capture:
            # Captured after this call ran normally: TensorRT needs one plain execution
            # after a shape change before its work can be captured.
            state.graph = self._capture()
        if self.timing:
            start, copied_in, computed, copied_out = self._events
            self.last_timings = CallTimings(h2d_ms=copied_in.elapsed_ms(start),
                                            compute_ms=computed.elapsed_ms(copied_in),
                                            d2h_ms=copied_out.elapsed_ms(computed))
        if self.copy_outputs:
            return {name: view.copy() for name, view in state.output_views.items()}
        return dict(state.output_views)

    def _enqueue(self, state: _ShapeState) -> None:
        """Queue copies in, the engine, copies out on the stream; wait once for all of it."""
        cuda, stream, events = self._cuda, self._stream, self._events
        if events:
            events[0].record(stream)
        if not self.zero_copy:
            for binding, size in zip(self._inputs, state.input_nbytes):
                cuda.copy_htod_async(binding.device, binding.host, size, stream)
        if events:
            events[1].record(stream)
        if state.graph is not None:
            state.graph.launch(stream)
        else:
            self._execute()
        if events:
            events[2].record(stream)
        if not self.zero_copy:
            for binding, size in zip(self._outputs, state.output_nbytes):
                cuda.copy_dtoh_async(binding.host, binding.device, size, stream)
        if events:
            events[3].record(stream)
        stream.synchronize()

    def _execute(self) -> None:
        if not self._context.execute_async_v3(self._stream.handle):
            raise BackendError(f"TensorRT failed to run {self.path.name}: {self._last_errors()}")

    def _capture(self) -> Graph:
        cuda, stream = self._cuda, self._stream
        cuda.begin_capture(stream)
        try:
            self._execute()
        except BaseException:
            # End the capture whatever happened, or the stream stays unusable.
            try:
                cuda.end_capture(stream).close()
            except EdgeposeError:
                pass
            raise
        return cuda.end_capture(stream)

    def _prepare(self, key: tuple[Shape, ...]) -> _ShapeState:
        """Views and byte counts for a new combination of input shapes; once per shape."""
        self._set_input_shapes(key)
        self._active = key
        input_views = tuple(b.host.view(b.desc.dtype, shape) for b, shape in zip(self._inputs, key))
        outputs: dict[str, np.ndarray] = {}
        for binding in self._outputs:
            shape = tuple(int(v) for v in self._context.get_tensor_shape(binding.desc.name))
            outputs[binding.desc.name] = binding.host.view(binding.desc.dtype, shape)
        state = _ShapeState(
            input_views=input_views,
            input_nbytes=tuple(nbytes(b.desc.dtype, s) for b, s in zip(self._inputs, key)),
            output_views=outputs,
            output_nbytes=tuple(v.nbytes for v in outputs.values()),
        )
        self._shapes[key] = state
        return state

    def _last_errors(self) -> str:
        errors = getattr(self._logger, "errors", None)
        return "; ".join(errors) if errors else "TensorRT logged no error"

    # -- facts -------------------------------------------------------------------------------

    @property
    def activation_bytes(self) -> int:
        """GPU memory the engine's execution context takes for activations.

        `device_memory_size_v2` exists from TensorRT 10.1 (10.3 has it) through 11.x;
        the older `device_memory_size` was removed in 11.
        """
        return int(self._engine.device_memory_size_v2)

    @property
    def buffer_bytes(self) -> tuple[int, int]:
        """(device, pinned host) bytes of the planned I/O buffers.

        Zero-copy (Jetson): the mapped host buffers are the device's memory too.
        """
        host = sum(int(b.plan.nbytes) for b in self._bindings)
        device = host if self.zero_copy else sum(int(b.plan.nbytes) for b in self._bindings
                                                 if b.device is not None)
        return device, host

    @property
    def execution_context(self) -> Any:
        """The TensorRT IExecutionContext, for attaching an IProfiler (per-layer times)."""
        return self._context

    @property
    def graph_shapes(self) -> tuple[tuple[Shape, ...], ...]:
        """Input shapes with a captured CUDA graph."""
        return tuple(k for k, s in self._shapes.items() if s.graph is not None)

    # -- closing -------------------------------------------------------------------------------

    def _release(self) -> None:
        stream = self._stream
        if stream is not None and not stream.closed:
            try:
                stream.synchronize()  # nothing may still be using what is freed below
            except EdgeposeError as exc:
                _log.warning("synchronising before close failed: %s", exc)
        resources: list[Any] = [s.graph for s in self._shapes.values() if s.graph is not None]
        resources += [*self._events, stream]
        for binding in self._bindings:
            resources += [binding.device, binding.host]
        self._shapes = {}
        self._events = ()
        self._bindings = ()
        self._stream = None
        for resource in resources:
            if resource is not None:
                try:
                    resource.close()
                except EdgeposeError as exc:
                    _log.warning("freeing %s failed: %s", type(resource).__name__, exc)
        # TensorRT objects go child first: context, engine, runtime, then the logger.
        self._context = None
        self._engine = None
        self._runtime = None
        self._logger = None
        if self._cuda is not None:
            cuda, self._cuda = self._cuda, None
            cuda.close()


def _spec(desc: TensorDesc) -> TensorSpec:
    shape = tuple(None if v < 0 else v for v in desc.shape)
    return TensorSpec(desc.name, desc.dtype, shape)
