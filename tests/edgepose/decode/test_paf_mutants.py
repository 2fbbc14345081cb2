"""Tests that kill mutants of edgepose/decode/paf.py and paf_peaks.py the other PAF tests
let survive (issue 25 §5).

Expected values follow the official Python port (Hzzone/pytorch-openpose src/body.py):
SciPy's gaussian_filter for the smoothing, cv2.resize INTER_CUBIC ×stride, crop, cubic
resize to the image for the maps; or they are computed by hand or by brute force here.
"""

import warnings

import cv2
import numpy as np
import pytest

from edgepose.decode.paf import ImageMaps, PafDecoder, resize_maps_to_image
from edgepose.decode.paf_peaks import (
    gaussian_smooth,
    gaussian_smooth_at,
    gaussian_smooth_tile,
    strongest,
)
from edgepose.errors import DecodeError

scipy_ndimage = pytest.importorskip("scipy.ndimage")


def _port_resize(channel, stride, valid_size, image_size):
    """body.py: cv2.resize(fx=stride, fy=stride, cubic), crop the padding, cubic resize."""
    up = cv2.resize(channel, (0, 0), fx=stride, fy=stride, interpolation=cv2.INTER_CUBIC)
    up = up[:valid_size[1], :valid_size[0]]
    return cv2.resize(up, image_size, interpolation=cv2.INTER_CUBIC)


# ---------------------------------------------------------------------------
# resize_maps_to_image, ImageMaps
# ---------------------------------------------------------------------------

def test_resize_maps_to_image_does_not_validate_like_the_port():
    # The port resizes whatever the network gives; a NaN stays in its own channel.
    maps = np.random.default_rng(0).random((2, 4, 5)).astype(np.float32)
    maps[1, 2, 2] = np.nan
    out = resize_maps_to_image(maps, 2, (9, 7), (12, 10))
    np.testing.assert_array_equal(out[0], _port_resize(maps[0], 2, (9, 7), (12, 10)))
    assert np.isnan(out[1]).any()


def test_unchecked_image_maps_and_their_slices_accept_non_finite_maps():
    maps = np.random.default_rng(1).random((3, 4, 4)).astype(np.float32)
    maps[1, 0, 0] = np.inf
    lazy = ImageMaps(maps, 2, (8, 8), (8, 8), check=False)
    part = lazy[1:3]
    assert part.shape == (2, 8, 8)
    assert not np.isfinite(part[0]).all()
    np.testing.assert_array_equal(part[1], _port_resize(maps[2], 2, (8, 8), (8, 8)))


def test_image_maps_refuse_maps_that_are_not_3d():
    with pytest.raises(DecodeError, match="must be 3-D"):
        ImageMaps(np.zeros((4, 4), np.float32), 2, (8, 8), (8, 8), check=False)


def test_image_maps_of_float64_maps_are_float32_channels():
    # The port's maps are float32 network outputs; the class documents float32 channels.
    maps = np.random.default_rng(2).random((2, 4, 4))
    channel = ImageMaps(maps, 2, (7, 8), (10, 9))[1]
    assert channel.dtype == np.float32
    np.testing.assert_array_equal(
        channel, _port_resize(maps[1].astype(np.float32), 2, (7, 8), (10, 9)))


def test_image_maps_accept_large_finite_values():
    # 1e38 everywhere: finite, though a float32 sum of 64 such pixels is not.
    maps = np.full((1, 4, 4), 1e38, np.float32)
    channel = ImageMaps(maps, 2, (8, 8), (8, 8))[0]
    assert np.isfinite(channel).all()
    np.testing.assert_allclose(channel, 1e38, rtol=1e-5)


def _overflowing_maps():
    # A ±3e38 checkerboard: the cubic kernel's overshoot leaves float32's range both ways.
    maps = np.full((1, 4, 4), 3e38, np.float32)
    maps[0, 1::2, ::2] = -3e38
    maps[0, ::2, 1::2] = -3e38
    return maps


def test_image_maps_name_the_first_non_finite_pixel():
    maps = _overflowing_maps()
    expected = _port_resize(maps[0], 2, (8, 8), (8, 8))
    bad = np.argwhere(~np.isfinite(expected))
    assert len(bad) > 1
    y, x = bad[0]
    with pytest.raises(DecodeError, match=f"channel 0, y={y}, x={x}\\)"):
        ImageMaps(maps, 2, (8, 8), (8, 8))[0]


