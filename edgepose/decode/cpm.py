"""Convolutional Pose Machines decoding, as CMU's testing code does it (applyModel.m).

Each belief map is upsampled by the network stride with bicubic interpolation
to the crop's size, and the keypoint is the location of its maximum; there is
no sub-pixel refinement. The last map of a CPM is the background, which carries
no keypoint and is dropped. The published test averages the maps of several
image scales first; the runtime runs one crop per person, so that average is
over one scale.

Shapes: N people, K keypoints, h, w belief-map size, stride s: maps (N, K+1, h, w)
with the background, upsampled maps (N, K, h·s, w·s).
"""

from __future__ import annotations

import cv2
import numpy as np

from edgepose.decode.topdown import _check_finite, _check_heatmaps
from edgepose.errors import DecodeError, InputError
from edgepose.preprocess import heatmap_to_image


def _cubic_matrix(size: int, stride: int) -> np.ndarray:
    """(size·stride, size) matrix R with R @ v = OpenCV's bicubic resize of column v."""
    identity = np.eye(size, dtype=np.float32)
    return cv2.resize(identity, (size, size * stride), interpolation=cv2.INTER_CUBIC)


def upsample_maps(maps: np.ndarray, stride: int) -> np.ndarray:
    """(N, C, h, w) -> (N, C, h·stride, w·stride), bicubic as cv2.resize (a = -0.75).

    OpenCV's resize is separable, so it is two matrix products with the resize of an
    identity matrix along each axis: all people and channels in one call.
    """
    maps = _check_heatmaps(maps, "belief maps")
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise InputError(f"stride must be a positive integer, got {stride!r}")
    _, _, h, w = maps.shape
    rows, cols = _cubic_matrix(h, int(stride)), _cubic_matrix(w, int(stride))
    return np.matmul(np.matmul(rows, maps.astype(np.float32, copy=False)), cols.T)


def argmax_maps(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer (x, y) of each map's maximum (N, K, 2) float32, and the maximum (N, K).

    Ties go to the first maximum in row-major order, like MATLAB's max(map(:)) on
    the row-major maps here.
    """
    n, k, h, w = maps.shape
    flat = maps.reshape(n, k, h * w)
    index = flat.argmax(axis=2)
    scores = np.take_along_axis(flat, index[..., None], axis=2)[..., 0]
    coords = np.stack([index % w, index // w], axis=2).astype(np.float32)
    return coords, scores.astype(np.float32)


class CpmDecoder:
    """Belief maps of N crops to keypoints in image pixels.

    stride: input pixels per belief-map pixel (8 for the released models).
    background: the maps end with a background channel, to be dropped.
    """

    refine = "none"  # reported like TopDownDecoder's: CPM takes the integer argmax

    def __init__(self, stride: int = 8, background: bool = True) -> None:
        if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
            raise InputError(f"stride must be a positive integer, got {stride!r}")
        self.stride = int(stride)
        self.background = bool(background)

    def decode(self, maps: np.ndarray, centers: np.ndarray,
               scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """maps (N, K[+1], h, w), centers and scales (N, 2) of the crops.

        Returns xy (N, K, 2) float32 image pixels and scores (N, K) float32.
        """
        maps = _check_heatmaps(maps, "belief maps")
        _check_finite(maps)
        if self.background:
            if maps.shape[1] < 2:
                raise DecodeError(f"expected keypoint maps plus a background map, got "
                                  f"{maps.shape[1]} channel(s)")
            maps = maps[:, :-1]
        n = maps.shape[0]
        for name, value in (("centers", centers), ("scales", scales)):
            shape = np.shape(value)
            if len(shape) != 2 or shape[1] != 2:
                raise InputError(f"{name} must have shape (N, 2), got {shape}")
            if shape[0] != n:
                raise DecodeError(f"belief maps hold {n} people but {name} hold {shape[0]}; "
                                  f"expected {name} ({n}, 2), the ones the crops were made with")
        upsampled = upsample_maps(maps, self.stride)
        coords, scores = argmax_maps(upsampled)
        size = (upsampled.shape[3], upsampled.shape[2])
        return heatmap_to_image(coords, centers, scales, size), scores
