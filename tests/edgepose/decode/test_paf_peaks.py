"""heatmap_peaks' float32 fast path against the plain full-map SciPy path, brute force.

The fast path smooths in float32 a band of rows at a time, skips bands whose raw
values cannot lift a smoothed value above the threshold, and re-tests near-ties on
SciPy's exact values. Here each map is smoothed whole by scipy.ndimage.gaussian_filter
in float64 and every pixel tested with the port's rule (>= its 4 neighbours, 0
outside the map, > thre1): the peaks must be the same pixels.
"""

import tracemalloc

import numpy as np
import pytest

from edgepose.decode import paf_peaks
from edgepose.decode.paf_peaks import heatmap_peaks

ndimage = pytest.importorskip("scipy.ndimage", reason="SciPy is the brute-force smoother")


def _brute_force(heatmap, sigma, threshold, truncate=4.0):
    smooth = ndimage.gaussian_filter(np.asarray(heatmap, np.float64), sigma,
                                     truncate=truncate) if sigma > 0 \
        else np.asarray(heatmap, np.float64)
    padded = np.pad(smooth, 1)
    peak = smooth > threshold
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        peak &= smooth >= padded[1 + dy:1 + dy + smooth.shape[0], 1 + dx:1 + dx + smooth.shape[1]]
    return np.nonzero(peak)


def _assert_same(heatmap, sigma=3.0, threshold=0.1, truncate=4.0):
    y, x = heatmap_peaks(heatmap, sigma, truncate, threshold)
    by, bx = _brute_force(heatmap, sigma, threshold, truncate)
    assert list(zip(y.tolist(), x.tolist())) == list(zip(by.tolist(), bx.tolist()))
    return len(y)


def _blobs(rng, shape, count, sigma=4.0, dtype=np.float32):
    gy, gx = np.mgrid[0:shape[0], 0:shape[1]]
    heatmap = rng.uniform(-0.02, 0.02, shape)
    for cy, cx, top in zip(rng.uniform(-3, shape[0] + 3, count),
                           rng.uniform(-3, shape[1] + 3, count), rng.uniform(0.05, 1.2, count)):
        heatmap = np.maximum(heatmap, top * np.exp(-((gx - cx) ** 2 + (gy - cy) ** 2)
                                                  / (2 * sigma ** 2)))
    return heatmap.astype(dtype)


@pytest.fixture
def small_bands(monkeypatch):
    # 40-row bands on these 37..61-pixel-wide maps: many band cuts to cross.
    monkeypatch.setattr(paf_peaks, "_BAND_PIXELS", 40 * 37)
    monkeypatch.setattr(paf_peaks, "_MIN_BAND_ROWS", 16)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blobs_everywhere_match_the_full_map_path(seed, dtype, small_bands):
    rng = np.random.default_rng(seed)
    assert _assert_same(_blobs(rng, (150, 37 + 4 * seed), 25, dtype=dtype)) > 5


@pytest.mark.parametrize("row", [0, 1, 15, 16, 39, 40, 41, 79, 80, 119])
def test_a_peak_on_either_side_of_a_band_cut_or_on_the_border(row, small_bands):
    # Bands are 40 rows here; the blob's peak sits on the cut, beside it, or on row 0.
    heatmap = np.full((120, 37), 0.01, np.float32)
    gy, gx = np.mgrid[0:120, 0:37]
    heatmap += (0.5 * np.exp(-((gx - 36) ** 2 + (gy - row) ** 2) / 18.0)).astype(np.float32)
    assert _assert_same(heatmap) == 1


def test_ties_across_a_band_cut_and_at_the_corners(small_bands):
    heatmap = np.zeros((121, 37), np.float64)
    heatmap[39:41, 10] = 2.0               # a plateau split by the cut at row 40
    heatmap[0, 0] = heatmap[120, 36] = 3.0  # corners
    heatmap[80, 0:2] = 1.5                 # plateau on the left border at a cut
    # Whether SciPy's rounding leaves a plateau's pixels tied is SciPy's to say; the
    # corners are peaks whatever it says.
    assert _assert_same(heatmap) >= 2


