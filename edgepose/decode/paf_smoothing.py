"""The port's heatmap path from network maps to smoothed image maps, as two small products.

body.py takes each network heatmap S (h, w) through a ×stride cubic resize, a crop
to the valid part, a cubic resize to the image, then SciPy's gaussian_filter. Each
step is linear and works on rows and columns apart (OpenCV's cubic resize is one
set of weights along x and one along y; the crop keeps rows and columns; the filter
is one 1-D kernel per axis), so per axis they compose into one (image, network)
matrix A, and the smoothed map is A_y · S · A_xᵀ: a 23x41 map multiplied out,
instead of 368x656 values filtered with 25 taps in each direction.

The result is not bit for bit the port's: OpenCV rounds each resize pass to
float32, and the products here are float32 too. Each band of rows comes with a
rigorous bound on its distance to the port's smoothed values, which is what
paf_peaks' peak test needs to settle every pixel it can and test the rest on the
exact values.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from edgepose.decode.paf_peaks import FLOAT32_SAFE, reflect_index, gaussian_kernel

_UNIT = 2.0 ** -24  # float32's unit roundoff
# One OpenCV cubic pass sums 4 products in float32: at most 4 roundings of the
# magnitudes it adds, plus one where a border folds two weights into one.
_OPENCV_PASS_ROUNDINGS = 5
_OPENCV_PASSES = 4  # x then y, for each of the two resizes
# The bound is this many times the worst case worked out below.
_ERROR_SAFETY = 4.0
# Absolute floor: SciPy's own float64 arithmetic, and float32 subnormals that SIMD
# code may flush to 0.
_ERROR_FLOOR = 1e-35
# OpenBLAS's threshold for threading a product (its SMP_THRESHOLD_MIN times
# GEMM_MULTITHREAD_THRESHOLD), in multiply-adds.
_ONE_THREAD_MACS = 1 << 18
# Frames more than this many times the network input's valid part per side are
# filtered instead: their maps are so smooth that near-ties (settled exactly, each
# costly) decide the time, and the filter's tighter bound leaves fewer. Measured on
# the demo model's 32x40 maps, 18 heatmaps (ms, products / filter): x4 96/128
# (python) and 122/154 (cmu); x8 346/513 and 639/644; x12.5 939/1119 and 2329/1753.
_MAX_UPSCALE = 4
# Image rows per block of the products (see AxisOperator.apply).
_BLOCK_ROWS = 64


@dataclass(frozen=True)
class AxisOperator:
    """One axis of the port's path: image index ← network index.

    matrix: (image, network) float32, the Gaussian of the crop of the resizes.
    abs_sum: the largest row sum of |matrix| (in float64). nonzeros: the most
    nonzero weights in a row. resize_abs: the product of the largest row sums of
    |weights| of OpenCV's two resizes along this axis. blocks: (first row, end row,
    first column, end column) of row blocks covering the matrix, each with every
    network row its rows reach inside its columns: through any weight of the
    resizes and the Gaussian, even one the composition cancels to 0.
    """

    matrix: np.ndarray
    abs_sum: float
    nonzeros: int
    resize_abs: float
    blocks: tuple[tuple[int, int, int, int], ...]

    def apply(self, values: np.ndarray, first: int, last: int, out: np.ndarray) -> np.ndarray:
        """Rows first:last of matrix @ values, into `out`, block by block: a row's
        weights reach only ~6 network rows, so the blocks skip most of the zeros a
        whole product would multiply (2.4x faster at 368 rows from 23). Skipped terms
        are exact zeros: the same sums."""
        for start, end, left, right in self.blocks:
            start, end = max(start, first), min(end, last)
            if start < end:
                one_thread_matmul(self.matrix[start:end, left:right], values[left:right],
                                  out[start - first:end - first])
        return out


@dataclass(frozen=True)
class NetworkSmoothing:
    """The port's smoothed image map of one network map, a band of rows at a time.

    columns: (h, W) float32, the network map times A_xᵀ. row_peaks: (h,) the
    largest |value| of each network row. error_per_unit: the bound of
    smooth_network_map per unit of the largest |value| the rows reach.
    """

    along_y: AxisOperator
    columns: np.ndarray
    row_peaks: np.ndarray
    error_per_unit: float

    def rows(self, first: int, last: int, out: np.ndarray | None = None
             ) -> tuple[np.ndarray, float]:
        """Rows first:last of the smoothed map, (last − first, W) float32, and their
        error: the bound scaled by the largest value among the network rows they
        reach (through OpenCV's weights, not only the composed ones), so a band of
        faint rows is settled with a small bound."""
        if out is None:
            out = np.empty((last - first, self.columns.shape[1]), np.float32)
        reached = [(left, right) for start, end, left, right in self.along_y.blocks
                   if start < max(last, first + 1) and end > first]
        left, right = min(r[0] for r in reached), max(r[1] for r in reached)
        largest = float(self.row_peaks[left:right].max()) if right > left else 0.0
        return (self.along_y.apply(self.columns, first, last, out),
                self.error_per_unit * largest + _ERROR_FLOOR)


def one_thread_matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """a @ b into `out`, in chunks of rows small enough for OpenBLAS to run each on the
    calling thread (it threads products above m·n·k = 2**18). Waking the BLAS's
    threads for products this small costs more than it saves, and on a busy machine
    (a stream's other stages, other processes) it doubled a big frame's decoding.
    Rows, not columns: each chunk of `out` stays contiguous."""
    rows, inner = a.shape
    step = max(1, _ONE_THREAD_MACS // max(inner * b.shape[1], 1))
    for start in range(0, rows, step):
        np.matmul(a[start:start + step], b, out=out[start:start + step])
    return out


def opencv_cubic_weights(size: int, new_size: int) -> np.ndarray:
    """(new_size, size) float64: the weights cv2.resize(INTER_CUBIC) gives each source
    pixel along one axis, border folding included.

    Read from OpenCV itself by resizing the identity along that axis only: the other
    axis keeps its size, where the cubic weights are exactly (0, 1, 0, 0), so each
    output is one weight times 1.0 (or two border weights folded into one sum).
    """
    identity = np.eye(size, dtype=np.float32)
    return cv2.resize(identity, (size, new_size), interpolation=cv2.INTER_CUBIC
                      ).astype(np.float64)


def gaussian_rows(matrix: np.ndarray, sigma: float, truncate: float) -> np.ndarray:
    """SciPy's 1-D gaussian_filter (mode 'reflect') along axis 0 of a float64 matrix."""
    weights = gaussian_kernel(sigma, truncate)
    radius = len(weights) // 2
    rows = np.arange(matrix.shape[0])
    out = np.zeros(matrix.shape)
    for tap, weight in enumerate(weights):
        out += weight * matrix[reflect_index(rows + tap - radius, matrix.shape[0])]
    return out


@functools.lru_cache(maxsize=16)
def _resizes(size: int, stride: int, valid: int, image: int
             ) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's weights of the port's two resizes along one axis: ×stride cropped to the
    first `valid` rows, (valid, size), then to the image, (image, valid)."""
    return (opencv_cubic_weights(size, size * stride)[:valid],
            opencv_cubic_weights(valid, image))


@functools.lru_cache(maxsize=16)
def resize_gain(size: int, stride: int, valid: int, image: int) -> float:
    """How much the port's two cubic resizes can enlarge a value along one axis: the
    product of their largest row sums of |weights|. The resized map's values are at
    most resize_gain(y)·resize_gain(x)·max|map| (plus float32 rounding)."""
    upsample, to_image = _resizes(size, stride, valid, image)
    return float(np.abs(upsample).sum(axis=1).max() * np.abs(to_image).sum(axis=1).max())


def _resize_matrix(size: int, stride: int, valid: int, image: int) -> np.ndarray:
    """(image, size) float64: the port's two resizes along one axis as one matrix."""
    upsample, to_image = _resizes(size, stride, valid, image)
    return to_image @ upsample


@functools.lru_cache(maxsize=16)
def opencv_agrees(height: int, width: int, stride: int, valid_size: tuple[int, int],
                  image_size: tuple[int, int]) -> bool:
    """Whether this OpenCV resizes a (height, width) map as the weight matrices say,
    within its float32 rounding; checked once per geometry on a fixed random map.

    The weights come from resizing the identity, which assumes one linear,
    separable algorithm for every input. A build whose resize takes another
    path for some sizes (a vendor library, say) fails this, and its maps are
    filtered at image size instead.
    """
    (valid_w, valid_h), (image_w, image_h) = valid_size, image_size
    probe = np.random.default_rng(0).standard_normal((height, width)).astype(np.float32)
    upsampled = cv2.resize(probe, (width * stride, height * stride),
                           interpolation=cv2.INTER_CUBIC)[:valid_h, :valid_w]
    resized = cv2.resize(upsampled, image_size, interpolation=cv2.INTER_CUBIC)
    along_x = _resize_matrix(width, stride, valid_w, image_w)
    half = _resize_matrix(height, stride, valid_h, image_h) @ probe.astype(np.float64)
    # A band of rows at a time: a whole float64 frame would double a big frame's memory.
    step = max(1, (1 << 20) // image_w)
    distance = max(np.abs(half[rows] @ along_x.T - resized[rows]).max()
                   for rows in (slice(start, start + step) for start in range(0, image_h, step)))
    gain = resize_gain(height, stride, valid_h, image_h) * resize_gain(width, stride, valid_w,
                                                                        image_w)
    bound = _OPENCV_PASSES * _OPENCV_PASS_ROUNDINGS * gain * _UNIT * np.abs(probe).max()
    return bool(distance <= bound)


@functools.lru_cache(maxsize=16)
def axis_operator(size: int, stride: int, valid: int, image: int, sigma: float,
                  truncate: float) -> AxisOperator:
    """The port's path along one axis: network `size` → ×stride → first `valid` → `image`,
    then the Gaussian. Cached: a stream's frames share their sizes."""
    upsample, to_image = _resizes(size, stride, valid, image)
    composed = gaussian_rows(to_image @ upsample, sigma, truncate)
    reach = gaussian_rows(np.abs(to_image) @ np.abs(upsample), sigma, truncate) > 0
    matrix = composed.astype(np.float32)
    matrix.flags.writeable = False
    blocks = []
    for first in range(0, image, _BLOCK_ROWS):
        end = min(first + _BLOCK_ROWS, image)
        columns = np.flatnonzero(reach[first:end].any(axis=0))
        # Rows that reach nothing get no columns: their product is zeros.
        left, right = (int(columns[0]), int(columns[-1]) + 1) if len(columns) else (0, 0)
        blocks.append((first, end, left, right))
    return AxisOperator(matrix=matrix, abs_sum=float(np.abs(composed).sum(axis=1).max()),
                        nonzeros=int(np.count_nonzero(matrix, axis=1).max()),
                        resize_abs=resize_gain(size, stride, valid, image), blocks=tuple(blocks))


def smooth_network_map(network_map: np.ndarray, stride: int, valid_size: tuple[int, int],
                       image_size: tuple[int, int], sigma: float, truncate: float
                       ) -> NetworkSmoothing | None:
    """The port's smoothed image map of one (h, w) float32 network map, and its error.

    valid_size, image_size: (width, height). Returns a NetworkSmoothing whose rows
    are within their error of gaussian_filter(sigma, truncate) applied in float64
    to the port's float32 resize (resize_maps_to_image); None when sigma is
    0, the frame is more than _MAX_UPSCALE times the valid input per side, the
    map's values are too large for float32 products, or this OpenCV does not
    resize as its weights say (opencv_agrees).

    The bound, with M the largest |S| the rows reach, r the row sums of |weights|
    and u = 2^-24:
    - OpenCV: each of its four float32 passes rounds its 4 products and its sum,
      ≤ 5u of the magnitudes it adds, which are ≤ M·Π r of all passes so far; the
      later passes scale that by their own r, so each pass adds ≤ 5u·M·Π r of all
      four. The Gaussian's weights are positive and sum to 1: it keeps the bound.
    - Here: the float32 matrices are within u of the float64 ones (twice: u·M·|A_y||A_x|
      each), and each float32 product sums at most `nonzeros` nonzero terms (adding
      an exact zero rounds nothing): (n_x + n_y)·u·M·|A_y||A_x|.
    The sum is taken four times over (measured: about 4u·M, against about 100u·M).
    """
    height, width = network_map.shape
    (valid_w, valid_h), (image_w, image_h) = valid_size, image_size
    if (sigma <= 0 or image_w > _MAX_UPSCALE * valid_w or image_h > _MAX_UPSCALE * valid_h
            or not opencv_agrees(height, width, stride, tuple(valid_size), tuple(image_size))):
        return None
    sigma, truncate = float(sigma), float(truncate)
    along_y = axis_operator(height, stride, valid_h, image_h, sigma, truncate)
    along_x = axis_operator(width, stride, valid_w, image_w, sigma, truncate)
    # float32 rounding is monotone: these are also the maxima of the float32 map.
    row_peaks = np.abs(network_map).max(axis=1)
    largest = float(row_peaks.max())
    scale = along_y.abs_sum * along_x.abs_sum
    # Beyond FLOAT32_SAFE, float32 products could overflow: such maps are filtered.
    if not largest * max(scale, along_y.resize_abs * along_x.resize_abs) < FLOAT32_SAFE:
        return None
    source = np.asarray(network_map, dtype=np.float32)
    opencv = _OPENCV_PASSES * _OPENCV_PASS_ROUNDINGS * along_y.resize_abs * along_x.resize_abs
    products = (2 + along_x.nonzeros + along_y.nonzeros) * scale
    # A_y · (S · A_xᵀ): the small product now, the image rows band by band.
    columns = one_thread_matmul(source, along_x.matrix.T,
                                np.empty((height, along_x.matrix.shape[0]), np.float32))
    return NetworkSmoothing(along_y, columns, row_peaks.astype(np.float32),
                            _ERROR_SAFETY * (opencv + products) * _UNIT)
