"""The ByteTrack-style tracker: ids through motion, crossings, occlusion and low scores."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgepose.detect.nms import box_iou
from edgepose.errors import InputError
from edgepose.evaluate.metrics import oks
from edgepose.keypoints import COCO17
from edgepose.track import (POSITION_NOISE, VELOCITY_NOISE, Tracker, TrackerConfig,
                            box_iou_matrix, boxes_to_measurements, kalman_initiate,
                            kalman_predict, kalman_update, keypoint_similarity,
                            measurements_to_boxes)

# Two COCO-17 poses as fractions of the box (x right, y down): the same head, shoulders
# and hips, different arms and legs, as two people who share a box but not a pose.
STANDING = np.array([
    [.50, .08], [.46, .06], [.54, .06], [.42, .08], [.58, .08], [.35, .25], [.65, .25],
    [.30, .42], [.70, .42], [.28, .58], [.72, .58], [.40, .58], [.60, .58], [.40, .78],
    [.60, .78], [.40, .97], [.60, .97]])
WAVING = STANDING.copy()
WAVING[7:11] = [[.15, .15], [.85, .15], [.10, .00], [.90, .00]]      # elbows and wrists up
WAVING[13:17] = [[.25, .78], [.75, .78], [.10, .97], [.90, .97]]     # legs apart


def _pose(box, template):
    return np.asarray(box[:2]) + template * np.asarray(box[2:])


def _track(tracker, frames, scores=None, poses=None, seed=0):
    """Ids (frames, people) in the people's order, though each frame is fed shuffled."""
    rng = np.random.default_rng(seed)
    result = []
    for index, boxes in enumerate(frames):
        boxes = np.asarray(boxes, float)
        order = rng.permutation(len(boxes))
        frame_scores = np.full(len(boxes), 0.9) if scores is None else np.asarray(scores[index])
        keypoints = None
        if poses is not None:
            keypoints = np.stack([_pose(b, t) for b, t in zip(boxes, poses)])[order]
        ids = tracker.update(boxes[order], frame_scores[order], keypoints)
        unshuffled = np.empty_like(ids)
        unshuffled[order] = ids
        result.append(unshuffled)
    return np.array(result)


# --- the math, against independent references ---------------------------------------------

def test_box_iou_matrix_matches_the_detector_nms_iou():
    rng = np.random.default_rng(3)
    a = np.concatenate([rng.uniform(0, 50, (5, 2)), rng.uniform(1, 40, (5, 2))], axis=1)
    b = np.concatenate([rng.uniform(0, 50, (4, 2)), rng.uniform(1, 40, (4, 2))], axis=1)
    a_xyxy, b_xyxy = (np.concatenate([x[:, :2], x[:, :2] + x[:, 2:]], axis=1) for x in (a, b))
    expected = np.stack([box_iou(row, b_xyxy) for row in a_xyxy])
    np.testing.assert_allclose(box_iou_matrix(a, b), expected, atol=1e-12)
    assert box_iou_matrix(a, b).max() > 0  # some pairs overlap, so the check means something


def test_keypoint_similarity_matches_coco_oks_per_pair():
    rng = np.random.default_rng(4)
    xy = rng.uniform(0, 100, (3, 17, 2))
    reference = xy[[2, 0]] + rng.normal(0, 4, (2, 17, 2))
    reference_counted = rng.uniform(size=(2, 17)) > 0.3
    areas = np.array([900.0, 2500.0, 400.0])
    sigmas = np.asarray(COCO17.sigmas)
    got = keypoint_similarity(xy, np.ones((3, 17), bool), reference, reference_counted,
                              areas, sigmas)
    for n in range(3):
        for t in range(2):
            truth = np.concatenate([reference[t], reference_counted[t, :, None]], axis=1)
            assert got[n, t] == pytest.approx(oks(xy[n], truth, areas[n], sigmas), rel=1e-9)


def test_keypoint_similarity_is_undefined_without_a_common_keypoint():
    counted = np.zeros((1, 17), bool)
    counted[0, :3] = True
    other = ~counted
    got = keypoint_similarity(np.zeros((1, 17, 2)), counted, np.zeros((1, 17, 2)), other,
                              np.ones(1), np.asarray(COCO17.sigmas))
    assert np.isnan(got[0, 0])