def test_values_at_the_threshold_are_decided_on_scipys_values():
    # A plateau of exactly thre1 smooths to thre1 up to SciPy's rounding, which decides.
    heatmap = np.zeros((60, 70), np.float64)
    heatmap[10:50, 10:60] = 0.1
    heatmap[30, 30] = 0.1 + 1e-9
    _assert_same(heatmap)
    _assert_same(heatmap.astype(np.float32))


def test_cold_bands_are_skipped_but_warm_ones_are_not(small_bands):
    # Raw values just below thre1 can never be peaks; just above, they can.
    heatmap = np.full((200, 37), 0.0999, np.float32)
    assert _assert_same(heatmap) == 0
    heatmap[150, 20] = 3.0
    assert _assert_same(heatmap) == 1


def test_huge_values_are_smoothed_in_float64():
    heatmap = _blobs(np.random.default_rng(9), (50, 60), 6, dtype=np.float64) * 1e35
    assert _assert_same(heatmap, threshold=0.1e35) > 0


@pytest.mark.parametrize("threshold", [-0.5, 0.0, 0.3])
def test_any_threshold_and_no_smoothing(threshold):
    heatmap = _blobs(np.random.default_rng(3), (40, 50), 8)
    _assert_same(heatmap, threshold=threshold)
    _assert_same(heatmap, sigma=0.0, threshold=threshold)


@pytest.mark.parametrize("shape", [(1, 1), (1, 30), (30, 1), (3, 5), (13, 200)])
def test_maps_smaller_than_the_kernel(shape):
    heatmap = np.random.default_rng(4).random(shape).astype(np.float32)
    _assert_same(heatmap, threshold=0.3)


def test_blobs_centred_between_pixels_tie_as_scipy_rounds_them():
    # A blob centred half-way between pixels gives two smoothed values equal but for
    # SciPy's rounding; float32 rounds them otherwise, so only the re-test on SciPy's
    # values gets them right (seeds 52 and 191 fail without the error margin).
    for seed in range(256):
        rng = np.random.default_rng(seed)
        gy, gx = np.mgrid[0:40, 0:41]
        heatmap = np.zeros((40, 41))
        for _ in range(6):
            cy, cx = rng.integers(3, 37) + 0.5, rng.integers(3, 38) + rng.choice([0, 0.5])
            heatmap = np.maximum(heatmap, rng.uniform(0.2, 1.5) * np.exp(
                -((gx - cx) ** 2 + (gy - cy) ** 2) / (2 * rng.uniform(1, 4) ** 2)))
        _assert_same(heatmap.astype(np.float32))


@pytest.mark.parametrize("sigma", [0.0, 3.0])
def test_a_float32_value_is_compared_as_the_port_widens_it(sigma):
    # float32(0.1) = 0.100000001490116: above thre1 = 0.1 once widened to float64, as
    # the port's float64 maps hold it, though not above float32(0.1).
    # Smoothed (sigma 3), the plateau's values are SciPy's rounding of it: the same
    # pixels either way.
    heatmap = np.zeros((40, 41), np.float32)
    heatmap[5:35, 5:36] = np.float32(0.1)
    found = _assert_same(heatmap, sigma=sigma)
    assert found > 0 or sigma > 0


@pytest.mark.parametrize("sigma, truncate", [(0.8, 4.0), (1.0, 4.0), (2.0, 2.0), (3.0, 1.5)])
def test_other_sigmas_and_truncations(sigma, truncate, small_bands):
    heatmap = _blobs(np.random.default_rng(6), (120, 37), 12, sigma=1.5)
    assert _assert_same(heatmap, sigma=sigma, truncate=truncate) > 3


