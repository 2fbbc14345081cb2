"""PafPipeline end to end with a stand-in runner that 'sees' known people.

The runner answers with OpenPose maps rendered at its output resolution from
people given in image pixels, placed where the card's resize/pad puts them; a
correct resize → normalise → upsample/crop/resize → decode chain must return
those people in image pixels.
"""


import cv2
import numpy as np
import pytest

from edgepose.backends.base import RunnerBase, TensorSpec
from edgepose.card import DecoderSpec, InputSpec, ModelCard, OutputSpec
from edgepose.decode.paf import PafParams
from edgepose.errors import CardError, InputError
from edgepose.keypoints import COCO18
from edgepose.pipeline import PafPipeline, keypoint_boxes
from edgepose.preprocess import (
    bottom_up_to_image,
    image_to_bottom_up,
    resize_pad_for_bottom_up,
)


from tests.edgepose.decode import paf_reference as ref  # noqa: E402 - after the code under test
HEIGHT, WIDTH, STRIDE, K = 256, 320, 8, COCO18.num_keypoints
GRAY = 30


def _card(paradigm="bottom-up", decoder="paf", preset=None, outputs=("pafs", "heatmaps")):
    extra = {} if preset is None else {"preset": preset}
    names = {"pafs": "Mconv7_stage6_L1", "heatmaps": "Mconv7_stage6_L2"}
    return ModelCard(
        family="openpose", variant="coco18", paradigm=paradigm, keypoints="coco18",
        input=InputSpec("image", HEIGHT, WIDTH, color="BGR", mean=(128, 128, 128),
                        std=(256, 256, 256), pad_value=128),
        outputs=tuple(OutputSpec(names[role], role, STRIDE) for role in outputs),
        decoder=DecoderSpec(decoder, extra=extra))