def test_kalman_first_update_is_the_scalar_gain_by_hand():
    height = 100.0
    mean, covariance = kalman_initiate(boxes_to_measurements(np.array([[0.0, 0.0, 50.0, height]])))
    mean, covariance = kalman_predict(mean, covariance)
    # Centre x alone: the predicted variance is the initial position and velocity variances
    # plus the process noise; the gain weighs it against the measurement noise.
    predicted = (2 * POSITION_NOISE * height) ** 2 + (10 * VELOCITY_NOISE * height) ** 2 \
        + (POSITION_NOISE * height) ** 2
    gain = predicted / (predicted + (POSITION_NOISE * height) ** 2)
    mean, _ = kalman_update(mean, covariance,
                            boxes_to_measurements(np.array([[8.0, 0.0, 50.0, height]])))
    assert mean[0, 0] == pytest.approx(25.0 + gain * 8.0, rel=1e-12)


@pytest.mark.parametrize("velocity", [
    (3.0, -2.0, 0.0, 0.0),   # sliding across the frame
    (1.0, 0.5, 0.5, 1.0),    # walking towards the camera: growing at a fixed aspect
])
def test_kalman_prediction_converges_to_the_next_box(velocity):
    start, velocity = np.array([10.0, 200.0, 50.0, 100.0]), np.array(velocity)
    mean, covariance = kalman_initiate(boxes_to_measurements(start[None]))
    errors = []
    for frame in range(1, 41):
        mean, covariance = kalman_predict(mean, covariance)
        truth = start + velocity * frame  # the next box, by hand
        errors.append(np.abs(measurements_to_boxes(mean[:, :4])[0] - truth).max())
        mean, covariance = kalman_update(mean, covariance, boxes_to_measurements(truth[None]))
    # The filter starts at rest: its first prediction lags by one frame of motion exactly.
    assert errors[0] == pytest.approx(np.abs(velocity).max())
    assert errors[-1] < 0.02 and errors[-1] < errors[10] < errors[0]


# --- ids over frames -------------------------------------------------------------------------

def _crossing(frames=50):
    """Two people walking through each other (one a little lower) and one walking alone."""
    return [[[20 + 6 * t, 100, 60, 160], [320 - 6 * t, 115, 60, 160], [500, 300 - 2 * t, 40, 90]]
            for t in range(frames)]


@pytest.mark.parametrize("with_poses", [False, True])
def test_people_at_constant_velocity_keep_their_ids_through_a_crossing(with_poses):
    frames = _crossing()
    overlapping = [box_iou_matrix(np.array(f[:1]), np.array(f[1:2]))[0, 0] > 0 for f in frames]
    assert sum(overlapping) >= 8  # the scenario: boxes overlap for several frames
    poses = [STANDING, WAVING, STANDING] if with_poses else None
    ids = _track(Tracker(), frames, poses=poses)
    assert set(ids[0]) == {1, 2, 3}
    assert (ids == ids[0]).all(), ids.T


def _meet_and_turn_back(speed=5, meet=30, frames=60):
    """Two people who walk up to each other, meet, and walk back the way they came."""
    result = []
    for t in range(frames):
        gap = speed * (meet - min(t, 2 * meet - t))
        result.append([[150 - gap, 100, 80, 200], [150 + gap, 108, 80, 200]])
    return result


@pytest.mark.parametrize("config, poses, keeps_ids", [
    (TrackerConfig(), [STANDING, WAVING], True),       # the poses tell them apart
    (TrackerConfig(), None, False),                     # the box alone follows the momentum
    (TrackerConfig(use_keypoints=False), [STANDING, WAVING], False),  # poses switched off
])
def test_keypoints_keep_ids_where_the_motion_model_is_wrong(config, poses, keeps_ids):
    ids = _track(Tracker(config), _meet_and_turn_back(), poses=poses)
    assert list(ids[0]) == [1, 2] or list(ids[0]) == [2, 1]
    assert (ids == ids[0]).all() == keeps_ids, ids.T


def _walker(frame):
    return [100 + 4 * frame, 200 + 1 * frame, 50, 120]


