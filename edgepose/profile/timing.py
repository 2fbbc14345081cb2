"""Timing the real TopDownPipeline: batches of people on one frame, or a video frame by frame.

The pipeline calls its `stage_hook` at each stage boundary; `_StageTimer` reads the
clock there and gives the time since the previous boundary to the stage that ended,
so a call's stages add up to its end_to_end exactly. On GPU-timed runners the CUDA
events of each runner call replace the host time of `infer` (see README "profile").
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import cv2
import numpy as np

from edgepose.backends import ENGINE_SUFFIXES
from edgepose.errors import InputError
from edgepose.pipeline import TopDownPipeline
from edgepose.poses import Poses
from edgepose.profile.environment import collect_environment, host_memory, read_load_average
from edgepose.profile.options import (DEFAULT_ITERS, DEFAULT_VIDEO_WARMUP, DEFAULT_WARMUP,
                                      boxes_for, check_batch_sizes, check_count, check_run_length,
                                      fixed_boxes, frame_boxes_source, load_frame)
from edgepose.profile.runners import (RunnerFactory, attach_layer_profiler, check_batches_fit,
                                      is_engine, memory_stats, open_profiling_runner,
                                      output_bytes, runner_facts)
from edgepose.profile.stats import (LAYER_RUNS, LAYER_WARMUP, STAGES, BatchProfile, LayerTime,
                                    ModelProfile, ProfileReport, StageStats, VideoProfile,
                                    stage_stats, summarize_layers)
from edgepose.sources import open_source
from edgepose.stream import StreamOptions, run_stream

_log = logging.getLogger(__name__)

#: The stage clock, read through this module's global at every boundary so tests can
#: run the pipeline on a virtual clock and check the accounting exactly.
_now_ns: Callable[[], int] = time.perf_counter_ns


def _open_timed(factory: RunnerFactory | None, path: Path, cuda_graph: bool
                ) -> tuple[Any, float, int | None]:
    """(runner, milliseconds it took to open, resident memory before it opened)."""
    rss_before, _ = host_memory()
    began = _now_ns()
    runner = (factory or open_profiling_runner)(path, cuda_graph=cuda_graph)
    return runner, (_now_ns() - began) / 1e6, rss_before


@dataclass(frozen=True)
class _CallTimes:
    """One call: host stages in ns; CUDA-event stages in ms (None without GPU timing)."""

    preprocess_ns: int
    infer_ns: int
    decode_ns: int
    end_to_end_ns: int
    h2d_ms: float | None = None
    compute_ms: float | None = None
    d2h_ms: float | None = None


class _TimedPipeline:
    """A TopDownPipeline whose stage_hook times each call between contiguous checkpoints.

    chunk: people per runner call (None: the pipeline's own, as for video; a batch-size
    sweep passes its largest batch so each batch is one runner call).
    """

    def __init__(self, runner: Any, gpu_timed: bool, chunk: int | None = None) -> None:
        self.pipeline = TopDownPipeline(runner, chunk=chunk)  # InputError if not top-down
        self.runner = runner
        self.gpu_timed = gpu_timed
        self.pipeline.stage_hook = self._boundary
        self._ns = {"preprocess": 0, "infer": 0, "decode": 0}
        self._events = [0.0, 0.0, 0.0]
        self._mark = 0

    @property
    def flip_test(self) -> bool:
        return bool(self.pipeline.flip_test)

    def _boundary(self, stage: str) -> None:
        now = _now_ns()
        self._ns[stage] += now - self._mark
        self._mark = now
        if stage == "infer" and self.gpu_timed:
            timings = self.runner.last_timings
            self._events[0] += timings.h2d_ms
            self._events[1] += timings.compute_ms
            self._events[2] += timings.d2h_ms

    def run_detecting(self, image: np.ndarray, detector: Any
                      ) -> tuple[_CallTimes | None, int, int]:
        """Time the detector, then the pose call on its people: (pose times, or None when
        nobody was found, detector ns, people)."""
        began = _now_ns()
        found = detector(image)
        detect_ns = _now_ns() - began
        if not len(found):
            return None, detect_ns, 0
        return self.run(image, found.boxes, found.scores)[0], detect_ns, len(found)

    def run(self, image: np.ndarray, boxes: np.ndarray,
            scores: np.ndarray | None = None) -> tuple[_CallTimes, Poses]:
        """Time one call on `image` with person `boxes` (N, 4) xywh; returns (times, Poses)."""
        self._ns = {"preprocess": 0, "infer": 0, "decode": 0}
        self._events = [0.0, 0.0, 0.0]
        start = self._mark = _now_ns()
        poses = self.pipeline(image, boxes, scores)
        end = _now_ns()
        # What follows the last boundary (building Poses) is decoding too.
        self._ns["decode"] += end - self._mark
        gpu = tuple(self._events) if self.gpu_timed else (None, None, None)
        return _CallTimes(self._ns["preprocess"], self._ns["infer"], self._ns["decode"],
                          end - start, *gpu), poses


class _Recorder:
    """Per-stage samples (ms) of many calls."""

    def __init__(self, gpu: bool, video: bool = False, detect: bool = False) -> None:
        self.gpu = gpu
        self.samples: dict[str, list[float]] = {
            s: [] for s in self.stage_names(gpu, video, detect)}

    @staticmethod
    def stage_names(gpu: bool, video: bool, detect: bool = False) -> tuple[str, ...]:
        names = ["preprocess", "infer", "decode", "end_to_end"]
        if gpu:
            names += ["h2d", "d2h", "host_overhead"]
        if video:
            names.append("read")
        if detect:
            names.append("detect")
        return tuple(s for s in STAGES if s in names)

    def add(self, call: _CallTimes | None, read_ns: int | None = None,
            detect_ns: int | None = None) -> dict[str, float]:
        """Record one call (None: a frame with nobody in it); returns its stages in ms."""
        stages: dict[str, float] = {}
        if read_ns is not None:
            stages["read"] = read_ns / 1e6
        if detect_ns is not None:
            stages["detect"] = detect_ns / 1e6
        total = stages.get("read", 0.0) + stages.get("detect", 0.0)
        if call is not None:
            stages["preprocess"] = call.preprocess_ns / 1e6
            stages["decode"] = call.decode_ns / 1e6
            host_infer = call.infer_ns / 1e6
            if self.gpu:
                events = call.h2d_ms + call.compute_ms + call.d2h_ms
                # Clamped: event and host clocks disagree by a few microseconds.
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


def profile_model(model_path: str | Path, *, batch_sizes: Sequence[int] = (1,),
                  warmup: int = DEFAULT_WARMUP, iters: int | None = None,
                  duration_s: float | None = None,
                  image: str | Path | np.ndarray | None = None,
                  boxes: np.ndarray | None = None, cuda_graph: bool = False,
                  layers: bool = False, progress: bool = True,
                  runner_factory: RunnerFactory | None = None) -> ModelProfile:
    """Time the top-down pipeline of one model at each batch size.

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
    sizes = check_batch_sizes(batch_sizes)
    warmup = check_count(warmup, "warmup", 1, "calls before timing; the first is reported "
                         "alone as the first-call latency")
    iters, duration_s = check_run_length(iters, duration_s, DEFAULT_ITERS)
    if layers and not is_engine(path):
        raise InputError(f"per-layer times need a TensorRT engine ({', '.join(ENGINE_SUFFIXES)});"
                         f" {path.name} is run by ONNX Runtime — build an engine with "
                         "'edgepose build' or leave out --layers")
    frame, source = load_frame(image)
    height, width = frame.shape[:2]
    fixed = fixed_boxes(boxes, width, height)
    runner, load_ms, rss_before = _open_timed(runner_factory, path, cuda_graph)
    with runner:
        facts = runner_facts(runner, path)
        check_batches_fit(runner, facts, path, sizes)
        timed = _TimedPipeline(runner, facts.gpu_timed, chunk=max(sizes))
        results = []
        for batch in sizes:
            results.append(_profile_batch(timed, frame, boxes_for(batch, fixed, width, height),
                                          warmup, iters, duration_s, progress,
                                          f"{path.name} batch {batch}"))
        memory = memory_stats(runner, path, rss_before)
        card = runner.card
    layer_times: tuple[LayerTime, ...] = ()
    if layers:
        layer_times = _profile_layers(path, runner_factory or open_profiling_runner, frame,
                                      boxes_for(sizes[0], fixed, width, height), progress)
    return ModelProfile(
        path=str(path), name=path.name, backend="tensorrt" if is_engine(path) else "onnxruntime",
        device=facts.device, precision=card.precision, family=card.family, variant=card.variant,
        input_size=(card.input.width, card.input.height),
        timing="cuda-events" if facts.gpu_timed else "perf_counter_ns", copies=facts.copies,
        cuda_graph=cuda_graph, flip_test=timed.flip_test, load_ms=load_ms, warmup=warmup,
        source=source, batches=tuple(results), memory=memory, layers=layer_times,
        layer_batch=sizes[0] if layers else None)


