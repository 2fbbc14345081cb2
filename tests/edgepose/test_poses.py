import numpy as np
import pytest

from edgepose.errors import InputError
from edgepose.poses import Poses


def _poses(people=2, keypoints=17):
    rng = np.random.default_rng(1)
    return Poses(xy=rng.uniform(0, 100, (people, keypoints, 2)),
                 scores=rng.uniform(0, 1, (people, keypoints)),
                 person_scores=rng.uniform(0, 1, people), keypoint_set="coco17",
                 boxes=rng.uniform(0, 100, (people, 4)))


def test_coco_results_layout():
    poses = _poses()
    results = poses.to_coco_results(image_id=7)
    assert len(results) == 2
    first = results[0]
    assert first["image_id"] == 7 and first["category_id"] == 1
    assert len(first["keypoints"]) == 17 * 3
    # x, y, score interleaved per keypoint, in keypoint order.
    assert first["keypoints"][3:6] == pytest.approx(
        [poses.xy[0, 1, 0], poses.xy[0, 1, 1], poses.scores[0, 1]], abs=1e-3)
    assert first["score"] == pytest.approx(poses.person_scores[0])


@pytest.mark.parametrize("field, value, message", [
    ("xy", np.zeros((2, 16, 2)), r"expected shape \(N, 17, 2\)"),     # wrong keypoint count
    ("scores", np.zeros((2, 17, 1)), r"expected shape \(2, 17\)"),     # extra axis
    ("person_scores", np.zeros(3), r"expected shape \(2,\)"),          # wrong people count
    ("boxes", np.zeros((2, 5)), r"expected shape \(2, 4\)"),           # box with a score column
])
def test_shapes_are_validated(field, value, message):
    good = _poses()
    kwargs = dict(xy=good.xy, scores=good.scores, person_scores=good.person_scores,
                  keypoint_set="coco17", boxes=good.boxes)
    kwargs[field] = value
    with pytest.raises(InputError, match=message):
        Poses(**kwargs)


def test_empty_poses():
    poses = Poses(np.zeros((0, 17, 2)), np.zeros((0, 17)), np.zeros(0), "coco17")
    assert len(poses) == 0 and poses.to_coco_results(1) == []