@pytest.mark.parametrize("missing, same_id, with_poses", [
    (10, True, False),    # occluded for ten frames, back where its motion predicts
    (10, True, True),     # ... though its last pose is ten frames old
    (30, True, False),    # exactly max_lost_frames: still recoverable
    (31, False, False),   # one frame more: the track was deleted, a new id
])
def test_a_person_missing_for_a_while_gets_their_id_back(missing, same_id, with_poses):
    bystander = [600, 100, 50, 120]
    frames = [np.array([_walker(t), bystander] if not 20 <= t < 20 + missing else [bystander],
                       float) for t in range(20 + missing + 5)]
    tracker = Tracker(TrackerConfig(max_lost_frames=30))
    ids = [tracker.update(f, np.full(len(f), 0.9),
                          np.stack([_pose(b, STANDING) for b in f]) if with_poses else None)
           for f in frames]
    walker_ids = {int(f[0]) for f in ids if len(f) == 2}
    assert all(f[-1] == 2 for f in ids)  # the bystander is undisturbed
    assert walker_ids == ({1} if same_id else {1, 3})


def test_a_lost_track_keeps_its_last_size():
    # Walking away (shrinking about a fixed centre), then hidden for 30 frames and found
    # again as last seen: extrapolating the shrinking would have left no box to match.
    def away(t):
        height = 160.0 - 3 * t
        return [300 - height / 4, 300 - height / 2, height / 2, height]
    tracker = Tracker()
    for t in range(20):
        assert tracker.update(np.array([away(t)]), np.array([0.9])).tolist() == [1]
    for _ in range(30):
        tracker.update(np.zeros((0, 4)), np.zeros(0))
    assert tracker.update(np.array([away(20)]), np.array([0.9])).tolist() == [1]


def test_a_person_reappearing_elsewhere_is_someone_new():
    tracker = Tracker()
    for t in range(10):
        tracker.update(np.array([_walker(t)], float), np.array([0.9]))
    tracker.update(np.zeros((0, 4)), np.zeros(0))
    far = np.array(_walker(11), float) + [400, 300, 0, 0]
    assert tracker.update(far[None], np.array([0.9])).tolist() == [2]


@pytest.mark.parametrize("score, expected", [
    (0.3, [1]),    # a low score continues the track (an occluded person)
    (0.05, [-1]),  # below low_score: ignored, even on top of the track
])
def test_low_scores_extend_tracks(score, expected):
    tracker = Tracker()
    for t in range(5):
        assert tracker.update(np.array([_walker(t)], float), np.array([0.9])).tolist() == [1]
    for t in range(5, 10):
        assert tracker.update(np.array([_walker(t)], float), np.array([score])).tolist() == expected
    # Back at a high score the person is still themselves either way.
    assert tracker.update(np.array([_walker(10)], float), np.array([0.9])).tolist() == [1]


@pytest.mark.parametrize("score, expected", [
    (0.3, -1),   # low: never starts a track
    (0.55, -1),  # high enough to match, not to start a track (new_track_score 0.6)
    (0.6, 1),    # starts one
])
def test_only_confident_boxes_start_tracks(score, expected):
    tracker = Tracker()
    for t in range(3):
        assert tracker.update(np.array([_walker(t)], float), np.array([score])).tolist() == \
            [expected]


def test_a_lost_track_does_not_take_a_low_score_box():
    # ByteTrack's second association looks only at tracks seen in the last frame.
    tracker = Tracker()
    for t in range(5):
        tracker.update(np.array([_walker(t)], float), np.array([0.9]))
    tracker.update(np.zeros((0, 4)), np.zeros(0))
    assert tracker.update(np.array([_walker(6)], float), np.array([0.3])).tolist() == [-1]
    assert tracker.update(np.array([_walker(7)], float), np.array([0.9])).tolist() == [1]


def test_ids_are_never_reused_not_even_after_reset():
    tracker = Tracker(TrackerConfig(max_lost_frames=0))
    box = np.array([[0.0, 0.0, 10.0, 20.0]])
    assert tracker.update(box, np.array([0.9])).tolist() == [1]
    tracker.update(np.zeros((0, 4)), np.zeros(0))  # lost, and deleted at once
    assert tracker.update(box, np.array([0.9])).tolist() == [2]
    tracker.reset()
    assert tracker.update(box, np.array([0.9])).tolist() == [3]
    assert tracker.update(box, np.array([0.9])).tolist() == [3]


