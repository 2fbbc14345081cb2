"""Tests for edgepose.preprocess against scalar re-derivations of HRNet's code."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from edgepose.card import CropSpec
from edgepose.errors import InputError
from edgepose.preprocess import (
    MAX_BOX_PIXELS,
    affine_matrices,
    box_height_to_center_scale,
    box_to_center_scale,
    crop_batch,
    crop_centers_scales,
    heatmap_to_image,
    normalize_to_tensor,
    validate_boxes,
)

INPUT_SIZE = (192, 256)  # (width, height) of HRNet w32_256x192
HEATMAP_SIZE = (48, 64)


def scalar_center_scale(box, aspect_ratio, padding=1.25, pixel_std=200.0):
    """HRNet's _xywh2cs for one box, re-derived from coco.py."""
    x, y, w, h = box
    center = (x + w * 0.5, y + h * 0.5)
    if w > aspect_ratio * h:
        h = w * 1.0 / aspect_ratio
    elif w < aspect_ratio * h:
        w = h * aspect_ratio
    return center, (w / pixel_std * padding, h / pixel_std * padding)


def official_points(center, scale, output_size):
    """The three point pairs get_affine_transform builds with rot=0, shift=0."""
    src_w = scale[0] * 200.0
    dst_w, dst_h = output_size
    c = np.array(center, dtype=np.float64)
    src0, src1 = c, c + np.array([0.0, -0.5 * src_w])
    dst0 = np.array([dst_w * 0.5, dst_h * 0.5])
    dst1 = dst0 + np.array([0.0, -0.5 * dst_w])

    def third(a, b):  # b + (a - b) rotated by 90 degrees
        d = a - b
        return b + np.array([-d[1], d[0]])

    src = np.stack([src0, src1, third(src0, src1)]).astype(np.float32)
    dst = np.stack([dst0, dst1, third(dst0, dst1)]).astype(np.float32)
    return src, dst


@pytest.mark.parametrize(
    "box",
    [
        pytest.param((10.0, 20.0, 300.0, 100.0), id="wider-than-aspect-grows-h"),
        pytest.param((50.5, 7.25, 40.0, 200.0), id="taller-than-aspect-grows-w"),
        pytest.param((0.0, 0.0, 75.0, 100.0), id="exact-aspect-unchanged"),
        pytest.param((-30.0, -10.0, 1.0, 1.0), id="tiny-box-partly-outside"),
    ],
)
def test_box_to_center_scale_matches_scalar_rule(box):
    aspect = INPUT_SIZE[0] / INPUT_SIZE[1]
    centers, scales = box_to_center_scale(np.array([box]), aspect)
    center, scale = scalar_center_scale(box, aspect)
    assert centers.dtype == np.float32 and scales.dtype == np.float32
    np.testing.assert_allclose(centers[0], center, rtol=1e-6)
    np.testing.assert_allclose(scales[0], scale, rtol=1e-6)
    # The grown box has the input's aspect ratio.
    assert scales[0, 0] / scales[0, 1] == pytest.approx(aspect, rel=1e-6)


def test_box_to_center_scale_is_vectorised_over_people():
    boxes = np.array([[10, 20, 300, 100], [50, 7, 40, 200], [0, 0, 75, 100]], np.float64)
    centers, scales = box_to_center_scale(boxes, 0.75, padding=1.0, pixel_std=100.0)
    for i, box in enumerate(boxes):
        center, scale = scalar_center_scale(box, 0.75, 1.0, 100.0)
        np.testing.assert_allclose(centers[i], center, rtol=1e-6)
        np.testing.assert_allclose(scales[i], scale, rtol=1e-6)


CENTERS = np.array([[320.0, 240.0], [12.5, 700.25], [1000.0, 3.0]])
SCALES = np.array([[1.2, 1.6], [0.31, 0.4133], [4.0, 5.333]])


