"""Stacked Hourglass decoding against loop references written from the two sources.

The references below follow princeton-vl/pytorch_stacked_hourglass (test.py
inference/post_process, utils/group.py HeatmapParser, utils/img.py transform) and
bearpaw/pytorch-pose (pose/utils/evaluation.py get_preds/final_preds,
pose/utils/transforms.py transform) one pixel at a time, in the sources' own
conventions (bearpaw's 1-based coordinates), not from edgepose.decode.hourglass.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgepose.decode.hourglass import (
    HourglassDecoder,
    bearpaw_keypoints,
    mpii_center_scale,
    princeton_keypoints,
    princeton_top1,
    refine_bearpaw,
)
from edgepose.decode.topdown import average_flip
from edgepose.errors import DecodeError, InputError
from edgepose.keypoints import MPII16
from edgepose.preprocess import heatmap_to_image

# data/MPII/ref.py flipped_parts['mpii'] (Princeton).
PRINCETON_FLIPPED_PARTS = [5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10]


# --- references ---------------------------------------------------------------------------

def princeton_reference(maps: np.ndarray) -> tuple[list[tuple[float, float]], list[float]]:
    """One person's (K, H, W): clip at 1, 3x3 NMS, top-1, adjust. Returns [(x, y)], [val]."""
    k_count, h, w = maps.shape
    points, values = [], []
    for k in range(k_count):
        m = [[min(float(maps[k, y, x]), 1.0) for x in range(w)] for y in range(h)]
        best = None
        for y in range(h):
            for x in range(w):
                around = max(m[yy][xx] for yy in range(max(y - 1, 0), min(y + 2, h))
                             for xx in range(max(x - 1, 0), min(x + 2, w)))
                value = m[y][x] if m[y][x] == around else 0.0
                if best is None or value > best[0]:  # strict: the first of equals stays
                    best = (value, x, y)
        value, bx, by = best
        x, y = float(bx), float(by)
        if value > 0:
            x += 0.25 if m[by][min(bx + 1, w - 1)] > m[by][max(bx - 1, 0)] else -0.25
            y += 0.25 if m[min(by + 1, h - 1)][bx] > m[max(by - 1, 0)][bx] else -0.25
            x, y = x + 0.5, y + 0.5
        points.append((x, y))
        values.append(value)
    return points, values


def _sign(v: float) -> float:
    return 0.0 if v == 0 else math.copysign(1.0, v)


def bearpaw_reference(maps: np.ndarray) -> tuple[list[tuple[float, float]], list[float]]:
    """One person's (K, H, W) as get_preds + final_preds: 1-based, then back to 0-based."""
    k_count, h, w = maps.shape
    points, values = [], []
    for k in range(k_count):
        hm = maps[k]
        flat = [float(v) for v in hm.reshape(-1)]
        maxval = max(flat)
        idx = flat.index(maxval) + 1
        x1 = float((idx - 1) % w + 1)
        y1 = float(math.floor((idx - 1) / w) + 1)
        if not maxval > 0:
            x1 = y1 = 0.0
        px, py = int(math.floor(x1)), int(math.floor(y1))
        if 1 < px < w and 1 < py < h:
            x1 += _sign(float(hm[py - 1][px]) - float(hm[py - 1][px - 2])) * 0.25
            y1 += _sign(float(hm[py][px - 1]) - float(hm[py - 2][px - 1])) * 0.25
        points.append((x1 + 0.5 - 1, y1 + 0.5 - 1))
        values.append(maxval)
    return points, values


def _transform_inverse(pt: tuple[float, float], center, scale: float, res: int) -> np.ndarray:
    """utils/img.py get_transform (no rotation), inverted with np.linalg.inv, applied."""
    h = 200 * scale
    t = np.array([[res / h, 0, res * (-center[0] / h + 0.5)],
                  [0, res / h, res * (-center[1] / h + 0.5)],
                  [0, 0, 1]], dtype=np.float64)
    return np.linalg.inv(t) @ np.array([pt[0], pt[1], 1.0])


