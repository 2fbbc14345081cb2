"""Associative Embedding (AE) grouping, pure numpy and OpenCV (SciPy for ties='most-joins').

One decoder for the two official implementations of Newell et al.'s grouping by
tags, each a preset of AeParams: princeton-vl/pose-ae-train (``utils/group.py``
and ``test.py``) and HigherHRNet (``lib/core/group.py``, ``lib/core/inference.py``,
``experiments/coco/higher_hrnet/w32_512_adam_lr1e-3.yaml`` over
``lib/config/default.py``). Both run these steps on the maps of one frame:

1. nms: a pixel keeps its value where it equals the maximum of its
   kernel x kernel window (-inf outside the map), else becomes 0.
2. top_k: the top_k largest values of each keypoint's map, highest first; those
   not above detection_threshold are dropped.
3. match_by_tag, keypoint by keypoint in joint_order: the detections of the first
   keypoint that has any start one person each. Each later keypoint's detections
   are matched with the first max_people people (in creation order) by Hungarian
   assignment (assign) on cost = round(distance)·100 − value (the distance alone
   without use_detection_val), distance = tag_distance from the detection's tag
   to the mean tag of the person's joints so far. A detection joins its person
   if that distance is < tag_threshold and starts a new person otherwise (so
   does one left without a person when there are more detections than people).
   With ignore_too_much, keypoints are skipped once there are max_people people.
4. adjust: x + 0.5 ± 0.25 toward the larger of the left and right neighbours on
   the heatmap before NMS (strict >, so a tie moves −0.25; neighbours clamped at
   the border), and the same for y.
5. Person score: the mean value over all K keypoints (0 for missing ones), taken
   after adjust and before refine.
6. refine: each missing keypoint k of a person is put at the argmax of
   heatmap_k − round(‖tag_k − person's mean tag‖₂) (first maximum in row-major
   order), with the same +0.5 ± 0.25, if the heatmap value there is > 0; its
   score is that value (HigherHRNet) or refined_score (1 in pose-ae-train).

Shapes: N people, K keypoints, H, W map height and width, D tag dimensions
(1, or 2 with the flip test: the original and the mirrored image's tag), T
candidates per keypoint (top_k), R detections and G people of one matching step.

Map space: decode works in the pixels of the maps it gets and returns
coordinates there, with the sources' half pixel: adjust and refine add 0.5
(without adjust, found keypoints sit on integer pixels). The sources then scale
by the stride and apply the inverse of the input's affine transform (the
pipeline's job here). HigherHRNet groups at the input resolution: its maps are
aggregated (ae_maps.aggregate_higherhrnet), flip-averaged (ae_maps.average_flip) and
resized to the network input (ae_maps.resize_bilinear, its PROJECT2IMAGE) before decoding.

Ties and keys (AeParams.ties): the presets take 'official', the sources' matching.
The Hungarian step solves their 1e10-padded cost matrix and takes the solver's
choice among equal-cost assignments, and people are keyed by the tag[0] of the
detection that created them, so a new person whose key equals an existing
person's merges into it (with two people of identical tags the sources return
one person). Equal costs are common: when every detection gets a person, the
values add up to the same total in every assignment and only the integer sum of
round(distance) decides, so a chain of detections each one person off can cost
the same as the right matches. Which optimum the sources get is the choice of
their solver, the `munkres` package (1.1.4; it changed its choice from 1.0.11
on), so 'official' solves with munkres_order, its steps in its order and float
arithmetic, which returns the same assignment (SciPy's linear_sum_assignment
picks other optima of some ties). 'most-joins' makes the people independent of
the solver instead (with SciPy): of the least-cost assignments it takes the one
with the most joins, then the least sum of their squared distances, and keeps
people by index.
Thresholds compare as the sources' float64 (a float32 value of exactly 0.1 is
above a threshold of 0.1).

Deliberate differences from the sources (the first changes a result only where
values tie, the second moves refined keypoints by half a pixel):
- top_k breaks ties between equal values by the lower row-major index;
  torch.topk leaves that order unspecified.
- pose-ae-train's refine clamps the quarter offset's neighbours at row K−1 and
  column H−1 (``det.shape[0] − 1``, ``det.shape[1] − 1`` of the (K, H, W)
  array), so for a refined peak at y >= 16 the y offset compares row 16 with
  row y−1; here rows clamp at H−1 and columns at W−1, as HigherHRNet does
  (and as adjust does in both; the same for columns on square maps).
- pose-ae-train's test.py skips a scale whose flip-summed heatmaps exceed 10
  (a frame then has no people); decode only rejects non-finite maps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from edgepose.decode.ae_maps import _float_maps
from edgepose.decode.ae_match import (TAG_DISTANCES, TIES, check_joint_order, above,
                                      match_by_tag)
from edgepose.decode.maps import all_finite
from edgepose.errors import DecodeError, InputError

PRESETS = ("pose-ae-train", "higherhrnet")

#: The order both sources group COCO's 17 keypoints in: head, shoulders, hips,
#: then arms and legs (``[1..7, 12, 13, 8..11, 14..17]`` 1-based in the sources).
COCO_JOINT_ORDER = (0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16)


@dataclass(frozen=True)
class AeParams:
    """Constants of the AE grouping (the sources' names in brackets).

    nms_kernel: odd max-pool window of the NMS [NMS_KERNEL; pose-ae-train 3].
    top_k: candidates taken per keypoint [max_num_people, reused by topk].
    detection_threshold: a candidate is used if its value is above it (in float64); >= 0, so
        that a value of 0 marks a missing keypoint as in the sources.
    tag_threshold: a detection joins a person only at a tag distance below it.
    max_people: people a detection can be matched with: the first max_people
        [max_num_people]; more may be created unless ignore_too_much.
    joint_order: the order keypoints are grouped in [partOrder / joint_order].
    tag_distance: 'rms' (pose-ae-train: sqrt of the mean squared difference over
        D) or 'l2' (HigherHRNet: np.linalg.norm); refine always uses l2.
    use_detection_val: the matching cost is round(distance)·100 − value,
        otherwise the distance.
    ignore_too_much: keypoints are skipped once max_people people exist.
    adjust: move found keypoints by +0.5 ± 0.25 toward the larger neighbour.
    refine: fill missing keypoints from the person's mean tag.
    refined_score: score of a refined keypoint; None keeps the heatmap value
        (HigherHRNet), pose-ae-train sets 1.
    heatmap_max: heatmaps are clipped to it before decoding, None for no clip
        (pose-ae-train's ``np.minimum(dets, 1)``).
    ties: 'official' (both presets): the sources' matching, the `munkres` package's
        choice among equal-cost assignments on their 1e10-padded matrix, and
        people keyed by the tag[0] of the detection that created them, so a new
        person whose key equals an existing person's merges into it.
        'most-joins': the least-cost assignment in which the most detections join,
        then the least sum of their squared distances, with people kept by index
        (never merged): the people do not depend on the solver.
    """

    nms_kernel: int = 5
    top_k: int = 30
    detection_threshold: float = 0.1
    tag_threshold: float = 1.0
    max_people: int = 30
    joint_order: tuple[int, ...] = COCO_JOINT_ORDER
    tag_distance: str = "l2"
    use_detection_val: bool = True
    ignore_too_much: bool = False
    adjust: bool = True
    refine: bool = True
    refined_score: float | None = None
    heatmap_max: float | None = None
    ties: str = "official"

    def __post_init__(self) -> None:
        def number(name: str, low: float, optional: bool = False) -> None:
            value = getattr(self, name)
            if optional and value is None:
                return
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
                  and math.isfinite(value) and value >= low)
            if not ok:
                extra = " or None" if optional else ""
                raise InputError(
                    f"AeParams.{name} must be a finite number >= {low:g}{extra}, got {value!r}")

        def integer(name: str, low: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"AeParams.{name} must be an integer >= {low}, got {value!r}")

        integer("nms_kernel", 1)
        if self.nms_kernel % 2 == 0:
            raise InputError(
                f"AeParams.nms_kernel must be odd (3 or 5 in the sources) so that the window "
                f"is centred on the pixel, got {self.nms_kernel}")
        integer("top_k", 1)
        integer("max_people", 1)
        number("detection_threshold", 0.0)
        number("tag_threshold", 0.0)
        number("refined_score", -math.inf, optional=True)
        number("heatmap_max", -math.inf, optional=True)
        order = self.joint_order
        if (not isinstance(order, tuple) or not order
                or any(isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in order)
                or len(set(order)) != len(order)):
            raise InputError(
                f"AeParams.joint_order must be a tuple of distinct keypoint indices >= 0 "
                f"(a permutation of 0..K-1), got {order!r}")
        if self.tag_distance not in TAG_DISTANCES:
            raise InputError(f"AeParams.tag_distance must be one of {TAG_DISTANCES}, "
                             f"got {self.tag_distance!r}")
        if self.ties not in TIES:
            raise InputError(f"AeParams.ties must be one of {TIES}, got {self.ties!r}")
        for name in ("use_detection_val", "ignore_too_much", "adjust", "refine"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"AeParams.{name} must be a bool, got {getattr(self, name)!r}")

    @classmethod
    def pose_ae_train(cls) -> "AeParams":
        """princeton-vl/pose-ae-train's test.py: HeatmapParser(detection_val=0.1)."""
        return cls(nms_kernel=3, top_k=30, detection_threshold=0.1, tag_threshold=1.0,
                   max_people=30, tag_distance="rms", use_detection_val=True,
                   ignore_too_much=True, adjust=True, refine=True, refined_score=1.0,
                   heatmap_max=1.0, ties="official")

    @classmethod
    def higherhrnet(cls) -> "AeParams":
        """HigherHRNet's w32_512 yaml (NMS 5, threshold 0.1) over its default TEST config."""
        return cls(nms_kernel=5, top_k=30, detection_threshold=0.1, tag_threshold=1.0,
                   max_people=30, tag_distance="l2", use_detection_val=True,
                   ignore_too_much=False, adjust=True, refine=True, refined_score=None,
                   heatmap_max=None, ties="official")

    @classmethod
    def preset(cls, name: str) -> "AeParams":
        """AeParams for a card's ``decoder.extra["preset"]``: 'pose-ae-train' or 'higherhrnet'."""
        if name == "pose-ae-train":
            return cls.pose_ae_train()
        if name == "higherhrnet":
            return cls.higherhrnet()
        raise InputError(f"unknown AE decoder preset {name!r}; expected one of {PRESETS}")


# ---------------------------------------------------------------------------
# Grouping steps
# ---------------------------------------------------------------------------

def nms(heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """Heatmaps (K, H, W) with every value that is not its window's maximum set to 0.

    The window is kernel x kernel, centred, and reads -inf outside the map
    (torch's MaxPool2d(kernel, 1, kernel // 2)); equal values on a plateau all
    stay. Returns a new array of the input's float dtype.
    """
    heatmaps = _float_maps(heatmaps, "heatmaps", 3)
    if isinstance(kernel, bool) or not isinstance(kernel, (int, np.integer)) \
            or kernel < 1 or kernel % 2 == 0:
        raise InputError(f"NMS kernel must be a positive odd integer (3 or 5), got {kernel!r}")
    window = np.ones((int(kernel), int(kernel)), np.uint8)
    pooled = np.empty_like(heatmaps)
    for k in range(heatmaps.shape[0]):
        # The default border of cv2.dilate is "no value": the maximum ignores it.
        cv2.dilate(np.ascontiguousarray(heatmaps[k]), window, dst=pooled[k],
                   borderType=cv2.BORDER_CONSTANT)
    return np.where(pooled == heatmaps, heatmaps, heatmaps.dtype.type(0))


def top_k(maps: np.ndarray, k: int, threshold: float = -math.inf
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The k largest values of each map that are above threshold, highest first.

    maps: (K, H, W). Returns xy (K, k, 2) int64 (x, y), values (K, k) and counts
    (K,) int64; the slots from counts[j] on are empty (xy 0, value 0). Equal
    values come in row-major order. With a threshold this is the sources' topk
    followed by their ``val > threshold`` mask (compared in float64, see above),
    and costs time in proportion to the pixels above the threshold.
    """
    maps = _float_maps(maps, "maps", 3)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    count, _, width = maps.shape
    flat = maps.reshape(count, -1)
    joint, index = np.nonzero(above(flat, threshold))  # row-major: by joint, then index
    values = flat[joint, index]
    order = np.lexsort((index, -values, joint))
    joint, index, values = joint[order], index[order], values[order]
    totals = np.bincount(joint, minlength=count)
    starts = np.concatenate([[0], np.cumsum(totals)[:-1]])
    rank = np.arange(joint.size) - starts[joint]
    keep = rank < k
    joint, index, values, rank = joint[keep], index[keep], values[keep], rank[keep]
    xy = np.zeros((count, k, 2), np.int64)
    out = np.zeros((count, k), maps.dtype)
    xy[joint, rank, 0] = index % width
    xy[joint, rank, 1] = index // width
    out[joint, rank] = values
    return xy, out, np.minimum(totals, k).astype(np.int64)


def _quarter(heatmaps: np.ndarray, joint: np.ndarray, x: np.ndarray, y: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """±0.25 per axis toward the larger neighbour (strict >; neighbours clamped)."""
    _, height, width = heatmaps.shape
    right = heatmaps[joint, y, np.minimum(x + 1, width - 1)]
    left = heatmaps[joint, y, np.maximum(x - 1, 0)]
    down = heatmaps[joint, np.minimum(y + 1, height - 1), x]
    up = heatmaps[joint, np.maximum(y - 1, 0), x]
    return np.where(right > left, 0.25, -0.25), np.where(down > up, 0.25, -0.25)


def adjust(xy: np.ndarray, values: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """Found keypoints (value > 0) to x + 0.5 ± 0.25, y + 0.5 ± 0.25.

    xy: (N, K, 2) integer pixels; values: (N, K); heatmaps: (K, H, W) before NMS.
    Each axis moves a quarter pixel toward the larger of its two neighbours
    (strict >, a tie moves −0.25; at the border the missing neighbour is the
    pixel itself). Returns a new (N, K, 2) float64; missing keypoints unchanged.
    """
    heatmaps = _float_maps(heatmaps, "heatmaps", 3)
    xy = np.asarray(xy, np.float64)
    values = np.asarray(values)
    _, height, width = heatmaps.shape
    # Missing keypoints read pixel (0, 0) and are not moved.
    x = np.clip(xy[..., 0].astype(np.intp), 0, width - 1)
    y = np.clip(xy[..., 1].astype(np.intp), 0, height - 1)
    joint = np.broadcast_to(np.arange(values.shape[1]), values.shape)
    dx, dy = _quarter(heatmaps, joint, x, y)
    out = xy.copy()
    present = values > 0
    out[..., 0] = np.where(present, x + 0.5 + dx, xy[..., 0])
    out[..., 1] = np.where(present, y + 0.5 + dy, xy[..., 1])
    return out


def refine(xy: np.ndarray, values: np.ndarray, heatmaps: np.ndarray, tags: np.ndarray,
           refined_score: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fill each person's missing keypoints (value 0) from the person's mean tag.

    xy: (N, K, 2) after adjust or not; values: (N, K); heatmaps: (K, H, W) before
    NMS; tags: (K, H, W, D). The mean tag is that of the tag maps at the found
    keypoints' pixels (floor of xy). Missing keypoint k goes to the first maximum
    of heatmap_k − round(‖tag_k − mean‖₂) if the heatmap is > 0 there, at
    x + 0.5 ± 0.25, y + 0.5 ± 0.25 (as adjust), with score refined_score or the
    heatmap value when None. Returns new xy (N, K, 2) float64, values (N, K).
    """
    heatmaps = _float_maps(heatmaps, "heatmaps", 3)
    tags = _float_maps(tags, "tags", 4)
    xy = np.array(xy, np.float64)
    values = np.array(values)
    count, height, width = heatmaps.shape
    present = values > 0
    x = np.clip(np.floor(xy[..., 0]).astype(np.intp), 0, width - 1)
    y = np.clip(np.floor(xy[..., 1]).astype(np.intp), 0, height - 1)
    joint = np.broadcast_to(np.arange(count), values.shape)
    found = np.where(present[..., None], tags[joint, y, x], 0)
    # The sources' np.mean over the found keypoints' tags, in the tags' dtype.
    found_count = present.sum(axis=1).astype(tags.dtype)
    with np.errstate(invalid="ignore", divide="ignore"):  # people without keypoints: never used
        means = found.sum(axis=1) / found_count[:, None]
    for k in range(count):
        people = np.flatnonzero(~present[:, k] & (found_count > 0))
        if people.size == 0:
            continue
        # Tag components as (D, H·W) planes: numpy reduces a short last axis slowly.
        planes = np.ascontiguousarray(np.moveaxis(tags[k], 2, 0)).reshape(tags.shape[3], -1)
        plane = heatmaps[k].ravel()
        best = _first_best_pixels(plane, planes, means[people], _block_maxima(heatmaps[k]))
        by, bx = np.divmod(best, width)
        value = heatmaps[k, by, bx]
        keep = value > 0
        people, bx, by, value = people[keep], bx[keep], by[keep], value[keep]
        dx, dy = _quarter(heatmaps, np.full(people.size, k), bx, by)
        xy[people, k, 0] = bx + 0.5 + dx
        xy[people, k, 1] = by + 0.5 + dy
        values[people, k] = value if refined_score is None else refined_score
    return xy, values


#: Refine scores first the maximum of each block of this many pixels a side: a person's
#: best pixel is mostly a heatmap peak, so this bounds the best closely from below.
_PROBE_BLOCK = 4
#: At most this fraction of the map is scored pixel by pixel for the bounded people.
_NARROW = 1 / 8


def _block_maxima(heatmap: np.ndarray) -> np.ndarray:
    """Flat indices of the maximum of each _PROBE_BLOCK-square block (the whole map if
    smaller; the ragged border is left out: any pixels make a valid bound)."""
    height, width = heatmap.shape
    side = _PROBE_BLOCK
    rows, cols = height // side, width // side
    if rows == 0 or cols == 0:
        return np.arange(heatmap.size)
    blocks = heatmap[:rows * side, :cols * side].reshape(rows, side, cols, side)
    inside = blocks.transpose(0, 2, 1, 3).reshape(rows, cols, side * side).argmax(axis=2)
    y = np.arange(rows)[:, None] * side + inside // side
    x = np.arange(cols)[None, :] * side + inside % side
    return (y * width + x).ravel()


def _refine_scores(plane: np.ndarray, planes: np.ndarray, means: np.ndarray) -> np.ndarray:
    """heatmap − round(‖tag − mean‖₂) (M, P) at P pixels: plane (P,), planes (D, P), means
    (M, D). Elementwise only, so a pixel's score does not depend on which others are taken;
    adding the squares in component order is the sources' .sum(axis=2) for D < 8."""
    distance = np.subtract(planes[0][None], means[:, 0][:, None])
    distance *= distance
    part = np.empty_like(distance)
    for d in range(1, len(planes)):
        np.subtract(planes[d][None], means[:, d][:, None], out=part)
        part *= part
        distance += part
    np.sqrt(distance, out=distance)
    np.rint(distance, out=distance)  # np.round's half to even
    if plane.dtype == distance.dtype:
        return np.subtract(plane[None], distance, out=distance)
    return plane[None] - distance


def _first_best_pixels(plane: np.ndarray, planes: np.ndarray, means: np.ndarray,
                       probes: np.ndarray) -> np.ndarray:
    """Each person's first (row-major) pixel of the highest _refine_scores, (M,) flat indices.

    A score is at most the pixel's heatmap value (the rounded distance is >= 0, and
    float subtraction keeps that order), so a pixel whose value is below a score already
    reached cannot hold the best one: scoring the probes (any pixels) first bounds each
    person's best from below, and most people need only the pixels at or above that
    bound. Those are scored in row-major order, so the first maximum among them is the
    map's first.
    """
    bound = _refine_scores(plane[probes], planes[:, probes], means).max(axis=1)
    pixels = plane.size
    rank = pixels - max(1, int(pixels * _NARROW))
    narrow = bound >= np.partition(plane, rank)[rank]  # else the whole map costs about as much
    best = np.empty(len(means), np.intp)
    if narrow.any():
        taken = np.flatnonzero(plane >= bound[narrow].min())
        scores = _refine_scores(plane[taken], planes[:, taken], means[narrow])
        best[narrow] = taken[scores.argmax(axis=1)]
    if not narrow.all():
        best[~narrow] = _refine_scores(plane, planes, means[~narrow]).argmax(axis=1)
    return best


class AeDecoder:
    """Heatmaps + tag maps of one frame → people, by Associative Embedding grouping.

    decode returns xy (N, K, 2) float32 in map pixels (with the sources' +0.5,
    see the module docstring), scores (N, K) float32 (the keypoint's heatmap
    value, refined_score for refined keypoints, 0 and xy (0, 0) when missing) and
    person_scores (N,) float32 (the mean keypoint score before refine). People
    come in the order they were created.
    """

    def __init__(self, params: AeParams | None = None) -> None:
        if params is not None and not isinstance(params, AeParams):
            raise InputError(f"params must be AeParams, got {type(params).__name__}; use "
                             f"AeParams.preset('pose-ae-train') or AeParams.preset('higherhrnet')")
        self.params = AeParams() if params is None else params

    def group(self, heatmaps: np.ndarray, tags: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Validated maps → (heatmaps (K, H, W) as decoded, tags (K, H, W, D), people xy
        (N, K, 2), people values (N, K)) before adjust and refine."""
        heatmaps, tags = self._check(heatmaps, tags)
        params = self.params
        if params.heatmap_max is not None:
            heatmaps = np.minimum(heatmaps, heatmaps.dtype.type(params.heatmap_max))
        peaks = nms(heatmaps, params.nms_kernel)
        xy, values, _ = top_k(peaks, params.top_k, params.detection_threshold)
        joint = np.arange(heatmaps.shape[0])[:, None]
        candidate_tags = tags[joint, xy[..., 1], xy[..., 0]]
        people_xy, people_values, _ = match_by_tag(xy, values, candidate_tags, params)
        return heatmaps, tags, people_xy, people_values

    def decode(self, heatmaps: np.ndarray, tags: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """heatmaps (K, H, W), tags (K, H, W, D) or (K, H, W) → xy, scores, person_scores."""
        params = self.params
        heatmaps, tags, xy, values = self.group(heatmaps, tags)
        if params.adjust:
            xy = adjust(xy, values, heatmaps)
        # np.mean of each person's float32 scores, as the sources take it.
        person_scores = values.astype(np.float32).mean(axis=1)
        if params.refine and len(values):
            xy, values = refine(xy, values, heatmaps, tags, params.refined_score)
        return xy.astype(np.float32), values.astype(np.float32), person_scores.astype(np.float32)

    def _check(self, heatmaps: object, tags: object) -> tuple[np.ndarray, np.ndarray]:
        heatmaps = _float_maps(heatmaps, "heatmaps", 3)
        tags = _float_maps(tags, "tags", (3, 4))
        if tags.ndim == 3:
            tags = tags[..., None]
        if tags.shape[:3] != heatmaps.shape:
            raise DecodeError(
                f"tags have shape {tags.shape} but heatmaps {heatmaps.shape}; expected tags "
                f"(K, H, W) or (K, H, W, D) on the heatmaps' K, H, W — tags per keypoint, "
                f"resized with the heatmaps")
        if tags.shape[3] < 1:
            raise DecodeError(f"tags have D = 0 dimensions (shape {tags.shape}); expected >= 1")
        check_joint_order(self.params.joint_order, heatmaps.shape[0])
        for name, array in (("heatmaps", heatmaps), ("tags", tags)):
            if not all_finite(array):
                bad = ~np.isfinite(array)
                if bad.any():
                    where = tuple(int(v) for v in np.argwhere(bad)[0])
                    raise DecodeError(
                        f"{name} hold {int(bad.sum())} NaN/inf values (first at {where}); "
                        f"expected finite network outputs — check the engine's precision and "
                        f"the input normalisation")
        return heatmaps, tags
