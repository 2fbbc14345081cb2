"""Boundaries of the bottom-up frame preparation that the mutation run found unpinned.

resize_pad_for_bottom_up, image_to_bottom_up and bottom_up_to_image: each
refusal names what it refuses, each limit is tried on both sides, and the pixel
maps are the port's x_in = (x + 0.5)·scale − 0.5 computed in float64.
"""

import cv2
import numpy as np
import pytest

from edgepose.errors import InputError
from edgepose.preprocess import bottom_up_to_image, image_to_bottom_up, resize_pad_for_bottom_up


def _frame(height, width):
    return np.full((height, width, 3), 100, np.uint8)


@pytest.mark.parametrize("image, shape, dtype", [
    ([[1, 2, 3]], "None", "list"),
    (np.zeros((4, 4, 3), np.float32), r"\(4, 4, 3\)", "float32"),
    (np.zeros((4, 4), np.uint8), r"\(4, 4\)", "uint8"),
])
def test_a_bad_image_is_named_by_its_shape_and_dtype(image, shape, dtype):
    with pytest.raises(InputError, match=f"got shape {shape} dtype {dtype}"):
        resize_pad_for_bottom_up(image, 8, 8, 0)


@pytest.mark.parametrize("name", ["target_height", "stride", "target_width"])
@pytest.mark.parametrize("value", [0, -8, 2.5, True, "8"])
def test_sizes_must_be_positive_integers_and_the_message_names_them(name, value):
    arguments = {"target_height": 16, "stride": 8, "target_width": 16, name: value}
    with pytest.raises(InputError, match=f"^{name} must be a positive integer, got {value!r}"):
        resize_pad_for_bottom_up(_frame(16, 16), arguments["target_height"],
                                 arguments["stride"], 0, target_width=arguments["target_width"])


def test_a_size_of_one_is_allowed():
    padded, scale, padding = resize_pad_for_bottom_up(_frame(4, 4), 1, 1, 0, target_width=1)
    assert padded.shape == (1, 1, 3) and scale == 0.25 and padding == (0, 0)


@pytest.mark.parametrize("pad_value, allowed", [(0, True), (255, True), (255.0, True),
                                                (np.uint8(255), True), (-0.5, False),
                                                (255.5, False), (256, False), ("0", False)])
def test_pad_value_is_a_pixel_value_from_0_to_255(pad_value, allowed):
    frame = _frame(10, 12)
    if allowed:
        padded, _, padding = resize_pad_for_bottom_up(frame, 10, 8, pad_value)
        assert padding == (6, 4) and (padded[10:] == 255 if pad_value else padded[10:] == 0).all()
    else:
        with pytest.raises(InputError, match=r"pad_value must be a pixel value in \[0, 255\]"):
            resize_pad_for_bottom_up(frame, 10, 8, pad_value)


@pytest.mark.parametrize("height, width, allowed", [(8, 8, True), (8, 7, False), (7, 8, False)])
def test_the_frame_must_be_at_least_the_stride(height, width, allowed):
    if allowed:
        padded, scale, padding = resize_pad_for_bottom_up(_frame(height, width), 8, 8, 0)
        assert padded.shape == (8, 8, 3) and scale == 1.0 and padding == (0, 0)
    else:
        with pytest.raises(InputError, match=f"image of {height}x{width} pixels is smaller "
                                             "than the model's stride 8"):
            resize_pad_for_bottom_up(_frame(height, width), 8, 8, 0)