def test_rows_up_to_the_kernels_radius_beyond_a_band_cut_count(small_bands):
    # Rows 39 and 40 straddle the cut at 40: segments of row 39 are a hair higher than
    # row 40's, but a row of 2.0 eleven rows below row 40 (twelve below row 39, the
    # kernel's radius) lifts row 40 above row 39 by more than the float32 bound. Band
    # 0 must read row 51 to see that. SciPy's peaks: (18, 40) and (18, 51).
    heatmap = np.zeros((100, 37), np.float32)
    heatmap[39, 6:31], heatmap[40, 6:31] = 1.02, 1.0
    heatmap[51] = 2.0
    y, x = heatmap_peaks(heatmap, 3.0, 4.0, 0.1)
    assert list(zip(x.tolist(), y.tolist())) == [(18, 40), (18, 51)]
    _assert_same(heatmap)


def test_values_beyond_float32_are_smoothed_in_float64():
    # 1e300 is inf in float32: a float32 smoothing would tie every pixel of the blob.
    heatmap = _blobs(np.random.default_rng(10), (50, 60), 6, dtype=np.float64) * 1e300
    assert _assert_same(heatmap, threshold=0.1e300) > 0


@pytest.mark.parametrize("seed", [0, 1, 5])
def test_huge_negative_values_count_in_the_error_bound(seed):
    # A field of values near -1e35 (a few pixels of 0.5 on it) and a threshold below
    # it: the local maxima of its smoothing differ from their neighbours by less than
    # float32's rounding of 1e35-sized sums. A bound from the most positive value
    # (0.5) would let float32 decide them; from the largest magnitude it sends them to
    # SciPy's values (with the positive one, 8 of 20 seeds differed from SciPy).
    rng = np.random.default_rng(seed)
    heatmap = rng.uniform(-1e35, -0.99e35, (120, 120)).astype(np.float32)
    heatmap[::7, ::5] = 0.5
    assert _assert_same(heatmap, threshold=-1e36) > 100


def test_a_band_whose_hot_rows_lie_only_in_the_next_band_finds_nothing(small_bands):
    # A blob from 12 rows below the first band's cut (40): the first band reads its
    # top row, the last within the kernel's reach, but none of its own rows can be
    # lifted above the threshold.
    heatmap = np.zeros((80, 37), np.float32)
    heatmap[52:55, 17:20] = 1.0
    assert _assert_same(heatmap) == 1


def test_plateaus_on_the_left_and_top_edges_are_decided_on_scipys_values():
    # A flat plateau touching column 0 and row 0: its smoothed values tie but for
    # rounding, so its pixels go to the exact test with neighbours outside the map.
    heatmap = np.zeros((30, 40), np.float32)
    heatmap[0:6, 0:5] = 0.8
    heatmap[12:20, 0:3] = 0.6
    assert _assert_same(heatmap) >= 1


def test_scratch_hands_back_the_same_memory_for_a_role_until_it_must_grow():
    scratch = paf_peaks.Scratch()
    first = scratch.get("smooth", (4, 5), np.float32)
    assert first.shape == (4, 5) and first.dtype == np.float32 and first.flags.c_contiguous
    assert np.shares_memory(scratch.get("smooth", (4, 5), np.float32), first)
    assert np.shares_memory(scratch.get("smooth", (2, 5), np.float32), first)  # smaller
    assert not np.shares_memory(scratch.get("neighbours", (4, 5), np.float32), first)
    wider = scratch.get("smooth", (4, 6), np.float32)
    assert wider.shape == (4, 6) and not np.shares_memory(wider, first)
    assert scratch.get("smooth", (4, 6), np.float64).dtype == np.float64


def test_find_peaks_of_no_maps_is_empty_with_the_documented_dtypes():
    from edgepose.decode.paf import PafParams, find_peaks

    for maps in (np.zeros((0, 6, 7), np.float32), np.zeros((2, 6, 7), np.float32)):
        peaks = find_peaks(maps, PafParams())
        assert peaks.xy.shape == (0, 2) and peaks.xy.dtype == np.int64
        assert peaks.scores.shape == (0,) and peaks.scores.dtype == np.float64
        assert peaks.parts.shape == (0,) and peaks.parts.dtype == np.int64
        assert peaks.starts.tolist() == [0] * (len(maps) + 1)
        assert peaks.starts.dtype == np.int64
    maps = np.zeros((2, 20, 20), np.float32)
    maps[1, 8:11, 8:11] = 1.0
    peaks = find_peaks(maps, PafParams())
    assert peaks.xy.tolist() == [[9, 9]] and peaks.parts.tolist() == [1]
    assert peaks.xy.dtype == peaks.parts.dtype == peaks.starts.dtype == np.int64