def test_image_maps_refuse_inf_minus_inf_without_warnings():
    # To 5 x 5 the checkerboard overflows to +inf and -inf with no NaN: their sum is the
    # float64 inf − inf the check looks for, which must not warn.
    maps = _overflowing_maps()
    resized = _port_resize(maps[0], 1, (4, 4), (5, 5))
    assert np.isposinf(resized).any() and np.isneginf(resized).any()
    assert not np.isnan(resized).any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DecodeError, match="NaN/inf"):
            ImageMaps(maps, 1, (4, 4), (5, 5))[0]


# ---------------------------------------------------------------------------
# PafDecoder.decode
# ---------------------------------------------------------------------------

def test_decode_returns_float32_arrays():
    decoder = PafDecoder("coco18")
    pafs = np.zeros((decoder.paf_channels, 12, 12), np.float32)
    heatmaps = np.zeros((decoder.num_keypoints + 1, 12, 12), np.float32)
    xy, scores, person_scores = decoder.decode(pafs, heatmaps, 12)
    assert xy.shape == (0, decoder.num_keypoints, 2) and scores.shape == (0, decoder.num_keypoints)
    assert xy.dtype == scores.dtype == person_scores.dtype == np.float32


# ---------------------------------------------------------------------------
# gaussian_smooth, gaussian_smooth_at: scipy.ndimage.gaussian_filter (the port's)
# ---------------------------------------------------------------------------

def _scipy(maps, sigma, truncate):
    return np.stack([scipy_ndimage.gaussian_filter(m.astype(np.float64), sigma,
                                                   mode="reflect", truncate=truncate)
                     for m in maps])


@pytest.mark.parametrize("sigma, truncate", [(1.0, 4.0), (0.8, 4.0), (3.0, 2.0), (2.0, 1.5)])
def test_gaussian_smooth_is_scipys(sigma, truncate):
    maps = np.random.default_rng(3).random((2, 19, 23)).astype(np.float32)
    expected = _scipy(maps, sigma, truncate)
    np.testing.assert_allclose(gaussian_smooth(maps, sigma, truncate), expected,
                               rtol=0, atol=1e-14)
    k, y, x = np.meshgrid(np.arange(2), np.arange(19), np.arange(23), indexing="ij")
    at = gaussian_smooth_at(maps, k.ravel(), y.ravel(), x.ravel(), sigma, truncate)
    np.testing.assert_array_equal(at, expected.ravel())


def test_gaussian_smooth_of_sigma_0_is_the_maps():
    # gaussian_filter(sigma=0) returns its input unchanged.
    maps = np.random.default_rng(4).random((2, 5, 6)).astype(np.float32)
    out = gaussian_smooth(maps, 0.0)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, maps.astype(np.float64))
    at = gaussian_smooth_at(maps, [1, 0], [2, 4], [5, 0], 0.0)
    assert at.tolist() == [float(maps[1, 2, 5]), float(maps[0, 4, 0])]


def test_gaussian_smooth_at_takes_coordinates_of_any_shape():
    maps = np.random.default_rng(5).random((2, 9, 9))
    expected = _scipy(maps, 1.5, 4.0)
    assert gaussian_smooth_at(maps, 1, 3, 4, 1.5).tolist() == [expected[1, 3, 4]]
    at = gaussian_smooth_at(maps, [[0, 1], [1, 0]], [[0, 8], [2, 5]], [[1, 1], [7, 0]], 1.5)
    assert at.tolist() == [expected[0, 0, 1], expected[1, 8, 1], expected[1, 2, 7],
                           expected[0, 5, 0]]


@pytest.mark.parametrize("sigma, truncate", [(0.8, 4.0), (1.0, 4.0), (3.0, 4.0), (2.0, 1.5)])
def test_gaussian_smooth_tile_is_scipys_bit_for_bit(sigma, truncate):
    maps = np.random.default_rng(7).random((1, 17, 23)).astype(np.float32)
    expected = _scipy(maps, sigma, truncate)[0]
    for rows, cols in ((slice(0, 17), slice(0, 23)), (slice(0, 4), slice(19, 23)),
                       (slice(6, 9), slice(2, 12))):
        tile = gaussian_smooth_tile(maps[0], rows, cols, sigma, truncate)
        np.testing.assert_array_equal(tile, expected[rows, cols])