def princeton_image_reference(point, center, scale: float, heatmap_size: int,
                              integer: bool) -> tuple[float, float]:
    """post_process: ×4 into the 256 crop, then transform(..., invert=1), astype(int)."""
    crop = 4 * heatmap_size
    x, y = _transform_inverse((point[0] * 4, point[1] * 4), center, scale, crop)[:2]
    return (float(int(x)), float(int(y))) if integer else (x, y)


def bearpaw_image_reference(point, center, scale: float, heatmap_size: int,
                            integer: bool) -> tuple[float, float]:
    """transform_preds on 1-based heatmap coords: subtract 1, invert, int, add 1."""
    one_based = (point[0] + 1, point[1] + 1)
    x, y = _transform_inverse((one_based[0] - 1, one_based[1] - 1), center, scale,
                              heatmap_size)[:2]
    return (float(int(x) + 1), float(int(y) + 1)) if integer else (x, y)


def _map(h: int, w: int, fill: float = 0.0, **peaks: float) -> np.ndarray:
    """(H, W) float32 filled with `fill`, with values at named pixels 'y_x'."""
    m = np.full((h, w), fill, np.float32)
    for name, value in peaks.items():
        y, x = (int(v) for v in name[1:].split("_"))
        m[y, x] = value
    return m


# Edge cases, each one map of 6x7 (H x W), one line on why.
CASES = {
    "interior_clear": _map(6, 7, p2_3=0.9, p2_4=0.5, p3_3=0.2, p1_3=0.4),  # moves right, up
    "tie_horizontal": _map(6, 7, p2_3=0.9, p2_2=0.4, p2_4=0.4),  # Princeton −0.25, bearpaw 0
    "tie_both_axes": _map(6, 7, p3_3=0.8),  # all four neighbours 0
    "left_border": _map(6, 7, p2_0=0.9, p2_1=0.3),  # clamp: left neighbour is the peak
    "right_border": _map(6, 7, p2_6=0.9, p2_5=0.3),  # clamp: right neighbour is the peak
    "right_border_tie": _map(6, 7, p4_6=0.9, p4_5=0.9),  # plateau reaching the border
    "top_left_corner": _map(6, 7, p0_0=0.7, p0_1=0.1, p1_0=0.2),
    "bottom_right_corner": _map(6, 7, p5_6=0.7),
    "one_in_from_border": _map(6, 7, p1_1=0.9, p1_2=0.5, p2_1=0.5),  # bearpaw moves at 1
    "plateau_first_wins": _map(6, 7, p1_4=0.6, p3_2=0.6),  # row-major first
    "clipped_plateau": _map(6, 7, p1_4=1.1, p3_2=1.3),  # Princeton: both 1 → first; bearpaw 1.3
    "clipped_neighbours": _map(6, 7, p2_3=1.5, p2_4=1.2, p2_2=0.3),  # 1 vs 1 after the clip
    "all_equal_positive": np.full((6, 7), 0.5, np.float32),  # every pixel a local max
    "all_zero": np.zeros((6, 7), np.float32),  # score 0: no refinement at all
    "all_equal_negative": np.full((6, 7), -0.5, np.float32),
    "negative_single_peak": _map(6, 7, fill=-1.0, p3_2=-0.5),  # NMS zeros beat the peak
    "negative_interior": _map(6, 7, fill=-0.2, p2_3=-0.1, p2_4=-0.15),  # bearpaw: (−1, −1)
}


def _stack(names: list[str]) -> np.ndarray:
    return np.stack([CASES[name] for name in names])[None]


# --- refinements against the references ---------------------------------------------------

@pytest.mark.parametrize("name", sorted(CASES))
def test_princeton_matches_the_loop_reference(name: str) -> None:
    maps = _stack([name])
    coords, scores = princeton_keypoints(maps)
    points, values = princeton_reference(maps[0])
    np.testing.assert_array_equal(coords[0], np.array(points))
    np.testing.assert_array_equal(scores[0], np.array(values, np.float32))


