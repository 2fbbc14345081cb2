"""A source's frames through detector → pose model → tracker, serial or pipelined.

Top-down models with a detector run it every `det_interval` frames; on the frames
between, each person's box comes from their keypoints in the previous frame, grown
by BOX_EXPANSION about its centre (as RTMPose's deployment tracks people between
detections). Without a detector the whole frame is one person. Bottom-up models run
every frame whole. A tracker gives each person an id that lasts across frames.

`pipelined=True` overlaps the stages of different frames on threads joined by bounded
queues: reading and detecting frame t+1 while the pose model runs on frame t and the
caller draws and writes frame t−1. ONNX Runtime and TensorRT release the GIL while
they compute, so the stages use separate cores. The pose stage keeps its order of
work (boxes from the previous frame's poses, the tracker), so both modes give the
same poses frame for frame.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

import numpy as np

from edgepose.detect import Detections
from edgepose.errors import InputError
from edgepose.pipeline import keypoint_boxes
from edgepose.poses import Poses
from edgepose.preprocess import MIN_BOX_PIXELS
from edgepose.sources import Frame, Source

#: Box around the previous frame's keypoints, scaled by this about its centre.
BOX_EXPANSION = 1.25
#: Keypoints below this score do not shape a propagated box.
BOX_KEYPOINT_SCORE = 0.3
#: Frames in flight between two pipelined stages.
QUEUE_DEPTH = 2
_END = object()


@dataclass(frozen=True)
class StreamOptions:
    """det_interval: run the detector every this many frames (1: every frame).
    track: give people track ids. pipelined: overlap the stages on threads."""

    det_interval: int = 1
    track: bool = True
    pipelined: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.det_interval, bool) or not isinstance(self.det_interval, int) \
                or self.det_interval < 1:
            raise InputError(f"det_interval is {self.det_interval!r}; expected a whole number "
                             "of frames >= 1")


def boxes_from_poses(poses: Poses, width: int, height: int,
                     scores: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(boxes (N, 4) xywh, scores (N,)) around each person's confident keypoints,
    expanded by BOX_EXPANSION and clipped to the frame; people with nothing left out.
    scores: each person's box score to carry along (default: the person scores)."""
    if not len(poses):
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    confident = np.where(poses.scores >= BOX_KEYPOINT_SCORE, poses.scores, 0.0)
    # A person whose keypoints are all weak keeps a box from all of them.
    weak = ~(confident > 0).any(axis=1)
    confident[weak] = np.maximum(poses.scores[weak], 1e-6)
    boxes = keypoint_boxes(poses.xy, confident).astype(np.float64)
    centers = boxes[:, :2] + boxes[:, 2:] / 2
    sizes = boxes[:, 2:] * BOX_EXPANSION
    low = np.clip(centers - sizes / 2, 0, [width, height])
    high = np.clip(centers + sizes / 2, 0, [width, height])
    boxes = np.concatenate([low, high - low], axis=1)
    usable = (boxes[:, 2] >= 1) & (boxes[:, 3] >= 1) & (boxes[:, 2] > MIN_BOX_PIXELS)
    carried = poses.person_scores if scores is None else np.asarray(scores, np.float32)
    return boxes[usable].astype(np.float32), carried[usable].astype(np.float32)


class _Stages:
    """The per-frame work, split where the pipelined mode puts its threads."""

    def __init__(self, estimator: Any, options: StreamOptions,
                 tracker_factory: Callable[[], Any] | None,
                 given_boxes: Callable[[int], np.ndarray | None] | None = None) -> None:
        self.estimator = estimator
        self.options = options
        self.detector = estimator.detector if estimator.top_down else None
        if given_boxes is not None and (self.detector is not None or not estimator.top_down):
            raise InputError("boxes given per frame apply to a top-down model without a "
                             "detector")
        self.given_boxes = given_boxes
        self.tracker = tracker_factory() if (options.track and tracker_factory) else None
        self.previous: Poses | None = None
        # The detector's confidence in each person, carried over the frames it skips:
        # the tracker weighs detections, not pose quality.
        self.previous_box_scores: np.ndarray | None = None

    def detect(self, frame: Frame) -> Detections | None:
        """The detector's people, on the frames it runs on (None on the others)."""
        if self.detector is None or frame.index % self.options.det_interval:
            return None
        return self.detector(frame.image)

    def pose(self, frame: Frame, found: Detections | None) -> Poses:
        estimator = self.estimator
        image = frame.image
        box_scores = None
        if self.given_boxes is not None:
            poses = estimator.pipeline(image, self.given_boxes(frame.index))
        elif not estimator.top_down or self.detector is None:
            poses = estimator.pipeline(image)   # bottom-up, or the whole frame as one person
        else:
            if found is None and self.previous is not None:
                height, width = image.shape[:2]
                boxes, box_scores = boxes_from_poses(self.previous, width, height,
                                                     self.previous_box_scores)
            elif found is not None:
                boxes, box_scores = found.boxes, found.scores
            else:
                boxes, box_scores = np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
            poses = estimator.pipeline(image, boxes, box_scores)
        if self.tracker is not None:
            boxes = poses.boxes if poses.boxes is not None else keypoint_boxes(poses.xy,
                                                                              poses.scores)
            ids = self.tracker.update(boxes,
                                      poses.person_scores if box_scores is None else box_scores,
                                      keypoints=poses.xy, keypoint_scores=poses.scores)
            poses = replace(poses, track_ids=np.asarray(ids, np.int64))
        self.previous = poses
        self.previous_box_scores = box_scores
        return poses


