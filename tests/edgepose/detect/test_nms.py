"""nms() against a brute-force greedy NMS written from the definition."""

import numpy as np
import pytest

from edgepose.detect.nms import nms
from edgepose.errors import InputError


def brute_force(boxes, scores, classes, iou_threshold, score_threshold, max_detections):
    """Sort by score (stable), keep a box unless a kept box of its class overlaps it by
    more than the threshold; IoU from the area formula, one pair at a time."""
    def iou(a, b):
        w = min(a[2], b[2]) - max(a[0], b[0])
        h = min(a[3], b[3]) - max(a[1], b[1])
        inter = max(w, 0.0) * max(h, 0.0)
        union = ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
        return inter / union if union > 0 else 0.0

    order = sorted((i for i in range(len(scores)) if scores[i] >= score_threshold),
                   key=lambda i: -scores[i])
    kept = []
    for i in order:
        if len(kept) == max_detections:
            break
        if all(classes[i] != classes[k] or iou(boxes[i], boxes[k]) <= iou_threshold
               for k in kept):
            kept.append(i)
    return kept


def _random_boxes(rng, count, clustered):
    centers = rng.uniform(0, 200, (count, 2))
    if clustered:   # many overlaps: people standing together
        centers = rng.uniform(50, 90, (count, 2))
    sizes = rng.uniform(5, 80, (count, 2))
    return np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=1)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("classes_count", [1, 3])
def test_equals_the_brute_force_reference(seed, classes_count):
    rng = np.random.default_rng(seed)
    count = int(rng.integers(1, 300))
    boxes = _random_boxes(rng, count, clustered=seed % 2 == 0)
    scores = rng.uniform(0, 1, count).round(2)      # rounded: ties happen
    classes = rng.integers(0, classes_count, count)
    iou_threshold = float(rng.choice([0.3, 0.45, 0.7]))
    score_threshold = float(rng.choice([0.0, 0.25]))
    max_detections = int(rng.choice([5, 50, 1000]))
    got = nms(boxes, scores, classes, iou_threshold=iou_threshold,
              score_threshold=score_threshold, max_detections=max_detections)
    want = brute_force(boxes, scores, classes, iou_threshold, score_threshold, max_detections)
    assert got.tolist() == want


def test_boxes_of_different_classes_never_suppress_each_other():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
    scores = np.array([0.9, 0.8, 0.7])
    assert nms(boxes, scores, np.array([0, 1, 0])).tolist() == [0, 1]
    assert nms(boxes, scores).tolist() == [0]


def test_touching_and_degenerate_boxes():
    boxes = np.array([[0, 0, 10, 10], [10, 0, 20, 10], [5, 5, 5, 5]], float)   # IoU 0; empty
    assert nms(boxes, np.array([0.9, 0.8, 0.7]), iou_threshold=0.0).tolist() == [0, 1, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0)).tolist() == []


@pytest.mark.parametrize("args, message", [
    ((np.zeros((3, 5)), np.zeros(3)), r"\(N, 4\)"),
    ((np.zeros((3, 4)), np.zeros(2)), "one per box"),
    ((np.array([[0, 0, np.nan, 1]]), np.ones(1)), "finite"),
])
def test_bad_input_is_refused(args, message):
    with pytest.raises(InputError, match=message):
        nms(*args)


@pytest.mark.parametrize("options, message", [
    (dict(iou_threshold=1.5), "IoU threshold"),
    (dict(score_threshold=-0.1), "score threshold"),
    (dict(max_detections=0), "max detections"),
])
def test_bad_settings_are_refused(options, message):
    with pytest.raises(InputError, match=message):
        nms(np.zeros((1, 4)), np.ones(1), **options)