@pytest.mark.parametrize("name", sorted(CASES))
def test_bearpaw_matches_the_loop_reference(name: str) -> None:
    maps = _stack([name])
    coords, scores = bearpaw_keypoints(maps)
    points, values = bearpaw_reference(maps[0])
    np.testing.assert_array_equal(coords[0], np.array(points))
    np.testing.assert_array_equal(scores[0], np.array(values, np.float32))


@pytest.mark.parametrize(
    ("name", "princeton", "bearpaw"),
    [
        # hand-worked from the sources' descriptions, independent of the loop references
        ("tie_horizontal", (3 - 0.25 + 0.5, 2 - 0.25 + 0.5), (3 + 0.5, 2 + 0.5)),
        ("left_border", (0 - 0.25 + 0.5, 2 - 0.25 + 0.5), (0 + 0.5, 2 + 0.5)),
        ("right_border", (6 + 0.25 + 0.5, 2 - 0.25 + 0.5), (6 + 0.5, 2 + 0.5)),
        ("all_equal_positive", (0.25, 0.25), (0.5, 0.5)),
        ("all_zero", (0.0, 0.0), (-0.5, -0.5)),
        ("clipped_plateau", (4 - 0.25 + 0.5, 1 - 0.25 + 0.5),
         (2 + 0.5, 3 + 0.5)),
    ],
)
def test_hand_worked_cases(name: str, princeton: tuple, bearpaw: tuple) -> None:
    maps = _stack([name])
    np.testing.assert_allclose(princeton_keypoints(maps)[0][0, 0], princeton)
    np.testing.assert_allclose(bearpaw_keypoints(maps)[0][0, 0], bearpaw)


