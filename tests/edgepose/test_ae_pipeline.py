"""AeBottomUpPipeline end to end: maps with known people in, exactly those people out."""

import numpy as np
import pytest

from edgepose.backends.base import RunnerBase, TensorSpec
from edgepose.card import DecoderSpec, InputSpec, ModelCard, OutputSpec
from edgepose.errors import CardError
from edgepose.pipeline import AeBottomUpPipeline, bottom_up_pipeline

K = 17
SIZE = 128


def _card(preset: str, high: bool) -> ModelCard:
    outputs = [OutputSpec("heatmaps", "heatmaps", 4), OutputSpec("tags", "tags", 4)]
    if high:
        outputs.append(OutputSpec("heatmaps_hr", "heatmaps_hr", 2))
    return ModelCard(family="test", variant="ae", paradigm="bottom-up", keypoints="coco17",
                     input=InputSpec("input", SIZE, SIZE, mean=(0, 0, 0), std=(255,) * 3),
                     outputs=tuple(outputs),
                     decoder=DecoderSpec("ae", refine="none", extra={"preset": preset}))


class PeopleRunner(RunnerBase):
    """Answers every frame with one Gaussian per keypoint of each known person, and that
    person's tag over its whole keypoint map (tags are read at the peaks only)."""

    def __init__(self, card: ModelCard, people_xy: np.ndarray):
        self.card = card
        self.people_xy = people_xy  # (N, K, 2) input pixels
        self.inputs = (TensorSpec("input", np.dtype(np.float32), (1, 3, SIZE, SIZE)),)
        self.outputs = tuple(TensorSpec(o.name, np.dtype(np.float32), None) for o in card.outputs)
        self.max_batch = 1

    def _maps(self, stride: int) -> tuple[np.ndarray, np.ndarray]:
        size = SIZE // stride
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
        heatmaps = np.zeros((K, size, size), np.float32)
        tags = np.zeros((K, size, size), np.float32)
        for person, keypoints in enumerate(self.people_xy):
            # The sources' map pixel i covers input pixels [stride·i, stride·(i + 1)).
            centers = keypoints / stride - 0.5
            blobs = np.exp(-((xs - centers[:, 0, None, None]) ** 2
                             + (ys - centers[:, 1, None, None]) ** 2) / (2 * 0.8 ** 2))
            owner = blobs > heatmaps
            heatmaps = np.maximum(heatmaps, blobs)
            tags = np.where(owner, 3.0 * person, tags)
        return heatmaps, tags

    def infer(self, feeds):
        heatmaps, tags = self._maps(4)
        out = {"heatmaps": heatmaps[None], "tags": tags[None]}
        if len(self.card.outputs) == 3:
            out["heatmaps_hr"] = self._maps(2)[0][None]
        return out


def _people(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Keypoints on a coarse grid, spread so that no two of one joint share a map peak.
    cells = rng.choice(64, size=count, replace=False)
    origins = np.stack([cells % 8, cells // 8], axis=1) * 16.0 + 4.0
    offsets = rng.uniform(0, 8, (count, K, 2))
    return origins[:, None, :] + offsets


@pytest.mark.parametrize(("preset", "high", "count"), [
    ("pose-ae-train", False, 1),    # one person, stride-4 maps
    ("pose-ae-train", False, 5),
    ("higherhrnet", True, 5),       # two resolutions, grouped at the input size
    ("higherhrnet", True, 0),       # nobody
])
def test_known_people_come_out_grouped(preset, high, count):
    truth = _people(count, seed=count)
    runner = PeopleRunner(_card(preset, high), truth)
    image = np.zeros((SIZE, SIZE, 3), np.uint8)  # the card's size: scale 1
    pipeline = bottom_up_pipeline(runner)
    assert isinstance(pipeline, AeBottomUpPipeline)
    poses = pipeline(image)
    assert len(poses) == count and poses.keypoint_set == "coco17"
    if count == 0:
        return
    # Each found person is one true person, keypoint for keypoint, to the map's resolution.
    stride = 2 if high else 4
    for found in poses.xy:
        errors = np.abs(truth - found[None]).max(axis=(1, 2))
        assert errors.min() <= stride, errors
    assert (poses.scores > 0.5).all()


def test_frame_larger_than_the_input_scales_back():
    truth = _people(3, seed=7)
    runner = PeopleRunner(_card("pose-ae-train", False), truth)
    poses = bottom_up_pipeline(runner)(np.zeros((2 * SIZE, 2 * SIZE, 3), np.uint8))
    for found in poses.xy:
        assert np.abs(2 * truth - found[None]).max(axis=(1, 2)).min() <= 2 * 4


def test_pipeline_refuses_a_paf_card():
    card = ModelCard(family="openpose", variant="x", paradigm="bottom-up", keypoints="coco18",
                     input=InputSpec("input", SIZE, SIZE),
                     outputs=(OutputSpec("pafs", "pafs", 8), OutputSpec("heatmaps", "heatmaps", 8)),
                     decoder=DecoderSpec("paf", refine="none"))
    with pytest.raises(CardError, match="associative"):
        AeBottomUpPipeline(PeopleRunner(card, np.zeros((0, K, 2))))