def test_gaussian_smooth_at_takes_whole_float_coordinates_as_pixels():
    # Coordinates computed in floats (3.0, not 3) name the same pixels; numpy would
    # refuse float indices, so the function casts them.
    maps = np.random.default_rng(6).random((2, 9, 9))
    expected = _scipy(maps, 1.5, 4.0)
    at = gaussian_smooth_at(maps, np.array([1.0, 0.0]), np.array([3.0, 8.0]),
                            np.array([4.0, 0.0]), 1.5)
    assert at.tolist() == [expected[1, 3, 4], expected[0, 8, 0]]


# ---------------------------------------------------------------------------
# strongest
# ---------------------------------------------------------------------------

def test_strongest_keeps_all_when_there_are_few():
    assert strongest(np.array([0.5, 0.2]), 5).tolist() == [0, 1]
    assert strongest(np.array([0.5, 0.2]), 2).tolist() == [0, 1]
    assert strongest(np.zeros(0), 3).tolist() == []


def test_strongest_breaks_ties_toward_the_lower_index():
    scores = np.random.default_rng(0).integers(0, 3, 1000).astype(np.float64)
    expected = sorted(sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:100])
    assert strongest(scores, 100).tolist() == expected


# ---------------------------------------------------------------------------
# PafDecoder: __init__, _check, connect
# ---------------------------------------------------------------------------

def _empty_maps(decoder, height=12, width=12):
    return (np.zeros((decoder.paf_channels, height, width), np.float32),
            np.zeros((decoder.num_keypoints + 1, height, width), np.float32))


def test_decoder_refuses_a_keypoint_set_without_pafs():
    from edgepose.errors import InputError
    with pytest.raises(InputError, match="the PAF decoder needs a part-affinity-field "
                                         "keypoint set such as 'coco18'$"):
        PafDecoder("coco17")


@pytest.mark.parametrize("height", [True, "12", 0, -3.0, float("inf")])
def test_decoder_refuses_an_image_height_that_is_not_a_positive_number(height):
    decoder = PafDecoder("coco18")
    with pytest.raises(DecodeError, match="image_height must be a positive number"):
        decoder.decode(*_empty_maps(decoder), height)


def test_decoder_takes_an_image_height_below_one():
    decoder = PafDecoder("coco18")
    xy, _, _ = decoder.decode(*_empty_maps(decoder), 0.5)
    assert xy.shape == (0, 18, 2)


def test_decoder_names_both_map_sizes_when_they_differ():
    decoder = PafDecoder("coco18")
    pafs, _ = _empty_maps(decoder, 12, 10)
    _, heatmaps = _empty_maps(decoder, 11, 9)
    with pytest.raises(DecodeError, match="pafs are 12x10 but heatmaps are 11x9"):
        decoder.decode(pafs, heatmaps, 12)


def _one_limb(paf_value):
    """coco18's limb 0 (parts 1 → 2, channels 12, 13): peaks (5, 10) and (15, 10), the
    x channel paf_value along row 10 between them, y channel 0. Unsmoothed peaks (sigma 0)."""
    from edgepose.decode.paf import PafParams
    params = PafParams(sigma=0.0, paf_threshold=0.5, min_parts=0)
    decoder = PafDecoder("coco18", params)
    pafs, heatmaps = _empty_maps(decoder, 20, 24)
    heatmaps[1, 10, 5] = 0.9
    heatmaps[2, 10, 15] = 0.9
    pafs[12, 10, 5:16] = paf_value
    return decoder, pafs, heatmaps


@pytest.mark.parametrize("paf_value, people", [(0.3, 0), (0.7, 1)])
def test_image_maps_path_scores_limbs_with_the_decoders_params(paf_value, people):
    # Every sample reads paf_value along the unit vector (1, 0): with paf_threshold 0.5
    # no sample counts at 0.3 (no limb, no person) and all 10 count at 0.7; the score
    # 0.7 + min(0.5·20/10 − 1, 0) = 0.7 > 0 joins parts 1 and 2 (min_parts 0).
    decoder, pafs, heatmaps = _one_limb(paf_value)
    direct = decoder.decode(pafs, heatmaps, 20)
    lazy = decoder.decode(ImageMaps(pafs, 1, (24, 20), (24, 20)),
                          ImageMaps(heatmaps, 1, (24, 20), (24, 20)), 20)
    for xy, scores, _ in (direct, lazy):
        assert len(xy) == people
        if people:
            assert xy[0, 1].tolist() == [5, 10] and xy[0, 2].tolist() == [15, 10]
            assert scores[0, 1] == scores[0, 2] == np.float32(0.9)