@pytest.mark.parametrize("size", [INPUT_SIZE, HEATMAP_SIZE, (288, 384)])
def test_affine_matrices_equal_official_get_affine_transform(size):
    forward = affine_matrices(CENTERS, SCALES, size)
    inverse = affine_matrices(CENTERS, SCALES, size, inverse=True)
    assert forward.shape == (3, 2, 3) and forward.dtype == np.float64
    for i in range(len(CENTERS)):
        src, dst = official_points(CENTERS[i], SCALES[i], size)
        # The official points are float32; tolerances cover that rounding.
        np.testing.assert_allclose(
            forward[i], cv2.getAffineTransform(src, dst), rtol=1e-5, atol=1e-3
        )
        np.testing.assert_allclose(
            inverse[i], cv2.getAffineTransform(dst, src), rtol=1e-5, atol=1e-3
        )


def test_affine_matrices_ignore_scale_y_like_the_official_code():
    # get_affine_transform reads only scale[0]; scale[1] must not matter.
    a = affine_matrices(CENTERS, SCALES, INPUT_SIZE)
    b = affine_matrices(CENTERS, SCALES * [1.0, 3.0], INPUT_SIZE)
    np.testing.assert_array_equal(a, b)


def test_inverse_really_inverts():
    forward = affine_matrices(CENTERS, SCALES, INPUT_SIZE)
    inverse = affine_matrices(CENTERS, SCALES, INPUT_SIZE, inverse=True)
    bottom = np.array([[[0.0, 0.0, 1.0]]]).repeat(3, axis=0)
    product = np.concatenate([forward, bottom], 1) @ np.concatenate([inverse, bottom], 1)
    np.testing.assert_allclose(product, np.eye(3)[None].repeat(3, 0), atol=1e-9)


def blob_image(width, height, cx, cy, sigma=4.0):
    yy, xx = np.mgrid[0:height, 0:width]
    blob = 255.0 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 1] = np.round(blob).astype(np.uint8)  # marker in green only
    return image


def centroid(plane):
    weights = plane.astype(np.float64)
    yy, xx = np.mgrid[0:plane.shape[0], 0:plane.shape[1]]
    return np.array([(weights * xx).sum(), (weights * yy).sum()]) / weights.sum()


def test_crop_batch_puts_the_marker_where_the_matrix_says():
    marker = np.array([211.0, 143.0])
    image = blob_image(400, 300, *marker)
    centers = np.array([[200.0, 150.0], [230.0, 120.0], [211.0, 143.0]])
    scales = np.array([[1.0, 1.333], [0.6, 0.8], [0.5, 0.666]])  # shrink and enlarge
    matrices = affine_matrices(centers, scales, INPUT_SIZE)
    crops = crop_batch(image, matrices, INPUT_SIZE)
    assert crops.shape == (3, 256, 192, 3) and crops.dtype == np.uint8
    for i in range(3):
        expected = matrices[i] @ np.array([*marker, 1.0])
        # Bilinear sampling of a smooth blob keeps its centroid; the bound covers
        # uint8 rounding of the blob's tails.
        np.testing.assert_allclose(centroid(crops[i, ..., 1]), expected, atol=0.1)
        assert crops[i, ..., 0].max() == 0 and crops[i, ..., 2].max() == 0


def test_crop_batch_reuses_out_and_pads_with_border_value():
    image = np.full((50, 60, 3), 100, np.uint8)
    centers = np.array([[0.0, 0.0], [30.0, 25.0]])  # the first crop is mostly outside
    scales = np.array([[0.15, 0.2], [0.15, 0.2]])  # a 30x40 window
    matrices = affine_matrices(centers, scales, (48, 64))
    out = np.empty((2, 64, 48, 3), np.uint8)
    result = crop_batch(image, matrices, (48, 64), out=out, border_value=7)
    assert result is out
    assert out[0, 0, 0].tolist() == [7, 7, 7]  # outside the image
    assert out[0, -1, -1].tolist() == [100, 100, 100]  # inside the image
    assert (out[1] == 100).all()


def test_crop_batch_rejects_a_wrong_out_buffer():
    image = np.zeros((50, 60, 3), np.uint8)
    matrices = affine_matrices(np.array([[30.0, 25.0]]), np.array([[0.3, 0.4]]), (48, 64))
    with pytest.raises(InputError, match="out must be"):
        crop_batch(image, matrices, (48, 64), out=np.empty((1, 48, 64, 3), np.uint8))


MEAN_RGB = np.array([123.675, 116.28, 103.53])
STD_RGB = np.array([58.395, 57.12, 57.375])