@pytest.mark.parametrize("height, width, target_height, allowed", [
    (100, 2, 25, False),   # width 2 · 0.25 = 0.5, which round() takes to 0 (half to even)
    (100, 1, 10, False),   # width 1 · 0.1 = 0.1: nothing is left
    (100, 4, 20, True),    # width 4 · 0.2 = 0.8 → 1 pixel
    (2, 100, 1, True),     # height 2 · 0.5 = 1 pixel
])
def test_a_frame_that_would_shrink_to_nothing_is_refused(height, width, target_height, allowed):
    frame = _frame(height, width)
    if allowed:
        padded, scale, _ = resize_pad_for_bottom_up(frame, target_height, 1, 0)
        assert padded.shape[0] == target_height and padded.shape[1] >= 1
        assert scale == target_height / height
    else:
        with pytest.raises(InputError, match="shrinks to nothing"):
            resize_pad_for_bottom_up(frame, target_height, 1, 0)


def test_the_frame_is_resized_by_the_scale_and_padded_to_the_stride():
    # 30x50 to height 17: scale 17/30, 28.33 → 28 columns; padded to 24x32 (stride 8).
    frame = np.random.default_rng(0).integers(0, 255, (30, 50, 3), dtype=np.uint8)
    padded, scale, padding = resize_pad_for_bottom_up(frame, 17, 8, 128)
    assert scale == 17 / 30 and padded.shape == (24, 32, 3) and padding == (7, 4)
    assert padded.dtype == np.uint8
    assert (padded[17:] == 128).all() and (padded[:, 28:] == 128).all()
    # The port's resize: cubic, fx = fy = scale.
    cubic = cv2.resize(frame, (0, 0), fx=17 / 30, fy=17 / 30, interpolation=cv2.INTER_CUBIC)
    np.testing.assert_array_equal(padded[:17, :28], cubic)


@pytest.mark.parametrize("size, scale", [((17, 20), 0.4), ((12, 40), 0.4), ((9, 100), 0.3)])
def test_a_fixed_input_fits_the_frame_by_its_tighter_side(size, scale):
    # 30x50 into (height, width): scale = min(height / 30, width / 50).
    frame = np.random.default_rng(1).integers(0, 255, (30, 50, 3), dtype=np.uint8)
    padded, got, padding = resize_pad_for_bottom_up(frame, size[0], 8, 0, target_width=size[1])
    assert got == pytest.approx(scale, rel=1e-12) and padded.shape == (*size, 3)
    cubic = cv2.resize(frame, (0, 0), fx=got, fy=got, interpolation=cv2.INTER_CUBIC)
    rows, cols = min(cubic.shape[0], size[0]), min(cubic.shape[1], size[1])
    assert padding == (size[0] - rows, size[1] - cols)
    np.testing.assert_array_equal(padded[:rows, :cols], cubic[:rows, :cols])


def test_a_fixed_input_that_leaves_no_row_is_refused():
    # 100x4000 into 10x10: scale 0.0025, 0.25 rows.
    with pytest.raises(InputError, match="shrinks to nothing"):
        resize_pad_for_bottom_up(_frame(100, 4000), 10, 1, 0, target_width=10)


def test_coordinates_map_as_pixel_centres_in_float64():
    # float32 inputs are widened first: the float32 results are the float64 formula's,
    # rounded once (float32 arithmetic would differ on some of these).
    coords = np.random.default_rng(1).uniform(0, 4000, (500, 2)).astype(np.float32)
    scale = 0.3719
    forward = image_to_bottom_up(coords, scale)
    wide = coords.astype(np.float64)
    assert forward.dtype == np.float32
    np.testing.assert_array_equal(forward, ((wide + 0.5) * scale - 0.5).astype(np.float32))
    back = bottom_up_to_image(forward, scale)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(
        back, ((forward.astype(np.float64) + 0.5) / scale - 0.5).astype(np.float32))
    assert image_to_bottom_up(np.array([[3, 4]]), 0.5).dtype == np.float32


@pytest.mark.parametrize("scale", [0.0, -1.0, np.inf, np.nan])
def test_the_inverse_map_refuses_a_scale_that_is_not_positive_and_finite(scale):
    with pytest.raises(InputError, match=f"^scale must be a positive finite number, got {scale!r}"):
        bottom_up_to_image(np.zeros((1, 2)), scale)
