"""The public Python face: `edgepose.load(model)` opens a model with the pipeline its
card names and returns an Estimator, callable on BGR frames."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from edgepose._closing import Closeable
from edgepose.backends import ENGINE_SUFFIXES, open_runner
from edgepose.card import ModelCard
from edgepose.detect import Detections, Detector
from edgepose.draw import DEFAULT_SCORE_THRESHOLD, draw_poses
from edgepose.errors import InputError
from edgepose.keypoints import get_keypoint_set
from edgepose.pipeline import Pipeline, pipeline_for
from edgepose.poses import Poses
from edgepose.sources import Frame, Source, open_source
from edgepose.stream import StreamOptions, run_stream

RANDOM_WEIGHTS_BANNER = "RANDOM WEIGHTS - untrained model, poses are noise"
WHOLE_FRAME_WARNING = ("no person boxes: the top-down model ran on the whole image as one "
                       "person; give person boxes for images with people in them, or one "
                       "person filling the frame")
# PAF part scores are raw heatmap peaks, kept from the 0.1 detection threshold up.
BOTTOM_UP_DRAW_THRESHOLD = 0.1


def result_warnings(random_init: bool, top_down: bool, boxes: np.ndarray | None, *,
                    has_detector: bool) -> list[str]:
    """What a reader of a model's results must be told, for a call with these `boxes`
    (an Estimator's, or a served model's through edgepose.serve.client)."""
    said = [RANDOM_WEIGHTS_BANNER] if random_init else []
    if top_down and boxes is None and not has_detector:
        # One crop is one person: on a crowd it strings one skeleton across everyone.
        said.append(WHOLE_FRAME_WARNING)
    return said


def draw_threshold_for(top_down: bool) -> float:
    """Keypoint score below which a drawing leaves a keypoint out."""
    return DEFAULT_SCORE_THRESHOLD if top_down else BOTTOM_UP_DRAW_THRESHOLD


def draw_result(image: np.ndarray, poses: Poses, *, random_init: bool,
                top_down: bool) -> np.ndarray:
    """A copy of `image` with `poses` drawn, and the random-weights banner where due."""
    banner = RANDOM_WEIGHTS_BANNER if random_init else None
    return draw_poses(image, poses, banner=banner, score_threshold=draw_threshold_for(top_down))


class Estimator(Closeable):
    """A model and its pipeline: `estimator(image, boxes=None, box_scores=None) -> Poses`.

    image: (h, w, 3) BGR uint8. boxes: (N, 4) xywh person boxes in pixels, for
    top-down models; None runs the people the detector finds, or without a detector
    the whole image as one person (and `warnings` says so). Bottom-up models find
    everyone in the frame and take no boxes.
    close() (or `with`) closes the model.
    """

    def __init__(self, pipeline: Pipeline, detector: Detector | None = None) -> None:
        self.pipeline = pipeline
        self.card: ModelCard = pipeline.card
        self.runner = pipeline.runner
        self.detector = detector
        if detector is not None and not self.top_down:
            raise InputError(f"a person detector does not apply to the bottom-up model "
                             f"{self._name}: it finds people in the whole frame")
        #: The detector's people in the last call's frame (None without a detector).
        self.last_detections: Detections | None = None

    @property
    def top_down(self) -> bool:
        return self.card.paradigm == "top-down"

    def __call__(self, image: np.ndarray, boxes: np.ndarray | None = None,
                 box_scores: np.ndarray | None = None) -> Poses:
        if self.top_down:
            if boxes is None and self.detector is not None:
                if box_scores is not None:
                    raise InputError("box_scores need boxes; the detector scores its own")
                found = self.last_detections = self.detector(image)
                return self.pipeline(image, found.boxes, found.scores)
            return self.pipeline(image, boxes, box_scores)
        if boxes is not None or box_scores is not None:
            raise InputError(f"boxes do not apply to the bottom-up model {self._name}: it "
                             "finds people in the whole frame")
        return self.pipeline(image)

    def warnings(self, boxes: np.ndarray | None = None) -> list[str]:
        """What a reader of results from a call with these `boxes` must be told."""
        return result_warnings(self.card.random_init, self.top_down, boxes,
                               has_detector=self.detector is not None)

    def stream(self, source: str | Path | int | Source, *, det_interval: int = 1,
               track: bool = True, pipelined: bool = False,
               stage_ns: dict[str, list[int]] | None = None
               ) -> Iterator[tuple[Frame, Poses]]:
        """(frame, poses) for every frame of `source` (open_source's kinds: an image,
        folder, glob, video, camera index, /dev/videoN, stream URL or GStreamer pipeline).

        det_interval: with a detector, run it every this many frames and take the boxes
        in between from the previous poses. track: give people ids that last across
        frames (Poses.track_ids). pipelined: overlap reading, detecting, the pose model
        and the caller's own work on threads (same poses as serial). stage_ns
        (serial): filled with each frame's read, detect and pose nanoseconds.
        A source opened here is closed when the iteration ends.
        """
        options = StreamOptions(det_interval=det_interval, track=track, pipelined=pipelined)
        opened = source if isinstance(source, Source) else open_source(source)
        sigmas = get_keypoint_set(self.card.keypoints).sigmas

        def tracker() -> Any:
            from edgepose.track import Tracker, TrackerConfig

            # A keypoint set without OKS constants (OpenPose's COCO-18) tracks boxes only.
            return Tracker(TrackerConfig(use_keypoints=sigmas is not None), sigmas=sigmas)

        try:
            yield from run_stream(self, opened, options, tracker_factory=tracker,
                                  stage_ns=stage_ns)
        finally:
            if opened is not source:
                opened.close()

    @property
    def draw_threshold(self) -> float:
        """Keypoint score below which a drawing leaves a keypoint out."""
        return draw_threshold_for(self.top_down)

    def draw(self, image: np.ndarray, poses: Poses) -> np.ndarray:
        """A copy of `image` with `poses` drawn, and the random-weights banner where due."""
        return draw_result(image, poses, random_init=self.card.random_init,
                           top_down=self.top_down)

    @property
    def _name(self) -> str:
        return f"{self.card.family}/{self.card.variant}"

    def _release(self) -> None:
        try:
            self.pipeline.close()
        finally:
            if self.detector is not None:
                self.detector.close()


def load(model: str | Path, *, flip_test: bool | None = None, refine: str | None = None,
         preset: str | None = None, integer_coords: bool | None = None,
         providers: list[str] | None = None, cuda_graph: bool = False,
         cuda_impl: str = "auto", detector: str | Path | None = None,
         detector_options: Mapping[str, Any] | None = None,
         threads: int | None = None) -> Estimator:
    """Open `model` (.onnx on ONNX Runtime, .engine/.plan on TensorRT) as its card says.

    Overrides of the card, each None to keep the card's: flip_test (top-down and
    associative embedding), refine (top-down heatmap decoding: 'shift', 'dark',
    'none', or 'princeton' / 'bearpaw' for Stacked Hourglass), integer_coords
    (Stacked Hourglass: whole-pixel output), preset (bottom-up grouping constants:
    'python', 'cmu', 'pose-ae-train', 'higherhrnet'). providers: ONNX Runtime
    execution providers; cuda_graph and cuda_impl: TensorRT options. An override
    that does not apply to the model's pipeline (pipeline_for) is an InputError.
    detector: a person detector (.onnx or .engine) that finds the boxes of a top-down
    model when a call gives none; detector_options: Detector.open's (format,
    person_class, score_threshold, iou_threshold, max_detections, color, normalize,
    resize, pad, input_size), on the same backend options. threads: ONNX Runtime's
    intra-op threads for each model (default: ONNX Runtime's choice).
    """
    with ExitStack() as opened:
        engine_model = Path(model).suffix.lower() in ENGINE_SUFFIXES
        runner = opened.enter_context(open_runner(
            model, providers, cuda_graph=cuda_graph, cuda_impl=cuda_impl,
            threads=None if engine_model else threads))
        pipeline = pipeline_for(runner, flip_test=flip_test, refine=refine, preset=preset,
                                integer=integer_coords)
        finder = None
        if detector is not None:
            # The backend options go to whichever of the two files they apply to.
            engine = Path(detector).suffix.lower() in ENGINE_SUFFIXES
            backend = (dict(cuda_graph=cuda_graph, cuda_impl=cuda_impl) if engine
                       else dict(providers=providers, threads=threads))
            finder = opened.enter_context(Detector.open(detector, **backend,
                                                        **(detector_options or {})))
        estimator = Estimator(pipeline, finder)
        opened.pop_all()
    return estimator
