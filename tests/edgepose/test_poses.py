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


def test_poses_change_keypoint_set_by_name():
    from edgepose.keypoints import get_keypoint_set

    coco18 = get_keypoint_set("coco18")
    # Each keypoint's x is its COCO-18 index, so the reordering is visible in the values.
    xy = np.stack([np.arange(18.0), np.zeros(18)], axis=1)[None]
    poses = Poses(xy=xy, scores=np.ones((1, 18)), person_scores=np.ones(1), keypoint_set="coco18")
    coco17 = poses.in_keypoint_set("coco17")
    assert coco17.keypoint_set == "coco17" and coco17.xy.shape == (1, 17, 2)
    # COCO-17 order (nose, eyes, ears, shoulders, ...) against CMU's COCO-18 indices.
    assert list(coco17.xy[0, :, 0]) == [0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10]
    assert coco18.names[1] == "neck" and poses.in_keypoint_set("coco18") is poses
    with pytest.raises(InputError, match="neck"):
        coco17.in_keypoint_set("coco18")