def _profile_batch(timed: _TimedPipeline, frame: np.ndarray, boxes: np.ndarray, warmup: int,
                   iters: int | None, duration_s: float | None, progress: bool,
                   desc: str) -> BatchProfile:
    batch = boxes.shape[0]
    recorder = _Recorder(timed.gpu_timed)
    bar = _Progress(progress, warmup + iters if iters is not None else None, desc)
    try:
        first = _Recorder(timed.gpu_timed).add(timed.run(frame, boxes)[0])
        bar.update()
        for _ in range(warmup - 1):
            timed.run(frame, boxes)
            bar.update()
        if iters is not None:
            for _ in range(iters):
                recorder.add(timed.run(frame, boxes)[0])
                bar.update()
        else:
            deadline = time.perf_counter() + duration_s
            while True:
                recorder.add(timed.run(frame, boxes)[0])
                bar.update()
                if time.perf_counter() >= deadline:
                    break
    finally:
        bar.close()
    samples = recorder.samples["end_to_end"]
    spec = timed.pipeline.card.input
    runs = 2 if timed.flip_test else 1
    input_bytes = batch * 3 * spec.height * spec.width * 4 * runs
    _log.info("%s: %d calls, end to end mean %.3f ms", desc, len(samples), float(np.mean(samples)))
    return BatchProfile(batch=batch, iterations=len(samples), stages=recorder.stats(),
                        first_call_ms=first, samples_ms=tuple(samples), input_bytes=input_bytes,
                        output_bytes=output_bytes(timed.runner, batch) * runs)


