"""Non-maximum suppression for raw detector outputs, vectorised in numpy.

Greedy NMS as every detector's reference post-processing does it: keep the highest
score, drop every box of the same class overlapping it by more than the IoU
threshold, repeat. One IoU matrix row per kept box: the loop runs once per kept box
(at most `max_detections` times), not once per candidate.
"""

from __future__ import annotations

import numpy as np

from edgepose.errors import InputError


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box (4,) with each of `boxes` (M, 4); 0 where the union is empty."""
    left = np.maximum(box[0], boxes[:, 0])
    top = np.maximum(box[1], boxes[:, 1])
    right = np.minimum(box[2], boxes[:, 2])
    bottom = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    area = max(float(box[2] - box[0]), 0.0) * max(float(box[3] - box[1]), 0.0)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    union = area + areas - inter
    return np.divide(inter, union, out=np.zeros_like(union), where=union > 0)


def _check(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray | None,
           iou_threshold: float, score_threshold: float, max_detections: int) -> None:
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise InputError(f"boxes must be (N, 4) x1, y1, x2, y2, got shape {boxes.shape}")
    if scores.shape != (boxes.shape[0],):
        raise InputError(f"scores must be ({boxes.shape[0]},), one per box, got {scores.shape}")
    if classes is not None and classes.shape != scores.shape:
        raise InputError(f"classes must be ({boxes.shape[0]},), one per box, got {classes.shape}")
    if not 0.0 <= iou_threshold <= 1.0:
        raise InputError(f"the NMS IoU threshold must lie in [0, 1], got {iou_threshold}")
    if not 0.0 <= score_threshold <= 1.0:
        raise InputError(f"the score threshold must lie in [0, 1], got {score_threshold}")
    if isinstance(max_detections, bool) or not isinstance(max_detections, (int, np.integer)) \
            or max_detections < 1:
        raise InputError(f"max detections must be a positive integer, got {max_detections!r}")


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray | None = None, *,
        iou_threshold: float = 0.45, score_threshold: float = 0.0,
        max_detections: int = 100) -> np.ndarray:
    """Indices of the boxes kept, best score first.

    boxes: (N, 4) x1, y1, x2, y2. scores: (N,). classes: (N,) integer class ids;
    boxes of different classes never suppress each other (None: one class).
    A box is dropped when its IoU with a kept box of its class is above
    iou_threshold, or its score is below score_threshold. Ties in score keep the
    earlier box, as a stable sort does.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    classes = None if classes is None else np.asarray(classes)
    _check(boxes, scores, classes, iou_threshold, score_threshold, max_detections)
    if not (np.all(np.isfinite(boxes)) and np.all(np.isfinite(scores))):
        raise InputError("boxes and scores must be finite numbers")
    candidates = np.flatnonzero(scores >= score_threshold)
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    if classes is not None and order.size:
        # Shift each class into its own region of the plane, so that one IoU pass is
        # class-aware: boxes of two classes can no longer overlap.
        span = float(np.max(boxes[order]) - np.min(boxes[order])) + 1.0
        offsets = (classes[order] - classes[order].min()).astype(np.float64) * span
        shifted = boxes[order] + offsets[:, None]
    else:
        shifted = boxes[order]
    alive = np.ones(order.size, dtype=bool)
    kept: list[int] = []
    for position in range(order.size):
        if not alive[position]:
            continue
        kept.append(position)
        if len(kept) == max_detections:
            break
        later = slice(position + 1, None)
        overlap = box_iou(shifted[position], shifted[later]) > iou_threshold
        alive[later] &= ~overlap
    return order[np.asarray(kept, dtype=np.int64)]
