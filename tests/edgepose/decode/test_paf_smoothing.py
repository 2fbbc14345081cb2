"""The port's resize-then-smooth path as two small products, against the path itself.

The independent references: cv2.resize for the weights; for the smoothed maps,
scipy.ndimage.gaussian_filter in float64 on the port's float32 resize
(resize_maps_to_image, which the official-output tests pin); for the peaks, the
decoder's filtering path on those resized maps (pinned bit for bit to SciPy and
to the official port's recorded outputs).
"""

import cv2
import numpy as np
import pytest

from edgepose.decode import paf, paf_peaks, paf_smoothing
from edgepose.decode.paf import ImageMaps, PafParams, find_peaks, resize_maps_to_image
from edgepose.decode.paf_smoothing import (
    axis_operator,
    opencv_cubic_weights,
    smooth_network_map,
)

from tests.edgepose.decode import paf_reference as ref  # noqa: E402 - after the code under test

ndimage = pytest.importorskip("scipy.ndimage")

# (network h, w), stride, valid (w, h), image (w, h): the recorded cases' geometry,
# a stride of 4, a frame smaller than its padded input, and maps a few pixels wide.
GEOMETRIES = [
    ((23, 41), 8, (328, 184), (656, 368)),
    ((23, 31), 8, (245, 184), (640, 480)),
    ((23, 32), 8, (250, 184), (500, 368)),
    ((17, 29), 4, (100, 60), (333, 201)),
    ((5, 7), 8, (40, 33), (41, 30)),
    ((3, 4), 8, (30, 20), (13, 9)),
    ((41, 23), 8, (184, 328), (368, 656)),  # a portrait frame: more rows than columns
]


@pytest.mark.parametrize("size, new_size", [(23, 184), (184, 368), (245, 640), (60, 201),
                                            (30, 9), (7, 7), (1, 5)])
def test_the_weights_resize_as_opencv_does(size, new_size):
    values = np.random.default_rng(size).standard_normal((size, 5)).astype(np.float32)
    weights = opencv_cubic_weights(size, new_size)
    expected = cv2.resize(values, (5, new_size), interpolation=cv2.INTER_CUBIC)
    # float32 rounding of 4 products apart: the weights are OpenCV's own.
    tolerance = 8 * 2.0 ** -24 * np.abs(weights).sum(axis=1, keepdims=True) * np.abs(values).max()
    assert np.all(np.abs(weights @ values - expected) <= tolerance)


def test_the_cubic_weights_are_keys_with_a_minus_0_75_and_sum_to_one():
    # ×2: output pixel 3 sits at source (3 + 0.5) / 2 − 0.5 = 1.25, so its weights on
    # sources 0–3 are Keys' cubic (a = −0.75) at distances 1.25, 0.25, 0.75, 1.75.
    def keys(t, a=-0.75):
        t = abs(t)
        if t <= 1:
            return ((a + 2) * t - (a + 3)) * t * t + 1
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    weights = opencv_cubic_weights(8, 16)
    np.testing.assert_allclose(weights[3, 0:4], [keys(1.25), keys(0.25), keys(0.75), keys(1.75)],
                               rtol=0, atol=1e-7)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=0, atol=1e-6)


@pytest.mark.parametrize("network, stride, valid, image", GEOMETRIES)
@pytest.mark.parametrize("sigma, truncate", [(3.0, 4.0), (1.5, 2.0), (1.0, 4.0)])
def test_the_products_stay_within_their_bound_of_scipy_on_the_ports_resize(
        network, stride, valid, image, sigma, truncate):
    rng = np.random.default_rng(sum(network) + stride)
    maps = (3 * rng.standard_normal((2, *network))).astype(np.float32)
    maps[1] = np.abs(maps[1]) * 1e-3  # a faint map: the bound scales with it
    resized = resize_maps_to_image(maps, stride, valid, image)
    for channel in range(2):
        expected = ndimage.gaussian_filter(resized[channel].astype(np.float64), sigma,
                                           mode="reflect", truncate=truncate)
        smoothing = smooth_network_map(maps[channel], stride, valid, image, sigma, truncate)
        smooth, error = smoothing.rows(0, image[1])
        assert smooth.shape == expected.shape and smooth.dtype == np.float32
        distance = np.abs(smooth - expected).max()
        # Within the bound without its safety factor, and the bound is tight enough
        # to settle all but near-ties (a few hundred float32 units of the map's size).
        assert distance <= error / paf_smoothing._ERROR_SAFETY
        assert error <= 1e-4 * np.abs(maps[channel]).max()


