"""Map helpers every decoder shares: finiteness, flip-back, per-channel resize.

Maps are (..., C, H, W): C channels (keypoints, or PAF components) of height H and
width W, optionally after a leading batch axis N.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from edgepose.errors import DecodeError, InputError


def all_finite(maps: np.ndarray) -> bool:
    """Whether a float array holds no NaN or inf.

    One sum: it is finite iff every term is, barring an overflow, which only
    reports a false alarm (check_finite then looks value by value). OpenCV sums a
    C-contiguous float32/float64 array in double at memory speed, twice numpy's
    float32 pairwise sum and six times its float64 one.
    """
    if maps.dtype in (np.float32, np.float64) and maps.ndim >= 2 and maps.size \
            and maps.flags.c_contiguous:
        total = cv2.sumElems(maps.reshape(-1, maps.shape[-1]))[0]
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            total = maps.sum(dtype=np.float64)
    return bool(np.isfinite(total))


def check_finite(maps: np.ndarray, name: str, axes: Sequence[str]) -> None:
    """DecodeError naming the first NaN/inf when `maps` hold any; `axes` names the
    leading axes (e.g. ("person", "keypoint") for (N, K, H, W), ("channel",) for (C, H, W))."""
    # Only a bad sum pays for locating the culprit.
    if all_finite(maps):
        return
    bad = ~np.isfinite(maps)
    if bad.any():
        *lead, y, x = (int(v) for v in np.argwhere(bad)[0])
        where = ", ".join(f"{axis} {index}" for axis, index in zip(axes, lead))
        raise DecodeError(
            f"{name} hold {int(bad.sum())} NaN/inf values (first at {where}, y={y}, x={x}); "
            f"expected finite network outputs — check the engine's precision and the input "
            f"normalisation"
        )


def check_permutation(flip_permutation: object, count: int) -> np.ndarray:
    """flip_permutation as an (count,) integer array, InputError unless a permutation."""
    permutation = np.asarray(flip_permutation)
    if permutation.shape != (count,) or not np.issubdtype(permutation.dtype, np.integer) \
            or not np.array_equal(np.sort(permutation), np.arange(count)):
        raise InputError(
            f"flip_permutation must be a permutation of 0..{count - 1} (shape ({count},)), "
            f"got {permutation.tolist() if permutation.size <= 32 else permutation.shape}; "
            f"use KeypointSet.flip_permutation()"
        )
    return permutation


def flip_back(maps: np.ndarray, flip_permutation: np.ndarray, shift: bool = False
              ) -> np.ndarray:
    """Maps (..., C, H, W) of a mirrored input, back in the original frame: a new array,
    mirrored along W, channel c taken from flip_permutation[c], and with `shift` moved
    right by one pixel keeping column 0 (HRNet's SHIFT_HEATMAP)."""
    permutation = check_permutation(flip_permutation, maps.shape[-3])
    out = maps[..., permutation, :, ::-1]  # fancy index: a fresh array
    if shift:
        out[..., 1:] = out[..., :-1]  # numpy buffers overlapping copies
    return out


def resize_channels(maps: np.ndarray, size: tuple[int, int], interpolation: int,
                    out: np.ndarray | None = None) -> np.ndarray:
    """(C, H, W) maps to (C, height, width), size = (width, height), one cv2.resize per
    channel (OpenCV resizes 2-D maps of up to 4 channels at once, not C)."""
    width, height = size
    if out is None:
        out = np.empty((maps.shape[0], height, width), dtype=maps.dtype)
    for c in range(maps.shape[0]):
        cv2.resize(np.ascontiguousarray(maps[c]), (width, height), dst=out[c],
                   interpolation=interpolation)
    return out
