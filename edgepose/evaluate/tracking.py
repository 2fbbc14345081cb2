"""Identity switches and MOTA of a tracker's ids against ground-truth tracks (CLEAR-MOT).

Shape letters: N boxes of one frame. Boxes are (x, y, w, h) pixels; a frame is a pair
(ids (N,), boxes (N, 4)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Sequence

import numpy as np

from edgepose import _optional
from edgepose.errors import InputError
from edgepose.evaluate.common import is_number, json_number
from edgepose.track import box_iou_matrix

Frame = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class TrackingScore:
    """CLEAR-MOT counts over a sequence.

    id_switches: ground-truth matches whose predicted id differs from the one that
        object was last matched to, in any earlier frame.
    matches, misses, false_positives: matched pairs, unmatched ground-truth boxes and
        unmatched predicted boxes, summed over frames.
    frames: frames scored; ground_truth_boxes: ground-truth boxes summed over frames
        (MOTA's denominator, not the number of distinct objects).
    """

    id_switches: int
    matches: int
    misses: int
    false_positives: int
    frames: int
    ground_truth_boxes: int

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
                raise InputError(f"TrackingScore.{field.name} must be an int >= 0, got {value!r}")
            object.__setattr__(self, field.name, int(value))
        if self.matches + self.misses != self.ground_truth_boxes:
            raise InputError(f"TrackingScore: matches + misses ({self.matches} + {self.misses}) "
                             f"must equal ground_truth_boxes ({self.ground_truth_boxes})")
        if self.id_switches > self.matches:
            raise InputError(f"TrackingScore: {self.id_switches} id switches cannot exceed "
                             f"{self.matches} matches")

    @property
    def mota(self) -> float:
        """1 − (misses + false positives + id switches) / ground-truth boxes; NaN without any.

        It can be negative: a tracker making more errors than there are objects.
        """
        if self.ground_truth_boxes == 0:
            return math.nan
        errors = self.misses + self.false_positives + self.id_switches
        return 1.0 - errors / self.ground_truth_boxes

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {field.name: getattr(self, field.name) for field in fields(self)}
        result["mota"] = json_number(self.mota)
        return result


def id_switches(ground_truth: Sequence[Frame], predictions: Sequence[Frame],
                iou_threshold: float = 0.5) -> TrackingScore:
    """CLEAR-MOT counts of `predictions` against `ground_truth`, two lists over frames.

    A ground-truth box and a predicted box can match when their IoU is at least
    iou_threshold. As CLEAR-MOT (and TrackEval) prescribe, a pair matched in the
    previous frame stays matched while it remains within the threshold, even if another
    box now overlaps more; the other boxes are matched by the Hungarian algorithm
    maximising the summed IoU. A match whose predicted id differs from the one its
    ground-truth object was last matched to is an identity switch.
    """
    number = is_number(iou_threshold) or isinstance(iou_threshold, np.floating)
    if not number or not 0.0 < iou_threshold <= 1.0:
        raise InputError(f"iou_threshold must lie in (0, 1], got {iou_threshold!r}")
    if len(ground_truth) != len(predictions):
        raise InputError(f"ground_truth has {len(ground_truth)} frames but predictions has "
                         f"{len(predictions)}; pass one (ids, boxes) pair per frame to each")
    last_id: dict[int, int] = {}       # ground-truth id → predicted id it was last matched to
    previous_frame: dict[int, int] = {}  # the same, for matches of the previous frame only
    switches = matches = misses = false_positives = truth_boxes = 0
    for frame, (truth, predicted) in enumerate(zip(ground_truth, predictions)):
        truth_ids, truth_xywh = _checked_frame(truth, f"ground_truth[{frame}]")
        predicted_ids, predicted_xywh = _checked_frame(predicted, f"predictions[{frame}]")
        pairs = _match_frame(truth_ids, predicted_ids, box_iou_matrix(truth_xywh, predicted_xywh),
                             iou_threshold, previous_frame)
        previous_frame = {}
        for row, column in pairs:
            object_id, track_id = int(truth_ids[row]), int(predicted_ids[column])
            if object_id in last_id and last_id[object_id] != track_id:
                switches += 1
            last_id[object_id] = previous_frame[object_id] = track_id
        matches += len(pairs)
        misses += len(truth_ids) - len(pairs)
        false_positives += len(predicted_ids) - len(pairs)
        truth_boxes += len(truth_ids)
    return TrackingScore(id_switches=switches, matches=matches, misses=misses,
                         false_positives=false_positives, frames=len(ground_truth),
                         ground_truth_boxes=truth_boxes)


def _match_frame(truth_ids: np.ndarray, predicted_ids: np.ndarray, iou: np.ndarray,
                 threshold: float, previous_frame: dict[int, int]) -> list[tuple[int, int]]:
    """(ground-truth row, predicted column) pairs of one frame."""
    allowed = iou >= threshold
    column_of = {int(track_id): column for column, track_id in enumerate(predicted_ids)}
    kept = []
    for row, object_id in enumerate(truth_ids):
        column = column_of.get(previous_frame.get(int(object_id), -1))
        if column is not None and allowed[row, column]:
            kept.append((row, column))
    kept_rows, kept_columns = {r for r, _ in kept}, {c for _, c in kept}
    rows = [r for r in range(len(truth_ids)) if r not in kept_rows]
    columns = [c for c in range(len(predicted_ids)) if c not in kept_columns]
    if not rows or not columns:
        return kept
    free, free_allowed = iou[np.ix_(rows, columns)], allowed[np.ix_(rows, columns)]
    # Forbidden pairs weigh nothing, so the assignment maximises the IoU of allowed ones.
    weight = np.where(free_allowed, free, 0.0)
    chosen_rows, chosen_columns = _optional.scipy_for_tracking().linear_sum_assignment(
        weight, maximize=True)
    return kept + [(rows[r], columns[c]) for r, c in zip(chosen_rows, chosen_columns)
                   if free_allowed[r, c]]


def _checked_frame(frame: Any, name: str) -> Frame:
    if not isinstance(frame, (tuple, list)) or len(frame) != 2:
        raise InputError(f"{name}: expected a pair (ids (N,), boxes (N, 4)), "
                         f"got {type(frame).__name__}")
    ids, boxes = np.asarray(frame[0]), np.asarray(frame[1], np.float64)
    if ids.size == 0 and boxes.size == 0:
        return np.zeros(0, np.int64), np.zeros((0, 4))
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise InputError(f"{name}: ids must be (N,) integers, got {ids.dtype} {ids.shape}")
    if boxes.shape != (len(ids), 4):
        raise InputError(f"{name}: boxes must be ({len(ids)}, 4) x, y, w, h for {len(ids)} "
                         f"ids, got {boxes.shape}")
    if not np.all(np.isfinite(boxes)):
        raise InputError(f"{name}: boxes must be finite: found NaN or infinity")
    if np.any(boxes[:, 2:] < 0):
        raise InputError(f"{name}: box widths and heights must be >= 0")
    if np.any(ids < 0):
        raise InputError(f"{name}: ids must be >= 0; drop the boxes the tracker left "
                         "without a track (id -1) before scoring")
    if len(np.unique(ids)) != len(ids):
        raise InputError(f"{name}: ids must be unique within a frame, got {ids.tolist()}")
    return ids.astype(np.int64), boxes
