"""Heatmap peaks for PAF decoding: the peaks of SciPy's Gaussian smoothing, 4-neighbour NMS.

Works on one heatmap at a time, so its memory is one map at the map size whatever
the number of parts. Shapes: K keypoints, P peaks, H, W map height and width.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

# Pixels of a map smoothed and compared with their neighbours at once: the temporaries
# are a band of about this many pixels (plus the kernel's reach), not the whole map.
# A 368x656 map is one band; a 4096x8192 frame goes in bands of 256 rows.
_BAND_PIXELS = 1 << 21
_MIN_BAND_ROWS = 16
# The float32 smoothing's distance to SciPy's float64 values is below
# (2·taps + 4)·2**-24·max|map|: the values' and weights' rounding, then one rounding
# per tap in each of the two passes. The margin is this many times that bound.
_ERROR_SAFETY = 4.0
# Absolute floor of the bound: SIMD code may flush float32 subnormals (< 1.2e-38) to 0.
_ERROR_FLOOR = 1e-35
# Beyond this float32's exponent range is near: such maps are smoothed in float64.
FLOAT32_SAFE = 1e30
# Beyond this a sum of two values may overflow float64.
_FLOAT64_SAFE = 1e307
# cv2.dilate with it gives the largest of the 4 neighbours, the pixel itself excluded.
_CROSS = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], np.uint8)
# OpenCV's filter2D convolves through a DFT from kernels of 50 values (130 for float32
# on SSE3 machines): below this a one-axis kernel is summed tap by tap.
_DIRECT_FILTER_TAPS = 50
# Pixels per call of the exact test, whose temporaries are ~25 taps wide per pixel.
_EXACT_CHUNK = 4096


class NonFiniteMap(ValueError):
    """A heatmap holds NaN or inf: found by the max and min the peak search reads anyway,
    so the decoder need not read the heatmaps once more to check them."""


class Scratch:
    """Arrays reused from one map to the next within one frame's decoding (one thread).

    A fresh megabyte array per map makes glibc give the pages back and fault them in
    again: more than the smoothing itself costs, on the ImageMaps path.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        """A C-contiguous array of `shape` and `dtype`, named for its role; its old
        contents are left as they are."""
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.dtype != dtype or buffer.size < size:
            buffer = self._buffers[name] = np.empty(size, dtype)
        return buffer[:size].reshape(shape)


@dataclass(frozen=True)
class Peaks:
    """All heatmap peaks of one frame, in id order: part by part, row-major within a part.

    xy: (P, 2) int64 (x, y) map pixels. scores: (P,) float64 unsmoothed heatmap
    value at the peak. parts: (P,) int64 keypoint index. starts: (K+1,) int64;
    the peaks of part k have ids starts[k]:starts[k+1].
    """

    xy: np.ndarray
    scores: np.ndarray
    parts: np.ndarray
    starts: np.ndarray

    def __len__(self) -> int:
        return self.xy.shape[0]

    def of_part(self, part: int) -> slice:
        return slice(int(self.starts[part]), int(self.starts[part + 1]))


