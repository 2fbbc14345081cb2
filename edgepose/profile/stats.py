"""The profiler's results: per-stage statistics, per-model profiles, the report and
its JSON round trip. Times are milliseconds; stage names are STAGES (see README "profile").
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from edgepose.errors import InputError
from edgepose.io import write_json_atomic

#: Milliseconds per call (per frame on a video):
#:   read           video only: cv2.VideoCapture.read (demux + decode)
#:   preprocess     boxes → centers/scales → affine crops → normalised tensor (+ mirror)
#:   h2d, d2h       GPU-timed runners only: the copies, from the runner's CUDA events
#:   infer          the runner call (perf_counter_ns), or its engine's CUDA-event time
#:   host_overhead  GPU-timed only: the runner's host time outside its events (≥ 0)
#:   decode         heatmap copy out of the runner's buffers (+ flip merge) → Poses
#:   end_to_end     the whole call; the other stages of a call add up to it
#: Stages a backend lacks are absent, not zero.
STAGES = ("read", "detect", "preprocess", "h2d", "infer", "d2h", "host_overhead", "decode",
          "end_to_end")
STAGE_LABELS: Mapping[str, str] = {
    "read": "video read", "detect": "detect", "preprocess": "preprocess", "h2d": "h2d copy", "infer": "infer",
    "d2h": "d2h copy", "host_overhead": "runner host", "decode": "decode",
    "end_to_end": "end to end",
}
#: Engine calls with TensorRT's layer profiler attached, after LAYER_WARMUP more.
LAYER_RUNS = 50
LAYER_WARMUP = 5
TOP_LAYERS = 15
#: `ProfileReport.to_dict()["schema"]`; a breaking change to the JSON bumps it.
REPORT_SCHEMA = 1


def is_finite_number(value: Any) -> bool:
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
        bad = {k: v for k, v in values.items() if not is_finite_number(v) or v < 0}
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
        if self.frames < 1 or self.people < 0 or not is_finite_number(self.wall_s) \
                or self.wall_s <= 0:
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
        if not is_finite_number(self.mean_ms) or self.mean_ms < 0 \
                or not is_finite_number(self.share) or not 0 <= self.share <= 1 + 1e-9:
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
        ours, reference = (stage_of(self.models[model], batch, stage),
                           stage_of(self.models[0], batch, stage))
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
        """The side-by-side table as plain text (see edgepose.profile.report)."""
        from edgepose.profile.report import format_report

        return format_report(self, top_layers)


def stage_of(model: ModelProfile, batch: int | None, stage: str) -> StageStats | None:
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


def summarize_layers(times: Mapping[str, Sequence[float]]) -> tuple[LayerTime, ...]:
    """Mean ms per layer and share of the sum of means, slowest first."""
    means = {name: float(np.mean(values)) for name, values in times.items() if len(values)}
    total = sum(means.values())
    ordered = sorted(means.items(), key=lambda item: -item[1])
    return tuple(LayerTime(name, mean, mean / total if total > 0 else 0.0)
                 for name, mean in ordered)


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