def run_stream(estimator: Any, source: Source, options: StreamOptions | None = None, *,
               tracker_factory: Callable[[], Any] | None = None,
               stage_ns: dict[str, list[int]] | None = None,
               clock_ns: Callable[[], int] = time.perf_counter_ns,
               given_boxes: Callable[[int], np.ndarray | None] | None = None
               ) -> Iterator[tuple[Frame, Poses]]:
    """(frame, poses) for every frame the source gives, in order.

    stage_ns (serial only): filled with each frame's "read", "detect" and "pose"
    nanoseconds by `clock_ns`, for the profiler and benchmarks to time the stages.
    given_boxes: frame index → the (N, 4) xywh person boxes of a top-down model without
    a detector (None ends the stream: the boxes ran out).
    """
    options = options or StreamOptions()
    stages = _Stages(estimator, options, tracker_factory, given_boxes)
    if options.pipelined:
        if stage_ns is not None or given_boxes is not None:
            raise InputError("stage times and per-frame boxes are for the serial loop")
        yield from _pipelined(stages, source)
        return
    if stage_ns is not None:
        for name in ("read", "detect", "pose"):
            stage_ns.setdefault(name, [])
    frames = iter(source)
    while True:
        began = clock_ns() if stage_ns is not None else 0
        frame = next(frames, None)
        if frame is None or (given_boxes is not None and given_boxes(frame.index) is None):
            return
        if stage_ns is None:
            yield frame, stages.pose(frame, stages.detect(frame))
            continue
        read = clock_ns()
        found = stages.detect(frame)
        detected = clock_ns()
        poses = stages.pose(frame, found)
        posed = clock_ns()
        for name, spent in (("read", read - began), ("detect", detected - read),
                            ("pose", posed - detected)):
            stage_ns[name].append(spent)
        yield frame, poses


def _pipelined(stages: _Stages, source: Source) -> Iterator[tuple[Frame, Poses]]:
    detected: queue.Queue = queue.Queue(QUEUE_DEPTH)
    posed: queue.Queue = queue.Queue(QUEUE_DEPTH)
    stop = threading.Event()

    def put(target: queue.Queue, item: object) -> bool:
        # A bounded put that gives up when the consumer has gone away.
        while not stop.is_set():
            try:
                target.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def take(source_queue: queue.Queue) -> object:
        while not stop.is_set():
            try:
                return source_queue.get(timeout=0.1)
            except queue.Empty:
                continue
        return _END

    def read_and_detect() -> None:
        try:
            for frame in source:
                if not put(detected, (frame, stages.detect(frame))):
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
            put(detected, error)
            return
        put(detected, _END)

    def pose() -> None:
        while True:
            item = take(detected)
            if item is _END or isinstance(item, BaseException):
                put(posed, item)
                return
            frame, found = item
            try:
                result = (frame, stages.pose(frame, found))
            except BaseException as error:  # noqa: BLE001 - handed to the caller's thread
                put(posed, error)
                return
            if not put(posed, result):
                return

    workers = [threading.Thread(target=read_and_detect, name="edgepose read+detect",
                                daemon=True),
               threading.Thread(target=pose, name="edgepose pose", daemon=True)]
    for worker in workers:
        worker.start()
    try:
        while True:
            item = posed.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        for target in (detected, posed):       # unblock a worker waiting to put
            try:
                while True:
                    target.get_nowait()
            except queue.Empty:
                pass
        for worker in workers:
            worker.join(timeout=5.0)