def _brute_force_at(heatmap, y, x, sigma=3.0, threshold=0.1):
    """The port's peak test at pixels (y, x), on SciPy's whole smoothed map."""
    peak = np.zeros(heatmap.shape, bool)
    peak[_brute_force(heatmap, sigma, threshold)] = True
    return peak[y, x]


def _every_pixel(shape):
    """y, x of every pixel of a map of this shape, row-major, flat."""
    y, x = np.mgrid[0:shape[0], 0:shape[1]]
    return y.reshape(-1), x.reshape(-1)


def _near_ties(seed, offset, dtype=np.float32):
    """A map of blobs centred `offset` px past half-way between two pixels, and those
    pixels: their smoothed values differ by about offset × slope, or tie exactly (a
    float32 map holds no offset below ~1e-7 px: its blobs are symmetric)."""
    rng = np.random.default_rng(seed)
    gy, gx = np.mgrid[0:48, 0:52]
    heatmap = np.zeros((48, 52))
    ys, xs = [], []
    for _ in range(5):
        cy, cx = rng.integers(0, 48), rng.integers(0, 51) + 0.5 + offset
        heatmap = np.maximum(heatmap, rng.uniform(0.05, 1.5) * np.exp(
            -((gx - cx) ** 2 + (gy - cy) ** 2) / (2 * rng.uniform(1, 6) ** 2)))
        ys += [cy, cy]
        xs += [int(cx), int(cx) + 1]
    return heatmap.astype(dtype), np.array(ys), np.array(xs)


@pytest.mark.parametrize("offset", [0.0, 1e-15, 1e-13, 1e-11, 1e-9, 1e-6, 1e-3])
def test_the_float64_test_decides_only_what_its_bound_settles(offset):
    # Each decision of the float64 products is the one SciPy's values give, however
    # close the two pixels are; a gap of 1e-9 px and more (values ~1e-11 apart, far
    # above float64 rounding) is decided, while exact ties are left to SciPy's order.
    decided_pairs = 0
    for seed in range(40):
        heatmap, y, x = _near_ties(seed, offset)
        result, decided = paf_peaks._float64_peak_test(heatmap, y, x, 3.0, 4.0, 0.1)
        expected = _brute_force_at(heatmap, y, x)
        np.testing.assert_array_equal(result[decided], expected[decided])
        np.testing.assert_array_equal(
            paf_peaks._exact_peak_test(heatmap, y, x, 3.0, 4.0, 0.1), expected)
        decided_pairs += int(decided.all())
    if offset >= 1e-9:
        assert decided_pairs == 40
    if offset == 0:
        assert decided_pairs < 40  # some blobs above the threshold tie exactly


def test_the_float64_test_reads_the_map_as_scipy_reflects_it_at_edges_and_corners():
    rng = np.random.default_rng(7)
    heatmap = _blobs(rng, (30, 33), 12, sigma=2.0)
    y, x = _every_pixel((30, 33))
    result, decided = paf_peaks._float64_peak_test(heatmap, y, x, 3.0, 4.0, 0.1)
    assert decided.mean() > 0.999
    np.testing.assert_array_equal(result[decided], _brute_force_at(heatmap, y, x)[decided])


def test_many_unsure_pixels_go_straight_to_scipys_order(monkeypatch):
    # A plateau's thousands of pixels: no patch per pixel, the exact tile instead.
    heatmap = np.full((40, 45), 0.5, np.float32)
    y, x = _every_pixel((40, 45))
    assert len(y) > paf_peaks._PRODUCT_POINTS
    monkeypatch.setattr(paf_peaks, "_float64_peak_test", None)  # must not be called
    np.testing.assert_array_equal(paf_peaks._exact_peak_test(heatmap, y, x, 3.0, 4.0, 0.1),
                                  _brute_force_at(heatmap, y, x))


