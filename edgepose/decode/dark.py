"""DARK sub-pixel refinement (Zhang et al., CVPR 2020), as mmpose's refine_keypoints_dark.

mmpose (``codecs/utils/refinement.py``, ``codecs/utils/post_processing.py``) blurs
each map whole: zero padding, cv2.GaussianBlur, the blurred map rescaled so its
maximum is the original one; then it clamps at 1e-10, takes the log, and makes one
Newton step from 13 log values around the peak. The step reads only those 13
blurred values and, through the rescale, the blurred maximum. The rescale is a
factor on every value, so it cancels in the log differences unless the clamp
bites. Hence the fast path: blur only the patch the 13 values read, and send the
maps where the clamp could bite through mmpose's whole-map computation.

Shapes: M maps of height H and width W, (M, H, W); coordinates (x, y) in map pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from edgepose.errors import InputError

# (dy, dx) of the log-map values one Newton step reads, in the order _newton_step
# unpacks them; they reach two pixels from the peak.
_TAPS = np.array([(0, 0), (0, 1), (0, -1), (1, 0), (-1, 0), (0, 2), (0, -2), (2, 0),
                  (-2, 0), (1, 1), (-1, 1), (1, -1), (-1, -1)])
_TAP_REACH = 2
_CLAMP = 1e-10  # mmpose's floor before the log
_WHOLE_MAP_CHUNK = 64  # maps per pass of the whole-map path: two padded buffers fit in L2
_PATCH_CHUNK = 1024  # maps per pass of the fast path: its temporaries stay a few MB


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


def blur_weights(kernel: int) -> np.ndarray:
    """The 1-D weights cv2.GaussianBlur(size=kernel, sigma 0) filters float32 maps with.

    OpenCV builds them with getGaussianKernel in float32 for float32 images (its
    fixed table for sizes up to 7); returned widened to float64.
    """
    return cv2.getGaussianKernel(kernel, 0, ktype=cv2.CV_32F).ravel().astype(np.float64)


def refine_dark_maps(coords: np.ndarray, maps3: np.ndarray, original_max: np.ndarray,
                     kernel: int) -> np.ndarray:
    """DARK on (M, H, W) maps whose float32 maxima are `original_max`; coords (..., 2).

    coords are refined in place (and returned): truncated to int like mmpose, moved
    only where 1 < x < W−2, 1 < y < H−2 and the Hessian is invertible. The step is
    computed in float64 (mmpose: float32).
    """
    count, h, w = maps3.shape
    xy = coords.reshape(count, 2)
    x = xy[:, 0].astype(np.intp)
    y = xy[:, 1].astype(np.intp)
    inside = np.flatnonzero((x > 1) & (x < w - 2) & (y > 1) & (y < h - 2))
    if len(inside):
        x, y = x[inside], y[inside]
        logs = np.empty((len(inside), len(_TAPS)))
        reliable = np.zeros(len(inside), dtype=bool)
        for start in range(0, len(inside), _PATCH_CHUNK):
            part = slice(start, start + _PATCH_CHUNK)
            taps, reliable[part] = _patch_taps(maps3, inside[part], x[part], y[part], kernel)
            logs[part] = np.log(np.where(reliable[part, None], taps, 1.0))
        rest = np.flatnonzero(~reliable)
        if len(rest):
            logs[rest] = _whole_map_logs(maps3, inside[rest], original_max[inside[rest]],
                                         x[rest], y[rest], kernel)
        step_x, step_y, move = _newton_step(logs)
        xy[inside, 0] += np.where(move, step_x, 0).astype(coords.dtype)
        xy[inside, 1] += np.where(move, step_y, 0).astype(coords.dtype)
    if not np.shares_memory(xy, coords):  # coords that could not be viewed flat
        coords[...] = xy.reshape(coords.shape)
    return coords


def _patch_taps(maps3: np.ndarray, which: np.ndarray, x: np.ndarray, y: np.ndarray,
                kernel: int) -> tuple[np.ndarray, np.ndarray]:
    """Blurred values at the 13 taps around (x, y) of maps `which`, and whether each
    map is clear of mmpose's clamp; (m, 13) float64 and (m,) bool.

    The blur is mmpose's (zero padding, OpenCV's float32 weights) on just the
    patch the taps read, in float64. mmpose's float32 blur is within `slack` of
    these values (one rounding per tap and pass, 4x over). No blurred value
    exceeds the original maximum (positive weights summing to 1, zeros around),
    so mmpose's rescale factor is at least 1 to rounding, and values above
    2·1e-10 after the slack stay above the clamp: then the factor cancels. (A map
    with no positive value has no positive blurred value: never clear.)
    """
    h, w = maps3.shape[1:]
    weights = blur_weights(kernel)
    reach = _TAP_REACH + len(weights) // 2
    offsets = np.arange(-reach, reach + 1)
    rows, cols = y[:, None] + offsets, x[:, None] + offsets
    in_map = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    patch = maps3[which[:, None, None], np.clip(rows, 0, h - 1)[:, :, None],
                  np.clip(cols, 0, w - 1)[:, None, :]]
    # mmpose blurs a float32 copy of the map.
    patch = np.where(in_map, patch.astype(np.float32, copy=False), np.float32(0))
    patch = patch.astype(np.float64)
    size, span = len(weights), 2 * _TAP_REACH + 1
    # The separable blur as two products with banded matrices: rows of `band` hold
    # the weights, shifted one column per output pixel.
    band = np.zeros((span, len(offsets)))
    for out in range(span):
        band[out, out:out + size] = weights
    # One product over all maps each (a stack of small ones costs a BLAS call per map).
    m, sides = len(which), len(offsets)
    across = (patch.reshape(m * sides, sides) @ band.T).reshape(m, sides, span)  # along x
    across = np.ascontiguousarray(np.swapaxes(across, 1, 2)).reshape(m * span, sides)
    blurred = (across @ band.T).reshape(m, span, span)  # then along y: [map, x, y]
    taps = blurred[:, _TAPS[:, 1] + _TAP_REACH, _TAPS[:, 0] + _TAP_REACH]
    slack = 4.0 * (2 * size + 4) * 2.0 ** -24 * np.abs(patch).max(axis=(1, 2))
    return taps, taps.min(axis=1) - slack > 2 * _CLAMP


def _whole_map_logs(maps3: np.ndarray, which: np.ndarray, original_max: np.ndarray,
                    x: np.ndarray, y: np.ndarray, kernel: int) -> np.ndarray:
    """mmpose's log values at the 13 taps: maps `which` blurred whole, (m, 13) float64."""
    h, w = maps3.shape[1:]
    border = (kernel - 1) // 2
    # mmpose's zero padding, filled a chunk of maps at a time so the buffers stay in
    # cache; each map still gets a cv2 call of its own: blurring the maps as channels
    # of one image is not bit-identical to per-map blurs (checked on OpenCV 5.0), and
    # mmpose blurs per map. The kernel never reaches past a frame of width `border`
    # for pixels inside the crop, and only the inside is ever overwritten.
    chunk = max(1, min(len(which), _WHOLE_MAP_CHUNK))
    padded = np.zeros((chunk, h + 2 * border, w + 2 * border), dtype=np.float32)
    blurred = np.empty_like(padded)
    inner = (slice(None), slice(border, border + h), slice(border, border + w))
    crop = np.empty((len(which), h, w), dtype=np.float32)
    size = (kernel, kernel)
    for start in range(0, len(which), chunk):
        stop = min(start + chunk, len(which))
        padded[:stop - start][inner] = maps3[which[start:stop]]
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
    # Rescale, clamp and log are elementwise, so only the 13 values the step reads
    # need them, not whole maps.
    values = crop[np.arange(len(which))[:, None], y[:, None] + _TAPS[:, 0],
                  x[:, None] + _TAPS[:, 1]]
    values *= ratio.astype(np.float32)[:, None]
    np.maximum(values, np.float32(_CLAMP), out=values)
    np.log(values, out=values)
    return values.astype(np.float64)


def _newton_step(logs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """-H⁻¹g from (m, 13) log values at _TAPS: step x, step y, and where H is invertible."""
    (centre, right, left, down, up, right2, left2, down2, up2,
     down_right, up_right, down_left, up_left) = logs.T
    gx = 0.5 * (right - left)
    gy = 0.5 * (down - up)
    hxx = 0.25 * (right2 - 2 * centre + left2)
    hyy = 0.25 * (down2 - 2 * centre + up2)
    hxy = 0.25 * (down_right - up_right - down_left + up_left)
    det = hxx * hyy - hxy * hxy
    move = det != 0
    safe_det = np.where(move, det, 1.0)
    # The 2x2 inverse written out.
    return -(hyy * gx - hxy * gy) / safe_det, -(hxx * gy - hxy * gx) / safe_det, move