def _profile_layers(path: Path, factory: RunnerFactory, frame: np.ndarray, boxes: np.ndarray,
                    progress: bool) -> tuple[LayerTime, ...]:
    # A runner of its own, without CUDA graphs: a replayed graph reports no layers,
    # and the profiler's synchronisation would distort the timed runs.
    runner = factory(path, cuda_graph=False)
    with runner:
        profiler = attach_layer_profiler(runner, path)
        pipeline = TopDownPipeline(runner, chunk=boxes.shape[0])
        for _ in range(LAYER_WARMUP):
            pipeline(frame, boxes)
        profiler.times.clear()
        bar = _Progress(progress, LAYER_RUNS, f"{path.name} layers")
        try:
            for _ in range(LAYER_RUNS):
                pipeline(frame, boxes)
                bar.update()
        finally:
            bar.close()
        if not profiler.times:
            _log.warning("%s: TensorRT reported no layer times", path.name)
        return summarize_layers(profiler.times)
class _TimedChain:
    """The pose model as the stream runner calls it (`pipeline(image, boxes, scores)`),
    each call timed stage by stage; `last` holds the latest call's times (None when the
    frame had nobody in it, so no model ran)."""

    top_down = True

    def __init__(self, timed: _TimedPipeline, detector: Any) -> None:
        self.timed = timed
        self.detector = detector
        self.last: _CallTimes | None = None

    def pipeline(self, image: np.ndarray, boxes: np.ndarray | None = None,
                 scores: np.ndarray | None = None) -> Poses:
        if boxes is None:
            boxes = np.array([[0.0, 0.0, image.shape[1], image.shape[0]]], np.float32)
        if len(boxes) == 0:
            self.last = None
            return self.timed.pipeline(image, boxes)
        self.last, poses = self.timed.run(image, boxes, scores)
        return poses


def _ending_boxes(boxes_of: Callable[[int], np.ndarray | None] | None
                  ) -> Callable[[int], np.ndarray | None] | None:
    """boxes_of, saying once where per-frame boxes run out before the video does."""
    if boxes_of is None:
        return None
    said = False

    def boxes(index: int) -> np.ndarray | None:
        nonlocal said
        found = boxes_of(index)
        if found is None and not said:
            said = True
            _log.warning("the per-frame boxes end at frame %d; the video goes on, the profile "
                         "stops there", index)
        return found

    return boxes


