"""Tests for edgepose.decode.topdown.

References here are scalar loops written from the formulas of HRNet's
get_final_preds / transform_preds and mmpose's refine_keypoints_dark, not calls
into the code under test.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from edgepose.decode.dark import check_dark_kernel, dark_kernel_for_sigma
from edgepose.decode.topdown import (
    TopDownDecoder,
    average_flip,
    flip_back,
    get_max_preds,
    refine_dark,
    refine_shift,
)
from edgepose.errors import DecodeError, InputError
from edgepose.keypoints import COCO17
from edgepose.preprocess import box_to_center_scale

N, K, H, W = 3, 17, 64, 48


# ---------------------------------------------------------------- references


def ref_argmax(hm):
    """First maximum in row-major order, by a plain loop."""
    best, best_i = -math.inf, 0
    for i, v in enumerate(hm.ravel().tolist()):
        if v > best:
            best, best_i = v, i
    width = hm.shape[1]
    return best_i % width, best_i // width, best


def ref_shift(hm, x, y):
    height, width = hm.shape
    px, py = math.floor(x + 0.5), math.floor(y + 0.5)
    if 1 < px < width - 1 and 1 < py < height - 1:
        dx = float(hm[py, px + 1]) - float(hm[py, px - 1])
        dy = float(hm[py + 1, px]) - float(hm[py - 1, px])
        sign = lambda v: (v > 0) - (v < 0)  # noqa: E731
        x, y = x + 0.25 * sign(dx), y + 0.25 * sign(dy)
    return x, y


def ref_dark(hm, x, y, kernel=11):
    """mmpose refine_keypoints_dark for one map, from its formulas."""
    height, width = hm.shape
    border = (kernel - 1) // 2
    padded = np.zeros((height + 2 * border, width + 2 * border), np.float32)
    padded[border:border + height, border:border + width] = hm
    blurred = cv2.GaussianBlur(padded, (kernel, kernel), 0)[border:-border, border:-border]
    blurred = blurred * (np.float32(hm.max()) / blurred.max())
    log = np.log(np.maximum(blurred, 1e-10)).astype(np.float64)
    xi, yi = int(x), int(y)
    if 1 < xi < width - 2 and 1 < yi < height - 2:
        L = lambda dy, dx: float(log[yi + dy, xi + dx])  # noqa: E731
        dx = 0.5 * (L(0, 1) - L(0, -1))
        dy = 0.5 * (L(1, 0) - L(-1, 0))
        dxx = 0.25 * (L(0, 2) - 2 * L(0, 0) + L(0, -2))
        dyy = 0.25 * (L(2, 0) - 2 * L(0, 0) + L(-2, 0))
        dxy = 0.25 * (L(1, 1) - L(-1, 1) - L(1, -1) + L(-1, -1))
        if dxx * dyy - dxy**2 != 0:
            offset = -np.linalg.inv([[dxx, dxy], [dxy, dyy]]) @ np.array([dx, dy])
            x, y = x + offset[0], y + offset[1]
    return x, y


def ref_to_image(x, y, center, scale, width, height):
    """transform_preds: the official inverse uses scale[0] and W for both axes."""
    factor = scale[0] * 200.0 / width
    return center[0] + (x - width * 0.5) * factor, center[1] + (y - height * 0.5) * factor


def ref_decode(heatmaps, centers, scales, refine):
    n_people, n_joints, height, width = heatmaps.shape
    xy = np.zeros((n_people, n_joints, 2))
    scores = np.zeros((n_people, n_joints))
    for n in range(n_people):
        for k in range(n_joints):
            hm = heatmaps[n, k]
            x, y, best = ref_argmax(hm)
            if not best > 0:
                x, y = 0, 0
            if refine == "shift":
                x, y = ref_shift(hm, x, y)
            elif refine == "dark":
                x, y = ref_dark(hm, x, y)
            xy[n, k] = ref_to_image(x, y, centers[n], scales[n], width, height)
            scores[n, k] = best
    return xy, scores


def gaussian(mx, my, height=H, width=W, sigma=2.0):
    yy, xx = np.mgrid[0:height, 0:width]
    return np.exp(-((xx - mx) ** 2 + (yy - my) ** 2) / (2 * sigma**2)).astype(np.float32)


@pytest.fixture
def random_meta():
    rng = np.random.default_rng(123)
    centers = rng.uniform(0, 1000, size=(N, 2)).astype(np.float32)
    # sh/sw deliberately off H/W, so a decoder using scale[1] would be caught.
    scales = rng.uniform(0.3, 3.0, size=(N, 2)).astype(np.float32)
    return centers, scales


# ------------------------------------------------------ against the reference


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("refine", ["none", "shift"])
def test_decode_matches_scalar_reference_on_random_heatmaps(seed, refine, random_meta):
    rng = np.random.default_rng(seed)
    heatmaps = rng.normal(0.0, 1.0, size=(N, K, H, W)).astype(np.float32)
    heatmaps[0, 5] -= 10.0  # an all-negative map: coords 0, score its maximum
    centers, scales = random_meta
    xy, scores = TopDownDecoder(refine).decode(heatmaps, centers, scales)
    ref_xy, ref_scores = ref_decode(heatmaps, centers, scales, refine)
    assert xy.dtype == np.float32 and scores.dtype == np.float32
    assert xy.shape == (N, K, 2) and scores.shape == (N, K)
    np.testing.assert_allclose(xy, ref_xy, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(scores, ref_scores.astype(np.float32))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dark_matches_scalar_reference_on_noisy_blobs(seed, random_meta):
    rng = np.random.default_rng(seed)
    heatmaps = np.empty((N, K, H, W), np.float32)
    for n in range(N):
        for k in range(K):
            # Anywhere, borders included, so both branches of the rule are hit.
            mx, my = rng.uniform(-1, W), rng.uniform(-1, H)
            heatmaps[n, k] = gaussian(mx, my) + rng.uniform(0, 0.05, size=(H, W))
    centers, scales = random_meta
    xy, scores = TopDownDecoder("dark").decode(heatmaps, centers, scales)
    ref_xy, ref_scores = ref_decode(heatmaps, centers, scales, "dark")
    np.testing.assert_allclose(xy, ref_xy, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(scores, ref_scores.astype(np.float32))


# ------------------------------------------------------------------ edge cases

EH, EW = 10, 8  # small maps so the border cases read plainly


def peak_map(x, y, left=0.3, right=0.6, up=0.2, down=0.5):
    """A peak of 1 at (x, y) with the given in-bounds neighbours."""
    hm = np.zeros((EH, EW), np.float32)
    for (dx, dy), v in (((-1, 0), left), ((1, 0), right), ((0, -1), up), ((0, 1), down)):
        if 0 <= x + dx < EW and 0 <= y + dy < EH:
            hm[y + dy, x + dx] = v
    hm[y, x] = 1.0
    return hm


def two_peaks():
    hm = np.zeros((EH, EW), np.float32)
    hm[3, 6] = hm[7, 2] = 1.0
    return hm


SHIFT_CASES = [
    pytest.param(peak_map(1, 5), (1, 5), 1.0, id="x=1-not-refined-(1<px-fails,-y-neither)"),
    pytest.param(peak_map(EW - 2, 5), (EW - 1.75, 5.25), 1.0, id="x=W-2-refined-(px<W-1)"),
    pytest.param(peak_map(4, 1), (4, 1), 1.0, id="y=1-not-refined"),
    pytest.param(peak_map(4, EH - 2), (4.25, EH - 1.75), 1.0, id="y=H-2-refined"),
    pytest.param(peak_map(0, 5), (0, 5), 1.0, id="x=0-on-border"),
    pytest.param(peak_map(EW - 1, 5), (EW - 1, 5), 1.0, id="x=W-1-on-border"),
    # py < H−1 is strict: a peak on the last row stays put on both axes.
    pytest.param(peak_map(4, EH - 1), (4, EH - 1), 1.0, id="y=H-1-on-border-(py<H-1-fails)"),
    pytest.param(peak_map(2, 2), (2.25, 2.25), 1.0, id="x=y=2-first-refined-pixel"),
    pytest.param(peak_map(3, 4, left=0.7, up=0.9), (2.75, 3.75), 1.0, id="shift-negative"),
    pytest.param(peak_map(4, 5, left=0.5, right=0.5), (4, 5.25), 1.0,
                 id="tie-between-x-neighbours-no-x-shift"),
    pytest.param(two_peaks(), (6, 3), 1.0, id="tie-between-maxima-first-row-major-wins"),
    pytest.param(np.linspace(-5, -1, EH * EW, dtype=np.float32).reshape(EH, EW), (0, 0), -1.0,
                 id="all-negative-coords-0-score-max"),
    pytest.param(np.zeros((EH, EW), np.float32), (0, 0), 0.0, id="all-zero-coords-0"),
    pytest.param(np.where(np.arange(EH * EW).reshape(EH, EW) == 35, 0, -1).astype(np.float32),
                 (0, 0), 0.0, id="max-exactly-0-off-origin-still-coords-0-(mask-is-max>0)"),
    # Any positive maximum keeps its argmax (3, 4); its -1 neighbours tie, so no shift.
    pytest.param(np.where(np.arange(EH * EW).reshape(EH, EW) == 35, 1e-30, -1)
                 .astype(np.float32), (3, 4), np.float32(1e-30),
                 id="max-just-above-0-keeps-its-argmax"),
]


@pytest.mark.parametrize("hm, expected_xy, expected_score", SHIFT_CASES)
def test_shift_edge_cases(hm, expected_xy, expected_score):
    heatmaps = hm[None, None]
    coords, scores = get_max_preds(heatmaps)
    refine_shift(coords, heatmaps)
    np.testing.assert_array_equal(coords[0, 0], np.float32(expected_xy))
    assert scores[0, 0] == np.float32(expected_score)
    # The scalar reference agrees on every table case.
    x, y, best = ref_argmax(hm)
    x, y = (x, y) if best > 0 else (0, 0)
    assert ref_shift(hm, x, y) == pytest.approx(expected_xy)


DARK_CASES = [
    pytest.param(2.3, 30.4, True, id="x=2-refined-(1<x)"),
    pytest.param(1.3, 30.4, False, id="x=1-not-refined"),
    pytest.param(W - 3 + 0.3, 30.4, True, id="x=W-3-refined-(x<W-2)"),
    pytest.param(W - 2 + 0.3, 30.4, False, id="x=W-2-not-refined-(needs-x+2)"),
    pytest.param(20.3, 2.3, True, id="y=2-refined"),
    pytest.param(20.3, 1.3, False, id="y=1-not-refined"),
    pytest.param(20.3, H - 3 + 0.3, True, id="y=H-3-refined"),
    pytest.param(20.3, H - 2 + 0.3, False, id="y=H-2-not-refined"),
]


@pytest.mark.parametrize("mx, my, refined", DARK_CASES)
def test_dark_border_rule(mx, my, refined):
    heatmaps = gaussian(mx, my)[None, None]
    coords, _ = get_max_preds(heatmaps)
    start = coords.copy()
    refine_dark(coords, heatmaps)
    if refined:
        # The zero padding of the blur biases the axis at the border, so only
        # the interior axis (0.3 or 0.4 px off before) is checked for accuracy.
        interior = 1 if mx != 20.3 else 0
        assert abs(coords[0, 0, interior] - (mx, my)[interior]) < 0.01
    else:
        np.testing.assert_array_equal(coords, start)


def test_dark_rescales_the_blurred_max_before_the_clamp():
    # Blurring halves a sigma-2 peak; without mmpose's rescale to the original
    # max this faint map would fall under the 1e-10 clamp and not move at all.
    heatmaps = (1.8e-10 * gaussian(20.3, 30.4))[None, None].astype(np.float32)
    coords, _ = get_max_preds(heatmaps)
    refine_dark(coords, heatmaps)
    assert np.all(np.abs(coords[0, 0] - (20.3, 30.4)) <= 0.01)


def test_dark_skips_a_singular_hessian():
    # Vertical stripes: the blurred log is constant along y away from the
    # padding, so dyy = dxy = 0 exactly and mmpose takes no step.
    heatmaps = np.repeat(gaussian(20.3, 0.0, height=1), H, axis=0)[None, None]
    coords = np.array([[[20.0, 30.0]]], np.float32)
    refine_dark(coords, heatmaps)
    np.testing.assert_array_equal(coords, [[[20.0, 30.0]]])


def test_dark_truncates_sub_pixel_input_like_mmpose():
    # mmpose casts coords with astype(int): (20.7, 30.6) is evaluated at (20, 30).
    heatmaps = gaussian(20.3, 30.4)[None, None]
    coords = np.array([[[20.7, 30.6]]], np.float32)
    refine_dark(coords, heatmaps)
    np.testing.assert_allclose(coords[0, 0], ref_dark(heatmaps[0, 0], 20.7, 30.6), atol=1e-4)
    np.testing.assert_allclose(coords[0, 0], (21.0, 31.0), atol=0.01)


def test_dark_leaves_flat_and_non_positive_maps_alone():
    heatmaps = np.stack([np.zeros((H, W)), np.full((H, W), -2.0)])[None].astype(np.float32)
    coords, _ = get_max_preds(heatmaps)
    refine_dark(coords, heatmaps)
    np.testing.assert_array_equal(coords, 0)


# ------------------------------------------------------------------ round trip

POINTS = [(20.3, 30.7), (10.9, 12.1), (35.45, 50.55), (24.0, 32.0), (7.2, 55.8)]


@pytest.mark.parametrize("point", POINTS)
def test_round_trip_shift(point):
    coords, _ = get_max_preds(gaussian(*point)[None, None])
    refine_shift(coords, gaussian(*point)[None, None])
    # The argmax is the nearest pixel (|d| <= 0.5 per axis) and the step is a
    # quarter pixel toward the true side, so at most 0.25 remains.
    assert np.all(np.abs(coords[0, 0] - point) <= 0.25 + 1e-5)


@pytest.mark.parametrize("point", POINTS)
def test_round_trip_dark(point):
    heatmaps = gaussian(*point)[None, None]
    coords, _ = get_max_preds(heatmaps)
    refine_dark(coords, heatmaps, kernel=11)
    # The log of a Gaussian is quadratic, so one Newton step is exact up to the
    # discrete blur kernel's departure from a Gaussian (measured ~3e-4 px).
    assert np.all(np.abs(coords[0, 0] - point) <= 0.01)


def test_round_trip_dark_sigma3_kernel17():
    point = (20.3, 30.7)
    heatmaps = gaussian(*point, sigma=3.0)[None, None]
    coords, _ = get_max_preds(heatmaps)
    refine_dark(coords, heatmaps, kernel=17)
    assert np.all(np.abs(coords[0, 0] - point) <= 0.01)  # measured ~3e-3 px


def blurred_impulse_sigma(size):
    """How far cv2.GaussianBlur with `size` and sigma 0 spreads a single bright pixel."""
    impulse = np.zeros((1, 61), np.float32)
    impulse[0, 30] = 1
    row = cv2.GaussianBlur(impulse, (size, 1), 0).ravel().astype(np.float64)
    offsets = np.arange(61) - 30
    return math.sqrt((row * offsets ** 2).sum() / row.sum())


@pytest.mark.parametrize("sigma, size", [(1, 5), (2, 11), (3, 17)])
def test_dark_kernel_for_sigma_gives_mmposes_dark_sizes(sigma, size):
    # 11 and 17: mmpose's DARK configs at 256x192 and 384x288.
    assert dark_kernel_for_sigma(sigma) == size


@pytest.mark.parametrize("sigma", np.arange(0.3, 5.0, 0.1).round(2).tolist())
def test_dark_kernel_for_sigma_is_the_odd_blur_nearest_the_training_sigma(sigma):
    sizes = range(3, 51, 2)
    nearest = min(sizes, key=lambda size: abs(blurred_impulse_sigma(size) - sigma))
    assert dark_kernel_for_sigma(sigma) == nearest


@pytest.mark.parametrize("sigma", [0, -1.0, float("nan"), "2", True])
def test_dark_kernel_for_sigma_refuses_a_non_positive_or_non_number(sigma):
    with pytest.raises(InputError, match="positive number"):
        dark_kernel_for_sigma(sigma)


@pytest.mark.parametrize("point", [(10.3, 15.7), (12.9, 8.1), (7.45, 20.55)])
def test_dark_blur_matched_to_one_pixel_maps_resists_a_neighbouring_peak(point):
    # 1-pixel targets at 32x24 (the demo model's): another joint 3 px away, as in
    # crowded crops. A blur as wide as the targets barely merges the two peaks; the
    # 2-pixel blur (size 11) drags the estimate toward the neighbour (measured 0.28
    # against 0.77 px).
    def errors(kernel):
        heatmaps = (gaussian(*point, 32, 24, 1.0)
                    + 0.6 * gaussian(point[0] + 3, point[1] + 1, 32, 24, 1.0))[None, None]
        coords, _ = get_max_preds(heatmaps)
        refine_dark(coords, heatmaps, kernel)
        return np.abs(coords[0, 0] - point).max()

    matched, wide = errors(dark_kernel_for_sigma(1.0)), errors(11)
    assert matched < 0.5 * wide
    alone = gaussian(*point, 32, 24, 1.0)[None, None]
    coords, _ = get_max_preds(alone)
    refine_dark(coords, alone, dark_kernel_for_sigma(1.0))
    assert np.all(np.abs(coords[0, 0] - point) <= 0.01)  # measured ≤ 0.008 px


@pytest.mark.parametrize("refine, bound_heatmap_px", [("shift", 0.25 + 1e-4), ("dark", 0.01)])
def test_decoder_end_to_end_recovers_an_image_point(refine, bound_heatmap_px):
    points = np.array([[523.4, 311.8], [101.7, 88.2]])
    boxes = np.array([[450.0, 200.0, 150.0, 260.0], [60.0, 20.0, 90.0, 130.0]])
    centers, scales = box_to_center_scale(boxes, 192 / 256)
    heatmaps = np.zeros((2, K, H, W), np.float32)
    for n in range(2):
        # Image -> heatmap by get_affine_transform's forward map (scale[0] only).
        factor = W / (float(scales[n, 0]) * 200.0)
        hx = W / 2 + (points[n, 0] - centers[n, 0]) * factor
        hy = H / 2 + (points[n, 1] - centers[n, 1]) * factor
        heatmaps[n, 3] = gaussian(hx, hy)
    xy, scores = TopDownDecoder(refine).decode(heatmaps, centers, scales)
    for n in range(2):
        image_px_per_heatmap_px = float(scales[n, 0]) * 200.0 / W
        error = np.abs(xy[n, 3] - points[n])
        assert np.all(error <= bound_heatmap_px * image_px_per_heatmap_px + 1e-3)
        assert scores[n, 3] == pytest.approx(1.0, abs=0.1)


# ------------------------------------------------------------------------ flip


def explicit_flip_back(flipped, pairs, shift):
    n_people, n_joints, height, width = flipped.shape
    out = np.empty_like(flipped)
    for n in range(n_people):
        for k in range(n_joints):
            for x in range(width):
                out[n, k, :, x] = flipped[n, k, :, width - 1 - x]
    for i, j in pairs:
        out[:, [i, j]] = out[:, [j, i]]
    if shift:
        shifted = out.copy()
        for x in range(1, width):
            shifted[..., x] = out[..., x - 1]
        out = shifted
    return out


@pytest.mark.parametrize("shift", [True, False])
def test_flip_back_matches_explicit_loop(shift):
    rng = np.random.default_rng(7)
    flipped = rng.random((2, 17, 6, 5)).astype(np.float32)
    before = flipped.copy()
    result = flip_back(flipped, COCO17.flip_permutation(), shift=shift)
    np.testing.assert_array_equal(result, explicit_flip_back(flipped, COCO17.flip_pairs, shift))
    np.testing.assert_array_equal(flipped, before)  # input untouched


def test_flip_back_shift_keeps_column_zero():
    flipped = np.arange(5, dtype=np.float32).reshape(1, 1, 1, 5)  # mirrors to [4,3,2,1,0]
    result = flip_back(flipped, np.array([0]), shift=True)
    np.testing.assert_array_equal(result[0, 0, 0], [4, 4, 3, 2, 1])


def test_average_flip():
    rng = np.random.default_rng(8)
    heatmaps = rng.random((2, 17, 6, 5)).astype(np.float32)
    flipped = rng.random((2, 17, 6, 5)).astype(np.float32)
    expected = (heatmaps + explicit_flip_back(flipped, COCO17.flip_pairs, True)) / 2
    result = average_flip(heatmaps, flipped, COCO17.flip_permutation())
    np.testing.assert_allclose(result, expected, rtol=1e-6)


def test_flip_back_rejects_a_non_permutation():
    with pytest.raises(InputError, match="permutation"):
        flip_back(np.zeros((1, 3, 4, 4), np.float32), np.array([0, 0, 2]))


# ------------------------------------------------------------------- bad input


def _meta(n):
    return np.zeros((n, 2), np.float32), np.ones((n, 2), np.float32)


@pytest.mark.parametrize(
    "heatmaps, match",
    [
        pytest.param(np.full((1, 2, 8, 8), np.nan, np.float32), "NaN", id="nan"),
        pytest.param(np.where(np.eye(8) > 0, np.inf, 0)[None, None].astype(np.float32), "inf",
                     id="inf"),
        pytest.param(np.zeros((2, 8, 8), np.float32), "4-D", id="3-d-array"),
        pytest.param(np.zeros((1, 2, 8, 8), np.int32), "float", id="integer-dtype"),
        pytest.param(np.zeros((1, 2, 0, 8), np.float32), "H, W >= 1", id="empty-map"),
    ],
)
def test_decoder_rejects_bad_heatmaps(heatmaps, match):
    with pytest.raises(DecodeError, match=match):
        TopDownDecoder().decode(heatmaps, *_meta(heatmaps.shape[0] if heatmaps.ndim else 1))


def test_decoder_nan_message_locates_the_value():
    heatmaps = np.zeros((2, 3, 8, 8), np.float32)
    heatmaps[1, 2, 5, 4] = np.nan
    with pytest.raises(DecodeError, match="person 1, keypoint 2, y=5, x=4"):
        TopDownDecoder().decode(heatmaps, *_meta(2))


def test_decoder_rejects_people_count_mismatch():
    with pytest.raises(DecodeError, match="3 people but centers hold 2"):
        TopDownDecoder().decode(np.zeros((3, 2, 8, 8), np.float32), *_meta(2))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        pytest.param({"refine": "udp"}, "allowed: none, shift, dark", id="unknown-refine"),
        pytest.param({"refine": "dark", "dark_kernel": 10}, "odd", id="even-kernel"),
    ],
)
def test_decoder_rejects_bad_arguments(kwargs, match):
    with pytest.raises(InputError, match=match):
        TopDownDecoder(**kwargs)


@pytest.mark.parametrize("refine", ["none", "shift", "dark"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "+inf", "-inf"])
@pytest.mark.parametrize("where", [(1, 2, 5, 4), (0, 0, 0, 0), (1, 1, 7, 7)],
                         ids=["interior", "first-pixel", "last-pixel"])
def test_decoder_refuses_a_non_finite_value_anywhere(refine, bad, where):
    # The decoder finds NaN and +inf through the maxima and -inf through one min,
    # not a scan of every value; a -inf far from any peak must still be named.
    heatmaps = np.zeros((2, 3, 8, 8), np.float32)
    heatmaps[:, :, 3, 3] = 1.0  # peaks away from the bad value and its neighbours
    heatmaps[where] = bad
    n, k, y, x = where
    with pytest.raises(DecodeError, match=f"hold 1 NaN/inf values \\(first at person {n}, "
                                          f"keypoint {k}, y={y}, x={x}\\)"):
        TopDownDecoder(refine).decode(heatmaps, *_meta(2))


def test_decoder_refuses_non_finite_values_before_checking_centers():
    heatmaps = np.zeros((3, 2, 8, 8), np.float32)
    heatmaps[2, 1, 6, 1] = -np.inf
    with pytest.raises(DecodeError, match="NaN/inf"):
        TopDownDecoder().decode(heatmaps, *_meta(2))


def test_decoder_accepts_an_empty_batch():
    xy, scores = TopDownDecoder("dark").decode(np.zeros((0, 17, 8, 8), np.float32), *_meta(0))
    assert xy.shape == (0, 17, 2) and scores.shape == (0, 17)


# ------------------------------------------- mutation-testing gaps (issue 25 §5)
# Each test below kills mutants of edgepose/decode/topdown.py that survived mutmut;
# the expected values come from the scalar references above (the official formulas).

def small_peak(height, width, x=2, y=2):
    """A peak of 1 at (x, y) with unequal neighbours: shift moves it to (x+.25, y+.25)."""
    hm = np.zeros((height, width), np.float32)
    hm[y, x], hm[y, x - 1], hm[y, x + 1], hm[y - 1, x], hm[y + 1, x] = 1.0, 0.3, 0.6, 0.2, 0.5
    return hm


@pytest.mark.parametrize("height, width", [(4, 4), (4, 9), (9, 4)],
                         ids=["4x4", "H=4", "W=4"])
def test_shift_applies_on_the_smallest_maps(height, width):
    # 1 < px < W-1 holds for px = 2 once W = 4 (and likewise for H): the quarter step
    # must be taken there, by refine_shift and by the decoder's size guard alike.
    hm = small_peak(height, width)
    assert ref_shift(hm, 2, 2) == (2.25, 2.25)
    coords, _ = get_max_preds(hm[None, None])
    refine_shift(coords, hm[None, None])
    np.testing.assert_array_equal(coords[0, 0], np.float32((2.25, 2.25)))
    centers, scales = np.float32([[100.0, 200.0]]), np.float32([[1.0, 1.5]])
    xy, _ = TopDownDecoder("shift").decode(hm[None, None], centers, scales)
    ref_xy, _ = ref_decode(hm[None, None], centers, scales, "shift")
    np.testing.assert_allclose(xy, ref_xy, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("height, width", [(5, 5), (5, 9), (9, 5)],
                         ids=["5x5", "H=5", "W=5"])
def test_dark_applies_on_the_smallest_maps(height, width):
    # 1 < x < W-2 holds for x = 2 once W = 5: DARK must step there.
    hm = gaussian(2.3, 2.4, height=height, width=width)
    coords, _ = get_max_preds(hm[None, None])
    assert tuple(coords[0, 0]) == (2, 2)
    refine_dark(coords, hm[None, None])
    expected = ref_dark(hm, 2, 2)
    assert expected != (2, 2)
    np.testing.assert_allclose(coords[0, 0], expected, atol=1e-4)
    centers, scales = np.float32([[100.0, 200.0]]), np.float32([[1.0, 1.5]])
    xy, _ = TopDownDecoder("dark").decode(hm[None, None], centers, scales)
    ref_xy, _ = ref_decode(hm[None, None], centers, scales, "dark")
    np.testing.assert_allclose(xy, ref_xy, rtol=1e-6, atol=1e-3)


@pytest.mark.parametrize("height, width", [(1, 9), (9, 1), (1, 1)])
def test_refiners_leave_maps_too_small_on_one_axis_alone(height, width):
    hm = np.ones((1, 1, height, width), np.float32)
    coords = np.zeros((1, 1, 2), np.float32)
    refine_shift(coords, hm)
    refine_dark(coords, hm)
    np.testing.assert_array_equal(coords, 0)


def test_refiners_leave_points_outside_the_map_alone():
    # Only points inside move; far-off input must neither move nor index out of bounds.
    heatmaps = np.stack([gaussian(3.3, 4.4, height=8, width=8)] * 4)[None]
    far = np.float32([[[-1000, -1000], [1000, 1000], [-1000, 1000], [1000, -1000]]])
    for refine in (refine_shift, refine_dark):
        coords = far.copy()
        refine(coords, heatmaps)
        np.testing.assert_array_equal(coords, far)


def test_dark_reads_the_hessian_cross_term():
    # A tilted Gaussian has dxy != 0; the Newton step needs det = dxx*dyy - dxy^2.
    yy, xx = np.mgrid[0:H, 0:W]
    d = np.stack([xx - 20.3, yy - 30.6])
    inv = np.linalg.inv([[4.0, 2.5], [2.5, 4.0]])
    hm = np.exp(-0.5 * np.einsum("i...,ij,j...->...", d, inv, d)).astype(np.float32)
    coords, _ = get_max_preds(hm[None, None])
    x0, y0 = coords[0, 0]
    refine_dark(coords, hm[None, None])
    np.testing.assert_allclose(coords[0, 0], ref_dark(hm, x0, y0), atol=1e-4)
    assert np.all(np.abs(coords[0, 0] - (20.3, 30.6)) < 0.05)


def test_dark_kernel_5_pads_like_mmpose_at_the_border():
    # mmpose zero-pads (kernel-1)//2 = 2 pixels; a peak at x = 2 reads blurred
    # values the padding shapes.
    hm = gaussian(2.3, 30.4, sigma=1.0)
    coords, _ = get_max_preds(hm[None, None])
    refine_dark(coords, hm[None, None], kernel=5)
    np.testing.assert_allclose(coords[0, 0], ref_dark(hm, 2, 30, kernel=5), atol=1e-5)


def test_dark_over_several_chunks_matches_the_reference():
    # 9 x 17 = 153 maps: more than two chunks of 64 maps.
    rng = np.random.default_rng(7)
    peaks = rng.uniform(3, 9, size=(9, 17, 2))
    heatmaps = np.stack([np.stack([gaussian(px, py, height=16, width=12) for px, py in row])
                         for row in peaks])
    coords, _ = get_max_preds(heatmaps)
    start = coords.copy()
    refine_dark(coords, heatmaps)
    for n in range(9):
        for k in range(17):
            x, y = start[n, k]
            np.testing.assert_allclose(coords[n, k], ref_dark(heatmaps[n, k], x, y), atol=1e-4)


def test_dark_rescales_each_map_by_its_own_maximum():
    # mmpose rescales per map: a map of max 1e-12 stays under the 1e-10 clamp
    # (no step) even when a bright map shares the batch.
    bright = gaussian(20.3, 30.4)
    heatmaps = np.stack([bright, np.float32(1e-12) * bright])[None]
    coords, _ = get_max_preds(heatmaps)
    refine_dark(coords, heatmaps)
    np.testing.assert_array_equal(coords[0, 1], (20, 30))
    assert np.all(np.abs(coords[0, 0] - (20.3, 30.4)) <= 0.01)


def test_dark_takes_no_step_on_flat_or_non_positive_maps_inside():
    heatmaps = np.stack([np.zeros((H, W)), np.full((H, W), -2.0)])[None].astype(np.float32)
    coords = np.float32([[[20, 30], [20, 30]]])
    refine_dark(coords, heatmaps)
    np.testing.assert_array_equal(coords, [[[20, 30], [20, 30]]])


def test_dark_refines_non_contiguous_coords_in_place():
    heatmaps = np.stack([np.stack([gaussian(20.3 + k, 30.4 - n) for k in range(3)])
                         for n in range(2)])
    expected, _ = get_max_preds(heatmaps)
    coords = np.ascontiguousarray(expected.transpose(1, 0, 2)).transpose(1, 0, 2)
    assert not coords.flags.c_contiguous
    refine_dark(expected, heatmaps)
    assert refine_dark(coords, heatmaps) is coords
    np.testing.assert_array_equal(coords, expected)
    assert not np.array_equal(coords, np.round(coords))


@pytest.mark.parametrize("kernel", [1, 3, np.int64(5)])
def test_dark_kernel_accepts_any_positive_odd_integer(kernel):
    assert check_dark_kernel(kernel) == int(kernel)
    TopDownDecoder("dark", dark_kernel=kernel)


@pytest.mark.parametrize("kernel", [True, 3.0, 0, -1, 4])
def test_dark_kernel_refuses_bools_floats_and_even_or_non_positive(kernel):
    with pytest.raises(InputError, match="positive odd integer"):
        check_dark_kernel(kernel)


def test_get_max_preds_returns_float32():
    coords, maxvals = get_max_preds(gaussian(3.3, 4.4, height=8, width=8)[None, None])
    assert coords.dtype == np.float32 and maxvals.dtype == np.float32


def test_decoder_rejects_heatmaps_without_keypoints():
    with pytest.raises(DecodeError, match=r"^heatmaps must have K, H, W >= 1"):
        TopDownDecoder().decode(np.zeros((1, 0, 8, 8), np.float32), *_meta(1))


def test_decoder_errors_name_the_heatmaps():
    with pytest.raises(DecodeError, match=r"^heatmaps must be 4-D"):
        TopDownDecoder().decode(np.zeros((2, 8, 8), np.float32), *_meta(1))
    bad = np.zeros((1, 1, 8, 8), np.float32)
    bad[0, 0, 2, 3] = np.nan
    with pytest.raises(DecodeError, match=r"^heatmaps hold 1 NaN/inf"):
        TopDownDecoder().decode(bad, *_meta(1))


@pytest.mark.parametrize("name", ["centers", "scales"])
def test_decoder_rejects_meta_of_the_wrong_shape(name):
    meta = dict(zip(("centers", "scales"), _meta(2)))
    meta[name] = np.zeros((2, 3), np.float32)
    with pytest.raises(InputError, match=rf"^{name} must have shape \(N, 2\), got \(2, 3\)"):
        TopDownDecoder().decode(np.zeros((2, 1, 8, 8), np.float32), **meta)


def test_decoder_people_count_message_names_both_counts():
    with pytest.raises(DecodeError, match="3 people but centers hold 4"):
        TopDownDecoder().decode(np.zeros((3, 2, 8, 8), np.float32), *_meta(4))


def test_flip_back_shifts_by_default_like_hrnet():
    rng = np.random.default_rng(3)
    flipped = rng.random((2, 17, 8, 6)).astype(np.float32)
    perm = COCO17.flip_permutation()
    np.testing.assert_array_equal(flip_back(flipped, perm), flip_back(flipped, perm, shift=True))
    assert not np.array_equal(flip_back(flipped, perm), flip_back(flipped, perm, shift=False))
    heatmaps = rng.random((2, 17, 8, 6)).astype(np.float32)
    unshifted = explicit_flip_back(flipped, COCO17.flip_pairs, False)
    np.testing.assert_allclose(average_flip(heatmaps, flipped, perm, shift=False),
                               (heatmaps + unshifted) / 2, rtol=1e-6)
    with pytest.raises(DecodeError, match=r"^heatmaps_flipped must be 4-D"):
        flip_back(flipped[0], perm)
    with pytest.raises(DecodeError, match="same batch of crops"):
        average_flip(heatmaps, flipped[:1], perm)


def test_refine_shift_moves_each_map_of_a_batch_by_its_own_neighbours():
    rng = np.random.default_rng(11)
    heatmaps = rng.normal(size=(3, 4, 12, 10)).astype(np.float32)
    coords, _ = get_max_preds(heatmaps)
    expected = np.array([[ref_shift(heatmaps[n, k], *coords[n, k]) for k in range(4)]
                         for n in range(3)], np.float32)
    refine_shift(coords, heatmaps)
    np.testing.assert_array_equal(coords, expected)
    assert np.any(coords % 1 != 0)  # some points did move


@pytest.mark.parametrize("refine", [refine_shift, refine_dark])
def test_refiners_write_back_into_coords_that_are_not_contiguous(refine):
    rng = np.random.default_rng(12)
    heatmaps = np.stack([gaussian(rng.uniform(5, 40), rng.uniform(5, 58))
                         for _ in range(6)]).reshape(2, 3, H, W)
    start, _ = get_max_preds(heatmaps)
    # Fortran order: no (N·K, 2) view of it exists, so it is refined through a copy,
    # which must come back.
    coords = np.asfortranarray(start)
    assert not np.shares_memory(coords.reshape(-1, 2), coords)
    expected = refine(start.copy(), heatmaps)
    refined = refine(coords, heatmaps)
    assert refined is coords
    np.testing.assert_array_equal(coords, expected)
    assert not np.array_equal(expected, start)


def test_a_map_whose_maximum_is_exactly_zero_decodes_to_the_origin_like_hrnet():
    # get_max_preds masks with maxvals > 0: a maximum of exactly 0 zeroes the coords.
    hm = np.full((1, 1, 8, 8), -1.0, np.float32)
    hm[0, 0, 5, 3] = 0.0
    centers, scales = np.float32([[50, 60]]), np.float32([[0.32, 0.32]])
    for refine in ("none", "shift", "dark"):
        xy, scores = TopDownDecoder(refine).decode(hm, centers, scales)
        ref_xy, ref_scores = ref_decode(hm, centers, scales, refine)
        np.testing.assert_allclose(xy, ref_xy, atol=1e-4)
        assert scores[0, 0] == 0.0
