"""The synthetic-people generator: determinism, COCO validity, flags, boxes and errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepose.errors import InputError
from edgepose.keypoints import COCO17, COCO18
from export.training.synthetic import (ANNOTATION_FILE, SyntheticConfig, main, render_image,
                                       to_coco18, write_coco_dataset)

SEED = 3
SAMPLE = 120            # images in the property sample: enough for occlusion and truncation


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    """The same seed written three times: in parallel, serially, and a shorter prefix."""
    config = SyntheticConfig(seed=SEED)
    root = tmp_path_factory.mktemp("synthetic")
    return {
        "parallel": write_coco_dataset(root / "parallel", 8, config, workers=2, progress=False),
        "serial": write_coco_dataset(root / "serial", 8, config, workers=1, progress=False),
        "prefix": write_coco_dataset(root / "prefix", 3, config, workers=1, progress=False),
    }


@pytest.fixture(scope="module")
def sample() -> list[tuple[np.ndarray, list]]:
    config = SyntheticConfig(seed=11)
    return [render_image(config, index) for index in range(SAMPLE)]


def _images(annotation_file: Path) -> dict[str, bytes]:
    folder = annotation_file.parent / "images"
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_fixed_seed_gives_identical_files_whatever_the_worker_count(datasets):
    parallel, serial = datasets["parallel"], datasets["serial"]
    assert parallel.read_bytes() == serial.read_bytes()
    images = _images(parallel)
    assert len(images) == 8 and images == _images(serial)


def test_an_image_does_not_depend_on_how_many_are_generated(datasets):
    short, full = _images(datasets["prefix"]), _images(datasets["parallel"])
    assert short and all(full[name] == data for name, data in short.items())
    short_json = json.loads(datasets["prefix"].read_text())
    full_json = json.loads(datasets["parallel"].read_text())
    kept = {image["id"] for image in short_json["images"]}
    assert short_json["images"] == [i for i in full_json["images"] if i["id"] in kept]
    assert short_json["annotations"] == [a for a in full_json["annotations"]
                                         if a["image_id"] in kept]


def test_different_seeds_give_different_images():
    first, _ = render_image(SyntheticConfig(seed=1), 0)
    second, _ = render_image(SyntheticConfig(seed=2), 0)
    assert not np.array_equal(first, second)


def test_written_images_decode_at_the_configured_size(datasets):
    data = json.loads(datasets["parallel"].read_text())
    for entry in data["images"]:
        path = datasets["parallel"].parent / "images" / entry["file_name"]
        image = cv2.imread(str(path))
        assert image is not None and image.shape == (entry["height"], entry["width"], 3)


def test_labelled_keypoints_lie_inside_and_unlabelled_ones_are_zero(sample):
    height, width = sample[0][0].shape[:2]
    for _, people in sample:
        for person in people:
            x, y, v = person.keypoints.T
            labelled = v > 0
            assert set(np.unique(v)) <= {0.0, 1.0, 2.0}
            assert np.all((x[labelled] >= 0) & (x[labelled] < width))
            assert np.all((y[labelled] >= 0) & (y[labelled] < height))
            assert np.all(x[~labelled] == 0) and np.all(y[~labelled] == 0)


def test_boxes_enclose_labelled_keypoints_inside_the_image_and_bound_the_area(sample):
    height, width = sample[0][0].shape[:2]
    for _, people in sample:
        for person in people:
            x0, y0, w, h = person.bbox
            assert w > 0 and h > 0
            assert x0 >= 0 and y0 >= 0 and x0 + w <= width and y0 + h <= height
            assert 0 < person.area <= w * h
            points = person.keypoints[person.keypoints[:, 2] > 0, :2]
            assert np.all((points[:, 0] >= x0) & (points[:, 0] <= x0 + w))
            assert np.all((points[:, 1] >= y0) & (points[:, 1] <= y0 + h))


def test_a_larger_sample_has_occluded_truncated_and_ignored_people(sample):
    people = [person for _, image_people in sample for person in image_people]
    flags = np.stack([person.keypoints[:, 2] for person in people])
    annotated = flags.max(axis=1) > 0
    assert annotated.mean() > 0.6, "most people carry keypoints"
    assert (flags == 1).any(axis=1).mean() > 0.15, "occluded keypoints (v=1) are common"
    assert np.mean([person.truncated for person in people]) > 0.1, "some people are truncated"
    truncated_and_labelled = [p for p in people if p.truncated and p.num_keypoints > 0]
    assert truncated_and_labelled, "a truncated person keeps its keypoints inside the image"
    assert (~annotated).any(), "tiny or hidden people are annotated with num_keypoints 0"


def test_nothing_is_flagged_occluded_when_nothing_can_cover(sample):
    # One person, no occluders: a v=1 flag here would be a bug in the flag logic.
    config = SyntheticConfig(seed=5, people=(1, 1), occluders=(0, 0), truncation=0.0)
    for index in range(40):
        _, people = render_image(config, index)
        for person in people:
            assert not np.any(person.keypoints[:, 2] == 1), index


def _hue(bgr: np.ndarray) -> int:
    return int(cv2.cvtColor(bgr.reshape(1, 1, 3).astype(np.uint8), cv2.COLOR_BGR2HSV)[0, 0, 0])


def test_left_limbs_are_warm_and_right_limbs_cool():
    # The left/right cue a network learns from; OpenCV hue is degrees / 2.
    config = SyntheticConfig(seed=9, people=(1, 1), occluders=(0, 0), truncation=0.0,
                             lighting=False, blur=0.0, noise=0.0, min_person_height=150)
    warm = lambda hue: hue <= 28 or hue >= 160  # noqa: E731
    cool = lambda hue: 52 <= hue <= 125  # noqa: E731
    checks = []
    for index in range(30):
        image, (person,) = render_image(config, index)
        k = person.keypoints
        for hip, knee, is_side in ((11, 13, warm), (12, 14, cool)):
            if k[hip, 2] == 2 and k[knee, 2] == 2:
                x, y = np.round((k[hip, :2] + 2 * k[knee, :2]) / 3).astype(int)
                checks.append(is_side(_hue(image[y, x])))
    assert len(checks) > 40 and np.mean(checks) > 0.9


def test_json_counts_match_keypoints_and_pycocotools_scores_ground_truth_as_perfect(datasets):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    path = datasets["parallel"]
    data = json.loads(path.read_text())
    category = data["categories"][0]
    assert category["keypoints"] == list(COCO17.names)
    assert category["skeleton"] == [[i + 1, j + 1] for i, j in COCO17.skeleton]
    for annotation in data["annotations"]:
        flags = annotation["keypoints"][2::3]
        assert annotation["num_keypoints"] == sum(v > 0 for v in flags)
        assert annotation["iscrowd"] == 0 and annotation["category_id"] == 1

    ground_truth = COCO(str(path))
    results = [{"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"],
                "score": 1.0} for a in data["annotations"] if a["num_keypoints"] > 0]
    assert results
    evaluation = COCOeval(ground_truth, ground_truth.loadRes(results), "keypoints")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    assert evaluation.stats[0] == pytest.approx(1.0)


@pytest.mark.parametrize("left, right, neck", [
    ((10.0, 20.0, 2.0), (30.0, 40.0, 2.0), (20.0, 30.0, 2.0)),  # both visible: midpoint, visible
    ((10.0, 20.0, 1.0), (30.0, 40.0, 2.0), (20.0, 30.0, 1.0)),  # one occluded: the smaller flag
    ((0.0, 0.0, 0.0), (30.0, 40.0, 2.0), (0.0, 0.0, 0.0)),      # one unlabelled: no neck
])
def test_coco18_neck_is_the_shoulder_midpoint(left, right, neck):
    keypoints = np.zeros((17, 3))
    keypoints[5], keypoints[6] = left, right
    keypoints[9] = (5.0, 6.0, 2.0)          # left wrist lands at COCO-18 index 7
    converted = to_coco18(keypoints)
    assert converted.shape == (18, 3)
    np.testing.assert_allclose(converted[1], neck)
    np.testing.assert_allclose(converted[7], (5.0, 6.0, 2.0))
    np.testing.assert_allclose(converted[2], keypoints[6])    # right shoulder
    np.testing.assert_allclose(converted[5], keypoints[5])    # left shoulder


def test_coco18_layout_writes_openpose_order(tmp_path):
    config = SyntheticConfig(seed=SEED)
    path = write_coco_dataset(tmp_path, 3, config, layout="coco18", workers=1, progress=False)
    data = json.loads(path.read_text())
    assert data["categories"][0]["keypoints"] == list(COCO18.names)
    for annotation, index in zip(data["annotations"], range(100)):
        points = np.asarray(annotation["keypoints"]).reshape(18, 3)
        assert annotation["num_keypoints"] == int(np.count_nonzero(points[:, 2] > 0))
        if points[2, 2] > 0 and points[5, 2] > 0:
            np.testing.assert_allclose(points[1, :2], (points[2, :2] + points[5, :2]) / 2,
                                       atol=0.011)   # coordinates are rounded to 0.01


@pytest.mark.parametrize("kwargs, count, options", [
    ({}, 0, {}),                                        # no images asked for
    ({}, -3, {}),                                       # a negative count
    ({}, 2, {"layout": "coco19"}),                      # unknown layout
    ({}, 2, {"image_format": "bmp"}),                   # unknown image format
    ({}, 2, {"workers": 0}),                            # no processes
])
def test_bad_dataset_arguments_raise_input_error(tmp_path, kwargs, count, options):
    with pytest.raises(InputError):
        write_coco_dataset(tmp_path / "out", count, SyntheticConfig(**kwargs), progress=False,
                           **options)
    assert not (tmp_path / "out" / ANNOTATION_FILE).exists()


@pytest.mark.parametrize("kwargs", [
    {"image_size": (-320, 256)},            # negative width
    {"image_size": (320, 0)},               # zero height
    {"image_size": (320,)},                 # not a pair
    {"people": (0, 2)},                     # an image needs at least one person
    {"people": (3, 2)},                     # range upside down
    {"seed": -1},                           # SeedSequence takes non-negative seeds
    {"truncation": 1.5},                    # not a probability
    {"min_person_height": 1000},            # taller than the image
])
def test_bad_config_raises_input_error(kwargs):
    with pytest.raises(InputError):
        SyntheticConfig(**kwargs)


def test_render_image_rejects_a_negative_index():
    with pytest.raises(InputError):
        render_image(SyntheticConfig(), -1)


def test_command_line_writes_a_dataset_and_reports_bad_input(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["--out", str(out), "--count", "2", "--seed", "4", "--width", "160",
                 "--height", "128", "--layout", "coco18", "--workers", "1", "--quiet"]) == 0
    data = json.loads((out / ANNOTATION_FILE).read_text())
    assert len(data["images"]) == 2 and data["images"][0]["width"] == 160
    assert len(data["categories"][0]["keypoints"]) == 18
    assert main(["--out", str(tmp_path / "bad"), "--count", "0", "--quiet"]) == 2
    assert "count" in capsys.readouterr().err