def gaussian_kernel(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """SciPy's 1-D Gaussian weights: radius int(truncate·sigma + 0.5), normalised to sum 1."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x ** 2)
    return phi / phi.sum()


@functools.lru_cache(maxsize=8)
def smoothing_kernels(sigma: float, truncate: float) -> tuple[np.ndarray, np.ndarray]:
    """gaussian_kernel in float32 and float64, read-only: built once, not once per map."""
    kernel = gaussian_kernel(sigma, truncate)
    kernels = kernel.astype(np.float32), kernel
    for array in kernels:
        array.flags.writeable = False
    return kernels


def float_maps(maps: object) -> np.ndarray:
    """float32 or float64 maps as they are (OpenCV reads both); other dtypes as float64."""
    array = np.asarray(maps)
    return array if array.dtype in (np.float32, np.float64) else array.astype(np.float64)


def gaussian_smooth(maps: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """scipy.ndimage.gaussian_filter(map, sigma, mode='reflect', truncate) of each (H, W) map.

    maps: (K, H, W). Returns (K, H, W) float64, equal to SciPy to ~1e-15 (OpenCV
    sums in another order); gaussian_smooth_at gives SciPy's exact values. A
    float32 map is widened to float64 first, as the port's float64 maps hold it.
    """
    maps = float_maps(maps)
    if sigma <= 0:
        return maps.astype(np.float64)
    kernel = gaussian_kernel(sigma, truncate)
    out = np.empty(maps.shape, dtype=np.float64)
    for k in range(maps.shape[0]):
        cv2.sepFilter2D(np.ascontiguousarray(maps[k]), cv2.CV_64F, kernel, kernel, dst=out[k],
                        borderType=cv2.BORDER_REFLECT)
    return out


def reflect_index(index: np.ndarray, size: int) -> np.ndarray:
    """SciPy's 'reflect' extension (d c b a | a b c d | d c b a), repeated for any offset."""
    folded = np.mod(index, 2 * size)
    return np.where(folded >= size, 2 * size - 1 - folded, folded)


def gaussian_smooth_at(maps: np.ndarray, k: np.ndarray, y: np.ndarray, x: np.ndarray,
                       sigma: float, truncate: float = 4.0) -> np.ndarray:
    """SciPy's float64 gaussian_filter value at pixels (k, y, x), bit for bit.

    maps: (K, H, W); k, y, x: (P,) pixel indices (whole-valued floats are cast).
    Returns (P,) float64. SciPy filters axis 0
    then axis 1, each output starting at centre·w0 and adding (left_j + right_j)·w_j
    from the outermost tap inwards; the same operations in the same order give
    its result.
    """
    maps = np.asarray(maps)
    k, y, x = (np.asarray(v, dtype=np.intp).reshape(-1) for v in (k, y, x))
    if sigma <= 0:
        return maps[k, y, x].astype(np.float64)
    weights = gaussian_kernel(sigma, truncate)
    radius = len(weights) // 2
    offsets = np.arange(-radius, radius + 1)
    rows = reflect_index(y[:, None] + offsets, maps.shape[1])
    cols = reflect_index(x[:, None] + offsets, maps.shape[2])
    kk = k[:, None]

    def at(tap: int) -> np.ndarray:
        return maps[kk, rows[:, tap:tap + 1], cols].astype(np.float64)

    # First pass (along H) at row y, for every column the second pass reads.
    column = at(radius) * weights[radius]
    for j in range(radius, 0, -1):
        column += (at(radius - j) + at(radius + j)) * weights[radius - j]
    value = column[:, radius] * weights[radius]
    for j in range(radius, 0, -1):
        value += (column[:, radius - j] + column[:, radius + j]) * weights[radius - j]
    return value


def gaussian_smooth_tile(heatmap: np.ndarray, rows: slice, cols: slice, sigma: float,
                         truncate: float = 4.0) -> np.ndarray:
    """SciPy's float64 gaussian_filter of one (H, W) map on heatmap[rows, cols], bit for bit.

    The operations of gaussian_smooth_at, in its order, on a whole tile at once:
    cheaper than point by point when many pixels of a region are needed (plateaus).
    rows, cols: slices with start and stop inside the map.
    """
    height, width = heatmap.shape
    if sigma <= 0:
        return heatmap[rows, cols].astype(np.float64)
    weights = gaussian_kernel(sigma, truncate)
    radius = len(weights) // 2
    n, m = rows.stop - rows.start, cols.stop - cols.start
    source = np.asarray(heatmap)[
        reflect_index(np.arange(rows.start - radius, rows.stop + radius), height)[:, None],
        reflect_index(np.arange(cols.start - radius, cols.stop + radius), width)].astype(np.float64)
    column = source[radius:radius + n] * weights[radius]
    for j in range(radius, 0, -1):
        column += (source[radius - j:radius - j + n] + source[radius + j:radius + j + n]) \
            * weights[radius - j]
    value = column[:, radius:radius + m] * weights[radius]
    for j in range(radius, 0, -1):
        value += (column[:, radius - j:radius - j + m] + column[:, radius + j:radius + j + m]) \
            * weights[radius - j]
    return value


_NEIGHBOURS = np.array([(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)])
# The same neighbours' cells in a pixel's 3x3 block, flattened row-major.
_NEIGHBOUR_CELLS = 4 + 3 * _NEIGHBOURS[1:, 0] + _NEIGHBOURS[1:, 1]
# A point costs about this many tile pixels when smoothed exactly on its own (its
# five values gather ~25 taps each, scattered); beyond that a tile is cheaper.
_POINT_COST = 200
# Up to this many pixels go through _float64_peak_test first (a patch of ~27x27
# values each); a plateau's thousands go straight to SciPy's order, a tile at a time.
_PRODUCT_POINTS = 256


def _exact_peak_test(heatmap: np.ndarray, y: np.ndarray, x: np.ndarray, sigma: float,
                     truncate: float, threshold: float) -> np.ndarray:
    """The peak test at pixels (y, x) of one (H, W) map on SciPy's exact smoothed values.

    A few pixels (the usual near-ties of a smooth map) are first tested on float64
    values within ~1e-14 of SciPy's (_float64_peak_test), ten times cheaper; only the
    ties that bound leaves are computed in SciPy's own order of operations.
    """
    if sigma <= 0 or len(y) > _PRODUCT_POINTS:
        return _scipy_order_peak_test(heatmap, y, x, sigma, truncate, threshold)
    result, decided = _float64_peak_test(heatmap, y, x, sigma, truncate, threshold)
    left = np.flatnonzero(~decided)
    if len(left):
        result[left] = _scipy_order_peak_test(heatmap, y[left], x[left], sigma, truncate,
                                              threshold)
    return result


@functools.lru_cache(maxsize=8)
def _patch_kernels(sigma: float, truncate: float) -> tuple[np.ndarray, np.ndarray]:
    """Offsets of a pixel's patch (the kernel's reach around it and its neighbours) and
    the float64 kernel at three shifts, whose rows smooth the patch at −1, 0, +1."""
    weights = smoothing_kernels(sigma, truncate)[1]
    taps = len(weights)
    shifted = np.zeros((3, taps + 2))
    for shift in range(3):
        shifted[shift, shift:shift + taps] = weights
    offsets = np.arange(taps + 2) - taps // 2 - 1
    for array in (offsets, shifted):
        array.flags.writeable = False
    return offsets, shifted


def _float64_peak_test(heatmap: np.ndarray, y: np.ndarray, x: np.ndarray, sigma: float,
                       truncate: float, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(result, decided) of the peak test at pixels (y, x) of one (H, W) map, on float64
    smoothed values within a rigorous bound of SciPy's; result holds where decided.

    Each pixel's patch (the kernel's reach around it and its 4 neighbours, SciPy's
    reflect at the edges) is smoothed by two products with the kernel at three shifts.
    """
    height, width = heatmap.shape
    offsets, shifted = _patch_kernels(float(sigma), float(truncate))
    rows = reflect_index(y[:, None] + offsets, height)
    cols = reflect_index(x[:, None] + offsets, width)
    patch = np.asarray(heatmap)[rows[:, :, None], cols[:, None, :]].astype(np.float64)
    smooth = (shifted @ patch @ shifted.T).reshape(-1, 9)  # rows y−1..y+1 × columns x−1..x+1
    centre = smooth[:, 4]
    ny, nx = y[:, None] + _NEIGHBOURS[1:, 0], x[:, None] + _NEIGHBOURS[1:, 1]
    inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
    beside = np.where(inside, smooth[:, _NEIGHBOUR_CELLS], 0.0).max(axis=1)  # 0 outside
    # Positive weights summing to 1: these values and SciPy's are each within
    # (2·taps + 4)·2**-53·max|patch| of the exact sums, in any order of the additions.
    taps = len(offsets) - 2
    largest = np.abs(patch).max(axis=(1, 2))
    error = _ERROR_SAFETY * 2 * (2 * taps + 4) * 2.0 ** -53 * largest + _ERROR_FLOOR
    peak = (centre > threshold + error) & (centre >= beside + 2 * error)
    not_peak = (centre <= threshold - error) | (centre < beside - 2 * error)
    # SciPy adds two values before weighting them: near float64's limit its sums
    # overflow where these do not, so such patches are left to its order.
    decided = (peak | not_peak) & (largest < _FLOAT64_SAFE)
    return peak & decided, decided


def _scipy_order_peak_test(heatmap: np.ndarray, y: np.ndarray, x: np.ndarray, sigma: float,
                           truncate: float, threshold: float) -> np.ndarray:
    """The peak test at pixels (y, x) of one (H, W) map on SciPy's values, computed in
    SciPy's order of operations (bit for bit)."""
    height, width = heatmap.shape
    top, left = max(int(y.min()) - 1, 0), max(int(x.min()) - 1, 0)
    rows = slice(top, min(int(y.max()) + 2, height))
    cols = slice(left, min(int(x.max()) + 2, width))
    tile = None
    if (rows.stop - rows.start) * (cols.stop - cols.start) < _POINT_COST * len(y):
        tile = gaussian_smooth_tile(heatmap, rows, cols, sigma, truncate)
    # A plateau makes a whole band of rows unsure: its pixels go in chunks, so that
    # their five values each stay a small temporary.
    chunk = _EXACT_CHUNK if tile is None else 16 * _EXACT_CHUNK
    result = np.empty(len(y), dtype=bool)
    for start in range(0, len(y), chunk):
        part = slice(start, start + chunk)
        ny = y[part, None] + _NEIGHBOURS[:, 0]
        nx = x[part, None] + _NEIGHBOURS[:, 1]
        inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
        values = np.zeros(ny.shape)
        if tile is not None:
            values[inside] = tile[ny[inside] - top, nx[inside] - left]
        else:
            values[inside] = gaussian_smooth_at(heatmap[None], np.zeros(int(inside.sum()),
                                                                        np.intp),
                                                ny[inside], nx[inside], sigma, truncate)
        result[part] = (values[:, 0] > threshold) & (values[:, :1] >= values).all(axis=1)
    return result


def heatmap_peaks(heatmap: np.ndarray, sigma: float, truncate: float, threshold: float,
                  limit: int | None = None, scratch: Scratch | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(y, x) int64 of the peaks of one (H, W) heatmap, row-major.

    A peak is a pixel whose smoothed value (SciPy's gaussian_filter, reflect) is
    >= its 4 neighbours (0 outside the map) and > threshold. With limit, only the
    `limit` peaks of highest heatmap value are kept (ties: the first in row-major
    order), as strongest() on all of them would keep. NonFiniteMap if the map
    holds NaN or inf (every value is read once anyway). The map is smoothed and
    searched a band of rows at a time (a 368x656 map is one band), so memory
    besides the map is one band, plateaus included. The peaks are those of
    SciPy's float64 smoothing, bit for bit: see _band_peaks. scratch: buffers to
    reuse, when several maps are searched one after another.
    """
    heatmap = float_maps(heatmap)
    return _peaks_by_band(heatmap, limit, scratch, lambda top, bottom, scratch: _band_peaks(
        heatmap, top, bottom, sigma, truncate, threshold, scratch))


def _peaks_by_band(heatmap: np.ndarray, limit: int | None, scratch: Scratch | None,
                   band_peaks) -> tuple[np.ndarray, np.ndarray]:
    """(y, x) of the peaks band_peaks(top, bottom, scratch) finds (as y − top, x) in
    bands of rows of the (H, W) heatmap, the `limit` strongest kept as they come."""
    scratch = Scratch() if scratch is None else scratch
    height, width = heatmap.shape
    band_rows = max(_BAND_PIXELS // max(width, 1), _MIN_BAND_ROWS)
    ys, xs = np.zeros(0, np.int64), np.zeros(0, np.int64)
    for top in range(0, height, band_rows):
        y, x = band_peaks(top, min(top + band_rows, height), scratch)
        ys = np.concatenate([ys, y + top])
        xs = np.concatenate([xs, x])
        if limit is not None and len(ys) > limit:
            # Earlier bands come first, so a stable top-k over what is kept so far and
            # this band equals the top-k of the whole map: a plateau costs one band.
            keep = strongest(heatmap[ys, xs], limit)
            ys, xs = ys[keep], xs[keep]
    return ys, xs


def _band_peaks(heatmap: np.ndarray, top: int, bottom: int, sigma: float, truncate: float,
                threshold: float, scratch: Scratch) -> tuple[np.ndarray, np.ndarray]:
    """(y − top, x) of the peaks in rows top:bottom of one (H, W) map.

    The smoothing runs in float32 (twice as fast as float64 in OpenCV) with a
    rigorous bound on its distance to SciPy's float64 values, which
    _decided_peaks uses.
    """
    height = heatmap.shape[0]
    exact = sigma <= 0
    kernels = None if exact else smoothing_kernels(float(sigma), float(truncate))
    radius = 0 if exact else len(kernels[1]) // 2
    # Rows whose smoothed values the band's peak test reads, and the raw rows they read.
    first, last = max(top - 1, 0), min(bottom + 1, height)
    source_top, source_bottom = max(first - radius, 0), min(last + radius, height)
    source = heatmap[source_top:source_bottom]
    row_high = source.max(axis=1)
    high, low = float(row_high.max()), float(source.min())
    # Both propagate NaN, and an inf is one of them; the bands' sources cover the map.
    if not (math.isfinite(high) and math.isfinite(low)):
        raise NonFiniteMap(f"rows {source_top}:{source_bottom} hold NaN/inf values")
    largest = max(high, -low)
    # float32 cannot hold the map: smooth in float64, whose error bound is 2**29 smaller.
    wide = largest > FLOAT32_SAFE
    unit = 2.0 ** -53 if wide else 2.0 ** -24
    error = 0.0 if exact else (
        _ERROR_SAFETY * (2 * (2 * radius + 1) + 4) * unit * largest + _ERROR_FLOOR)
    # Gaussian weights are positive and sum to 1 (to rounding): no smoothed value
    # exceeds the largest raw value it reads (by more than `error`), so a row
    # farther than the kernel's radius from every raw value above threshold − error
    # holds no peak. The band shrinks to the rows that may hold one (on a crowded
    # frame ~85% of a map), or is empty.
    # In float64: a float32 map's 0.1 is above a threshold of 0.1, float32(0.1) is not.
    hot = np.flatnonzero(row_high.astype(np.float64) + error > threshold) + source_top
    if not len(hot):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    start = max(top, int(hot[0]) - radius)
    stop = min(bottom, int(hot[-1]) + radius + 1)
    if start >= stop:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    shift, top, bottom = start - top, start, stop
    first, last = max(top - 1, 0), min(bottom + 1, height)
    source_top, source_bottom = max(first - radius, 0), min(last + radius, height)
    source = heatmap[source_top:source_bottom]
    if exact:
        smooth = source.astype(np.float64)
    else:
        # Smoothing only near raw values above the threshold was tried: on a crowded
        # frame the rectangles and their kernel borders cover ~75% of the map, and
        # the many small OpenCV calls cost more than one call on the whole band.
        kernel = kernels[1] if wide else kernels[0]
        # OpenCV's reflect equals SciPy's at the map's edges; at a cut inside the map
        # the reflected rows only reach the `radius` rows dropped below.
        smooth = separable_filter(source.astype(kernel.dtype, copy=False), kernel, scratch)
    y, x = _decided_peaks(smooth[first - source_top:last - source_top], top - first,
                          bottom - first, error, threshold, heatmap, first, sigma, truncate,
                          scratch)
    return y + shift, x


def separable_filter(source: np.ndarray, kernel: np.ndarray, scratch: Scratch) -> np.ndarray:
    """`kernel` along each axis of a (H, W) float map (OpenCV's reflect), into scratch.

    Two one-axis cv2.filter2D calls: OpenCV's sepFilter2D runs a symmetric kernel's
    row pass through a slower path, so on a 368x656 map they cost ~0.6 of its time.
    Either way each pass sums `taps` products in the map's dtype, which is all the
    error bound assumes. From _DIRECT_FILTER_TAPS up, filter2D may convolve through
    a DFT, whose error is relative to the whole map rather than to each window.
    """
    dtype = source.dtype
    if len(kernel) >= _DIRECT_FILTER_TAPS:
        return cv2.sepFilter2D(source, -1, kernel, kernel, dst=scratch.get(
            "smooth", source.shape, dtype), borderType=cv2.BORDER_REFLECT)
    along_rows = cv2.filter2D(source, -1, kernel.reshape(1, -1), dst=scratch.get(
        "along_rows", source.shape, dtype), borderType=cv2.BORDER_REFLECT)
    return cv2.filter2D(along_rows, -1, kernel.reshape(-1, 1), dst=scratch.get(
        "smooth", source.shape, dtype), borderType=cv2.BORDER_REFLECT)


def _decided_peaks(smooth: np.ndarray, start: int, stop: int, error: float, threshold: float,
                   heatmap: np.ndarray, offset: int, sigma: float, truncate: float,
                   scratch: Scratch) -> tuple[np.ndarray, np.ndarray]:
    """(y − start, x) int64 of the peaks among rows start:stop of `smooth`.

    smooth: rows offset: of the heatmap, smoothed, each value within `error` of
    SciPy's (0: exactly SciPy's), with every row the tested rows' neighbours need
    (a missing one must be outside the map). Pixels the bound decides either way are
    decided; only those within it (near-ties, which plateaus make) are tested again
    on SciPy's exact values, computed from `heatmap`.
    """
    # The threshold rounds to the map's dtype when compared: widen the margin by that.
    margin = error + 4.0 * 2.0 ** -24 * abs(threshold) if error else 0.0
    # The largest of the 4 neighbours, 0 outside the block: outside the map where the
    # block meets its edge, and elsewhere only on rows the caller does not test.
    neighbours = cv2.dilate(smooth, _CROSS, dst=scratch.get("neighbours", smooth.shape,
                                                            smooth.dtype),
                            borderType=cv2.BORDER_CONSTANT, borderValue=0)
    values = smooth[start:stop]
    neighbours = neighbours[start:stop]
    near = values >= neighbours - 2 * error
    near &= values > threshold - margin
    # flatnonzero, then divmod: 2-D nonzero costs ~20x more on a mostly empty mask.
    y, x = np.divmod(np.flatnonzero(near), near.shape[1])
    if not error or not len(y):
        return y.astype(np.int64), x.astype(np.int64)
    candidate, beside = values[y, x], neighbours[y, x]
    sure = (candidate > threshold + margin) & (candidate >= beside + 2 * error)
    unsure = np.flatnonzero(~sure)
    if len(unsure):
        sure[unsure] = _exact_peak_test(heatmap, y[unsure] + offset + start, x[unsure], sigma,
                                        truncate, threshold)
    return y[sure].astype(np.int64), x[sure].astype(np.int64)


def smoothed_map_peaks(smoothing, heatmap: np.ndarray, sigma: float, truncate: float,
                       threshold: float, limit: int | None = None,
                       scratch: Scratch | None = None) -> tuple[np.ndarray, np.ndarray]:
    """heatmap_peaks of a (H, W) heatmap whose smoothed rows someone else computes.

    smoothing: has rows(first, last, out) giving rows first:last of the smoothed map
    as (last − first, W) float32 (into `out`) and an error > 0, each value within
    it of SciPy's. The peaks are still SciPy's bit for bit: pixels within the
    bound are tested on the exact values, from `heatmap`. Bands of rows as in
    heatmap_peaks, so memory besides the heatmap is one band. heatmap must be
    finite: nothing here reads all of it.
    """
    heatmap = float_maps(heatmap)
    height, width = heatmap.shape

    def band_peaks(top: int, bottom: int, scratch: Scratch) -> tuple[np.ndarray, np.ndarray]:
        first, last = max(top - 1, 0), min(bottom + 1, height)
        smooth, error = smoothing.rows(first, last, scratch.get("smooth", (last - first, width),
                                                                np.float32))
        return _decided_peaks(smooth, top - first, bottom - first, error, threshold, heatmap,
                              first, sigma, truncate, scratch)

    return _peaks_by_band(heatmap, limit, scratch, band_peaks)


def strongest(scores: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the `limit` highest scores, ties to the lower index, in increasing order."""
    if len(scores) <= limit:
        return np.arange(len(scores))
    return np.sort(np.argsort(-np.asarray(scores), kind="stable")[:limit])