class PeopleRunner(RunnerBase):
    """Answers every frame with the maps of `xy` (N, K, 2 image pixels) for an image of `size`."""

    def __init__(self, card, xy=np.zeros((0, K, 2)), visible=None, size=(360, 400)):
        self.card = card
        h, w = HEIGHT // STRIDE, WIDTH // STRIDE
        self.inputs = (TensorSpec("image", np.dtype(np.float32), (None, 3, HEIGHT, WIDTH)),)
        self.outputs = (TensorSpec("Mconv7_stage6_L1", np.dtype(np.float32), (None, 38, h, w)),
                        TensorSpec("Mconv7_stage6_L2", np.dtype(np.float32), (None, 19, h, w)))
        self.max_batch = None
        self.xy = np.asarray(xy, float)
        self.visible = np.ones(self.xy.shape[:2], bool) if visible is None else visible
        self.size = size
        self.feeds = []

    def infer(self, feeds):
        self.feeds.append(feeds["image"].copy())
        scale = min(HEIGHT / self.size[0], WIDTH / self.size[1])
        # image pixel → input pixel (cv2's centre convention) → output pixel (stride 8).
        in_net = (self.xy + 0.5) * scale - 0.5
        on_map = (in_net + 0.5) / STRIDE - 0.5
        pafs, heatmaps = ref.render_maps(on_map, self.visible, COCO18,
                                         (HEIGHT // STRIDE, WIDTH // STRIDE),
                                         sigma=1.0, paf_width=1.0)
        return {"Mconv7_stage6_L1": pafs[None], "Mconv7_stage6_L2": heatmaps[None]}


def _person(neck, height, seed=0):
    rng = np.random.default_rng(seed)
    return np.asarray(neck, float) + (ref.COCO18_TEMPLATE + rng.normal(0, 0.01, (K, 2))) * height


def test_known_people_come_back_in_image_pixels():
    size = (360, 400)  # fitted into 256x320 at scale 0.711: 36 columns of padding
    people = np.stack([_person((110, 60), 260, seed=1), _person((290, 80), 230, seed=2)])
    runner = PeopleRunner(_card(), people, size=size)
    poses = PafPipeline(runner)(np.full((*size, 3), GRAY, np.uint8))
    assert len(poses) == 2
    order = np.argsort(poses.xy[:, 1, 0])  # by neck x
    error = np.abs(poses.xy[order] - people).max()
    # Peaks are integer image pixels (0.5) after cubic upsampling of maps drawn at
    # 1/8 of the input: within 2 image pixels (0.18 output pixels) everywhere.
    assert error <= 2.0, error
    assert (poses.scores > 0.5).all()
    np.testing.assert_allclose(poses.boxes, keypoint_boxes(poses.xy, poses.scores))
    assert poses.person_scores.shape == (2,) and (poses.person_scores > 0).all()


def test_the_network_input_is_the_normalised_padded_frame():
    runner = PeopleRunner(_card())
    PafPipeline(runner)(np.full((360, 400, 3), GRAY, np.uint8))
    (tensor,) = runner.feeds
    assert tensor.shape == (1, 3, HEIGHT, WIDTH) and tensor.dtype == np.float32
    # 400 x 0.711 = 284 image columns, then 36 of padding at 128: value/256 − 0.5.
    np.testing.assert_allclose(tensor[..., :284], GRAY / 256 - 0.5, atol=1e-6)
    np.testing.assert_allclose(tensor[..., 284:], 0.0, atol=1e-6)


def test_an_empty_frame_gives_no_people():
    poses = PafPipeline(PeopleRunner(_card()))(np.full((360, 400, 3), GRAY, np.uint8))
    assert len(poses) == 0 and poses.boxes.shape == (0, 4) and poses.keypoint_set == "coco18"


def test_an_image_smaller_than_the_stride_is_refused():
    with pytest.raises(InputError, match="smaller than the model's stride 8"):
        PafPipeline(PeopleRunner(_card()))(np.zeros((5, 400, 3), np.uint8))


@pytest.mark.parametrize("card_preset, argument, expected", [
    (None, None, PafParams.python()),    # no preset in the card: the Python port's
    ("cmu", None, PafParams.cmu()),      # the card's preset
    ("cmu", "python", PafParams.python()),  # the argument wins
])
def test_preset_comes_from_the_card_unless_given(card_preset, argument, expected):
    pipeline = PafPipeline(PeopleRunner(_card(preset=card_preset)), preset=argument)
    assert pipeline.decoder.params == expected


@pytest.mark.parametrize("card, preset, error, match", [
    (_card(paradigm="top-down"), None, InputError, "needs a bottom-up model"),
    (_card(decoder="topdown"), None, CardError, "decodes 'paf' models only"),
    (_card(outputs=("heatmaps",)), None, CardError, "no output with role 'pafs'"),
    (_card(), "mmpose", InputError, "unknown PAF decoder preset"),
])
def test_cards_it_cannot_run_are_refused(card, preset, error, match):
    with pytest.raises(error, match=match):
        PafPipeline(PeopleRunner(card), preset=preset)


@pytest.mark.parametrize("size, target_width, padded_shape, pad", [
    ((300, 420), None, (256, 360), (0, 2)),    # port: height to 256, width 358 padded to 360
    ((360, 400), 320, (256, 320), (0, 36)),    # fitted by height into the card's 256x320
    ((256, 320), 320, (256, 320), (0, 0)),     # the card's own size: nothing to pad
    ((90, 500), 320, (256, 320), (198, 0)),    # wide frame fitted by width: 58 rows + padding
])
def test_resize_pad_shapes_and_padding(size, target_width, padded_shape, pad):
    image = np.random.default_rng(0).integers(0, 255, (*size, 3), dtype=np.uint8)
    padded, scale, got_pad = resize_pad_for_bottom_up(image, 256, STRIDE, 128,
                                                      target_width=target_width)
    assert padded.shape[:2] == padded_shape and got_pad == pad
    inner = cv2.resize(image, (0, 0), fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    h, w = padded_shape[0] - pad[0], padded_shape[1] - pad[1]
    np.testing.assert_array_equal(padded[:h, :w], inner[:h, :w])
    assert (padded[h:] == 128).all() and (padded[:, w:] == 128).all()


@pytest.mark.parametrize("size, target_width", [((300, 420), None), ((360, 400), 320),
                                                 ((90, 500), 320)])
def test_coordinates_round_trip_and_follow_the_pixels(size, target_width):
    dot = (size[1] * 0.37, size[0] * 0.61)
    image = np.zeros((*size, 3), np.uint8)
    cv2.circle(image, (round(dot[0]), round(dot[1])), 6, (255, 255, 255), -1)
    padded, scale, _ = resize_pad_for_bottom_up(image, 256, STRIDE, 0, target_width=target_width)
    moments = cv2.moments(padded[..., 0].astype(np.float32))
    centroid = np.array([moments["m10"] / moments["m00"], moments["m01"] / moments["m00"]])
    expected = image_to_bottom_up(np.array([round(dot[0]), round(dot[1])], float), scale)
    assert np.abs(centroid - expected).max() <= 0.5
    points = np.random.default_rng(0).uniform(0, 300, (5, 3, 2))
    np.testing.assert_allclose(bottom_up_to_image(image_to_bottom_up(points, scale), scale),
                               points, atol=1e-3)


@pytest.mark.parametrize("kwargs, match", [
    ({"image": np.zeros((100, 100), np.uint8)}, "uint8 BGR"),      # grayscale
    ({"image": np.zeros((100, 100, 3), np.float32)}, "uint8 BGR"),  # not uint8
    ({"stride": 0}, "stride must be a positive integer"),
    ({"pad_value": 300}, r"pad_value must be a pixel value in \[0, 255\]"),
    ({"image": np.zeros((8, 4000, 3), np.uint8), "target_width": 100}, "shrinks to nothing"),
])
def test_resize_pad_refuses_bad_arguments(kwargs, match):
    arguments = {"image": np.zeros((100, 100, 3), np.uint8), "target_height": 256,
                 "stride": 8, "pad_value": 128}
    arguments.update(kwargs)
    with pytest.raises(InputError, match=match):
        resize_pad_for_bottom_up(**arguments)
