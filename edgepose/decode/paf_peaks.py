"""Heatmap peaks for PAF decoding: SciPy's Gaussian smoothing bit for bit, 4-neighbour NMS.

Works on one heatmap at a time, so its memory is one map at the map size whatever
the number of parts. Shapes: K keypoints, P peaks, H, W map height and width.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Rows of a map smoothed and compared with their neighbours at once: the temporaries
# are this many rows (plus the kernel's reach), not the whole map.
_BAND_ROWS = 256
# Pixels per call of the exact test, whose temporaries are ~25 taps wide per pixel.
_EXACT_CHUNK = 4096


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


def _reflect(index: np.ndarray, size: int) -> np.ndarray:
    """SciPy's 'reflect' extension (d c b a | a b c d | d c b a), repeated for any offset."""
    folded = np.mod(index, 2 * size)
    return np.where(folded >= size, 2 * size - 1 - folded, folded)


def gaussian_smooth_at(maps: np.ndarray, k: np.ndarray, y: np.ndarray, x: np.ndarray,
                       sigma: float, truncate: float = 4.0) -> np.ndarray:
    """SciPy's float64 gaussian_filter value at pixels (k, y, x), bit for bit.

    maps: (K, H, W); k, y, x: (P,) int. Returns (P,) float64. SciPy filters axis 0
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
    rows = _reflect(y[:, None] + offsets, maps.shape[1])
    cols = _reflect(x[:, None] + offsets, maps.shape[2])
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
        _reflect(np.arange(rows.start - radius, rows.stop + radius), height)[:, None],
        _reflect(np.arange(cols.start - radius, cols.stop + radius), width)].astype(np.float64)
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
# A point costs about this many tile pixels when smoothed exactly on its own (its
# five values gather ~25 taps each, scattered); beyond that a tile is cheaper.
_POINT_COST = 200


def _exact_peak_test(heatmap: np.ndarray, y: np.ndarray, x: np.ndarray, sigma: float,
                     truncate: float, threshold: float) -> np.ndarray:
    """The peak test at pixels (y, x) of one (H, W) map on SciPy's exact smoothed values."""
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
                  limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(y, x) int64 of the peaks of one (H, W) heatmap, row-major.

    A peak is a pixel whose smoothed value (SciPy's gaussian_filter, reflect) is
    >= its 4 neighbours (0 outside the map) and > threshold. With limit, only the
    `limit` peaks of highest heatmap value are kept (ties: the first in row-major
    order), as strongest() on all of them would keep. The map is smoothed and
    searched a band of rows at a time, so memory besides the map is one band,
    plateaus included.
    """
    heatmap = float_maps(heatmap)
    height, width = heatmap.shape
    # OpenCV differs from SciPy by ~1e-15·max|map|: decide clear pixels with a margin
    # either way and recompute the near-ties with SciPy's exact arithmetic. The map's
    # own largest value bounds its error; max and min avoid an |map| copy.
    exact = sigma <= 0
    largest = max(float(heatmap.max(initial=0.0)), -float(heatmap.min(initial=0.0)))
    margin = 0.0 if exact else 2e-9 * max(1.0, largest)
    ys, xs = np.zeros(0, np.int64), np.zeros(0, np.int64)
    for top in range(0, height, _BAND_ROWS):
        bottom = min(top + _BAND_ROWS, height)
        # The band and a row either side, which its up and down neighbours need.
        first, last = max(top - 1, 0), min(bottom + 1, height)
        smooth = _smooth_rows(heatmap, first, last, sigma, truncate)
        values = smooth[top - first:bottom - first]
        sure = values > threshold + margin
        near = values > threshold - margin
        _and_not_below_neighbours(sure, smooth, top - first, bottom - first, margin)
        _and_not_below_neighbours(near, smooth, top - first, bottom - first, -margin)
        if not exact:
            uy, ux = np.nonzero(near & ~sure)
            if len(uy):
                sure[uy, ux] = _exact_peak_test(heatmap, uy + top, ux, sigma, truncate,
                                                threshold)
        y, x = np.nonzero(sure)
        ys = np.concatenate([ys, y + top])
        xs = np.concatenate([xs, x])
        if limit is not None and len(ys) > limit:
            # Earlier bands come first, so a stable top-k over what is kept so far and
            # this band equals the top-k of the whole map: a plateau costs one band.
            keep = strongest(heatmap[ys, xs], limit)
            ys, xs = ys[keep], xs[keep]
    return ys, xs


def _smooth_rows(heatmap: np.ndarray, top: int, bottom: int, sigma: float,
                 truncate: float) -> np.ndarray:
    """gaussian_smooth's rows top:bottom of one (H, W) map, from only the rows they read.

    The rows above and below come reflected as SciPy extends the map; OpenCV's own
    border then touches only rows that are cut off, and the columns as before.
    """
    if sigma <= 0:
        return heatmap[top:bottom].astype(np.float64)
    kernel = gaussian_kernel(sigma, truncate)
    radius = len(kernel) // 2
    rows = _reflect(np.arange(top - radius, bottom + radius), heatmap.shape[0])
    block = cv2.sepFilter2D(heatmap[rows], cv2.CV_64F, kernel, kernel,
                            borderType=cv2.BORDER_REFLECT)
    return block[radius:radius + bottom - top]


def _and_not_below_neighbours(out: np.ndarray, smooth: np.ndarray, top: int, bottom: int,
                              offset: float) -> None:
    """out &= smooth[top:bottom] >= neighbour + offset for its 4 neighbours, 0 outside `smooth`.

    Compared slice against slice, so no neighbour array is built: the temporaries
    are one band of float64 and one of bool at a time.
    """
    values = smooth[top:bottom]
    if top > 0:
        out &= values >= smooth[top - 1:bottom - 1] + offset
    else:
        out[1:] &= values[1:] >= values[:-1] + offset
        out[0] &= values[0] >= 0.0 + offset
    if bottom < smooth.shape[0]:
        out &= values >= smooth[top + 1:bottom + 1] + offset
    else:
        out[:-1] &= values[:-1] >= values[1:] + offset
        out[-1] &= values[-1] >= 0.0 + offset
    out[:, 1:] &= values[:, 1:] >= values[:, :-1] + offset
    out[:, 0] &= values[:, 0] >= 0.0 + offset
    out[:, :-1] &= values[:, :-1] >= values[:, 1:] + offset
    out[:, -1] &= values[:, -1] >= 0.0 + offset


def strongest(scores: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the `limit` highest scores, ties to the lower index, in increasing order."""
    if len(scores) <= limit:
        return np.arange(len(scores))
    return np.sort(np.argsort(-np.asarray(scores), kind="stable")[:limit])
