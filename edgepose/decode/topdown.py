"""Top-down heatmap decoding (HRNet, SimpleBaseline, DARK), pure numpy.

The free functions are the math, each testable alone; TopDownDecoder chains
them. References: deep-high-resolution-net.pytorch ``lib/core/inference.py``
(get_max_preds, get_final_preds with POST_PROCESS), ``lib/utils/transforms.py``
(flip_back) and the flip test of ``lib/core/function.py`` (SHIFT_HEATMAP);
mmpose ``codecs/utils/refinement.py`` (refine_keypoints_dark) and
``codecs/utils/post_processing.py`` (gaussian_blur).

Shapes: N people, K keypoints, H, W heatmap height and width. Heatmaps are
(N, K, H, W); coordinates are (x, y) in heatmap pixels until heatmap_to_image
takes them to image pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from edgepose.decode import maps
from edgepose.decode.maps import check_finite
from edgepose.errors import DecodeError, InputError
from edgepose.preprocess import heatmap_to_image

REFINE_METHODS = ("none", "shift", "dark")


def _check_heatmaps(heatmaps: object, name: str = "heatmaps") -> np.ndarray:
    """(N, K, H, W) float array with K, H, W >= 1 (N may be 0), else DecodeError."""
    array = np.asarray(heatmaps)
    if array.ndim != 4:
        raise DecodeError(f"{name} must be 4-D (N, K, H, W), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise DecodeError(f"{name} must be a float array (N, K, H, W), got dtype {array.dtype}")
    if min(array.shape[1:]) < 1:
        raise DecodeError(f"{name} must have K, H, W >= 1 (N, K, H, W), got shape {array.shape}")
    return array


def _check_finite(heatmaps: np.ndarray) -> None:
    check_finite(heatmaps, "heatmaps", ("person", "keypoint"))


def check_dark_kernel(kernel: int) -> int:
    if isinstance(kernel, bool) or not isinstance(kernel, (int, np.integer)) \
            or kernel < 1 or kernel % 2 == 0:
        raise InputError(
            f"DARK blur kernel must be a positive odd integer (5 for sigma 1, 11 for sigma 2, "
            f"17 for sigma 3), got {kernel!r}"
        )
    return int(kernel)


def _opencv_blur_sigma(size: int) -> float:
    """The standard deviation of the kernel cv2.GaussianBlur uses for `size` and sigma 0."""
    kernel = cv2.getGaussianKernel(size, 0).ravel()
    offsets = np.arange(size) - (size - 1) / 2
    return float(np.sqrt((kernel * offsets ** 2).sum()))


def dark_kernel_for_sigma(sigma: float) -> int:
    """The DARK blur size for heatmaps trained with Gaussians of `sigma` pixels.

    DARK modulates with a Gaussian of the training variance, and mmpose passes only a
    size to cv2.GaussianBlur. So the size is the odd one whose OpenCV kernel spreads
    nearest to sigma: 11 for sigma 2 and 17 for sigma 3, mmpose's DARK configs, and
    5 for sigma 1 (OpenCV's [1 4 6 4 1]/16, exactly 1).
    """
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.floating)) \
            or not np.isfinite(sigma) or sigma <= 0:
        raise InputError(f"the training sigma must be a positive number of heatmap pixels, "
                         f"got {sigma!r}")
    # A size's kernel spreads about 0.15 × size, so 8·sigma + 5 is past the nearest.
    sizes = range(3, int(8 * sigma) + 6, 2)
    return min(sizes, key=lambda size: abs(_opencv_blur_sigma(size) - sigma))


def _argmax(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N·K, H·W) view of the maps, the row-major first argmax of each and its value."""
    n, k, h, w = heatmaps.shape
    # h·w, not -1: numpy cannot infer an axis of a 0-person batch.
    flat = heatmaps.reshape(n * k, h * w)
    index = np.argmax(flat, axis=1)
    return flat, index, flat[np.arange(n * k), index]


def _coords(index: np.ndarray, maxvals: np.ndarray, n: int, k: int, w: int) -> np.ndarray:
    coords = np.empty((n * k, 2), dtype=np.float32)
    coords[:, 0] = index % w
    coords[:, 1] = index // w
    coords *= (maxvals > 0)[:, None]
    return coords.reshape(n, k, 2)


def get_max_preds(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer argmax of each map, as HRNet's get_max_preds.

    heatmaps: (N, K, H, W). Returns coords (N, K, 2) float32 (x, y) and maxvals
    (N, K) float32. Ties go to the first maximum in row-major order; a map whose
    maximum is <= 0 gets coords (0, 0) and keeps its maximum as score.
    """
    heatmaps = _check_heatmaps(heatmaps)
    n, k, h, w = heatmaps.shape
    _, index, maxvals = _argmax(heatmaps)
    coords = _coords(index, maxvals, n, k, w)
    return coords, maxvals.astype(np.float32, copy=False).reshape(n, k)


def refine_shift(coords: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """HRNet's POST_PROCESS: a quarter pixel toward the higher neighbour.

    coords: (N, K, 2) (x, y), refined in place and returned. heatmaps:
    (N, K, H, W). Only points with 1 < px < W−1 and 1 < py < H−1 (px, py the
    rounded coords) move, on both axes or neither; the lower bound is 1, not 0,
    in the official code, so a peak at x = 1 stays put while x = W−2 moves.
    A tie between neighbours (sign 0) leaves that axis unchanged.
    """
    heatmaps = _check_heatmaps(heatmaps)
    n, k, h, w = heatmaps.shape
    if w < 4 or h < 4:
        return coords  # no pixel satisfies 1 < p < size-1
    return _shift(coords, heatmaps.reshape(n * k, h * w), h, w)


def _shift(coords: np.ndarray, flat: np.ndarray, h: int, w: int) -> np.ndarray:
    px = np.floor(coords[..., 0] + 0.5).astype(np.intp)
    py = np.floor(coords[..., 1] + 0.5).astype(np.intp)
    inside = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
    # Clipped indices keep the gather in bounds; `inside` discards the rest.
    px = np.clip(px, 1, w - 2)
    py = np.clip(py, 1, h - 2)
    rows = np.arange(flat.shape[0]).reshape(px.shape)
    at = py * w + px
    dx = flat[rows, at + 1] - flat[rows, at - 1]
    dy = flat[rows, at + w] - flat[rows, at - w]
    coords[..., 0] += np.where(inside, 0.25 * np.sign(dx), 0).astype(coords.dtype)
    coords[..., 1] += np.where(inside, 0.25 * np.sign(dy), 0).astype(coords.dtype)
    return coords


# (dy, dx) of the log-map values one Newton step reads, in the order _dark unpacks them.
_DARK_TAPS = np.array([(0, 0), (0, 1), (0, -1), (1, 0), (-1, 0), (0, 2), (0, -2), (2, 0),
                       (-2, 0), (1, 1), (-1, 1), (1, -1), (-1, -1)])


_DARK_CHUNK = 64  # maps per pass: two padded buffers of 64 fit in L2


def _dark(coords: np.ndarray, maps3: np.ndarray, original_max: np.ndarray,
          kernel: int) -> np.ndarray:
    """DARK on (M, H, W) maps whose float32 maxima are `original_max`; coords (..., 2)."""
    count, h, w = maps3.shape
    border = (kernel - 1) // 2
    # mmpose's zero padding, filled a chunk of maps at a time so the buffers stay in
    # cache; each map still gets a cv2 call of its own: blurring the maps as channels
    # of one image is not bit-identical to per-map blurs (checked on OpenCV 5.0), and
    # mmpose blurs per map. The kernel never reaches past a frame of width `border`
    # for pixels inside the crop, and only the inside is ever overwritten.
    chunk = max(1, min(count, _DARK_CHUNK))
    padded = np.zeros((chunk, h + 2 * border, w + 2 * border), dtype=np.float32)
    blurred = np.empty_like(padded)
    inner = (slice(None), slice(border, border + h), slice(border, border + w))
    crop = np.empty((count, h, w), dtype=np.float32)
    size = (kernel, kernel)
    for start in range(0, count, chunk):
        stop = min(start + chunk, count)
        padded[:stop - start][inner] = maps3[start:stop]
        for m in range(stop - start):
            out = blurred[m]
            result = cv2.GaussianBlur(padded[m], size, 0, dst=out)
            if result is not out:  # a cv2 build that hands back a fresh array
                out[...] = result
        crop[start:stop] = blurred[:stop - start][inner]
    blurred_max = crop.max(axis=(1, 2))
    # A blurred max of 0 (mmpose divides by zero there) means the blurred map
    # is <= 0 everywhere; left unscaled it is constant after the clamp, so no
    # Newton step is taken, which is what mmpose's NaNs amount to for such maps.
    safe_max = np.where(blurred_max == 0, np.float32(1), blurred_max)
    ratio = np.where(blurred_max == 0, np.float32(1), original_max / safe_max)

    xy = coords.reshape(count, 2)
    x = xy[:, 0].astype(np.intp)
    y = xy[:, 1].astype(np.intp)
    inside = (x > 1) & (x < w - 2) & (y > 1) & (y < h - 2)
    x = np.clip(x, 2, w - 3)
    y = np.clip(y, 2, h - 3)
    # Rescale, clamp and log are elementwise, so only the 13 values the step reads
    # need them, not whole maps.
    values = crop[np.arange(count)[:, None], y[:, None] + _DARK_TAPS[:, 0],
                  x[:, None] + _DARK_TAPS[:, 1]]
    values *= ratio.astype(np.float32)[:, None]
    np.maximum(values, np.float32(1e-10), out=values)
    np.log(values, out=values)
    (centre, right, left, down, up, right2, left2, down2, up2,
     down_right, up_right, down_left, up_left) = values.astype(np.float64).T
    gx = 0.5 * (right - left)
    gy = 0.5 * (down - up)
    hxx = 0.25 * (right2 - 2 * centre + left2)
    hyy = 0.25 * (down2 - 2 * centre + up2)
    hxy = 0.25 * (down_right - up_right - down_left + up_left)
    det = hxx * hyy - hxy * hxy
    move = inside & (det != 0)
    safe_det = np.where(move, det, 1.0)
    # -H^-1 g with the 2x2 inverse written out.
    offset_x = -(hyy * gx - hxy * gy) / safe_det
    offset_y = -(hxx * gy - hxy * gx) / safe_det
    xy[:, 0] += np.where(move, offset_x, 0).astype(coords.dtype)
    xy[:, 1] += np.where(move, offset_y, 0).astype(coords.dtype)
    if not np.shares_memory(xy, coords):  # coords that could not be viewed flat
        coords[...] = xy.reshape(coords.shape)
    return coords


def refine_dark(coords: np.ndarray, heatmaps: np.ndarray, kernel: int = 11) -> np.ndarray:
    """DARK sub-pixel refinement, as mmpose's refine_keypoints_dark.

    coords: (N, K, 2) integer argmax locations (x, y), refined in place and
    returned; like mmpose they are truncated to int first. heatmaps:
    (N, K, H, W). kernel: blur size, 11 for heatmaps trained with sigma 2, 17
    for sigma 3. One Newton step on the log of the blurred map, taken only where
    1 < x < W−2 and 1 < y < H−2 (the second differences reach two pixels) and
    the Hessian is invertible. The step is computed in float64 (mmpose: float32).
    """
    heatmaps = _check_heatmaps(heatmaps)
    kernel = check_dark_kernel(kernel)
    n, k, h, w = heatmaps.shape
    if w < 5 or h < 5:
        return coords  # no pixel satisfies 1 < p < size-2
    maps3 = heatmaps.reshape(n * k, h, w)
    original_max = maps3.max(axis=(1, 2)).astype(np.float32)
    return _dark(coords, maps3, original_max, kernel)


def flip_back(
    heatmaps_flipped: np.ndarray, flip_permutation: np.ndarray, shift: bool = True
) -> np.ndarray:
    """Heatmaps of a mirrored crop, back in the original frame.

    heatmaps_flipped: (N, K, H, W) from the network on the mirrored crop.
    flip_permutation: (K,), from KeypointSet.flip_permutation(). Returns a new
    (N, K, H, W): mirrored along W, joints swapped, and with ``shift`` moved
    right by one pixel keeping column 0 (HRNet's SHIFT_HEATMAP, which offsets
    the feature misalignment of the mirrored input).
    """
    heatmaps_flipped = _check_heatmaps(heatmaps_flipped, "heatmaps_flipped")
    return maps.flip_back(heatmaps_flipped, flip_permutation, shift)


def average_flip(
    heatmaps: np.ndarray,
    heatmaps_flipped_raw: np.ndarray,
    flip_permutation: np.ndarray,
    shift: bool = True,
) -> np.ndarray:
    """Flip-test average: (heatmaps + flip_back(heatmaps_flipped_raw)) / 2, (N, K, H, W)."""
    heatmaps = _check_heatmaps(heatmaps)
    back = flip_back(heatmaps_flipped_raw, flip_permutation, shift)
    if back.shape != heatmaps.shape:
        raise DecodeError(
            f"flipped heatmaps have shape {back.shape} but heatmaps have {heatmaps.shape}; "
            f"both must come from the same batch of crops"
        )
    back += heatmaps
    back *= 0.5
    return back


class TopDownDecoder:
    """Heatmaps of N crops to keypoints in image pixels.

    refine: "none" (integer argmax), "shift" (HRNet's quarter pixel) or "dark"
    (DARK, with blur size ``dark_kernel``).
    """

    def __init__(self, refine: str = "shift", dark_kernel: int = 11) -> None:
        if refine not in REFINE_METHODS:
            raise InputError(
                f"unknown refine {refine!r}; allowed: {', '.join(REFINE_METHODS)}"
            )
        self.refine = refine
        self.dark_kernel = check_dark_kernel(dark_kernel)

    def decode(
        self, heatmaps: np.ndarray, centers: np.ndarray, scales: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """heatmaps (N, K, H, W), centers (N, 2), scales (N, 2).

        Returns xy (N, K, 2) float32 in image pixels and scores (N, K) float32
        (the heatmap maxima).
        """
        heatmaps = _check_heatmaps(heatmaps)
        n, k, h, w = heatmaps.shape
        flat, index, maxvals = _argmax(heatmaps)
        # NaN wins np.argmax and +inf is the maximum, so the maxima show both; one
        # min then finds a -inf, where a float64 sum read every value slower. Only
        # a bad value pays for the scan that names it.
        if flat.size and not (np.isfinite(maxvals).all() and np.isfinite(flat.min())):
            _check_finite(heatmaps)
        for name, value in (("centers", centers), ("scales", scales)):
            shape = np.shape(value)
            if len(shape) != 2 or shape[1] != 2:
                raise InputError(f"{name} must have shape (N, 2), got {shape}")
            if shape[0] != n:
                raise DecodeError(
                    f"heatmaps hold {n} people but {name} hold {shape[0]}; pass the "
                    f"centers and scales the crops were made with"
                )
        coords = _coords(index, maxvals, n, k, w)
        scores = maxvals.astype(np.float32, copy=False).reshape(n, k)
        if self.refine == "shift" and w >= 4 and h >= 4:
            _shift(coords, flat, h, w)
        elif self.refine == "dark" and w >= 5 and h >= 5:
            _dark(coords, flat.reshape(n * k, h, w), scores.reshape(n * k), self.dark_kernel)
        xy = heatmap_to_image(coords, centers, scales, (w, h))
        return xy, scores
