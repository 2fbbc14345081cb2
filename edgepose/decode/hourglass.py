"""Stacked Hourglass decoding, as the two released PyTorch ports do it, pure numpy.

Two refinements, named by their source:

- "princeton" (princeton-vl/pytorch_stacked_hourglass ``test.py`` and
  ``utils/group.py`` HeatmapParser): the flip-averaged last stack is clipped at 1
  (``np.minimum(det, 1)``), suppressed to its 3x3 local maxima (max-pool, stride 1,
  padding 1), and the top-1 location per joint taken. Where that top value is > 0
  the location moves 0.25 toward the larger horizontal and vertical neighbour
  (strict ``>``, so a tie moves −0.25; a neighbour index past the border is clamped
  to the border pixel itself) and then +0.5; where it is <= 0 the integer location
  is kept as is. ``post_process`` multiplies by 4 and maps the 256x256 crop back
  to the image, which equals mapping the heatmap location with the heatmap size.
- "bearpaw" (bearpaw/pytorch-pose ``pose/utils/evaluation.py`` get_preds and
  final_preds): the argmax (first maximum; a maximum <= 0 gives the 1-based location
  0, i.e. −1 here); strictly inside the map (0 < x < W−1 and 0 < y < H−1, 0-based)
  it moves 0.25·sign(right − left, below − above), a tie staying put; then +0.5 for
  every joint, and ``transform_preds`` maps the heatmap location to the image.

Both sources end by casting the image coordinates to int: Princeton's
``transform`` truncates (``astype(int)``); bearpaw's works in MATLAB's 1-based
pixels, truncating ``x`` and adding 1. HourglassDecoder does the same only with
``integer=True``; by default it returns the float coordinates, 0-based like the
centers given.

Flip test: both sources average (Princeton) or sum (bearpaw, scores then doubled)
the last stack with the mirrored crop's maps flipped back and joints swapped, with
no pixel shift: ``edgepose.decode.topdown.average_flip(..., shift=False)`` with
``MPII16.flip_permutation()``.

Shapes: N people, K keypoints, H, W heatmap height and width. Heatmaps are
(N, K, H, W); coordinates (x, y) are heatmap pixels until HourglassDecoder takes
them to image pixels.
"""

from __future__ import annotations

import numpy as np

from edgepose.decode.topdown import _check_finite, _check_heatmaps
from edgepose.errors import DecodeError, InputError
from edgepose.preprocess import affine_matrices

REFINE_METHODS = ("princeton", "bearpaw")
# Princeton's test.py clips the flip-averaged maps before parsing: a plateau of
# values >= 1 then counts as a tie, for the argmax and for the neighbour test.
PRINCETON_CLIP = 1.0
# MPII's rough person position and scale, as both ports use them to crop: the
# center moves down 15 px per unit of scale and the box grows by 1.25.
MPII_CENTER_SHIFT = 15.0
MPII_SCALE_PADDING = 1.25
_QUARTER = 0.25
_HALF = 0.5


