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

import numpy as np

from edgepose.decode import maps
from edgepose.decode.dark import check_dark_kernel, refine_dark_maps
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


def _argmax(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N·K, H·W) view of the maps, the row-major first argmax of each and its value."""
    n, k, h, w = heatmaps.shape
    # h·w, not -1: numpy cannot infer an axis of a 0-person batch.
    flat = heatmaps.reshape(n * k, h * w)
    index = np.argmax(flat, axis=1)
    return flat, index, flat[np.arange(n * k), index]


def _coords(px: np.ndarray, py: np.ndarray, positive: np.ndarray, n: int, k: int
            ) -> np.ndarray:
    """(N, K, 2) float32 (x, y) of argmax pixels, (0, 0) where the max is not positive."""
    coords = np.empty((n * k, 2), dtype=np.float32)
    coords[:, 0] = px
    coords[:, 1] = py
    coords *= positive[:, None]
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
    py, px = np.divmod(index, w)
    coords = _coords(px, py, maxvals > 0, n, k)
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
    px = np.floor(coords[..., 0] + 0.5).astype(np.intp).reshape(-1)
    py = np.floor(coords[..., 1] + 0.5).astype(np.intp).reshape(-1)
    return _shift_at(coords, flat, px, py, h, w)


def _shift_at(coords: np.ndarray, flat: np.ndarray, px: np.ndarray, py: np.ndarray,
              h: int, w: int) -> np.ndarray:
    """The quarter-pixel step of M points at pixels (px, py) of the (M, H·W) maps;
    coords (..., 2) with M points, moved in place."""
    inside = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
    at = np.arange(flat.shape[0]) * (h * w) + py * w + px
    # One flat take of the four neighbours costs a fraction of 2-D fancy indexing;
    # clipped indices keep the points not inside in bounds, their values dropped.
    # Rows: right, left, down, up; they pair up as HRNet's diff (right − left, down − up).
    around = flat.reshape(-1).take(at + np.array([[1], [-1], [w], [-w]]), mode="clip")
    step = np.where(inside, np.float32(0.25) * np.sign(around[0::2] - around[1::2]), 0)
    xy = coords.reshape(-1, 2)
    xy += step.T.astype(coords.dtype)
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
    return refine_dark_maps(coords, maps3, original_max, kernel)


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
        py, px = np.divmod(index, w)
        positive = maxvals > 0
        coords = _coords(px, py, positive, n, k)
        scores = maxvals.astype(np.float32, copy=False).reshape(n, k)
        if self.refine == "shift" and w >= 4 and h >= 4:
            # The rounded coords are the argmax pixels, (0, 0) where the max is <= 0.
            _shift_at(coords, flat, px * positive, py * positive, h, w)
        elif self.refine == "dark" and w >= 5 and h >= 5:
            refine_dark_maps(coords, flat.reshape(n * k, h, w), scores.reshape(n * k),
                             self.dark_kernel)
        xy = heatmap_to_image(coords, centers, scales, (w, h))
        return xy, scores