def test_an_empty_frame_returns_no_ids():
    ids = Tracker().update(np.zeros((0, 4)), np.zeros(0))
    assert ids.shape == (0,) and ids.dtype == np.int64


def test_sigmas_for_another_keypoint_set():
    tracker = Tracker(sigmas=[0.05] * 4)
    box = np.array([[0.0, 0.0, 40.0, 80.0]])
    keypoints = np.array([[[10.0, 10.0], [30.0, 10.0], [10.0, 70.0], [30.0, 70.0]]])
    for _ in range(3):
        assert tracker.update(box, np.array([0.9]), keypoints, np.ones((1, 4))).tolist() == [1]


# --- refusals --------------------------------------------------------------------------------

GOOD_BOXES, GOOD_SCORES = np.array([[0.0, 0.0, 10.0, 20.0]]), np.array([0.9])


@pytest.mark.parametrize("boxes, scores, keypoints, keypoint_scores, message", [
    (np.zeros((1, 5)), GOOD_SCORES, None, None, r"boxes: expected shape \(N, 4\)"),  # xywh+score
    (GOOD_BOXES, np.ones(2), None, None, r"scores: expected shape \(1,\)"),  # one per box
    (np.array([[0, 0, np.nan, 20]]), GOOD_SCORES, None, None, "finite"),  # NaN box
    (np.array([[0, 0, -10, 20]]), GOOD_SCORES, None, None, r"widths and heights must be > 0"),
    (np.array([[0, 0, 10, 0]]), GOOD_SCORES, None, None, r"widths and heights must be > 0"),
    (GOOD_BOXES, GOOD_SCORES, np.zeros((2, 17, 2)), None, r"keypoints: expected shape \(1, K, 2\)"),
    (GOOD_BOXES, GOOD_SCORES, np.full((1, 17, 2), np.nan), None, "keypoints must be finite"),
    (GOOD_BOXES, GOOD_SCORES, np.zeros((1, 16, 2)), None, r"K = 17 .*sigmas=\.\.\."),  # MPII
    (GOOD_BOXES, GOOD_SCORES, np.zeros((1, 17, 2)), np.ones((1, 16)),
     r"keypoint_scores: expected shape \(1, 17\)"),
    (GOOD_BOXES, GOOD_SCORES, None, np.ones((1, 17)), "keypoint_scores were given without"),
])
def test_update_refuses_bad_input(boxes, scores, keypoints, keypoint_scores, message):
    with pytest.raises(InputError, match=message):
        Tracker().update(boxes, scores, keypoints, keypoint_scores)


@pytest.mark.parametrize("kwargs, message", [
    (dict(low_score=0.7), "low_score <= high_score <= new_track_score"),  # low above high
    (dict(first_match_iou=0.0), r"first_match_iou must lie in \(0, 1\]"),  # matches anything
    (dict(max_lost_frames=-1), "max_lost_frames must be an int >= 0"),
    (dict(max_lost_frames=2.5), "max_lost_frames must be an int >= 0"),
    (dict(high_score=float("nan")), "high_score must be a finite number"),
    (dict(use_keypoints="yes"), "use_keypoints must be a bool"),
])
def test_config_refuses_bad_values(kwargs, message):
    with pytest.raises(InputError, match=message):
        TrackerConfig(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(config={"high_score": 0.5}), "expected a TrackerConfig"),  # a dict is not a config
    (dict(sigmas=[0.05, -1.0]), "sigmas: expected K positive finite numbers"),
])
def test_tracker_refuses_bad_arguments(kwargs, message):
    with pytest.raises(InputError, match=message):
        Tracker(**kwargs)


def test_module_imports_without_scipy_and_torch():
    # SciPy is loaded on the first frame with tracks to match, so the runtime imports without it.
    script = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("scipy", "torch"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import numpy as np
import edgepose.evaluate.tracking
from edgepose.track import Tracker
from edgepose.errors import MissingDependencyError
tracker = Tracker()
box, score = np.array([[0.0, 0.0, 10.0, 20.0]]), np.array([0.9])
print(tracker.update(box, score).tolist())
try:
    tracker.update(box, score)
except MissingDependencyError as error:
    print("refused", error.extra)
"""
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[1]", "refused track"]