@pytest.mark.parametrize("color", ["RGB", "BGR"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_normalize_to_tensor_matches_explicit_formula(color, layout):
    rng = np.random.default_rng(3)
    crops = rng.integers(0, 256, size=(2, 8, 6, 3), dtype=np.uint8)
    result = normalize_to_tensor(crops, MEAN_RGB, STD_RGB, color=color, layout=layout)
    assert result.dtype == np.float32
    for n in range(2):
        for y in range(8):
            for x in range(6):
                b, g, r = (float(v) for v in crops[n, y, x])
                pixel = (r, g, b) if color == "RGB" else (b, g, r)
                for c in range(3):
                    expected = (pixel[c] - MEAN_RGB[c]) / STD_RGB[c]
                    got = result[n, c, y, x] if layout == "NCHW" else result[n, y, x, c]
                    assert got == pytest.approx(expected, abs=1e-5)


def test_normalize_to_tensor_fills_out():
    crops = np.full((1, 4, 4, 3), 200, np.uint8)
    crops[..., 0] = 10  # blue
    out = np.empty((1, 3, 4, 4), np.float32)
    result = normalize_to_tensor(crops, [0, 0, 0], [1, 1, 2], color="RGB", out=out)
    assert result is out
    np.testing.assert_array_equal(out[0, 2], 5.0)  # blue is the last RGB channel, /2
    np.testing.assert_array_equal(out[0, 0], 200.0)


def test_heatmap_to_image_inverts_the_crop_mapping():
    centers = CENTERS.astype(np.float32)
    aspect = HEATMAP_SIZE[0] / HEATMAP_SIZE[1]
    scales = np.stack([SCALES[:, 0], SCALES[:, 0] / aspect], 1).astype(np.float32)
    rng = np.random.default_rng(0)
    image_points = centers[:, None, :] + rng.uniform(-80, 80, size=(3, 5, 2))
    forward = affine_matrices(centers, scales, HEATMAP_SIZE)
    heat = np.einsum("nij,nkj->nki", forward[:, :, :2], image_points) + forward[:, None, :, 2]
    back = heatmap_to_image(heat, centers, scales, HEATMAP_SIZE)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, image_points, atol=1e-4)


def test_heatmap_to_image_uses_scale_x_for_both_axes_like_transform_preds():
    # Official transform_preds: x = cx + (hx - W/2)*sw*200/W, y likewise with sw/W.
    coords = np.array([[[3.0, 60.0], [40.0, 2.5]]])
    center, scale = np.array([[100.0, 200.0]]), np.array([[0.9, 2.0]])  # sh/sw != H/W
    w, h = HEATMAP_SIZE
    factor = 0.9 * 200.0 / w
    expected = [[[100 + (3 - w / 2) * factor, 200 + (60 - h / 2) * factor],
                 [100 + (40 - w / 2) * factor, 200 + (2.5 - h / 2) * factor]]]
    np.testing.assert_allclose(heatmap_to_image(coords, center, scale, HEATMAP_SIZE),
                               expected, rtol=1e-6)


@pytest.mark.parametrize(
    "box, why",
    [
        pytest.param((10, 10, 0, 20), "zero or negative area", id="zero-width"),
        pytest.param((10, 10, 20, -5), "zero or negative area", id="negative-height"),
        pytest.param((10, np.nan, 20, 20), "non-finite", id="nan"),
        pytest.param((10, 10, np.inf, 20), "non-finite", id="inf"),
        pytest.param((640, 10, 20, 20), "entirely outside the 640x480", id="right-of-image"),
        pytest.param((10, -50, 20, 50), "entirely outside", id="above-image-touching-edge"),
        pytest.param((-20, 10, 20, 20), "entirely outside", id="left-of-image-touching-edge"),
    ],
)
def test_validate_boxes_rejects_bad_boxes(box, why):
    boxes = np.array([(0, 0, 10, 10), box], dtype=np.float64)
    with pytest.raises(InputError, match=why) as info:
        validate_boxes(boxes, 640, 480)
    assert str(info.value).startswith("box 1 ")
    assert "\n" not in str(info.value)


def test_validate_boxes_keeps_partly_outside_boxes():
    boxes = [(-5, -5, 20, 20), (630, 470, 50, 50), (0, 0, 640, 480)]
    result = validate_boxes(boxes, 640, 480)
    assert result.dtype == np.float32 and result.shape == (3, 4)
    assert validate_boxes(np.zeros((0, 4)), 640, 480).shape == (0, 4)


def test_validate_boxes_rejects_wrong_shape():
    with pytest.raises(InputError, match=r"\(N, 4\)"):
        validate_boxes(np.zeros((2, 5)), 640, 480)


# HRNet's _xywh2cs pads by 1.25 only `if center[0] != -1`. Expected scales below are
# worked out by hand for w = 20, h = 40 at aspect 192/256 = 0.75: w < 0.75·40 = 30, so
# w grows to 30 and the scale is (30/200, 40/200) = (0.15, 0.2), × 1.25 = (0.1875, 0.25).
UNPADDED = (0.15, 0.2)
PADDED = (0.1875, 0.25)


@pytest.mark.parametrize("x, center_x, expected", [
    pytest.param(-11.0, -1.0, UNPADDED, id="center-x-exactly-minus-1-unpadded"),
    pytest.param(-11.0001, -1.0001, PADDED, id="center-x-minus-1.0001-padded"),
    pytest.param(-10.9999, -0.9999, PADDED, id="center-x-minus-0.9999-padded"),
    pytest.param(-9.0, 1.0, PADDED, id="center-x-plus-1-padded"),
    # The official center is a float32 array: -1.00000001 is stored as -1 exactly.
    pytest.param(-11.00000001, -1.0, UNPADDED, id="center-x-rounds-to-minus-1-in-float32"),
])
def test_box_with_center_x_minus_one_is_unpadded_as_official(x, center_x, expected):
    box = np.array([[x, 10.0, 20.0, 40.0]])
    centers, scales = box_to_center_scale(box, 192 / 256)
    assert centers[0, 0] == np.float32(center_x) and centers[0, 1] == np.float32(30.0)
    np.testing.assert_allclose(scales[0], expected, rtol=1e-6)


def test_sentinel_applies_per_box_and_through_the_cards_fit_rule():
    boxes = np.array([[-11.0, 10.0, 20.0, 40.0], [-11.0001, 10.0, 20.0, 40.0]])
    spec = SimpleNamespace(width=192, height=256, crop=CropSpec(rule="fit"))
    _, scales = crop_centers_scales(boxes, spec)
    np.testing.assert_allclose(scales, [UNPADDED, PADDED], rtol=1e-6)


def test_cpms_height_rule_has_no_sentinel():
    # CMU's applyModel.m has no such sentinel: 1.2 × h = 48 tall, 36 wide at 0.75.
    box = np.array([[-11.0, 10.0, 20.0, 40.0]])
    spec = SimpleNamespace(width=192, height=256, crop=CropSpec(rule="height", padding=1.2))
    _, scales = crop_centers_scales(box, spec)
    np.testing.assert_allclose(scales[0], (36 / 200, 48 / 200), rtol=1e-6)


# ------------------------------------------- mutation-testing gaps (issue 25 §5)
# Each test below kills mutants of edgepose/preprocess.py that survived mutmut.

BOX = np.array([[10.0, 20.0, 30.0, 40.0]])


@pytest.mark.parametrize("rule", [box_to_center_scale, box_height_to_center_scale])
@pytest.mark.parametrize("param", ["aspect_ratio", "padding", "pixel_std"])
@pytest.mark.parametrize("value", [0.0, -1.0, np.inf, np.nan])
def test_box_rules_refuse_a_non_positive_or_non_finite_parameter(rule, param, value):
    kwargs = {"aspect_ratio": 0.75, "padding": 1.25, "pixel_std": 200.0, param: value}
    with pytest.raises(InputError, match=f"^{param} must be a positive finite number"):
        rule(BOX, **kwargs)


@pytest.mark.parametrize("rule", [box_to_center_scale, box_height_to_center_scale])
@pytest.mark.parametrize("boxes", [np.array([1.0, 2.0, 3.0, 4.0]), np.zeros((2, 5))],
                         ids=["1-d", "five-columns"])
def test_box_rules_refuse_boxes_not_n_by_4(rule, boxes):
    with pytest.raises(InputError, match=r"^boxes must have shape \(N, 4\) as xywh"):
        rule(boxes, 0.75, 1.25)


def test_box_height_rule_returns_float32_scales():
    # 1.2 x 40 / 200 = 0.24 tall, x 0.75 = 0.18 wide.
    centers, scales = box_height_to_center_scale(BOX, 0.75, 1.2)
    assert centers.dtype == np.float32 and scales.dtype == np.float32
    np.testing.assert_allclose(scales[0], (0.18, 0.24), rtol=1e-6)


@pytest.mark.parametrize("rule, padding, expected", [
    # fit: w = 20 grows to 0.75 x 40 = 30; (30, 40) / 200 x 1.0.
    pytest.param("fit", 1.0, (0.15, 0.2), id="fit"),
    # height: 1.5 x 40 / 200 = 0.3 tall, 0.225 wide.
    pytest.param("height", 1.5, (0.225, 0.3), id="height"),
])
def test_crop_centers_scales_padding_overrides_the_cards(rule, padding, expected):
    spec = SimpleNamespace(width=192, height=256, crop=CropSpec(rule=rule, padding=1.2))
    _, scales = crop_centers_scales(np.array([[-9.0, 10.0, 20.0, 40.0]]), spec, padding=padding)
    np.testing.assert_allclose(scales[0], expected, rtol=1e-6)


@pytest.mark.parametrize("box", [
    pytest.param((10, 10, MAX_BOX_PIXELS, 20), id="w=MAX"),
    pytest.param((10, 10, 20, MAX_BOX_PIXELS), id="h=MAX"),
    pytest.param((10, 10, 1, 1), id="w=h=1"),
    pytest.param((-0.5, 10, 1, 20), id="x+w=0.5-touches-the-image"),
    pytest.param((10, -0.5, 20, 1), id="y+h=0.5-touches-the-image"),
    pytest.param((639.5, 479.5, 20, 20), id="x,y-half-a-pixel-inside"),
])
def test_validate_boxes_keeps_boxes_on_the_limits(box):
    result = validate_boxes([box], 640, 480)
    np.testing.assert_array_equal(result, np.float32([box]))


@pytest.mark.parametrize("box, why", [
    pytest.param((10, 10, 20, 0), "zero or negative area", id="zero-height"),
    pytest.param((10, 10, MAX_BOX_PIXELS + 64, 20), r"outside 0\.01\.\.1e\+06", id="w-over-MAX"),
    pytest.param((10, 10, 20, MAX_BOX_PIXELS + 64), r"outside 0\.01\.\.1e\+06", id="h-over-MAX"),
    pytest.param((10, 10, 0.005, 20), r"outside 0\.01\.\.1e\+06", id="w-under-MIN"),
    pytest.param((10, 10, 20, 0.005), r"outside 0\.01\.\.1e\+06", id="h-under-MIN"),
    pytest.param((10, 480, 20, 20), "entirely outside the 640x480", id="y=image-height"),
])
def test_validate_boxes_rejects_boxes_past_the_limits(box, why):
    with pytest.raises(InputError, match=why):
        validate_boxes([box], 640, 480)


def test_validate_boxes_image_size_and_empty_input():
    assert validate_boxes([(0, 0, 1, 1)], 1, 1).shape == (1, 4)
    for width, height in ((0, 480), (640, 0)):
        with pytest.raises(InputError, match="^image size must be positive"):
            validate_boxes([(0, 0, 1, 1)], width, height)
    empty = validate_boxes([], 640, 480)
    assert empty.shape == (0, 4) and empty.dtype == np.float32
    with pytest.raises(InputError, match=r"\(N, 4\)"):
        validate_boxes([1.0, 2.0, 3.0, 4.0], 640, 480)


@pytest.mark.parametrize("centers, scales, match", [
    pytest.param(np.zeros(4), np.ones((2, 2)), r"^centers must have shape \(N, 2\)", id="1-d"),
    pytest.param(np.zeros((2, 3)), np.ones((2, 2)), r"^centers must have shape \(N, 2\)",
                 id="centers-3-cols"),
    pytest.param(np.zeros((2, 2)), np.ones((3, 2)), r"^scales must have shape \(2, 2\)",
                 id="scales-count"),
    pytest.param(np.zeros((2, 2)), np.ones((2, 3)), r"^scales must have shape \(2, 2\)",
                 id="scales-3-cols"),
    pytest.param(np.array([[np.nan, 0.0]]), np.ones((1, 2)), "^centers must be finite", id="nan"),
    pytest.param(np.zeros((1, 2)), np.array([[0.0, 1.0]]), "^centers must be finite", id="s=0"),
    pytest.param(np.zeros((1, 2)), np.array([[-1.0, 1.0]]), "^centers must be finite",
                 id="s<0"),
    pytest.param(np.zeros((1, 2)), np.array([[np.inf, 1.0]]), "^centers must be finite",
                 id="s=inf"),
])
def test_affine_matrices_refuse_bad_centers_and_scales(centers, scales, match):
    with pytest.raises(InputError, match=match):
        affine_matrices(centers, scales, INPUT_SIZE)


@pytest.mark.parametrize("size, match", [
    pytest.param((0, 64), "^output_size must be positive", id="w=0"),
    pytest.param((48, 0), "^output_size must be positive", id="h=0"),
    pytest.param(("a", 64), r"^output_size must be \(width, height\)", id="not-numbers"),
])
def test_output_size_must_be_positive_integers(size, match):
    with pytest.raises(InputError, match=match):
        affine_matrices(np.zeros((1, 2)), np.ones((1, 2)), size)
    with pytest.raises(InputError, match=match):
        crop_batch(np.zeros((4, 4, 3), np.uint8), np.zeros((1, 2, 3)), size)


def test_affine_matrices_accept_a_one_pixel_output_and_a_tiny_scale():
    # src_w = 0.0025 x 200 = 0.5 px: positive, so valid; the map scales by 1 / 0.5.
    matrices = affine_matrices(np.zeros((1, 2)), np.array([[0.0025, 1.0]]), (1, 1))
    np.testing.assert_allclose(matrices[0, :, :2], np.eye(2) * 2.0)


def test_heatmap_to_image_honours_pixel_std():
    # transform_preds by hand: x = cx + (x - W/2) * sw * pixel_std / W for both axes;
    # (0, 0) on a 48 x 64 heatmap, sw = 1, pixel_std = 100: (300 - 50, 200 - 200/3).
    result = heatmap_to_image(np.zeros((1, 1, 2)), np.array([[300.0, 200.0]]),
                              np.array([[1.0, 4 / 3]]), HEATMAP_SIZE, pixel_std=100.0)
    np.testing.assert_allclose(result[0, 0], (250.0, 200.0 - 200.0 / 3), rtol=1e-6)


def test_heatmap_to_image_refuses_mismatched_coords():
    with pytest.raises(InputError, match=r"^coords must have shape \(N, K, 2\)"):
        heatmap_to_image(np.zeros((1, 5, 3)), np.zeros((1, 2)), np.ones((1, 2)), HEATMAP_SIZE)
    with pytest.raises(InputError, match="^coords hold 2 people but centers/scales hold 3"):
        heatmap_to_image(np.zeros((2, 5, 2)), np.zeros((3, 2)), np.ones((3, 2)), HEATMAP_SIZE)


def test_crop_batch_pads_with_zero_by_default():
    image = np.full((50, 60, 3), 100, np.uint8)
    matrices = affine_matrices(np.array([[0.0, 0.0]]), np.array([[0.15, 0.2]]), (48, 64))
    crops = crop_batch(image, matrices, (48, 64))
    assert crops[0, 0, 0].tolist() == [0, 0, 0]


@pytest.mark.parametrize("image, match", [
    pytest.param(np.zeros((10, 10, 4), np.uint8), r"got shape \(10, 10, 4\) dtype uint8",
                 id="4-channels"),
    pytest.param(np.zeros((10, 10, 3), np.float32), r"got shape \(10, 10, 3\) dtype float32",
                 id="float"),
    pytest.param([[0, 0, 0]], "got shape None dtype list", id="list"),
])
def test_crop_batch_rejects_a_bad_image(image, match):
    with pytest.raises(InputError, match=r"^image must be \(h, w, 3\) uint8, " + match):
        crop_batch(image, np.zeros((1, 2, 3)), (48, 64))


def test_crop_batch_rejects_bad_matrices_and_out_buffers():
    image = np.zeros((50, 60, 3), np.uint8)
    with pytest.raises(InputError, match=r"^matrices must have shape \(N, 2, 3\)"):
        crop_batch(image, np.zeros((1, 3, 3)), (48, 64))
    matrices = affine_matrices(np.array([[30.0, 25.0]]), np.array([[0.3, 0.4]]), (48, 64))
    for out in (np.empty((1, 64, 48, 3), np.float32),
                np.empty((1, 64, 96, 3), np.uint8)[:, :, ::2]):
        with pytest.raises(InputError, match="out must be"):
            crop_batch(image, matrices, (48, 64), out=out)


def test_normalize_to_tensor_defaults_to_rgb():
    crops = np.random.default_rng(5).integers(0, 256, size=(1, 4, 4, 3), dtype=np.uint8)
    np.testing.assert_array_equal(normalize_to_tensor(crops, MEAN_RGB, STD_RGB),
                                  normalize_to_tensor(crops, MEAN_RGB, STD_RGB, color="RGB"))


@pytest.mark.parametrize("crops, match", [
    pytest.param(np.zeros((1, 4, 4, 4), np.uint8), r"got shape \(1, 4, 4, 4\)", id="4-ch"),
    pytest.param(np.zeros((1, 4, 4, 3), np.float32), r"got shape \(1, 4, 4, 3\)", id="float"),
    pytest.param([[[[0, 0, 0]]]], "got shape None", id="list"),
])
def test_normalize_to_tensor_rejects_bad_crops(crops, match):
    with pytest.raises(InputError, match=r"^crops must be \(N, h, w, 3\) uint8, " + match):
        normalize_to_tensor(crops, MEAN_RGB, STD_RGB)


@pytest.mark.parametrize("kwargs, match", [
    pytest.param({"color": "rgb"}, "^color must be 'RGB' or 'BGR'", id="color"),
    pytest.param({"layout": "nchw"}, "^layout must be 'NCHW' or 'NHWC'", id="layout"),
    pytest.param({"std": [1.0, 1.0]}, r"^mean and std must have shape \(3,\)", id="std-shape"),
    pytest.param({"std": [1.0, 0.0, 1.0]}, "^mean must be finite and std finite and non-zero",
                 id="std-zero"),
    pytest.param({"std": [1.0, np.nan, 1.0]}, "^mean must be finite", id="std-nan"),
    pytest.param({"mean": [0.0, np.nan, 0.0]}, "^mean must be finite", id="mean-nan"),
    pytest.param({"out": np.empty((1, 3, 4, 5), np.float32)}, "^out must be float32",
                 id="out-shape"),
])
def test_normalize_to_tensor_rejects_bad_arguments(kwargs, match):
    args = {"mean": MEAN_RGB, "std": STD_RGB, **kwargs}
    with pytest.raises(InputError, match=match):
        normalize_to_tensor(np.zeros((1, 4, 4, 3), np.uint8), **args)


EXPECTED = r"^boxes must be an \(N, 4\) float array of xywh boxes in image pixels, "


@pytest.mark.parametrize("boxes, match", [
    pytest.param("0123456789" * 5, EXPECTED + "got the string '0123456789012345678901234567890"
                 r"123456789'; parse it into numbers first$", id="string-cut-at-40"),
    pytest.param([[1, 2, 3, 4], [1, 2]], EXPECTED + "got a list of rows of different lengths$",
                 id="ragged"),
    pytest.param(np.array([[True, False, True, True]]),
                 EXPECTED + "got an array of dtype bool; pass integers or floats$", id="bool"),
])
def test_validate_boxes_says_what_boxes_must_be(boxes, match):
    with pytest.raises(InputError, match=match):
        validate_boxes(boxes, 640, 480)


@pytest.mark.parametrize("box, why", [
    pytest.param((10, 10, np.nan, 20), "has a non-finite value", id="nan"),
    pytest.param((10, 10, 20, 0), "has zero or negative area \\(w and h must be > 0\\)",
                 id="zero-area"),
])
def test_validate_boxes_message_names_the_box_and_the_rule(box, why):
    with pytest.raises(InputError, match=rf"^box 0 \(x=10, y=10, w={box[2]:g}, h={box[3]:g}\) "
                                         rf"{why}; pass xywh boxes"):
        validate_boxes([box], 640, 480)