@pytest.mark.parametrize("seed", range(4))
def test_random_batches_match_the_references(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Coarse values make ties and plateaus common; some maps are all <= 0 or above 1.
    maps = (rng.integers(-3, 6, (3, 5, 6, 8)) / 4).astype(np.float32)
    p_coords, p_scores = princeton_keypoints(maps)
    b_coords, b_scores = bearpaw_keypoints(maps)
    for n in range(3):
        points, values = princeton_reference(maps[n])
        np.testing.assert_array_equal(p_coords[n], np.array(points))
        np.testing.assert_array_equal(p_scores[n], np.array(values, np.float32))
        points, values = bearpaw_reference(maps[n])
        np.testing.assert_array_equal(b_coords[n], np.array(points))
        np.testing.assert_array_equal(b_scores[n], np.array(values, np.float32))


def test_princeton_clip_can_be_switched_off() -> None:
    maps = _stack(["clipped_plateau"])
    coords, scores = princeton_keypoints(maps, clip=None)
    assert tuple(coords[0, 0]) == (2 - 0.25 + 0.5, 3 - 0.25 + 0.5)  # the 1.3 wins unclipped
    assert scores[0, 0] == np.float32(1.3)


# Maps too small for bearpaw's interior (fewer than 3 pixels along an axis) or with a
# peak on the last row/column, hand-worked: (map, princeton (x, y), bearpaw (x, y)).
NARROW = {
    # 3x3, peak in the only interior pixel: right 0.5 > left 0.2, below 0.1 < above 0.3.
    "3x3_centre": (_map(3, 3, p1_1=0.9, p1_2=0.5, p1_0=0.2, p2_1=0.1, p0_1=0.3),
                   (1 + 0.25 + 0.5, 1 - 0.25 + 0.5), (1 + 0.25 + 0.5, 1 - 0.25 + 0.5)),
    # 3x3, bottom-right corner: Princeton's clamped neighbour is the peak itself (> 0.3,
    # > 0.4), bearpaw's border pixel does not move.
    "3x3_corner": (_map(3, 3, p2_2=0.9, p2_1=0.3, p1_2=0.4),
                   (2 + 0.25 + 0.5, 2 + 0.25 + 0.5), (2 + 0.5, 2 + 0.5)),
    # 2 wide, 5 high: x = 1 is the last column, so bearpaw moves along neither axis.
    "w2_h5": (_map(5, 2, p2_1=0.9, p1_1=0.3, p3_1=0.6),
              (1 + 0.25 + 0.5, 2 + 0.25 + 0.5), (1 + 0.5, 2 + 0.5)),
    # 5 wide, 2 high: y = 1 is the last row.
    "w5_h2": (_map(2, 5, p1_2=0.9, p1_1=0.2, p1_3=0.4),
              (2 + 0.25 + 0.5, 1 + 0.25 + 0.5), (2 + 0.5, 1 + 0.5)),
}


@pytest.mark.parametrize("name", sorted(NARROW))
def test_narrow_maps_by_hand(name: str) -> None:
    hm, princeton, bearpaw = NARROW[name]
    maps = hm[None, None]
    for decode, expected in ((princeton_keypoints, princeton), (bearpaw_keypoints, bearpaw)):
        coords, _ = decode(maps)
        assert coords.dtype == np.float64
        np.testing.assert_array_equal(coords[0, 0], expected)


def test_refine_bearpaw_returns_float64_from_float32_locations() -> None:
    # float32 in, float64 out: the image transform that follows works in float64.
    hm = NARROW["3x3_centre"][0]
    coords = refine_bearpaw(np.array([[[1.0, 1.0]]], np.float32), hm[None, None])
    assert coords.dtype == np.float64
    np.testing.assert_array_equal(coords[0, 0], (1.75, 1.25))


def test_top1_with_a_positive_maximum_is_the_argmax() -> None:
    rng = np.random.default_rng(7)
    maps = rng.random((2, 3, 9, 5)).astype(np.float32)
    coords, scores = princeton_top1(maps)
    for n in range(2):
        for k in range(3):
            y, x = np.unravel_index(np.argmax(maps[n, k]), maps[n, k].shape)
            assert tuple(coords[n, k]) == (x, y) and scores[n, k] == maps[n, k, y, x]


# --- decoder: image coordinates -------------------------------------------------------------

# Fractional values keep image coordinates off whole numbers, where the sources'
# np.linalg.inv and a closed-form inverse could round to different sides before int().
CENTERS = np.array([[300.1234, 220.377], [40.613, 25.2718], [1000.5371, 700.2931]])
SCALES = np.array([2.3137, 1.7291, 4.0519])  # MPII scales after the 1.25 padding


@pytest.mark.parametrize("refine", ["princeton", "bearpaw"])
@pytest.mark.parametrize("integer", [False, True])
def test_decoder_matches_the_sources_image_transform(refine: str, integer: bool) -> None:
    rng = np.random.default_rng(3)
    maps = rng.random((3, 16, 16, 16)).astype(np.float32)
    maps[1, 4] = np.float32(0.5)  # a flat map: near the crop's top-left corner
    maps[2, 6] = np.float32(-0.1)  # no detection: bearpaw's (−1, −1)
    xy, scores = HourglassDecoder(refine, integer=integer).decode(maps, CENTERS, SCALES)
    reference = princeton_reference if refine == "princeton" else bearpaw_reference
    to_image = princeton_image_reference if refine == "princeton" else bearpaw_image_reference
    assert xy.shape == (3, 16, 2) and xy.dtype == np.float32 and scores.shape == (3, 16)
    for n in range(3):
        points, values = reference(maps[n])
        expected = np.array([to_image(p, CENTERS[n], SCALES[n], 16, integer) for p in points])
        if integer:
            np.testing.assert_array_equal(xy[n], expected.astype(np.float32))
        else:
            np.testing.assert_allclose(xy[n], expected, rtol=1e-6, atol=1e-4)
        np.testing.assert_array_equal(scores[n], np.array(values, np.float32))


@pytest.mark.parametrize(
    ("refine", "expected"),
    [
        # 200·3.4/32 = 21.25 image pixels per heatmap pixel; x_img = c + (q − 16)·21.25.
        # Princeton: a lone peak at (0, 0) ties both ways, q = 0.25: 40 − 334.6875 =
        # −294.6875 and 25 − 334.6875 = −309.6875, truncated toward zero (not floored).
        ("princeton", (-294.0, -309.0)),
        # bearpaw: the border pixel does not move, q = 0.5: −289.375 and −304.375,
        # truncated, then + 1.
        ("bearpaw", (-289.0 + 1, -304.0 + 1)),
    ],
)
def test_integer_mode_truncates_toward_zero(refine: str, expected: tuple) -> None:
    maps = np.zeros((1, 1, 32, 32), np.float32)
    maps[0, 0, 0, 0] = 1.0
    xy, _ = HourglassDecoder(refine, integer=True).decode(maps, [[40.0, 25.0]], [3.4])
    assert tuple(xy[0, 0]) == expected


def test_float_mode_is_heatmap_to_image() -> None:
    rng = np.random.default_rng(4)
    maps = rng.random((3, 16, 8, 8)).astype(np.float32)
    scales2 = np.stack([SCALES, SCALES], axis=1)
    for refine, decode in (("princeton", princeton_keypoints), ("bearpaw", bearpaw_keypoints)):
        xy, _ = HourglassDecoder(refine).decode(maps, CENTERS, scales2)
        coords, _ = decode(maps)
        np.testing.assert_allclose(xy, heatmap_to_image(coords, CENTERS, scales2, (8, 8)),
                                   rtol=1e-6, atol=1e-3)


def _gaussians(points: np.ndarray, h: int, w: int, sigma: float = 1.0) -> np.ndarray:
    """(N, K, H, W): pixel (i, j) covers [j, j+1) x [i, i+1), so its value is taken at
    its centre (j + 0.5, i + 0.5), the convention the sources' +0.5 decodes."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    dx = xs - points[..., 0, None, None]
    dy = ys - points[..., 1, None, None]
    return np.exp(-(dx ** 2 + dy ** 2) / (2 * sigma ** 2)).astype(np.float32)


@pytest.mark.parametrize("refine", ["princeton", "bearpaw"])
def test_round_trip_on_gaussians(refine: str) -> None:
    rng = np.random.default_rng(5)
    n, k, size = 4, 16, 64
    centers = rng.uniform(100, 900, (n, 2))
    scales = rng.uniform(1.0, 5.0, n)
    image_xy = centers[:, None] + rng.uniform(-0.4, 0.4, (n, k, 2)) * (200 * scales)[:, None, None]
    factor = size / (200 * scales)  # heatmap pixels per image pixel
    hm_xy = (image_xy - centers[:, None]) * factor[:, None, None] + size / 2
    xy, scores = HourglassDecoder(refine).decode(_gaussians(hm_xy, size, size), centers, scales)
    error = np.abs(xy - image_xy) * factor[:, None, None]  # in heatmap pixels
    # The peak pixel holds the keypoint to within half a pixel, and the quarter step
    # toward the larger neighbour leaves at most a quarter pixel.
    assert error.max() <= 0.25 + 1e-3
    assert scores.min() > 0.6  # a pixel centre lies within √0.5 px of the keypoint
    xy_int, _ = HourglassDecoder(refine, integer=True).decode(
        _gaussians(hm_xy, size, size), centers, scales)
    np.testing.assert_array_equal(xy_int, np.trunc(xy.astype(np.float64)).astype(np.float32)
                                  + (1 if refine == "bearpaw" else 0))


def test_flip_average_is_princetons() -> None:
    rng = np.random.default_rng(6)
    plain = rng.random((2, 16, 8, 8)).astype(np.float32)
    mirrored = rng.random((2, 16, 8, 8)).astype(np.float32)
    # test.py: (det[0, -1] + det[1, -1, :, :, ::-1][flipped_parts]) / 2, per person
    expected = (plain + mirrored[:, PRINCETON_FLIPPED_PARTS][..., ::-1]) / 2
    got = average_flip(plain, mirrored, MPII16.flip_permutation(), shift=False)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


# --- MPII box rule --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("center", "scale", "expected_center", "expected_scale"),
    [
        ((320.0, 240.0), 2.0, (320.0, 270.0), 2.5),  # y + 15·2, 2·1.25
        ((10.5, -4.0), 0.8, (10.5, 8.0), 1.0),  # y + 12, 0.8·1.25
        ((594.0, 257.0), 3.021046, (594.0, 257.0 + 45.31569), 3.7763075),  # a real MPII size
    ],
)
def test_mpii_center_scale_by_hand(center, scale, expected_center, expected_scale) -> None:
    centers, scales = mpii_center_scale(np.array([center]), np.array([scale]))
    np.testing.assert_allclose(centers[0], expected_center, rtol=1e-9)
    np.testing.assert_allclose(scales[0], (expected_scale, expected_scale), rtol=1e-9)


def test_mpii_center_scale_is_vectorised_and_leaves_its_input() -> None:
    center = np.array([[0.0, 0.0], [100.0, 50.0]])
    centers, scales = mpii_center_scale(center, np.array([1.0, 4.0]))
    np.testing.assert_array_equal(centers, [[0.0, 15.0], [100.0, 110.0]])
    np.testing.assert_array_equal(scales, [[1.25, 1.25], [5.0, 5.0]])
    np.testing.assert_array_equal(center, [[0.0, 0.0], [100.0, 50.0]])


def test_mpii_center_scale_is_float64_whatever_the_input_dtype() -> None:
    # Whole-pixel objpos arrive as integers and scales may be float32.
    scale = np.float32(0.8)
    centers, scales = mpii_center_scale(np.array([[320, 240]]), np.array([scale]))
    assert centers.dtype == np.float64 and scales.dtype == np.float64
    np.testing.assert_array_equal(centers[0], (320.0, 240.0 + 15.0 * float(scale)))
    np.testing.assert_array_equal(scales[0], (1.25 * float(scale),) * 2)


# --- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [
        (lambda: HourglassDecoder("shift"), InputError, "allowed: princeton, bearpaw"),
        (lambda: HourglassDecoder(integer=1), InputError, "True or False"),
        (lambda: HourglassDecoder().decode(np.zeros((1, 16, 8), np.float32), [[0, 0]], [1.0]),
         DecodeError, "4-D"),  # a missing axis
        (lambda: HourglassDecoder().decode(np.zeros((2, 16, 8, 8), np.float32), [[0, 0]],
                                           [1.0]), DecodeError, "2 people"),  # one center
        (lambda: HourglassDecoder().decode(np.zeros((1, 16, 8, 8), np.float32), [[0, 0]],
                                           [[1.0, 1.0, 1.0]]), InputError, "(N, 2)"),
        (lambda: mpii_center_scale(np.zeros((2, 2)), np.ones(3)), InputError, "one MPII scale"),
        (lambda: mpii_center_scale(np.zeros((2,)), np.ones(1)), InputError, "(N, 2)"),
        (lambda: mpii_center_scale(np.zeros((1, 2)), np.zeros(1)), InputError, "positive"),
    ],
)
def test_bad_input_is_refused(call, error: type, fragment: str) -> None:
    with pytest.raises(error) as info:
        call()
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        # Three centers, so the count in the message is the number of people, not the 2
        # of (x, y).
        (lambda: mpii_center_scale(np.zeros((3, 2)), np.ones(2)), InputError,
         r"^scale must have shape \(3,\), one MPII scale per center"),
        (lambda: mpii_center_scale(np.zeros((1, 2)), np.zeros(1)), InputError,
         r"^centers must be finite and scales positive and finite$"),
        (lambda: HourglassDecoder().decode(np.zeros((1, 16, 8, 8), np.float32), [[0, 0]],
                                           [[1.0, 1.0, 1.0]]), InputError,
         r"^scales must have shape \(N, 2\)"),
        (lambda: HourglassDecoder().decode(np.zeros((2, 16, 8, 8), np.float32),
                                           [[0, 0], [0, 0]], [1.0]), DecodeError,
         r"^heatmaps hold 2 people but scales hold 1;"),
    ],
)
def test_refusals_name_the_argument_at_fault(call, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        call()


def test_nan_heatmaps_are_refused() -> None:
    maps = np.zeros((1, 16, 8, 8), np.float32)
    maps[0, 2, 3, 4] = np.nan
    with pytest.raises(DecodeError, match="NaN"):
        HourglassDecoder("bearpaw").decode(maps, [[0.0, 0.0]], [1.0])
