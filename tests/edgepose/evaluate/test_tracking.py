"""CLEAR-MOT identity switches and MOTA against sequences worked out by hand."""

import math

import numpy as np
import pytest

from edgepose.errors import InputError
from edgepose.evaluate.tracking import TrackingScore, id_switches
from edgepose.track import Tracker

A, B = [0.0, 0.0, 100.0, 100.0], [500.0, 0.0, 100.0, 100.0]  # far apart: no IoU between them


def _frame(ids, boxes):
    return np.array(ids, np.int64), np.array(boxes, float).reshape(-1, 4)


def _still(frames, *objects):
    """Ground truth: the given (id, box) objects standing still in every frame."""
    return [_frame([i for i, _ in objects], [b for _, b in objects]) for _ in range(frames)]


def test_two_objects_whose_ids_swap_once_make_two_switches():
    truth = _still(6, (10, A), (20, B))
    predicted = [_frame([1, 2], [A, B])] * 3 + [_frame([2, 1], [A, B])] * 3
    score = id_switches(truth, predicted)
    # Each object changes id once (1→2 and 2→1): two switches; 12 matches, nothing missed.
    assert (score.id_switches, score.matches, score.misses, score.false_positives) == (2, 12, 0, 0)
    assert score.frames == 6 and score.ground_truth_boxes == 12
    assert score.mota == pytest.approx(1 - 2 / 12)


def test_a_miss_in_the_middle_then_the_same_id_is_no_switch():
    truth = _still(5, (7, A))
    predicted = [_frame([3], [A]), _frame([3], [A]), _frame([], []),
                 _frame([3, 9], [A, B]), _frame([3], [A])]
    score = id_switches(truth, predicted)
    # One miss (frame 3), one false positive (the box at B in frame 4), four matches.
    assert (score.id_switches, score.matches, score.misses, score.false_positives) == (0, 4, 1, 1)
    assert score.mota == pytest.approx(1 - (1 + 1) / 5)


@pytest.mark.parametrize("ids, switches", [
    ([1, 1, None, None, 2], 1),   # after a gap: against the last match, not the last frame
    ([1, 2, 1, 1, 1], 2),         # switching back is another switch
    ([1, 2, 3, 4, 5], 4),         # a new id every frame
    ([None, 1, 1, 1, 1], 0),      # the first match is never a switch
])
def test_switches_count_against_the_last_matched_id(ids, switches):
    truth = _still(5, (4, A))
    predicted = [_frame([] if i is None else [i], [] if i is None else [A]) for i in ids]
    assert id_switches(truth, predicted).id_switches == switches


def test_a_match_kept_from_the_previous_frame_beats_a_better_overlap():
    # Boxes 100×100 at x = 0 (object 1) and 30 (object 2). In frame 2 the predictions move
    # to x = 20 (id 1) and 10 (id 2): IoUs by hand are 80/120 for the kept pairs but 90/110
    # crosswise, so plain Hungarian would swap them; CLEAR-MOT keeps both (no switch). In
    # frame 3 they move to x = 40 (id 1) and -10 (id 2): the kept pairs fall to 60/140 < 0.5,
    # and the crosswise ones (90/110) are taken: two switches.
    left, right = [0, 0, 100, 100], [30, 0, 100, 100]
    truth = _still(3, (1, left), (2, right))
    predicted = [_frame([1, 2], [left, right]),
                 _frame([1, 2], [[20, 0, 100, 100], [10, 0, 100, 100]]),
                 _frame([1, 2], [[40, 0, 100, 100], [-10, 0, 100, 100]])]
    counts = []
    for frames in (2, 3):
        score = id_switches(truth[:frames], predicted[:frames])
        counts.append((score.id_switches, score.matches))
    assert counts == [(0, 4), (2, 6)]


@pytest.mark.parametrize("threshold, matched", [
    (1 / 3, True),    # boxes offset by half their width: IoU 50/150, exactly the threshold
    (0.34, False),    # just above it
])
def test_the_iou_threshold_is_inclusive(threshold, matched):
    truth = [_frame([1], [[0, 0, 100, 100]])]
    predicted = [_frame([1], [[50, 0, 100, 100]])]
    score = id_switches(truth, predicted, iou_threshold=threshold)
    assert (score.matches, score.misses, score.false_positives) == \
        ((1, 0, 0) if matched else (0, 1, 1))


def test_mota_can_be_negative_and_is_undefined_without_ground_truth():
    truth = [_frame([1], [A]), _frame([], [])]
    predicted = [_frame([5, 6, 7], [B, [200, 0, 10, 10], [300, 0, 10, 10]]), _frame([], [])]
    score = id_switches(truth, predicted)
    assert score.mota == pytest.approx(1 - (1 + 3) / 1)
    empty = id_switches([_frame([], [])], [_frame([2], [A])])
    assert math.isnan(empty.mota) and empty.to_dict()["mota"] is None
    assert empty.to_dict() == {"id_switches": 0, "matches": 0, "misses": 0,
                               "false_positives": 1, "frames": 1, "ground_truth_boxes": 0,
                               "mota": None}


def test_the_tracker_scores_perfectly_on_people_crossing():
    truth, predicted, tracker = [], [], Tracker()
    for t in range(40):
        boxes = np.array([[20 + 6 * t, 100, 60, 160], [260 - 6 * t, 115, 60, 160]], float)
        truth.append(_frame([100, 200], boxes))
        predicted.append((tracker.update(boxes[::-1], np.array([0.9, 0.9])), boxes[::-1]))
    score = id_switches(truth, predicted)
    assert (score.id_switches, score.matches, score.mota) == (0, 80, 1.0)


GOOD = _frame([1], [A])


@pytest.mark.parametrize("truth, predicted, threshold, message", [
    ([GOOD, GOOD], [GOOD], 0.5, "ground_truth has 2 frames but predictions has 1"),
    ([GOOD], [GOOD], 0.0, r"iou_threshold must lie in \(0, 1\]"),  # would match anything
    ([GOOD], [_frame([1, 1], [A, B])], 0.5, "ids must be unique within a frame"),
    ([GOOD], [_frame([-1], [A])], 0.5, r"drop the boxes .* \(id -1\)"),  # tracker's untracked
    ([GOOD], [(np.array([1.5]), np.array([A]))], 0.5, "ids must be .* integers"),
    ([GOOD], [(np.array([1]), np.zeros((1, 5)))], 0.5, r"boxes must be \(1, 4\)"),
    ([(np.array([1]), np.array([[0, 0, np.nan, 1]]))], [GOOD], 0.5, "ground_truth\\[0\\].*finite"),
    ([GOOD], [(np.array([1]), np.array([[0, 0, -5, 1]]))], 0.5, "widths and heights must be >= 0"),
    ([GOOD], [np.zeros((1, 4))], 0.5, r"predictions\[0\]: expected a pair"),  # boxes alone
])
def test_bad_input_is_refused(truth, predicted, threshold, message):
    with pytest.raises(InputError, match=message):
        id_switches(truth, predicted, iou_threshold=threshold)


def test_score_counts_must_add_up():
    with pytest.raises(InputError, match=r"matches \+ misses \(3 \+ 1\) must equal"):
        TrackingScore(id_switches=0, matches=3, misses=1, false_positives=0, frames=2,
                      ground_truth_boxes=5)