def test_float64_maps_give_float32_maps_within_the_bound():
    maps = np.random.default_rng(2).random((1, 23, 41))
    expected = ndimage.gaussian_filter(
        resize_maps_to_image(maps, 8, (328, 184), (656, 368))[0].astype(np.float64), 3.0)
    smoothing = smooth_network_map(maps[0], 8, (328, 184), (656, 368), 3.0, 4.0)
    smooth, error = smoothing.rows(0, 368)
    assert smooth.dtype == np.float32
    assert np.abs(smooth - expected).max() <= error / paf_smoothing._ERROR_SAFETY


def test_any_band_of_rows_is_those_rows_of_the_whole_map():
    maps = np.random.default_rng(1).random((23, 41)).astype(np.float32)
    smoothing = smooth_network_map(maps, 8, (328, 184), (656, 368), 3.0, 4.0)
    whole, _ = smoothing.rows(0, 368)
    for first, last in [(0, 1), (63, 65), (100, 300), (367, 368), (5, 5)]:
        out = np.full((last - first, 656), np.nan, np.float32)
        band, _ = smoothing.rows(first, last, out)
        assert band is out
        # The same nonzero terms in the same blocks: the same sums, to rounding.
        np.testing.assert_allclose(band, whole[first:last], rtol=0, atol=1e-6)


def test_a_band_of_faint_rows_has_a_small_bound_that_holds():
    # Bright network rows on top, faint ones below: a band that reaches only faint rows
    # gets a bound scaled to them, and its values must still be within it.
    maps = np.random.default_rng(8).standard_normal((1, 23, 41)).astype(np.float32)
    maps[0, 12:] *= 1e-4
    expected = ndimage.gaussian_filter(
        resize_maps_to_image(maps, 8, (328, 184), (656, 368))[0].astype(np.float64), 3.0)
    smoothing = smooth_network_map(maps[0], 8, (328, 184), (656, 368), 3.0, 4.0)
    _, whole_error = smoothing.rows(0, 368)
    band, error = smoothing.rows(300, 368)
    assert error < 1e-3 * whole_error
    assert np.abs(band - expected[300:]).max() <= error / paf_smoothing._ERROR_SAFETY
    top, top_error = smoothing.rows(0, 64)
    assert top_error > 1e3 * error
    assert np.abs(top - expected[:64]).max() <= top_error / paf_smoothing._ERROR_SAFETY


@pytest.mark.parametrize("value", [np.nan, np.inf, 1e30])
def test_maps_the_products_cannot_bound_are_left_to_the_filter(value):
    maps = np.zeros((23, 41), np.float32)
    maps[4, 5] = value
    assert smooth_network_map(maps, 8, (328, 184), (656, 368), 3.0, 4.0) is None


@pytest.mark.parametrize("image, products", [((160, 132), True), ((161, 132), False),
                                             ((160, 133), False), ((20, 10), True)])
def test_frames_far_above_the_network_input_are_left_to_the_filter(image, products):
    # Up to 4 times the valid input (40x33) per side; beyond, near-ties decide the time.
    maps = np.random.default_rng(6).random((5, 7)).astype(np.float32)
    assert (smooth_network_map(maps, 8, (40, 33), image, 3.0, 4.0) is not None) is products


def test_no_smoothing_is_left_to_the_exact_path():
    maps = np.ones((5, 7), np.float32)
    assert smooth_network_map(maps, 8, (40, 33), (41, 30), 0.0, 4.0) is None


@pytest.mark.parametrize("network, stride, valid, image", GEOMETRIES)
def test_the_blocks_cover_every_row_and_every_nonzero_weight(network, stride, valid, image):
    for size, valid_size, image_size in zip(network, valid[::-1], image[::-1]):
        operator = axis_operator(size, stride, valid_size, image_size, 3.0, 4.0)
        covered = np.zeros(operator.matrix.shape, bool)
        rows = []
        for first, end, left, right in operator.blocks:
            covered[first:end, left:right] = True
            rows.extend(range(first, end))
        assert rows == list(range(image_size))
        assert not operator.matrix[~covered].any()
        values = np.random.default_rng(size).standard_normal((size, 9)).astype(np.float32)
        exact = operator.matrix.astype(np.float64) @ values
        tolerance = (operator.nonzeros + 1) * 2.0 ** -24 * np.abs(operator.matrix).astype(
            np.float64) @ np.abs(values)
        out = np.empty((image_size, 9), np.float32)
        assert np.all(np.abs(operator.apply(values, 0, image_size, out) - exact) <= tolerance)