def test_the_float64_test_settles_near_ties_only_beyond_its_bound():
    # Gaps of 1e-16..1e-14 px in float64 maps: values apart by about float64's
    # rounding, which the products and SciPy order differently for ~1% of the pairs;
    # none may be decided against SciPy's order.
    wrong = 0
    for seed in range(300):
        heatmap, y, x = _near_ties(seed, (1e-14, 3e-15, 1e-15, 3e-16)[seed % 4], np.float64)
        result, decided = paf_peaks._float64_peak_test(heatmap, y, x, 3.0, 4.0, 0.1)
        wrong += int((result != _brute_force_at(heatmap, y, x))[decided].sum())
    assert wrong == 0


def test_the_float64_test_leaves_a_value_within_its_bound_of_the_threshold_undecided():
    # One hot pixel among blobs: its smoothed value s is SciPy's, its neighbours lower.
    # Thresholds a few float64 steps either side of s are for SciPy's order to settle
    # (the products round s otherwise); thresholds 1e-10·s away are decided (the bound
    # is ~5e-14 times the largest value read, here ~60·s).
    for seed in range(12):
        rng = np.random.default_rng(seed)
        heatmap = _blobs(rng, (31, 31), 4, sigma=1.0, dtype=np.float64) * 0.01
        heatmap[15, 15] = rng.uniform(1, 10)
        s = ndimage.gaussian_filter(heatmap, 3.0)[15, 15]
        at = np.array([15]), np.array([15])
        steps = np.arange(-4, 5) * np.spacing(s)
        for threshold in np.concatenate([s + steps, s + np.array([-1e-10, 1e-10]) * s]):
            result, decided = paf_peaks._float64_peak_test(heatmap, *at, 3.0, 4.0, threshold)
            far = abs(threshold - s) > 1e-11 * s
            assert decided[0] == far
            if decided[0]:
                assert result[0] == (s > threshold)
            assert paf_peaks._exact_peak_test(heatmap, *at, 3.0, 4.0, threshold)[0] == \
                (s > threshold)


def test_outside_the_map_counts_as_zero_for_a_negative_map_and_threshold():
    # The port pads its shifted copies with 0: a negative pixel at the edge is never
    # >= that 0, however it compares with the neighbours inside.
    heatmap = -_blobs(np.random.default_rng(3), (20, 24), 6, sigma=2.0) - 0.5
    y, x = _every_pixel((20, 24))
    result, decided = paf_peaks._float64_peak_test(heatmap, y, x, 3.0, 4.0, -10.0)
    assert decided.all() and not result.any()
    inner = np.float64(np.pad(ndimage.gaussian_filter(heatmap.astype(np.float64), 3.0), 1,
                              constant_values=-np.inf))
    assert (inner[1:-1, 1:-1] >= np.maximum.reduce([inner[:-2, 1:-1], inner[2:, 1:-1],
                                                    inner[1:-1, :-2], inner[1:-1, 2:]])).any()


def test_the_float64_test_never_decides_within_the_textbook_rounding_bound():
    # Two float64 smoothings of 25 taps along each axis (the products' and SciPy's)
    # may each be off by γ(50)·max|patch| (Higham's bound for sums of 50 terms, any
    # order), so a threshold that close to SciPy's value is not the products' to decide.
    gamma = 50 * 2.0 ** -53 / (1 - 50 * 2.0 ** -53)
    for value in (1.0, 5.5, 0.2, 40.0):
        heatmap = np.zeros((31, 31))
        heatmap[15, 15] = value
        s = ndimage.gaussian_filter(heatmap, 3.0)[15, 15]
        for side in (-1, 1):
            threshold = s + side * 0.99 * 2 * gamma * value
            _, decided = paf_peaks._float64_peak_test(heatmap, np.array([15]), np.array([15]),
                                                      3.0, 4.0, threshold)
            assert not decided[0]


