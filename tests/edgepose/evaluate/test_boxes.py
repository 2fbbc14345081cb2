"""Person box AP (coco_box_eval): every annotated person box is ground truth, including
figures too covered to have keypoints (COCOeval's bbox mode ignores only crowds)."""

import json

import pytest

from edgepose.evaluate.metrics import coco_box_eval
from export.training.synthetic import SyntheticConfig, write_coco_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("boxes")
    path = write_coco_dataset(folder, 12, SyntheticConfig(seed=7, people=(2, 4)), workers=1,
                              progress=False)
    return json.loads(path.read_text())


def _results(annotations, shift=0.0):
    return [{"image_id": a["image_id"], "category_id": 1, "score": 0.9,
             "bbox": [a["bbox"][0] + shift, *a["bbox"][1:]]} for a in annotations]


def test_the_ground_truth_boxes_score_one(dataset):
    ids = [image["id"] for image in dataset["images"]]
    metrics = coco_box_eval(dataset, _results(dataset["annotations"]), image_ids=ids)
    assert metrics["AP"] == pytest.approx(1.0) and metrics["AR100"] == pytest.approx(1.0)


def test_unlabelled_figures_count_and_nothing_scores_zero(dataset):
    ids = [image["id"] for image in dataset["images"]]
    labelled = [a for a in dataset["annotations"] if a["num_keypoints"] > 0]
    assert 0 < len(labelled) < len(dataset["annotations"])
    share = len(labelled) / len(dataset["annotations"])
    metrics = coco_box_eval(dataset, _results(labelled), image_ids=ids)
    assert metrics["AR100"] == pytest.approx(share, abs=0.02)   # the rest are missed
    assert coco_box_eval(dataset, [], image_ids=ids)["AP"] == 0.0


def test_a_box_shifted_by_half_its_width_misses_at_iou_half(tmp_path):
    # One person an image, so a shifted box can only meet its own truth: shifted by half
    # its width it overlaps it by IoU (1/2) / (3/2) = 1/3 < 0.5, and AP50 drops to 0;
    # by a tenth, IoU (9/10) / (11/10) = 0.82 >= 0.75: AP75 stays 1.
    path = write_coco_dataset(tmp_path, 6, SyntheticConfig(seed=8, people=(1, 1)), workers=1,
                              progress=False)
    single = json.loads(path.read_text())
    ids = [image["id"] for image in single["images"]]

    def shifted(fraction):
        return [dict(r, bbox=[r["bbox"][0] + fraction * r["bbox"][2], *r["bbox"][1:]])
                for r in _results(single["annotations"])]

    assert coco_box_eval(single, shifted(0.5), image_ids=ids)["AP50"] == pytest.approx(0.0)
    assert coco_box_eval(single, shifted(0.1), image_ids=ids)["AP75"] == pytest.approx(1.0)