def profile_video(model_path: str | Path, video: str | Path, *,
                  boxes: np.ndarray | Sequence[np.ndarray] | str | Path | None = None,
                  warmup: int = DEFAULT_VIDEO_WARMUP, max_frames: int | None = None,
                  duration_s: float | None = None, cuda_graph: bool = False,
                  progress: bool = True, runner_factory: RunnerFactory | None = None,
                  detector: str | Path | None = None,
                  detector_options: Mapping[str, Any] | None = None) -> ModelProfile:
    """End-to-end frames per second over a video with the full chain, frame by frame.

    Each frame: cv2 read/decode, then TopDownPipeline: preprocess → infer (in chunks
    of the runner's max batch) → decode.
    boxes: None (the whole frame is one person), an (M, 4) xywh array for every
        frame, or per-frame boxes — a sequence of (M_i, 4) arrays or the path of a
        JSON file (see read_frame_boxes). With per-frame boxes the run stops where
        they end; a frame with no boxes is read but runs no model.
    warmup: calls on the first frame before timing; the first is reported alone.
    max_frames / duration_s: stop early (default: the whole video).
    detector: a person detector (Detector.open, with detector_options) run on every
        frame before the pose model instead of boxes; its time is the "detect" stage.
    """
    if detector is not None and boxes is not None:
        raise InputError("boxes come from the detector or are given, not both")
    path, video = Path(model_path), Path(video)
    warmup = check_count(warmup, "warmup", 1, "calls on the first frame before timing; the "
                         "first is reported alone")
    if max_frames is not None:
        max_frames = check_count(max_frames, "frame limit", 1, "frames to profile")
    _, duration_s = check_run_length(None, duration_s, None)
    if not video.is_file():
        raise InputError(f"video {str(video)!r} does not exist")
    boxes_of = frame_boxes_source(boxes)
    capture = cv2.VideoCapture(str(video))
    try:
        if not capture.isOpened():
            raise InputError(f"video {str(video)!r} could not be opened (not a format this OpenCV "
                             "build reads)")
        # The first frame sizes the run and warms the model; the stream reads it again.
        ok, frame = capture.read()
        if not ok or frame is None:
            raise InputError(f"video {str(video)!r} has no frame OpenCV can decode")
        height, width = frame.shape[:2]
        if isinstance(boxes, np.ndarray):
            fixed_boxes(boxes, width, height)  # a bad box fails before the model loads
        runner, load_ms, rss_before = _open_timed(runner_factory, path, cuda_graph)
        with ExitStack() as stack:
            stack.enter_context(runner)
            finder = None
            if detector is not None:
                from edgepose.detect import Detector

                finder = stack.enter_context(Detector.open(detector,
                                                           **(detector_options or {})))
                _log.info("%s", finder.statement)
            facts = runner_facts(runner, path)
            timed = _TimedPipeline(runner, facts.gpu_timed)
            whole = np.array([[0.0, 0.0, width, height]], np.float32)

            def frame_boxes(index: int, image: np.ndarray) -> np.ndarray | None:
                if boxes_of is None:
                    return np.array([[0.0, 0.0, image.shape[1], image.shape[0]]], np.float32)
                return boxes_of(index)

            warm_boxes = frame_boxes(0, frame)
            if warm_boxes is None or warm_boxes.shape[0] == 0:
                warm_boxes = whole  # nobody in frame 0: warm the model up on the whole frame
            detect = finder is not None
            if detect:
                call, detect_ns, _ = timed.run_detecting(frame, finder)
                first = _Recorder(facts.gpu_timed, video=True, detect=True).add(
                    call, detect_ns=detect_ns)
                for _ in range(warmup - 1):
                    timed.run_detecting(frame, finder)
            else:
                first = _Recorder(facts.gpu_timed, video=True).add(
                    timed.run(frame, warm_boxes)[0])
                for _ in range(warmup - 1):
                    timed.run(frame, warm_boxes)
            recorder = _Recorder(facts.gpu_timed, video=True, detect=detect)
            bar = _Progress(progress, max_frames, f"{path.name} on {video.name}", unit="frame")
            frames = people = 0
            loop_start = time.perf_counter()
            deadline = loop_start + duration_s if duration_s is not None else None
            # The frames go through the stream runner `edgepose infer --source` uses; the
            # chain below times the pose model's stages inside it.
            chain = _TimedChain(timed, finder)
            stage_ns: dict[str, list[int]] = {}
            source = stack.enter_context(open_source(video))
            try:
                for _, poses in run_stream(chain, source, StreamOptions(track=False),
                                           stage_ns=stage_ns, clock_ns=lambda: _now_ns(),
                                           given_boxes=_ending_boxes(boxes_of)):
                    recorder.add(chain.last, read_ns=stage_ns["read"][-1],
                                 detect_ns=stage_ns["detect"][-1] if detect else None)
                    frames += 1
                    people += len(poses)
                    bar.update()
                    if (max_frames is not None and frames >= max_frames) or \
                            (deadline is not None and time.perf_counter() >= deadline):
                        break
            finally:
                bar.close()
            wall_s = time.perf_counter() - loop_start
            if frames == 0:
                raise InputError(f"no frame of {str(video)!r} had boxes to profile")
            memory = memory_stats(runner, path, rss_before)
            card = runner.card
    finally:
        capture.release()
    samples = recorder.samples["end_to_end"]
    result = VideoProfile(path=str(video), frames=frames, people=people,
                          frame_size=(width, height), wall_s=wall_s, stages=recorder.stats(),
                          first_frame_ms=first, samples_ms=tuple(samples))
    _log.info("%s on %s: %d frames, %.1f frames/s", path.name, video.name, frames, result.fps)
    return ModelProfile(
        path=str(path), name=path.name, backend="tensorrt" if is_engine(path) else "onnxruntime",
        device=facts.device, precision=card.precision, family=card.family, variant=card.variant,
        input_size=(card.input.width, card.input.height),
        timing="cuda-events" if facts.gpu_timed else "perf_counter_ns", copies=facts.copies,
        cuda_graph=cuda_graph, flip_test=timed.flip_test, load_ms=load_ms, warmup=warmup,
        source=(str(video) if detector is None
                else f"{video} (boxes: detector {Path(detector).name})"),
        batches=(), memory=memory, video=result)


