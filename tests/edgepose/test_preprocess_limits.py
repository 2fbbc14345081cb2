"""Frame checks, box scores and the float precision of the top-down arithmetic, which the
preprocess mutation run found unpinned. Expected values are the official formulas
computed here in the precision the sources use (float64 for HRNet's box and
transform arithmetic, float32 for the network input), or the message each
refusal must carry.
"""

import numpy as np
import pytest

from edgepose.errors import InputError
from edgepose.preprocess import (
    box_to_center_scale,
    check_frame,
    heatmap_to_image,
    normalize_to_tensor,
    validate_box_scores,
)


@pytest.mark.parametrize("image, shape", [
    (np.zeros((4, 4, 3), np.float32), r"\(4, 4, 3\)"),   # the right shape, not uint8
    (np.zeros((4, 4), np.uint8), r"\(4, 4\)"),            # uint8, no channels
    (np.zeros((4, 4, 4), np.uint8), r"\(4, 4, 4\)"),      # uint8, four channels
    (np.zeros((4, 3), np.float32), r"\(4, 3\)"),          # nothing right
    ([[0, 0, 0]], "None"),                                 # not an array
])
def test_a_frame_must_be_uint8_with_three_channels(image, shape):
    with pytest.raises(InputError, match=f"^expected a BGR uint8 image of shape "
                                         rf"\(h, w, 3\), got {shape}$"):
        check_frame(image)


def test_a_good_frame_passes():
    check_frame(np.zeros((4, 5, 3), np.uint8))


def test_box_scores_of_the_wrong_count_are_named():
    with pytest.raises(InputError, match=r"^box_scores must have shape \(3,\), one score per "
                                         r"box, got \(2,\); pass "):
        validate_box_scores(np.array([0.5, 0.5]), 3)
    with pytest.raises(InputError, match=r"^box_scores must be an \(N,\) float array of box "
                                         r"scores >= 0, one per box, got an array of dtype"):
        validate_box_scores(np.array(["a", "b"]), 2)


def test_normalisation_is_float32_arithmetic():
    # ImageNet's mean and std in 0-255 units: (x − mean) / std in float32, as the
    # network input is float32; float64 arithmetic rounds some pixels otherwise.
    mean, std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    crops = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=3)
    out = normalize_to_tensor(crops, mean, std, color="BGR")
    for c in range(3):
        expected = (crops[0, :, :, c].astype(np.float32) - np.float32(mean[c])) \
            / np.float32(std[c])
        np.testing.assert_array_equal(out[0, c], expected)


def test_float32_boxes_give_the_float64_centers():
    # HRNet computes x + w·0.5 on Python floats, then stores float32.
    rng = np.random.default_rng(3)
    boxes = np.concatenate([rng.uniform(0, 4000, (300, 2)), rng.uniform(1, 900, (300, 2))],
                           axis=1).astype(np.float32)
    centers, _ = box_to_center_scale(boxes, 0.75)
    wide = boxes.astype(np.float64)
    expected = np.stack([wide[:, 0] + wide[:, 2] * 0.5, wide[:, 1] + wide[:, 3] * 0.5],
                        axis=1).astype(np.float32)
    np.testing.assert_array_equal(centers, expected)


def test_float32_heatmap_coordinates_are_converted_in_float64():
    rng = np.random.default_rng(4)
    coords = rng.uniform(0, 64, (40, 17, 2)).astype(np.float32)
    centers = rng.uniform(100, 3000, (40, 2))
    scales = rng.uniform(0.5, 9.0, (40, 2))
    out = heatmap_to_image(coords, centers, scales, (48, 64))
    # transform_preds' closed form (see heatmap_to_image): cx + (x − W/2)·sw·200/W.
    factor = scales[:, 0] * 200 / 48
    wide = coords.astype(np.float64)
    expected = np.stack([
        (wide[..., 0] - 24) * factor[:, None] + centers[:, None, 0],
        (wide[..., 1] - 32) * factor[:, None] + centers[:, None, 1]], axis=2)
    np.testing.assert_allclose(out, expected.astype(np.float32), rtol=0,
                               atol=np.spacing(np.float32(4000)))
    assert out.dtype == np.float32
