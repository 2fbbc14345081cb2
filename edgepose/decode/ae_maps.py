"""Associative Embedding maps before grouping: HigherHRNet's two outputs aggregated,
the flip test averaged, maps resized as the official code's PROJECT2IMAGE does.

Maps of one frame: heatmaps (K, H, W), tags (K, H, W) or, stacked over the flip test,
(K, H, W, D).
"""

from __future__ import annotations

import cv2
import numpy as np

from edgepose.decode.maps import flip_back, resize_channels
from edgepose.errors import DecodeError, InputError


_AXES = {3: "(K, H, W)", 4: "(K, H, W, D)"}


def _float_maps(maps: object, name: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    array = np.asarray(maps)
    dims = (ndim,) if isinstance(ndim, int) else ndim
    expected = " or ".join(f"{d}-D {_AXES[d]}" for d in dims)
    if array.ndim not in dims:
        raise DecodeError(f"{name} must be {expected}, the maps of one frame, "
                          f"got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise DecodeError(f"{name} must be a float array {expected}, got dtype {array.dtype}")
    if array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float32)  # float16 engine outputs: OpenCV reads 32/64 only
    if min(array.shape[1:3], default=1) < 1:
        raise DecodeError(f"{name} must have H, W >= 1, got shape {array.shape}")
    return array


def resize_bilinear(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(C, H, W) maps to (C, height, width), size = (width, height).

    Bilinear with half-pixel centres, torch's ``interpolate(mode='bilinear',
    align_corners=False)``: output pixel i reads input position
    max((i + 0.5)·H/height − 0.5, 0), the last pixel repeated past the end.
    OpenCV's INTER_LINEAR computes the same for float maps.
    """
    maps = _float_maps(maps, "maps", 3)
    width, height = (int(v) for v in size)
    if width < 1 or height < 1:
        raise InputError(f"size must be (width, height) >= 1, got {size!r}")
    return resize_channels(maps, (width, height), cv2.INTER_LINEAR)


def aggregate_higherhrnet(output0: np.ndarray, output1: np.ndarray, num_keypoints: int = 17
                          ) -> tuple[np.ndarray, np.ndarray]:
    """HigherHRNet's two outputs of one image → heatmaps (K, H, W), tags (K, H, W).

    output0: (2K, H/2, W/2) at 1/4 of the input: K heatmaps then K tag maps.
    output1: (K, H, W) at 1/2 of the input: heatmaps. output0 is upsampled to
    output1's size (resize_bilinear); heatmaps = (its heatmaps + output1) / 2,
    tags = its tags (get_multi_stage_outputs with WITH_HEATMAPS (True, True),
    WITH_AE (True, False)).
    """
    output0 = _float_maps(output0, "output0", 3)
    output1 = _float_maps(output1, "output1", 3)
    k = num_keypoints
    if output0.shape[0] != 2 * k or output1.shape[0] != k:
        raise DecodeError(
            f"HigherHRNet outputs have {output0.shape[0]} and {output1.shape[0]} channels; "
            f"expected {2 * k} (heatmaps + tags) and {k} for {k} keypoints")
    up = resize_bilinear(output0, (output1.shape[2], output1.shape[1]))
    heatmaps = up[:k] + output1
    heatmaps /= 2
    return heatmaps, up[k:]


def flip_back_maps(maps: np.ndarray, flip_permutation: np.ndarray) -> np.ndarray:
    """Maps of the mirrored image back in the original frame: (C, H, W) → (C, H, W).

    Mirrored along W, and channel c taken from flip_permutation[c]
    (KeypointSet.flip_permutation()); no pixel shift, as in both sources.
    """
    return flip_back(_float_maps(maps, "flipped maps", 3), flip_permutation)


def average_flip(heatmaps: np.ndarray, tags: np.ndarray, heatmaps_flipped: np.ndarray,
                 tags_flipped: np.ndarray, flip_permutation: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Flip test: heatmaps (K, H, W) averaged, tags stacked → (K, H, W), (K, H, W, 2).

    heatmaps, tags: (K, H, W) of the image; heatmaps_flipped, tags_flipped: the
    same of the mirrored image, as the network returned them. Tag dimension 0 is
    the image's, 1 the mirrored image's (flipped back), as in both sources.
    """
    heatmaps = _float_maps(heatmaps, "heatmaps", 3)
    tags = _float_maps(tags, "tags", 3)
    back = flip_back_maps(heatmaps_flipped, flip_permutation)
    tags_back = flip_back_maps(tags_flipped, flip_permutation)
    shapes = {heatmaps.shape, tags.shape, back.shape, tags_back.shape}
    if len(shapes) != 1:
        raise DecodeError(
            f"flip test maps differ in shape: heatmaps {heatmaps.shape}, tags {tags.shape}, "
            f"flipped heatmaps {back.shape}, flipped tags {tags_back.shape}; expected all "
            f"(K, H, W) of the same size")
    back += heatmaps
    back /= 2
    return back, np.stack([tags, tags_back], axis=3)
