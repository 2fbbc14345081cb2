"""Pipeline API misuse: every wrong call is an InputError that says what was expected,
frames above MAX_FRAME_PIXELS are refused by every pipeline, and close()/with close
the runner a pipeline holds."""

import gc

import numpy as np
import pytest

from edgepose.backends.base import RunnerBase, TensorSpec
from edgepose.card import DecoderSpec, InputSpec, ModelCard, OutputSpec
from edgepose.errors import InputError
from edgepose.pipeline import (
    MAX_FRAME_PIXELS,
    AeBottomUpPipeline,
    PafPipeline,
    TopDownPipeline,
)

SIZE = 64


class ZeroRunner(RunnerBase):
    """Answers every input with zero maps of the card's outputs; counts its close() calls."""

    def __init__(self, card, channels):
        self.card = card
        self.channels = channels  # output name -> C
        self.inputs = (TensorSpec("input", np.dtype(np.float32), (None, 3, SIZE, SIZE)),)
        self.outputs = ()
        self.max_batch = None
        self.calls = 0
        self.releases = 0

    def infer(self, feeds):
        self._require_open()
        self.calls += 1
        batch = feeds["input"].shape[0]
        return {o.name: np.zeros((batch, self.channels[o.name], SIZE // o.stride,
                                  SIZE // o.stride), np.float32) for o in self.card.outputs}

    def _release(self):
        self.releases += 1


def _top_down():
    card = ModelCard(family="test", variant="zero", paradigm="top-down", keypoints="coco17",
                     input=InputSpec("input", SIZE, SIZE, mean=(0, 0, 0), std=(1, 1, 1)),
                     outputs=(OutputSpec("heatmaps", "heatmaps", 4),),
                     decoder=DecoderSpec("topdown", refine="none"))
    return TopDownPipeline(ZeroRunner(card, {"heatmaps": 17}))


def _paf():
    card = ModelCard(family="openpose", variant="zero", paradigm="bottom-up", keypoints="coco18",
                     input=InputSpec("input", SIZE, SIZE),
                     outputs=(OutputSpec("pafs", "pafs", 8), OutputSpec("heatmaps", "heatmaps", 8)),
                     decoder=DecoderSpec("paf", refine="none"))
    return PafPipeline(ZeroRunner(card, {"pafs": 38, "heatmaps": 19}))


def _ae():
    card = ModelCard(family="test", variant="zero", paradigm="bottom-up", keypoints="coco17",
                     input=InputSpec("input", SIZE, SIZE, mean=(0, 0, 0), std=(255,) * 3),
                     outputs=(OutputSpec("heatmaps", "heatmaps", 4), OutputSpec("tags", "tags", 4)),
                     decoder=DecoderSpec("ae", refine="none", extra={"preset": "pose-ae-train"}))
    return AeBottomUpPipeline(ZeroRunner(card, {"heatmaps": 17, "tags": 17}))


PIPELINES = {"top-down": _top_down, "paf": _paf, "ae": _ae}
FRAME = np.zeros((100, 120, 3), np.uint8)
BOX = [[10.0, 10.0, 40.0, 60.0]]


@pytest.mark.parametrize("boxes, box_scores, match", [
    ("10,10,40,60", None, r"boxes must be an \(N, 4\) float array .* got the string "
                          r"'10,10,40,60'"),                           # CLI text, not parsed
    ([[10, 10, 40, 60, 0.9]], None, r"shape \(N, 4\) as xywh, got \(1, 5\).*separate \(N,\)"),
    (np.zeros(8), None, r"shape \(N, 4\) as xywh, got \(8,\)"),        # two boxes, flattened
    ([["a", "b", "c", "d"]], None, r"boxes must be an \(N, 4\) float array .* dtype <U1"),
    ([[1, 2, 3, 4], [1, 2]], None, r"rows of different lengths"),      # ragged rows
    ([[True, True, True, True]], None, r"dtype bool"),                 # a mask, not boxes
    ([[10, np.nan, 40, 60]], None, r"box 0 .* has a non-finite value"),
    ([[10, 10, np.inf, 60]], None, r"box 0 .* has a non-finite value"),
    ([[0, 0, 1e30, 1e30]], None, r"box 0 .* width or height outside 0.01..1e\+06"),  # absurd
    ([[10, 10, 1e-30, 1e-30]], None, r"box 0 .* width or height outside"),  # a crop of nothing
    (BOX, [0.5, 0.7], r"box_scores must have shape \(1,\), one score per box, got \(2,\)"),
    (BOX, 0.5, r"box_scores must have shape \(1,\), one score per box, got \(\)"),  # a scalar
    (BOX, "0.9", r"box_scores must be an \(N,\) float array .* got the string '0.9'"),
    (BOX, [np.nan], r"box score 0 is nan; expected a finite score >= 0"),
    (BOX, [np.inf], r"box score 0 is inf; expected a finite score >= 0"),
    (BOX, [-0.5], r"box score 0 is -0.5; expected a finite score >= 0"),  # not a confidence
    (np.zeros((0, 4)), [0.9], r"box_scores must have shape \(0,\)"),   # scores for no box
])
def test_top_down_refuses_misused_boxes_and_scores(boxes, box_scores, match):
    pipeline = _top_down()
    with pytest.raises(InputError, match=match):
        pipeline(FRAME, boxes, box_scores)
    assert pipeline.runner.calls == 0  # refused before any inference


@pytest.mark.parametrize("boxes, box_scores", [
    (np.zeros((0, 4), np.float32), None),          # a detector that found nobody
    (np.zeros((0, 4)), np.zeros(0, np.float32)),   # ... with its (empty) scores
    ([], None),                                    # an empty list
])
def test_no_person_gives_empty_poses_without_inference(boxes, box_scores):
    pipeline = _top_down()
    poses = pipeline(FRAME, boxes, box_scores)
    assert len(poses) == 0 and poses.xy.shape == (0, 17, 2) and poses.boxes.shape == (0, 4)
    assert pipeline.runner.calls == 0


def test_top_down_accepts_integer_boxes_and_scores():
    poses = _top_down()(FRAME, np.array(BOX, np.int64), np.array([1], np.int64))
    assert len(poses) == 1 and poses.boxes.dtype == np.float32


@pytest.mark.parametrize("kind", sorted(PIPELINES))
@pytest.mark.parametrize("height, width", [
    (4097, 8192),    # one row above the limit
    (20000, 20000),  # a frame that used to end in a 56 GiB allocation
])
def test_every_pipeline_refuses_frames_above_the_pixel_limit(kind, height, width):
    pipeline = PIPELINES[kind]()
    frame = np.zeros((height, width, 3), np.uint8)  # untouched pages: costs nothing
    with pytest.raises(InputError, match=rf"frame of {width}x{height} = {width * height} "
                                         rf"pixels is above the limit of {MAX_FRAME_PIXELS}"):
        pipeline(frame)
    assert pipeline.runner.calls == 0


@pytest.mark.parametrize("kind", sorted(PIPELINES))
def test_close_closes_the_runner_once(kind):
    pipeline = PIPELINES[kind]()
    pipeline.close()
    pipeline.close()
    assert pipeline.closed and pipeline.runner.closed and pipeline.runner.releases == 1


@pytest.mark.parametrize("kind", sorted(PIPELINES))
def test_with_closes_the_runner_even_on_error(kind):
    with pytest.raises(InputError, match=r"expected a BGR uint8 image"):
        with PIPELINES[kind]() as pipeline:
            pipeline(np.zeros((10, 10), np.uint8))
    assert pipeline.runner.closed and pipeline.runner.releases == 1


@pytest.mark.parametrize("kind", sorted(PIPELINES))
def test_a_dropped_pipeline_leaves_its_runner_open(kind):
    # One pipeline per frame on a shared runner is a pattern in use: only close() and
    # with may close the runner, never garbage collection.
    pipeline = PIPELINES[kind]()
    runner = pipeline.runner
    del pipeline
    gc.collect()
    assert not runner.closed and runner.releases == 0