def profile_models(model_paths: Sequence[str | Path], *,
                   batch_sizes: Sequence[int] | None = None,
                   warmup: int | None = None, iters: int | None = None,
                   duration_s: float | None = None,
                   image: str | Path | np.ndarray | None = None,
                   video: str | Path | None = None,
                   boxes: np.ndarray | Sequence[np.ndarray] | str | Path | None = None,
                   cuda_graph: bool = False, layers: bool = False, progress: bool = True,
                   runner_factory: RunnerFactory | None = None,
                   detector: str | Path | None = None,
                   detector_options: Mapping[str, Any] | None = None) -> ProfileReport:
    """Profile several models one after the other in this process; one ProfileReport.

    Ratios in the report compare with the first model. With `video`, each model runs
    `profile_video` (iters = most frames, default the whole video; duration_s bounds
    each model's run); otherwise `profile_model` at every batch size (default (1,);
    iters and duration_s apply per batch size). warmup None: 50 calls per batch
    size, 10 on a video. Arguments are checked for every model before any is timed.
    detector: with a video, a person detector run on every frame (profile_video).
    """
    if detector is not None and video is None:
        raise InputError("a detector is profiled frame by frame on a video; on a still image "
                         "give boxes (or profile the detector's people with --video)")
    load = read_load_average()
    paths = [Path(p) for p in model_paths]
    if not paths:
        raise InputError("no models to profile; give at least one ONNX or engine file")
    if image is not None and video is not None:
        raise InputError("give an image or a video to profile on, not both")
    check_run_length(iters, duration_s, DEFAULT_ITERS)
    if layers:
        onnx = [p.name for p in paths if not is_engine(p)]
        if onnx:
            raise InputError(f"per-layer times need TensorRT engines "
                             f"({', '.join(ENGINE_SUFFIXES)}); {', '.join(onnx)} would run on "
                             "ONNX Runtime — leave out --layers or profile engines only")
    if cuda_graph:
        onnx = [p.name for p in paths if not is_engine(p)]
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
                runner_factory=runner_factory, detector=detector,
                detector_options=detector_options))
    else:
        sizes = check_batch_sizes((1,) if batch_sizes is None else batch_sizes)
        if boxes is not None and not isinstance(boxes, np.ndarray):
            raise InputError("per-frame boxes apply to a video; on an image give an (M, 4) array")
        load_frame(image)  # a bad image fails here, before any model loads
        for path in paths:
            models.append(profile_model(
                path, batch_sizes=sizes, warmup=DEFAULT_WARMUP if warmup is None else warmup,
                iters=iters, duration_s=duration_s, image=image, boxes=boxes,
                cuda_graph=cuda_graph, layers=layers, progress=progress,
                runner_factory=runner_factory))
    return ProfileReport(models=tuple(models), environment=collect_environment(models, load))