def test_the_float64_test_leaves_values_near_float64s_limit_to_scipys_order():
    # SciPy adds the two values of a tap pair first: at 1.5e308 that sum is inf, and its
    # smoothed values with it, while the products' stay finite.
    heatmap = np.full((30, 30), 1.5e308)
    heatmap[10:20, 10:20] = 1e308
    y, x = _every_pixel((30, 30))
    _, decided = paf_peaks._float64_peak_test(heatmap, y, x, 3.0, 4.0, 1e300)
    assert not decided.any()
    with np.errstate(over="ignore", invalid="ignore"):
        expected = _brute_force_at(heatmap, y, x, threshold=1e300)
        assert np.isinf(ndimage.gaussian_filter(heatmap, 3.0)).any()
        np.testing.assert_array_equal(
            paf_peaks._exact_peak_test(heatmap, y[:200], x[:200], 3.0, 4.0, 1e300), expected[:200])


def test_the_exact_test_without_smoothing_reads_the_map_itself():
    heatmap = _blobs(np.random.default_rng(5), (20, 22), 4, sigma=1.5)
    y, x = _every_pixel((20, 22))
    np.testing.assert_array_equal(paf_peaks._exact_peak_test(heatmap, y[:100], x[:100], 0.0, 4.0,
                                                             0.1),
                                  _brute_force_at(heatmap, y, x, sigma=0.0)[:100])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sigma", [3.0, 6.0, 6.2, 16.0, 16.3])
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (40, 200), (200, 40)])
def test_the_smoothing_stays_within_its_bound_of_scipy_below_and_above_opencvs_dft(
        dtype, sigma, shape):
    # Taps 25, 49 | 51, 129 | 131: on either side of _DIRECT_FILTER_TAPS (50) and of
    # OpenCV's own DFT size for float32 (130). A DFT's error is relative to the whole
    # map: one 1e4 spike far away must not leak into the small values beside it.
    rng = np.random.default_rng(int(sigma * 10) + shape[0])
    heatmap = rng.uniform(-1.0, 1.0, shape)
    heatmap[-1, -1] = 1e4
    heatmap = heatmap.astype(dtype)
    kernel = paf_peaks.smoothing_kernels(sigma, 4.0)[dtype is np.float64]
    scratch = paf_peaks.Scratch()
    smooth = paf_peaks.separable_filter(heatmap, kernel, scratch)
    expected = ndimage.gaussian_filter(heatmap.astype(np.float64), sigma, truncate=4.0)
    # The bound _band_peaks uses, per value: the window's largest |value|, not the map's.
    radius = len(kernel) // 2
    window = ndimage.maximum_filter(np.abs(heatmap.astype(np.float64)), size=2 * radius + 1,
                                    mode="reflect")
    unit = 2.0 ** -24 if dtype is np.float32 else 2.0 ** -53
    bound = (2 * len(kernel) + 4) * unit * window + 1e-35
    assert smooth.dtype == dtype and smooth.shape == shape
    assert np.all(np.abs(smooth - expected) <= bound)


@pytest.mark.parametrize("sigma", [3.0, 16.3])  # filter2D twice; sepFilter2D
def test_the_smoothing_allocates_nothing_once_its_scratch_holds_a_map(sigma):
    # A fresh megabyte per map costs page faults on every map (see Scratch); numpy
    # reports its arrays, OpenCV's outputs included, to tracemalloc.
    rng = np.random.default_rng(0)
    maps = rng.random((2, 200, 300), np.float32)  # 240 kB each
    kernel = paf_peaks.smoothing_kernels(sigma, 4.0)[0]
    scratch = paf_peaks.Scratch()
    first = paf_peaks.separable_filter(maps[0], kernel, scratch).copy()
    tracemalloc.start()
    try:
        second = paf_peaks.separable_filter(maps[1], kernel, scratch)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000
    assert not np.array_equal(first, second)  # the second map's values, not the first's