def test_a_row_without_weights_is_zero():
    # An all-zero operator row, which no resize of these sizes makes: apply must
    # still write it (zeros), not leave the output's old contents.
    operator = axis_operator(23, 8, 184, 368, 3.0, 4.0)
    matrix = operator.matrix.copy()
    matrix[:64] = 0
    empty = paf_smoothing.AxisOperator(matrix, operator.abs_sum, operator.nonzeros,
                                       operator.resize_abs,
                                       ((0, 64, 0, 0),) + operator.blocks[1:])
    out = np.full((368, 5), np.nan, np.float32)
    values = np.ones((23, 5), np.float32)
    empty.apply(values, 0, 368, out)
    assert not out[:64].any() and np.isfinite(out).all()


def test_the_operator_is_cached_and_read_only():
    first = axis_operator(23, 8, 184, 368, 3.0, 4.0)
    assert axis_operator(23, 8, 184, 368, 3.0, 4.0) is first
    with pytest.raises(ValueError):
        first.matrix[0, 0] = 1.0


def _peaks_both_ways(maps, stride, valid, image, params, monkeypatch, exact_calls=None):
    """find_peaks through ImageMaps (the products; counting its exact tests into
    exact_calls) and on the resized maps (the filter)."""
    calls = []
    real = paf.smoothed_map_peaks
    monkeypatch.setattr(paf, "smoothed_map_peaks",
                        lambda *args, **kwargs: calls.append(1) or real(*args, **kwargs))
    if exact_calls is not None:
        exact = paf_peaks._exact_peak_test
        monkeypatch.setattr(paf_peaks, "_exact_peak_test",
                            lambda *args: exact_calls.append(1) or exact(*args))
    lazy = find_peaks(ImageMaps(maps, stride, valid, image), params)
    monkeypatch.undo()
    assert len(calls) == len(maps), "the ImageMaps path did not use the products"
    whole = find_peaks(resize_maps_to_image(maps, stride, valid, image), params)
    return lazy, whole


def _assert_same_peaks(lazy, whole):
    np.testing.assert_array_equal(lazy.xy, whole.xy)
    np.testing.assert_array_equal(lazy.scores, whole.scores)
    np.testing.assert_array_equal(lazy.starts, whole.starts)


def test_smoothed_map_peaks_are_heatmap_peaks_of_a_portrait_map_without_a_limit():
    # Called on its own: no scratch, no limit, a map taller than wide (every row tested).
    heatmap = np.zeros((60, 20), np.float32)
    heatmap[[5, 30, 55], [3, 10, 16]] = 1.0
    heatmap += np.random.default_rng(5).random(heatmap.shape).astype(np.float32) * 0.05
    smooth = ndimage.gaussian_filter(heatmap.astype(np.float64), 1.0)

    class Given:  # SciPy's own smoothed map, handed over by rows
        def rows(self, first, last, out):
            out[...] = smooth[first:last]
            return out, 1e-9

    y, x = paf_peaks.smoothed_map_peaks(Given(), heatmap, 1.0, 4.0, 0.1)
    expected = paf_peaks.heatmap_peaks(heatmap, 1.0, 4.0, 0.1)
    assert y.tolist() == expected[0].tolist() == [5, 30, 55]
    assert x.tolist() == expected[1].tolist() == [3, 10, 16]


@pytest.mark.parametrize("network, stride, valid, image", GEOMETRIES[-2:])
def test_image_maps_find_the_peaks_of_the_resized_maps_in_any_frame(network, stride, valid,
                                                                    image, monkeypatch):
    maps = np.zeros((2, *network), np.float32)
    rng = np.random.default_rng(7)
    for channel in range(2):
        maps[channel, rng.integers(0, network[0], 6), rng.integers(0, network[1], 6)] = 0.9
    lazy, whole = _peaks_both_ways(maps, stride, valid, image, PafParams(), monkeypatch)
    assert len(lazy) >= 4
    _assert_same_peaks(lazy, whole)


def test_bands_of_a_few_rows_find_the_same_peaks(monkeypatch):
    # A big frame goes in bands (memory follows the band, not the frame): with bands of
    # 16 rows the 30 people's peaks must still be those of the filtering path.
    case = ref.NETWORK_CASES["30 people"]
    _, heatmaps = ref.network_case_maps(case)
    height, width = case["image"]
    monkeypatch.setattr(paf_peaks, "_BAND_PIXELS", 16 * width)
    lazy, whole = _peaks_both_ways(heatmaps[:18], 8, tuple(case["valid"]), (width, height),
                                   PafParams(max_peaks_per_part=20), monkeypatch)
    assert len(lazy) > 200
    _assert_same_peaks(lazy, whole)


