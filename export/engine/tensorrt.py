"""ONNX → TensorRT engine plus its `<engine>.json` sidecar, on TensorRT 10.3 and 11.x.

Precision lives in the graph: `calib/` writes FP16 casts or INT8 Q/DQ into the ONNX
file and every network is built strongly typed, so no precision flag (FP16, INT8,
…) and no calibrator is ever set — TensorRT 11 removed them all.

TensorRT cannot be installed where edgepose is developed, so the TensorRT calls are
kept in `_build_plan` and checked three ways: every name used is listed in
`TENSORRT_NAMES_USED` and found in the real 10.3 and 11.4 bindings' symbol tables
(tests/export/engine/test_tensorrt_contract.py); a recording double runs `build_engine` end
to end and must touch exactly those names; everything that is not a TensorRT call is
plain Python, unit-tested on the CPU. The one place that branches on the TensorRT
version is `_version_api`.

Shape letters: N batch.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping, Sequence

from edgepose import _optional
from edgepose.card import ModelCard
from edgepose.cuda import get_cuda
from edgepose.errors import (EngineBuildError, InputError, MissingDependencyError,
                             ModelFileError)
from edgepose.io import atomic_path, write_bytes_atomic
from edgepose.sidecar import HARDWARE_COMPATIBILITY, EngineInfo, sha256_of_bytes, write_sidecar
from export.onnx_files.card import load_onnx, read_card
from export.onnx_files.hygiene import tidied_onnx_file
from export.onnx_files.lint import check_onnx_for_tensorrt

log = logging.getLogger(__name__)

MIN_TENSORRT = (10, 3)  # JetPack 6
DEFAULT_OPT_LEVEL = 3   # TensorRT's own default builder optimisation level

_BOTH = (10, 11)
# Every TensorRT attribute, enum member, keyword and overridden method this module
# uses, with the major versions it uses it on. The contract test finds each in the
# symbol table of that version's bindings; the double test checks that a build
# touches exactly these. Keep the list in step with `_build_plan`.
TENSORRT_NAMES_USED: Mapping[str, tuple[int, ...]] = {
    # module level (__version__ is set by the package's __init__.py)
    "__version__": _BOTH, "Logger": _BOTH, "Builder": _BOTH, "OnnxParser": _BOTH,
    "IProgressMonitor": _BOTH,
    "VERBOSE": _BOTH, "WARNING": _BOTH,
    # TensorRT 10 builds weakly typed networks unless told; 11 deprecates the flag
    # ("retained for API compatibility but ignored"), so only 10 passes it.
    "NetworkDefinitionCreationFlag": (10,), "STRONGLY_TYPED": (10,),
    # Builder
    "create_network": _BOTH, "create_builder_config": _BOTH,
    "create_optimization_profile": _BOTH, "build_serialized_network": _BOTH,
    "num_DLA_cores": _BOTH,
    # OnnxParser and its ParserError
    "parse_from_file": _BOTH, "num_errors": _BOTH, "get_error": _BOTH,
    "code": _BOTH, "desc": _BOTH, "node": _BOTH, "node_name": _BOTH, "node_operator": _BOTH,
    # IBuilderConfig
    "set_memory_pool_limit": _BOTH, "MemoryPoolType": _BOTH, "WORKSPACE": _BOTH,
    "builder_optimization_level": _BOTH, "set_flag": _BOTH, "BuilderFlag": _BOTH,
    "VERSION_COMPATIBLE": _BOTH, "GPU_FALLBACK": _BOTH,
    "hardware_compatibility_level": _BOTH, "HardwareCompatibilityLevel": _BOTH,
    "AMPERE_PLUS": _BOTH,
    # Absent from 10.3's bindings, present in 11.4's: probed, never assumed.
    "SAME_COMPUTE_CAPABILITY": (11,),
    "default_device_type": _BOTH, "DeviceType": _BOTH, "DLA": _BOTH, "DLA_core": _BOTH,
    "create_timing_cache": _BOTH, "set_timing_cache": _BOTH, "ignore_mismatch": _BOTH,
    "get_timing_cache": _BOTH, "serialize": _BOTH,
    "add_optimization_profile": _BOTH, "set_shape": _BOTH, "progress_monitor": _BOTH,
    # IProgressMonitor methods we implement and TensorRT calls
    "phase_start": _BOTH, "step_complete": _BOTH, "phase_finish": _BOTH,
}

# Weak typing and implicit quantisation: gone in TensorRT 11, and against our design
# in 10. The contract test checks that none of these is ever used.
TENSORRT_NAMES_AVOIDED: tuple[str, ...] = (
    "FP16", "INT8", "BF16", "FP8", "INT4", "FP4", "OBEY_PRECISION_CONSTRAINTS",
    "PREFER_PRECISION_CONSTRAINTS", "int8_calibrator", "set_calibration_profile",
    "platform_has_fast_fp16", "platform_has_fast_int8", "EXPLICIT_BATCH",
)


def _check_batch(batch: Any, where: str) -> tuple[int, int, int]:
    if (not isinstance(batch, (tuple, list)) or len(batch) != 3
            or not all(isinstance(b, int) and not isinstance(b, bool) for b in batch)):
        raise InputError(f"{where} is {batch!r}; expected three integers (min, opt, max)")
    low, opt, high = batch
    if not 1 <= low <= opt <= high:
        raise InputError(f"{where} is {low}:{opt}:{high}; expected 1 <= min <= opt <= max")
    return (low, opt, high)


@dataclass(frozen=True)
class BuildConfig:
    """How `build_engine` builds; each field is one `edgepose build` option.

    batch: (min, opt, max) batch sizes of the optimisation profile (--batch MIN:OPT:MAX,
        or --batch N meaning 1:N:N). The engine accepts any batch from min to max and is
        tuned for opt. Default 1:1:1.
    workspace: the most GPU scratch memory a layer's kernel may use (--workspace 2GiB,
        512MiB or a byte count); kernels needing more are skipped. None leaves TensorRT's
        default, the device's whole memory; on a Jetson, whose GPU shares the system
        memory, a limit keeps the build from starving other processes.
    timing_cache: file of layer timings (--timing-cache FILE), read when it exists and
        written back after the build; rebuilding on the same GPU and TensorRT version
        then skips most kernel timing. A cache from another GPU or TensorRT is refused.
    opt_level: builder optimisation level 0–5 (--opt-level); higher searches longer for
        faster kernels. Default 3, TensorRT's default.
    version_compatible: build a plan that later TensorRT versions of the same major
        version can also run (--version-compatible). The plan embeds TensorRT's lean
        runtime (larger file), and the runtime must allow host code from the plan.
    hardware_compatibility: which GPUs the plan runs on (--hardware-compatible):
        "none" (TensorRT's default: GPUs like the one it was built on), "ampere_plus"
        (any Ampere or newer GPU; the build GPU must be Ampere or newer, and the plan
        may be slower), "same_compute_capability" (any GPU of the build GPU's compute
        capability; TensorRT 10.3 lacks it, 11.x has it).
    dla_core: build for this DLA core of a Jetson (--dla-core N); layers the DLA cannot
        run fall back to the GPU. None builds for the GPU only.
    verbose: TensorRT's verbose log (--verbose) instead of warnings only.
    """

    batch: tuple[int, int, int] = (1, 1, 1)
    workspace: int | None = None
    timing_cache: Path | None = None
    opt_level: int = DEFAULT_OPT_LEVEL
    version_compatible: bool = False
    hardware_compatibility: str = "none"
    dla_core: int | None = None
    verbose: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "batch", _check_batch(self.batch, "batch range"))
        if self.workspace is not None and (not isinstance(self.workspace, int)
                                           or isinstance(self.workspace, bool)
                                           or self.workspace <= 0):
            raise InputError(f"workspace is {self.workspace!r}; expected a positive number of "
                             "bytes, or None for TensorRT's default")
        if self.timing_cache is not None:
            if not isinstance(self.timing_cache, (str, Path)):
                raise InputError(f"timing cache is {self.timing_cache!r}; expected a file path")
            object.__setattr__(self, "timing_cache", Path(self.timing_cache))
        if (not isinstance(self.opt_level, int) or isinstance(self.opt_level, bool)
                or not 0 <= self.opt_level <= 5):
            raise InputError(f"optimisation level is {self.opt_level!r}; expected an integer "
                             f"from 0 to 5 (TensorRT's default is {DEFAULT_OPT_LEVEL})")
        for name in ("version_compatible", "verbose"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name} is {getattr(self, name)!r}; expected True or False")
        if self.hardware_compatibility not in HARDWARE_COMPATIBILITY:
            raise InputError(f"hardware compatibility is {self.hardware_compatibility!r}; "
                             f"expected one of {HARDWARE_COMPATIBILITY}")
        if self.dla_core is not None and (not isinstance(self.dla_core, int)
                                          or isinstance(self.dla_core, bool)
                                          or self.dla_core < 0):
            raise InputError(f"DLA core is {self.dla_core!r}; expected a core index (0 or 1 on "
                             "Jetson AGX Orin), or None to build for the GPU")


def parse_batch_range(text: str) -> tuple[int, int, int]:
    """"MIN:OPT:MAX" → (min, opt, max); "N" → (1, N, N): batches up to N, tuned for N."""
    parts = text.strip().split(":")
    if len(parts) not in (1, 3) or not all(p.strip().isdigit() for p in parts):
        raise InputError(f"batch range {text!r} is malformed; expected MIN:OPT:MAX such as "
                         "1:4:8, or a single maximum N meaning 1:N:N")
    values = [int(p) for p in parts]
    batch = (1, values[0], values[0]) if len(values) == 1 else tuple(values)
    return _check_batch(batch, f"batch range {text!r}")


_SIZE_UNITS = {"": 1, "b": 1, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
               "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}


def parse_size(text: str) -> int:
    """"2GiB" | "512MiB" | "1.5GB" | "1073741824" → bytes.

    KiB, MiB, GiB, TiB are powers of 1024; kB, MB, GB, TB powers of 1000; case is ignored.
    A bare G/M/K is refused as ambiguous.
    """
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _SIZE_UNITS:
        hint = ("; write GiB (2^30 bytes) or GB (10^9 bytes)" if unit in ("k", "m", "g", "t")
                else "")
        raise InputError(f"size {text!r} is malformed{hint}; expected a byte count or a number "
                         "with a unit: KiB, MiB, GiB, TiB (powers of 1024) or kB, MB, GB, TB "
                         "(powers of 1000), e.g. 2GiB or 512MiB")
    try:
        value = Decimal(match.group(1)) * _SIZE_UNITS[unit]
    except InvalidOperation:
        raise InputError(f"size {text!r} is not a number") from None
    if value != value.to_integral_value() or value <= 0:
        raise InputError(f"size {text!r} is {value} bytes; expected a positive whole number of "
                         "bytes")
    return int(value)


Shape = tuple[int, ...]


def onnx_input_shapes(path: str | Path) -> dict[str, tuple[int | None, ...]]:
    """Graph inputs of an ONNX file → shapes, None for each dynamic axis."""
    model = load_onnx(path, external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    shapes = {}
    for value in model.graph.input:
        if value.name in initializers:
            continue  # old IR versions list weights as inputs; TensorRT does not
        dims = value.type.tensor_type.shape.dim
        shapes[value.name] = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0
                                   else None for d in dims)
    return shapes


def profile_shapes(card: ModelCard, input_shapes: Mapping[str, Sequence[int | None]],
                   batch: tuple[int, int, int]) -> dict[str, tuple[Shape, Shape, Shape]]:
    """Optimisation profile: input name → (min, opt, max) shapes.

    Axis 0 takes the batch range; every other axis keeps its ONNX size, which must be
    fixed and, for the card's image input, match the card's height and width.
    """
    batch = _check_batch(batch, "batch range")
    if card.input.name not in input_shapes:
        raise ModelFileError(f"the model card names input {card.input.name!r} but the ONNX "
                             f"graph's inputs are {sorted(input_shapes)}; re-export the model")
    profile = {}
    for name, shape in input_shapes.items():
        shape = tuple(shape)
        if not shape:
            raise ModelFileError(f"ONNX input {name!r} is a scalar; expected a batch axis first")
        dynamic = [axis for axis, size in enumerate(shape) if axis > 0 and size is None]
        if dynamic:
            raise ModelFileError(f"ONNX input {name!r} has shape {_show(shape)}, dynamic on "
                                 f"axis {dynamic}; only the batch axis (0) may be dynamic: "
                                 "re-export with fixed sizes")
        if name == card.input.name:
            _check_against_card(card, shape)
        if shape[0] is not None and batch != (shape[0],) * 3:
            raise InputError(f"ONNX input {name!r} has a fixed batch of {shape[0]} but the batch "
                             f"range is {':'.join(map(str, batch))}; build with --batch "
                             f"{shape[0]}:{shape[0]}:{shape[0]} or re-export with a dynamic batch")
        rest = tuple(int(s) for s in shape[1:])
        profile[name] = tuple((b, *rest) for b in batch)
    return profile


def _show(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("?" if s is None else str(s) for s in shape) + ")"


def _check_against_card(card: ModelCard, shape: tuple[int | None, ...]) -> None:
    spec = card.input
    hw_axes = (2, 3) if spec.layout == "NCHW" else (1, 2)
    if len(shape) != 4 or (shape[hw_axes[0]], shape[hw_axes[1]]) != (spec.height, spec.width):
        expected = ("(N, 3, {h}, {w})" if spec.layout == "NCHW" else "(N, {h}, {w}, 3)").format(
            h=spec.height, w=spec.width)
        raise ModelFileError(f"ONNX input {spec.name!r} has shape {_show(shape)} but its card "
                             f"says {spec.layout} {expected}; the card and graph disagree: "
                             "re-export the model")


def describe_parser_error(node: int, node_name: str, operator: str, desc: str, code: str) -> str:
    """One line for one ONNX parser error: where (node name, op type, index) and what."""
    code = code.rsplit(".", 1)[-1]
    if node < 0 and not node_name:
        return f"graph: {desc} [{code}]"
    return f"node {node_name or '<unnamed>'!r} ({operator or '?'}, #{node}): {desc} [{code}]"


class _PhaseBars:
    """Progress of TensorRT's build phases: one bar per open phase, nested phases below.

    TensorRT calls the monitor from several threads (its documentation requires a
    thread-safe one), hence the lock. Without a bar factory (tqdm not installed) the
    top-level phases are logged instead.
    """

    def __init__(self, bar_factory: Callable[..., Any] | None) -> None:
        self._factory = bar_factory
        self._bars: dict[str, Any] = {}
        self._depth: dict[str, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def default(cls) -> "_PhaseBars":
        try:
            from tqdm import tqdm
        except ImportError:
            return cls(None)
        return cls(tqdm)

    def start(self, phase: str, parent: str | None, steps: int) -> None:
        with self._lock:
            depth = self._depth.get(parent, -1) + 1 if parent else 0
            self._depth[phase] = depth
            if self._factory is None:
                (log.info if depth == 0 else log.debug)("TensorRT: %s (%d steps)", phase, steps)
                return
            self._bars[phase] = self._factory(total=steps, desc=phase, position=depth,
                                              leave=depth == 0, unit="step")

    def step(self, phase: str, step: int) -> bool:
        with self._lock:
            bar = self._bars.get(phase)
            if bar is not None:
                bar.update(max(0, step + 1 - bar.n))
        return True  # never cancel the build

    def finish(self, phase: str) -> None:
        with self._lock:
            self._depth.pop(phase, None)
            bar = self._bars.pop(phase, None)
            if bar is not None:
                bar.close()

    def close(self) -> None:
        with self._lock:
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()
            self._depth.clear()


def _progress_monitor(trt: ModuleType, bars: _PhaseBars) -> Any:
    """A trt.IProgressMonitor that drives `bars`.

    An exception escaping a callback would cross into TensorRT's C++ build, so each
    callback logs and swallows it: a broken progress bar must not abort a build.
    """

    class _Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)  # pybind11 needs the base initialised

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            try:
                bars.start(phase_name, parent_phase, num_steps)
            except Exception:  # noqa: BLE001 - see the docstring
                log.debug("progress bar failed", exc_info=True)

        def step_complete(self, phase_name: str, step: int) -> bool:
            try:
                return bars.step(phase_name, step)
            except Exception:  # noqa: BLE001
                log.debug("progress bar failed", exc_info=True)
                return True

        def phase_finish(self, phase_name: str) -> None:
            try:
                bars.finish(phase_name)
            except Exception:  # noqa: BLE001
                log.debug("progress bar failed", exc_info=True)

    return _Monitor()


def _load_tensorrt() -> ModuleType:
    """The full tensorrt module (the lean runtime cannot build); names the 'trt' extra if absent."""
    trt = _optional.tensorrt("tensorrt", purpose="Building TensorRT engines")
    if not hasattr(trt, "Builder"):
        raise MissingDependencyError("tensorrt", "trt", "Building TensorRT engines")
    return trt


@dataclass(frozen=True)
class _VersionApi:
    """What differs between the TensorRT versions edgepose builds with."""

    version: str
    network_flags: int
    hardware_levels: Mapping[str, Any] = field(default_factory=dict)

    def hardware_level(self, name: str) -> Any:
        """The trt.HardwareCompatibilityLevel for `name`; None for "none" (TensorRT's default)."""
        if name == "none":
            return None
        if name not in self.hardware_levels:
            raise InputError(f"hardware compatibility {name!r} is not offered by TensorRT "
                             f"{self.version} (it has {['none', *self.hardware_levels]}); use "
                             "'ampere_plus', or build with a newer TensorRT")
        return self.hardware_levels[name]


def _version_api(trt: ModuleType) -> _VersionApi:
    """The one place that branches on the TensorRT version."""
    version = str(trt.__version__)
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        raise EngineBuildError(f"cannot read the TensorRT version from {version!r}")
    major_minor = (int(match.group(1)), int(match.group(2)))
    if major_minor < MIN_TENSORRT:
        raise EngineBuildError(
            f"this is TensorRT {version}; edgepose builds with TensorRT "
            f"{'.'.join(map(str, MIN_TENSORRT))} or newer (JetPack 6, or pip install "
            "'edgepose[trt]' on a desktop)")
    # 10.x networks are weakly typed unless created STRONGLY_TYPED; 11 is always strongly
    # typed and deprecates the flag (11.0 Python API: "retained ... but is ignored").
    flags = (1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
             if major_minor[0] == 10 else 0)
    levels = trt.HardwareCompatibilityLevel
    hardware = {"ampere_plus": levels.AMPERE_PLUS}
    # SAME_COMPUTE_CAPABILITY is missing from 10.3's bindings and present in 11.4's.
    if hasattr(levels, "SAME_COMPUTE_CAPABILITY"):
        hardware["same_compute_capability"] = levels.SAME_COMPUTE_CAPABILITY
    return _VersionApi(version, flags, hardware)


def _device_identity() -> tuple[str, str]:
    """(name, "major.minor" compute capability) of the GPU TensorRT builds for.

    TensorRT does not report the device it builds for; the sidecar needs both so the
    runtime can refuse a plan built for another GPU.
    """
    device = get_cuda().require_device()
    return device.name, device.compute_capability


def _read_timing_cache(path: Path | None) -> bytes | None:
    if path is None:
        return None
    if path.is_dir():
        raise InputError(f"timing cache {str(path)!r} is a folder; expected a file path")
    if not path.exists():
        log.info("timing cache %s does not exist yet; it will be created", path)
        return b""
    return path.read_bytes()


def _check_paths(onnx_path: Path, out: Path, config: BuildConfig) -> None:
    """Refuse unusable paths before a build that can take minutes."""
    if not onnx_path.is_file():
        raise InputError(f"ONNX file {str(onnx_path)!r} does not exist")
    if out.resolve() == onnx_path.resolve():
        raise InputError(f"the engine {str(out)!r} would overwrite its ONNX file; choose "
                         "another --out, e.g. model.engine")
    for what, path in (("engine", out), ("timing cache", config.timing_cache)):
        if path is not None and not path.parent.is_dir():
            raise InputError(f"the {what} folder {str(path.parent)!r} does not exist; create "
                             "it first")


def build_engine(onnx_path: str | Path, out: str | Path, config: BuildConfig, *,
                 trt: ModuleType | None = None, progress: bool = True) -> Path:
    """Build a TensorRT plan from an edgepose ONNX file; write it and `<out>.json` atomically.

    trt: the tensorrt module (a double in tests); imported when None.
    progress: a progress bar (tqdm when installed) through TensorRT's progress monitor.
    Raises LintError, EngineBuildError, InputError, ModelFileError, MissingDependencyError;
    on any error no plan or sidecar is written (the timing cache is written only after a
    successful build).
    """
    onnx_path, out = Path(onnx_path), Path(out)
    if not isinstance(config, BuildConfig):
        raise InputError(f"config is {type(config).__name__}; expected a BuildConfig")
    _check_paths(onnx_path, out, config)
    # The lint and the parser read the same tidied graph (constants folded, unused nodes
    # removed), so what passes the lint is what is built; the user's file is not rewritten.
    with tidied_onnx_file(onnx_path, out) as (parsed_path, tidied):
        check_onnx_for_tensorrt(tidied, source=onnx_path)
        card = read_card(onnx_path)
        shapes = profile_shapes(card, onnx_input_shapes(onnx_path), config.batch)
        trt = trt if trt is not None else _load_tensorrt()
        api = _version_api(trt)
        hardware_level = api.hardware_level(config.hardware_compatibility)
        device, capability = _device_identity()
        cache_in = _read_timing_cache(config.timing_cache)
        log.info("building %s from %s with TensorRT %s on %s (compute capability %s)",
                 out, onnx_path, api.version, device, capability)

        plan, cache_out, flags = _build_plan(trt, api, parsed_path, shapes, config,
                                             hardware_level, cache_in, progress,
                                             shown=onnx_path)

    info = EngineInfo(
        tensorrt_version=api.version, device=device, compute_capability=capability,
        plan_sha256=sha256_of_bytes(plan), version_compatible=config.version_compatible,
        hardware_compatibility=config.hardware_compatibility,
        profiles=({name: {"min": list(lo), "opt": list(opt), "max": list(hi)}
                   for name, (lo, opt, hi) in shapes.items()},),
        extra={"strongly_typed": True, "builder_flags": flags,
               "builder_optimization_level": config.opt_level,
               "workspace_bytes": config.workspace, "dla_core": config.dla_core},
    )
    if cache_out is not None and config.timing_cache is not None:
        write_bytes_atomic(config.timing_cache, cache_out)
    # The sidecar lands just before the plan; if writing either fails, the plan's
    # temporary file is removed and nothing half-written remains.
    with atomic_path(out) as temporary:
        temporary.write_bytes(plan)
        write_sidecar(out, card, info)
    log.info("wrote %s (%d bytes) and its sidecar", out, len(plan))
    return out


def _build_plan(trt: ModuleType, api: _VersionApi, onnx_path: Path,
                shapes: Mapping[str, tuple[Shape, Shape, Shape]], config: BuildConfig,
                hardware_level: Any, cache_in: bytes | None,
                progress: bool, shown: Path | None = None
                ) -> tuple[bytes, bytes | None, list[str]]:
    """The TensorRT calls: (plan, serialized timing cache or None, builder flags set).

    shown: the file named in errors when `onnx_path` is a tidied copy of it.
    """
    shown = shown if shown is not None else onnx_path
    logger = trt.Logger(trt.Logger.VERBOSE if config.verbose else trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(api.network_flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [parser.get_error(i) for i in range(parser.num_errors)]
        lines = [describe_parser_error(e.node(), e.node_name(), e.node_operator(), e.desc(),
                                       str(e.code())) for e in errors]
        raise EngineBuildError(f"TensorRT {api.version}'s ONNX parser rejected {shown}:\n"
                               + "\n".join(f"  - {line}" for line in lines or ["(no details)"]))

    builder_config = builder.create_builder_config()
    flags: list[str] = []
    if config.workspace is not None:
        builder_config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, config.workspace)
    builder_config.builder_optimization_level = config.opt_level
    if config.version_compatible:
        # No EXCLUDE_LEAN_RUNTIME: the plan then carries a lean runtime copy that TensorRT
        # loads on deserialisation (docs, "Version Compatibility"), so no lean library of
        # the build version must ship with it. The price: a larger plan, and the runtime
        # must set engine_host_code_allowed = True to load it.
        builder_config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
        flags.append("VERSION_COMPATIBLE")
    if hardware_level is not None:
        builder_config.hardware_compatibility_level = hardware_level
    if config.dla_core is not None:
        cores = builder.num_DLA_cores
        if config.dla_core >= cores:
            raise InputError(f"DLA core {config.dla_core} requested but this device has {cores} "
                             "DLA core(s) (desktop GPUs have none); drop --dla-core or pick a "
                             f"core below {cores}")
        builder_config.default_device_type = trt.DeviceType.DLA
        builder_config.DLA_core = config.dla_core
        builder_config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
        flags.append("GPU_FALLBACK")
    if cache_in is not None:
        cache = builder_config.create_timing_cache(cache_in)
        if cache is None or not builder_config.set_timing_cache(cache, ignore_mismatch=False):
            raise InputError(f"timing cache {str(config.timing_cache)!r} was written by another "
                             f"GPU or TensorRT version than TensorRT {api.version} here, or is "
                             "corrupt; delete it or pass another --timing-cache")
    profile = builder.create_optimization_profile()
    for name, (low, opt, high) in shapes.items():
        profile.set_shape(name, low, opt, high)
    builder_config.add_optimization_profile(profile)

    bars = _PhaseBars.default() if progress else None
    if bars is not None:
        # Kept referenced until the build returns: TensorRT holds only a raw pointer.
        monitor = _progress_monitor(trt, bars)
        builder_config.progress_monitor = monitor
    try:
        serialized = builder.build_serialized_network(network, builder_config)
    finally:
        if bars is not None:
            bars.close()
    if serialized is None:
        raise EngineBuildError(f"TensorRT {api.version} could not build an engine from "
                               f"{shown}; rerun with --verbose to see TensorRT's reasons")
    plan = bytes(serialized)
    cache_out = (bytes(builder_config.get_timing_cache().serialize())
                 if cache_in is not None else None)
    return plan, cache_out, flags
