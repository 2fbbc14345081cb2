"""CPM decoding and its top-down pipeline: upsample, argmax, drop the background, crop rule."""

import cv2
import numpy as np
import pytest

from edgepose.backends.base import RunnerBase, TensorSpec
from edgepose.card import DecoderSpec, InputSpec, ModelCard, OutputSpec
from edgepose.decode.cpm import CpmDecoder, argmax_maps, upsample_maps
from edgepose.errors import CardError, DecodeError, InputError
from edgepose.keypoints import get_keypoint_set
from edgepose.pipeline import TopDownPipeline
from edgepose.preprocess import affine_matrices, box_height_to_center_scale

SIZE, STRIDE, K = 368, 8, 14
MAP = SIZE // STRIDE


def _maps_with_peaks(crop_xy: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """(N, K+1, 46, 46): a Gaussian per keypoint where bicubic ×8 upsampling puts its peak on
    crop pixel crop_xy; a background map brighter than everything."""
    n = crop_xy.shape[0]
    ys, xs = np.mgrid[0:MAP, 0:MAP].astype(np.float64)
    # cv2.resize samples source (x + 0.5) / s - 0.5 for destination x.
    centers = (crop_xy + 0.5) / STRIDE - 0.5
    maps = np.zeros((n, K + 1, MAP, MAP), np.float32)
    maps[:, :K] = np.exp(-((xs - centers[..., 0, None, None]) ** 2
                           + (ys - centers[..., 1, None, None]) ** 2) / (2 * sigma ** 2))
    maps[:, K] = 5.0
    return maps


def test_upsampling_equals_one_resize_per_map():
    rng = np.random.default_rng(0)
    maps = rng.random((2, 600, 5, 7)).astype(np.float32)
    got = upsample_maps(maps, 3)
    assert got.shape == (2, 600, 15, 21)
    for n in range(2):
        for c in (0, 511, 512, 599):
            expected = cv2.resize(maps[n, c], (21, 15), interpolation=cv2.INTER_CUBIC)
            np.testing.assert_allclose(got[n, c], expected, rtol=1e-6, atol=1e-6)


def test_argmax_is_the_first_maximum_in_row_major_order():
    rng = np.random.default_rng(1)
    maps = rng.random((3, 4, 6, 9)).astype(np.float32)
    maps[0, 0] = 0.0
    maps[0, 0, 2, 5] = maps[0, 0, 4, 1] = 1.0  # a tie: row 2 comes first
    coords, scores = argmax_maps(maps)
    for n in range(3):
        for k in range(4):
            y, x = np.unravel_index(np.argmax(maps[n, k]), maps[n, k].shape)
            assert tuple(coords[n, k]) == (x, y) and scores[n, k] == maps[n, k, y, x]
    assert tuple(coords[0, 0]) == (5, 2)


@pytest.mark.parametrize("box", [(100.0, 50.0, 80.0, 200.0), (10.0, 300.0, 260.0, 90.0)])
def test_round_trip_from_image_to_maps_and_back(box):
    rng = np.random.default_rng(2)
    boxes = np.array([box])
    centers, scales = box_height_to_center_scale(boxes, 1.0, 1.2)
    side = 1.2 * box[3]
    # Keypoints anywhere in the crop's middle, in image pixels.
    image_xy = (centers[:, None] + rng.uniform(-0.4, 0.4, (1, K, 2)) * side).astype(np.float64)
    forward = affine_matrices(centers, scales, (SIZE, SIZE))[0]
    crop_xy = image_xy[0] @ forward[:, :2].T + forward[:, 2]
    xy, scores = CpmDecoder(STRIDE).decode(_maps_with_peaks(np.round(crop_xy)[None]),
                                           centers, scales)
    assert xy.shape == (1, K, 2) and scores.shape == (1, K)
    # Rounding to a crop pixel, and the argmax can sit one pixel off on a plateau.
    assert np.abs(xy[0] - image_xy[0]).max() <= 1.5 * side / SIZE
    assert scores.min() > 0.9  # the keypoints' own peaks, not the brighter background


def test_maps_without_background_keep_every_channel():
    maps = _maps_with_peaks(np.full((1, K, 2), 100.0))[:, :K]
    xy, _ = CpmDecoder(STRIDE, background=False).decode(maps, np.array([[184.0, 184.0]]),
                                                        np.array([[1.84, 1.84]]))
    assert xy.shape == (1, K, 2)
    np.testing.assert_allclose(xy[0], 100.0, atol=1.0)


def test_decoder_rejects_bad_input():
    with pytest.raises(DecodeError, match="background"):
        CpmDecoder().decode(np.zeros((1, 1, 46, 46), np.float32), np.zeros((1, 2)),
                            np.ones((1, 2)))
    with pytest.raises(DecodeError, match="people"):
        CpmDecoder().decode(np.zeros((2, 15, 46, 46), np.float32), np.zeros((1, 2)),
                            np.ones((1, 2)))
    with pytest.raises(DecodeError, match="NaN"):
        maps = np.zeros((1, 15, 46, 46), np.float32)
        maps[0, 3, 1, 1] = np.nan
        CpmDecoder().decode(maps, np.zeros((1, 2)), np.ones((1, 2)))
    with pytest.raises(InputError):
        CpmDecoder(stride=0)


def test_height_rule_ignores_the_box_width():
    boxes = np.array([[10.0, 20.0, 40.0, 100.0], [10.0, 20.0, 400.0, 100.0]])
    centers, scales = box_height_to_center_scale(boxes, 1.0, 1.2)
    np.testing.assert_allclose(centers, [[30, 70], [210, 70]])
    np.testing.assert_allclose(scales, [[0.6, 0.6], [0.6, 0.6]], rtol=1e-6)  # 1.2 × 100 / 200
    with pytest.raises(InputError):
        box_height_to_center_scale(boxes, 1.0, 0.0)


def _cpm_card(**input_extra):
    extra = {"box_rule": "height", "box_padding": 1.2, **input_extra}
    return ModelCard(family="cpm", variant="test", paradigm="top-down", keypoints="mpii_cpm14",
                     input=InputSpec("input", SIZE, SIZE, color="BGR", mean=(128,) * 3,
                                     std=(256,) * 3, pad_value=128.0, extra=extra),
                     outputs=(OutputSpec("heatmaps", "heatmaps", STRIDE),),
                     decoder=DecoderSpec("cpm", refine="none", extra={"background": True}))


class DotRunner(RunnerBase):
    """Answers each crop with peaks on its brightest pixel (and a brighter background map)."""

    def __init__(self, card):
        self.card = card
        self.inputs = (TensorSpec("input", np.dtype(np.float32), (None, 3, SIZE, SIZE)),)
        self.outputs = (TensorSpec("heatmaps", np.dtype(np.float32), (None, K + 1, MAP, MAP)),)
        self.max_batch = None
        self.mirrored_calls = 0

    def infer(self, feeds):
        crops = feeds["input"]
        xy = []
        for crop in crops:
            y, x = np.unravel_index(np.argmax(crop.sum(axis=0)), crop.shape[1:])
            xy.append(np.tile([x, y], (K, 1)))
        return {"heatmaps": _maps_with_peaks(np.array(xy, np.float64))}


@pytest.mark.parametrize("box, dot", [((100, 40, 60, 150), (130, 115)),
                                      ((20, 10, 250, 120), (150, 60))])
def test_pipeline_lands_on_the_dot_with_the_height_rule(box, dot):
    image = np.full((240, 320, 3), 30, np.uint8)
    image[dot[1], dot[0]] = 255
    poses = TopDownPipeline(DotRunner(_cpm_card()))(image, np.array([box], np.float32))
    assert poses.xy.shape == (1, K, 2) and poses.keypoint_set == "mpii_cpm14"
    assert np.abs(poses.xy[0] - dot).max() <= 2.0 * 1.2 * box[3] / SIZE


def test_flip_keeps_the_background_channel_in_place():
    pipeline = TopDownPipeline(DotRunner(_cpm_card()))
    permutation = pipeline.flip_permutation(K + 1)
    assert permutation[K] == K
    assert list(permutation[:K]) == list(get_keypoint_set("mpii_cpm14").flip_permutation())


def test_pipeline_refuses_refinement_and_unknown_rules():
    with pytest.raises(InputError, match="refine"):
        TopDownPipeline(DotRunner(_cpm_card()), refine="dark")
    with pytest.raises(CardError, match="box_rule"):
        TopDownPipeline(DotRunner(_cpm_card(box_rule="square")))


def test_upsampling_keeps_float32_like_cv2_resize():
    maps = np.random.default_rng(3).random((1, 2, 4, 5)).astype(np.float32)
    assert upsample_maps(maps, STRIDE).dtype == np.float32
    coords, scores = argmax_maps(upsample_maps(maps, STRIDE))
    assert coords.dtype == np.float32 and scores.dtype == np.float32


def test_stride_one_is_the_identity():
    # Bicubic weights are 1 at distance 0 and 0 at every other whole pixel.
    maps = np.random.default_rng(4).random((2, 3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(upsample_maps(maps, 1), maps)


@pytest.mark.parametrize("stride", [0, -8, 2.0, 8.5, True])
def test_strides_that_are_not_positive_integers_are_refused(stride):
    maps = np.zeros((1, 2, 4, 4), np.float32)
    with pytest.raises(InputError, match="^stride must be a positive integer, got"):
        upsample_maps(maps, stride)
    with pytest.raises(InputError, match="^stride must be a positive integer, got"):
        CpmDecoder(stride)


def test_upsampling_names_belief_maps_when_refusing_them():
    with pytest.raises(DecodeError, match=r"^belief maps must be 4-D"):
        upsample_maps(np.zeros((2, 3, 4), np.float32), 2)


def test_default_stride_is_the_released_models():
    # CPM's released models: 368x368 input, 46x46 belief maps.
    assert CpmDecoder().stride == 8


def test_one_keypoint_plus_background_at_stride_one_by_hand():
    # Two channels are the least a background-carrying CPM can output. At stride 1 the
    # argmax is the map's own: (3, 1) on a 5x5 map; 0.25·200/5 = 10 px per map pixel,
    # so x = 50 + (3 − 2.5)·10 and y = 60 + (1 − 2.5)·10.
    maps = np.zeros((1, 2, 5, 5), np.float32)
    maps[0, 0, 1, 3] = 0.7
    maps[0, 1] = 5.0
    xy, scores = CpmDecoder(1).decode(maps, np.array([[50.0, 60.0]]), np.array([[0.25, 0.25]]))
    np.testing.assert_array_equal(xy, [[[55.0, 45.0]]])
    np.testing.assert_array_equal(scores, [[np.float32(0.7)]])


def test_non_square_maps_map_back_with_their_own_height():
    # 4x6 maps at stride 8 are a 32-high, 48-wide crop centred on the person; the
    # argmax comes from OpenCV's bicubic resize (applyModel.m's imresize stand-in) and
    # one isotropic factor 0.6·200/48 = 2.5 image px per crop px.
    maps = np.zeros((1, 2, 4, 6), np.float32)
    maps[0, 0, 1, 4] = 1.0
    maps[0, 1] = 5.0
    up = cv2.resize(maps[0, 0], (48, 32), interpolation=cv2.INTER_CUBIC)
    y, x = np.unravel_index(np.argmax(up), up.shape)
    xy, _ = CpmDecoder(8).decode(maps, np.array([[100.0, 200.0]]), np.array([[0.6, 0.6]]))
    np.testing.assert_allclose(xy[0, 0], (100 + (x - 24) * 2.5, 200 + (y - 16) * 2.5),
                               rtol=0, atol=1e-4)