def mpii_center_scale(center: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MPII objpos/scale -> crop centers (N, 2) and scales (N, 2), float64.

    center: (N, 2) MPII ``objpos`` (x, y); scale: (N,) MPII ``scale`` (person height
    / 200). Returns c_y + 15·s and s·1.25, the scale repeated in both columns as the
    crop functions of edgepose.preprocess take it (MPII crops are square).
    bearpaw (pose/datasets/mpii.py) applies this when loading, skipping people
    whose objpos is −1 (unknown). Princeton's code crops with the ``center`` and
    ``scale`` of its annotation files as they are, and those files hold them with
    this rule already applied (data/MPII/annot/valid.h5: every center_y − 12·scale
    is MPII's whole-pixel objpos_y), so both ports crop the same box.
    """
    centers = np.array(center, dtype=np.float64)
    scales = np.asarray(scale, dtype=np.float64)
    if centers.ndim != 2 or centers.shape[1] != 2:
        raise InputError(f"center must have shape (N, 2) as MPII objpos (x, y), got "
                         f"{centers.shape}")
    if scales.shape != (centers.shape[0],):
        raise InputError(f"scale must have shape ({centers.shape[0]},), one MPII scale per "
                         f"center, got {scales.shape}")
    if not (np.all(np.isfinite(centers)) and np.all(np.isfinite(scales)) and np.all(scales > 0)):
        raise InputError("centers must be finite and scales positive and finite")
    centers[:, 1] += MPII_CENTER_SHIFT * scales
    padded = scales * MPII_SCALE_PADDING
    return centers, np.stack([padded, padded], axis=1)


def _gather(heatmaps: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """heatmaps[n, k, y[n, k], x[n, k]] for every person n and joint k: (N, K)."""
    n, k = y.shape
    return heatmaps[np.arange(n)[:, None], np.arange(k)[None, :], y, x]


def max_pool3(heatmaps: np.ndarray) -> np.ndarray:
    """3x3 max over each pixel's neighbourhood, stride 1; outside the map counts as −inf
    (torch's MaxPool2d(3, 1, 1) padding). (N, K, H, W) -> same shape."""
    heatmaps = _check_heatmaps(heatmaps)
    _, _, h, w = heatmaps.shape
    pad_width = ((0, 0), (0, 0), (1, 1), (1, 1))
    padded = np.pad(heatmaps, pad_width, mode="constant", constant_values=-np.inf)
    out = padded[..., 1:h + 1, 1:w + 1].copy()
    for dy in range(3):
        for dx in range(3):
            np.maximum(out, padded[..., dy:dy + h, dx:dx + w], out=out)
    return out


def princeton_top1(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HeatmapParser.calc: keep the 3x3 local maxima (others set to 0), take the top one.

    heatmaps: (N, K, H, W). Returns integer locations (N, K, 2) float64 (x, y) and their
    suppressed values (N, K) float32. Ties go to the first in row-major order (the
    original's torch.topk does not specify which). When a map's maximum is > 0 this is
    its plain argmax; when it is < 0, the zeros the suppression leaves (if any pixel is
    not a local maximum) win.
    """
    heatmaps = _check_heatmaps(heatmaps)
    n, k, h, w = heatmaps.shape
    suppressed = heatmaps * (max_pool3(heatmaps) == heatmaps)
    # h·w, not -1: numpy cannot infer an axis of a 0-person batch.
    flat = suppressed.reshape(n, k, h * w)
    index = np.argmax(flat, axis=2)
    scores = np.take_along_axis(flat, index[..., None], axis=2)[..., 0]
    coords = np.stack([index % w, index // w], axis=2).astype(np.float64)
    return coords, scores.astype(np.float32)


def refine_princeton(coords: np.ndarray, scores: np.ndarray,
                     heatmaps: np.ndarray) -> np.ndarray:
    """HeatmapParser.adjust: integer (x, y) -> refined (x, y) + 0.5 where the score is > 0.

    coords: (N, K, 2) integer locations from princeton_top1; scores: (N, K); heatmaps:
    (N, K, H, W) the maps they came from (unsuppressed). Returns a new (N, K, 2)
    float64. x moves +0.25 when hm[y, min(x+1, W−1)] > hm[y, max(x−1, 0)], else −0.25
    (ties and the clamped border included), y likewise; joints with score <= 0 keep
    their integer location, without the +0.5.
    """
    heatmaps = _check_heatmaps(heatmaps)
    _, _, h, w = heatmaps.shape
    x = coords[..., 0].astype(np.intp)
    y = coords[..., 1].astype(np.intp)
    right = _gather(heatmaps, y, np.minimum(x + 1, w - 1))
    left = _gather(heatmaps, y, np.maximum(x - 1, 0))
    below = _gather(heatmaps, np.minimum(y + 1, h - 1), x)
    above = _gather(heatmaps, np.maximum(y - 1, 0), x)
    step = np.stack([np.where(right > left, _QUARTER, -_QUARTER),
                     np.where(below > above, _QUARTER, -_QUARTER)], axis=2)
    active = (np.asarray(scores) > 0)[..., None]
    return np.asarray(coords, dtype=np.float64) + np.where(active, step + _HALF, 0.0)


def princeton_keypoints(heatmaps: np.ndarray,
                        clip: float | None = PRINCETON_CLIP) -> tuple[np.ndarray, np.ndarray]:
    """Princeton's parse of the (flip-averaged) last stack, in heatmap pixels.

    heatmaps: (N, K, H, W). clip: the ceiling test.py applies first (None: none).
    Returns (N, K, 2) float64 (x, y) and scores (N, K) float32 (the suppressed top
    values, after the clip).
    """
    heatmaps = _check_heatmaps(heatmaps)
    if clip is not None:
        heatmaps = np.minimum(heatmaps, heatmaps.dtype.type(clip))
    coords, scores = princeton_top1(heatmaps)
    return refine_princeton(coords, scores, heatmaps), scores


def bearpaw_argmax(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """get_preds, 0-based: argmax (x, y) (N, K, 2) float64, first maximum in row-major
    order (torch.max), and the maxima (N, K) float32. A map whose maximum is <= 0 gets
    (−1, −1), which is get_preds' masked 1-based (0, 0)."""
    heatmaps = _check_heatmaps(heatmaps)
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, h * w)  # h·w: a 0-person batch has no axis to infer
    index = np.argmax(flat, axis=2)
    maxvals = np.take_along_axis(flat, index[..., None], axis=2)[..., 0]
    coords = np.stack([index % w, index // w], axis=2).astype(np.float64)
    coords[maxvals <= 0] = -1.0
    return coords, maxvals.astype(np.float32)


def refine_bearpaw(coords: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """final_preds' refinement, 0-based: a new (N, K, 2) float64, every joint + 0.5.

    coords: (N, K, 2) from bearpaw_argmax; heatmaps: (N, K, H, W). Only a location with
    0 < x < W−1 and 0 < y < H−1 moves, by 0.25·sign(hm[y, x+1] − hm[y, x−1]) in x and
    0.25·sign(hm[y+1, x] − hm[y−1, x]) in y (a tie leaves that axis).
    """
    heatmaps = _check_heatmaps(heatmaps)
    _, _, h, w = heatmaps.shape
    x = coords[..., 0].astype(np.intp)
    y = coords[..., 1].astype(np.intp)
    inside = (x > 0) & (x < w - 1) & (y > 0) & (y < h - 1)
    # Clipped indices keep the gather in bounds; `inside` discards what they read.
    xc = np.clip(x, 1, max(w - 2, 1))
    yc = np.clip(y, 1, max(h - 2, 1))
    if w >= 3 and h >= 3:
        dx = _gather(heatmaps, yc, xc + 1) - _gather(heatmaps, yc, xc - 1)
        dy = _gather(heatmaps, yc + 1, xc) - _gather(heatmaps, yc - 1, xc)
        step = _QUARTER * np.stack([np.sign(dx), np.sign(dy)], axis=2)
    else:
        step = np.zeros(coords.shape)  # no pixel lies strictly inside
    return np.asarray(coords, dtype=np.float64) + np.where(inside[..., None], step, 0.0) + _HALF


def bearpaw_keypoints(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """bearpaw's get_preds + final_preds refinement, in heatmap pixels: (N, K, 2) float64
    (x, y) and the maxima (N, K) float32."""
    coords, scores = bearpaw_argmax(heatmaps)
    return refine_bearpaw(coords, heatmaps), scores


class HourglassDecoder:
    """Last-stack heatmaps of N crops to keypoints in image pixels.

    refine: "princeton" or "bearpaw" (see the module docstring). integer: cast the
    image coordinates as the source does (Princeton: truncate; bearpaw: truncate,
    then + 1 for MATLAB's 1-based pixels); the default keeps float coordinates.
    """

    def __init__(self, refine: str = "princeton", integer: bool = False) -> None:
        if refine not in REFINE_METHODS:
            raise InputError(f"unknown hourglass refine {refine!r}; allowed: "
                             f"{', '.join(REFINE_METHODS)}")
        if not isinstance(integer, bool):
            raise InputError(f"integer must be True or False, got {integer!r}")
        self.refine = refine
        self.integer = integer

    def decode(self, heatmaps: np.ndarray, centers: np.ndarray,
               scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """heatmaps (N, K, H, W); centers (N, 2); scales (N, 2) as edgepose's crop
        functions give them, or (N,) MPII scales (person height / 200, padded).

        Returns xy (N, K, 2) float32 in image pixels (whole numbers with integer=True)
        and scores (N, K) float32: Princeton's suppressed top value after the clip at 1,
        bearpaw's maximum. A score <= 0 marks a joint the sources leave unrefined.
        """
        heatmaps = _check_heatmaps(heatmaps)
        _check_finite(heatmaps)
        n, _, h, w = heatmaps.shape
        centers = np.asarray(centers, dtype=np.float64)
        scales = np.asarray(scales, dtype=np.float64)
        if scales.ndim == 1:
            scales = np.stack([scales, scales], axis=1)
        for name, value in (("centers", centers), ("scales", scales)):
            if value.ndim != 2 or value.shape[1] != 2:
                raise InputError(f"{name} must have shape (N, 2) (scales also (N,)), got "
                                 f"{value.shape}")
            if value.shape[0] != n:
                raise DecodeError(f"heatmaps hold {n} people but {name} hold {value.shape[0]}; "
                                  f"pass the centers and scales the crops were made with")
        if self.refine == "princeton":
            coords, scores = princeton_keypoints(heatmaps)
        else:
            coords, scores = bearpaw_keypoints(heatmaps)
        # Both sources map heatmap pixels with one isotropic factor 200·s / W, which is
        # what heatmap_to_image does; the matrices are used directly to stay in float64
        # up to the cast, as the sources' numpy code does.
        inverse = affine_matrices(centers, scales, (w, h), inverse=True)
        xy = coords * inverse[:, None, (0, 1), (0, 1)] + inverse[:, None, :, 2]
        if self.integer:
            xy = np.trunc(xy) + (1.0 if self.refine == "bearpaw" else 0.0)
        return xy.astype(np.float32), scores