@pytest.mark.parametrize("name", list(ref.NETWORK_CASES))
def test_image_maps_find_the_peaks_of_the_resized_maps(name, monkeypatch):
    case = ref.NETWORK_CASES[name]
    _, heatmaps = ref.network_case_maps(case)
    height, width = case["image"]
    lazy, whole = _peaks_both_ways(heatmaps[:18], 8, tuple(case["valid"]), (width, height),
                                   PafParams(), monkeypatch)
    _assert_same_peaks(lazy, whole)


def test_plateaus_and_ties_are_settled_on_the_exact_values(monkeypatch):
    # A constant block resizes and smooths to a plateau whose pixels tie within
    # float32 rounding; two equal bumps mirror each other. Every near-tie there is
    # inside the bound, so the exact test decides it, as the filtering path does.
    maps = np.zeros((3, 23, 41), np.float32)
    maps[0, 5:15, 10:30] = 0.5
    maps[1, 11, 10] = maps[1, 11, 30] = 0.8
    maps[1, 11, 20] = 0.8 - 1e-7
    maps[2, 0, :] = 0.3  # along the top edge: rows outside the map count as 0
    calls = []
    lazy, whole = _peaks_both_ways(maps, 8, (328, 184), (656, 368), PafParams(), monkeypatch,
                                   calls)
    assert calls, "no pixel needed the exact test: the case tests nothing"
    assert len(lazy) > 3
    _assert_same_peaks(lazy, whole)


def test_the_peak_limit_keeps_the_strongest_as_the_filtering_path(monkeypatch):
    maps = np.random.default_rng(3).random((2, 23, 41)).astype(np.float32)
    params = PafParams(max_peaks_per_part=4)
    lazy, whole = _peaks_both_ways(maps, 8, (328, 184), (656, 368), params, monkeypatch)
    assert np.diff(lazy.starts).tolist() == [4, 4]
    _assert_same_peaks(lazy, whole)


@pytest.fixture
def fresh_caches():
    cached = (paf_smoothing._resizes, paf_smoothing.resize_gain, paf_smoothing.opencv_agrees,
              paf_smoothing.axis_operator)
    for function in cached:
        function.cache_clear()
    yield
    for function in cached:
        function.cache_clear()


def test_an_opencv_that_resizes_otherwise_is_filtered_instead(fresh_caches, monkeypatch):
    # Weights that are not OpenCV's (bilinear, read the same way) stand for a build
    # whose resize takes another path: the check against cv2.resize itself must see
    # it, and the decoder must then find the peaks by filtering, still the same.
    def bilinear(size, new_size):
        identity = np.eye(size, dtype=np.float32)
        return cv2.resize(identity, (size, new_size), interpolation=cv2.INTER_LINEAR
                          ).astype(np.float64)

    assert paf_smoothing.opencv_agrees(23, 41, 8, (328, 184), (656, 368))
    for function in (paf_smoothing.opencv_agrees, paf_smoothing._resizes,
                     paf_smoothing.resize_gain):
        function.cache_clear()
    monkeypatch.setattr(paf_smoothing, "opencv_cubic_weights", bilinear)
    assert not paf_smoothing.opencv_agrees(23, 41, 8, (328, 184), (656, 368))
    maps = np.zeros((1, 23, 41), np.float32)
    maps[0, 11, 20] = 1.0
    assert smooth_network_map(maps[0], 8, (328, 184), (656, 368), 3.0, 4.0) is None
    lazy = find_peaks(ImageMaps(maps, 8, (328, 184), (656, 368)), PafParams())
    whole = find_peaks(resize_maps_to_image(maps, 8, (328, 184), (656, 368)), PafParams())
    assert len(lazy) == 2  # the impulse's two middle pixels tie
    _assert_same_peaks(lazy, whole)


@pytest.mark.parametrize("budget", [1, 7, 1 << 18])
def test_the_one_thread_product_is_the_product_in_any_chunks(budget, monkeypatch):
    monkeypatch.setattr(paf_smoothing, "_ONE_THREAD_MACS", budget)
    rng = np.random.default_rng(budget)
    a = rng.standard_normal((5, 3)).astype(np.float32)
    b = rng.standard_normal((3, 11)).astype(np.float32)
    out = np.full((5, 11), np.nan, np.float32)
    assert paf_smoothing.one_thread_matmul(a, b, out) is out
    exact = a.astype(np.float64) @ b.astype(np.float64)
    tolerance = 4 * 2.0 ** -24 * (np.abs(a) @ np.abs(b)).max()
    np.testing.assert_allclose(out, exact, rtol=0, atol=tolerance)
