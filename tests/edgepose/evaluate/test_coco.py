"""The evaluator: OKS against the formula, COCO AP against known OKS bands and
pycocotools itself, PCKh against a brute-force loop, and evaluate_model end to end
with a stand-in runner that knows the truth.
"""

import contextlib
import dataclasses
import io
import json
import math
import sys

import cv2
import numpy as np
import pytest

# open_runner and the pipelines are patched where the run loop looks them up.
from edgepose.evaluate import coco as evaluate
from edgepose.backends.base import RunnerBase, TensorSpec
from edgepose.card import DecoderSpec, InputSpec, ModelCard, OutputSpec
from edgepose.errors import InputError, MissingDependencyError
from edgepose.evaluate import (
    METRIC_NAMES,
    MPII_MEAN_EXCLUDES,
    EvalReport,
    coco_keypoint_eval,
    evaluate_model,
    mpii_head_sizes,
    oks,
    pckh,
)
from edgepose.keypoints import COCO17
from edgepose.poses import Poses
from edgepose.preprocess import affine_matrices, box_to_center_scale

K = 17
SIGMAS = np.array(COCO17.sigmas)


def _person(keypoints_xy, visibility=None, area=10000.0, bbox=(100, 100, 100, 100),
            image_id=1, ann_id=1):
    xy = np.asarray(keypoints_xy, np.float64)
    v = np.full(len(xy), 2) if visibility is None else np.asarray(visibility)
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
            "bbox": list(bbox), "area": area, "num_keypoints": int((v > 0).sum()),
            "keypoints": np.c_[xy, v].ravel().tolist()}


def _dataset(annotations, image_ids=(1,)):
    return {"images": [{"id": i, "file_name": f"{i}.png", "width": 640, "height": 480}
                       for i in image_ids],
            "annotations": annotations,
            "categories": [{"id": 1, "name": "person", "keypoints": list(COCO17.names)}]}


def _result(xy, image_id=1, score=1.0):
    xy = np.asarray(xy, np.float64)
    return {"image_id": image_id, "category_id": 1, "score": score,
            "keypoints": np.c_[xy, np.ones(len(xy))].ravel().tolist()}


def _truth(seed=0, count=K):
    return np.random.default_rng(seed).uniform(110, 190, (count, 2))


# --- OKS by hand ---------------------------------------------------------------------------


def test_perfect_prediction_has_oks_one():
    truth = _truth()
    assert oks(truth, np.c_[truth, np.full(K, 2)], 10000.0, SIGMAS) == pytest.approx(1.0)


@pytest.mark.parametrize("keypoint, distance, area, expected", [
    # nose (σ = .026), 5 px, area 100²: e = 25 / (2·10000·.052²) = 0.46228, exp(−e) = 0.62985
    (0, 5.0, 10000.0, (16 + 0.6298471509901603) / 17),
    # left hip (σ = .107), 10 px, area 5000: e = 100 / (2·5000·.214²) = 0.21836,
    # exp(−e) = 0.80384
    (11, 10.0, 5000.0, (16 + 0.803836264173623) / 17),
    # far off: that keypoint contributes ~0, the other 16 stay perfect
    (5, 1000.0, 10000.0, 16 / 17),
])
def test_one_displaced_keypoint_matches_the_formula(keypoint, distance, area, expected):
    truth = _truth()
    predicted = truth.copy()
    predicted[keypoint] += distance * np.array([0.6, 0.8])  # a 3-4-5 direction: length `distance`
    formula = ((K - 1) + math.exp(-distance ** 2 / (2 * area * (2 * SIGMAS[keypoint]) ** 2))) / K
    assert formula == pytest.approx(expected)
    assert oks(predicted, np.c_[truth, np.full(K, 2)], area, SIGMAS) == pytest.approx(expected)


def test_unlabelled_keypoints_do_not_count():
    truth = _truth()
    visibility = np.full(K, 2)
    visibility[[0, 3]] = 0
    visibility[4] = 1  # labelled but occluded: counts like a visible one
    predicted = truth.copy()
    predicted[[0, 3]] += 300.0
    assert oks(predicted, np.c_[truth, visibility], 10000.0, SIGMAS) == pytest.approx(1.0)
    predicted[4, 0] += 5.0
    e = 25 / (2 * 10000.0 * (2 * SIGMAS[4]) ** 2)
    assert oks(predicted, np.c_[truth, visibility], 10000.0, SIGMAS) == \
        pytest.approx((14 + math.exp(-e)) / 15)


@pytest.mark.parametrize("predicted, truth, area, message", [
    (np.zeros((K, 2)), np.zeros((K, 3)), 100.0, "no labelled keypoint"),           # nobody labelled
    (np.zeros((16, 2)), np.ones((K, 3)), 100.0, r"shape \(17, 2\)"),              # wrong K
    (np.zeros((K, 2)), np.ones((K, 2)), 100.0, r"\(17, 3\)"),                     # no visibility
    (np.zeros((K, 2)), np.ones((K, 3)), -1.0, "area"),                            # negative area
    (np.full((K, 2), np.nan), np.ones((K, 3)), 100.0, "finite"),                  # NaN prediction
])
def test_oks_bad_input(predicted, truth, area, message):
    with pytest.raises(InputError, match=message):
        oks(predicted, truth, area, SIGMAS)


# --- COCO AP through pycocotools -----------------------------------------------------------


def _displaced_to_oks(truth, target, area):
    """Every keypoint moved so that its own exp(−e) equals `target`: OKS = target exactly."""
    distance = np.sqrt(-math.log(target) * 2 * area * (2 * SIGMAS) ** 2)
    return truth + distance[:, None] * np.array([0.6, 0.8])


def test_perfect_predictions_score_ap_one():
    truth = _truth()
    metrics = coco_keypoint_eval(_dataset([_person(truth)]), [_result(truth)])
    assert set(metrics) == set(METRIC_NAMES)
    for name in ("AP", "AP50", "AP75", "APl", "AR", "AR50", "AR75", "ARl"):
        assert metrics[name] == pytest.approx(1.0), name
    # area 10000 is "large" (> 96²): nobody is medium, which pycocotools writes as -1
    assert math.isnan(metrics["APm"]) and math.isnan(metrics["ARm"])


@pytest.mark.parametrize("target, ap, ap50, ap75", [
    (0.97, 1.0, 1.0, 1.0),   # above every threshold 0.50…0.95
    (0.72, 0.5, 1.0, 0.0),   # passes 0.50, 0.55, 0.60, 0.65, 0.70: 5 of 10
    (0.52, 0.1, 1.0, 0.0),   # passes 0.50 only
    (0.40, 0.0, 0.0, 0.0),   # below every threshold
])
def test_ap_follows_the_oks_band(target, ap, ap50, ap75):
    truth = _truth()
    predicted = _displaced_to_oks(truth, target, 10000.0)
    assert oks(predicted, np.c_[truth, np.full(K, 2)], 10000.0, SIGMAS) == pytest.approx(target)
    metrics = coco_keypoint_eval(_dataset([_person(truth)]), [_result(predicted)])
    assert metrics["AP"] == pytest.approx(ap, abs=1e-6)
    assert metrics["AP50"] == pytest.approx(ap50, abs=1e-6)
    assert metrics["AP75"] == pytest.approx(ap75, abs=1e-6)
    # one person, one result: recall at each threshold is 1 or 0, like precision
    assert metrics["AR"] == pytest.approx(ap, abs=1e-6)


def test_empty_results_score_zero_rather_than_crash():
    metrics = coco_keypoint_eval(_dataset([_person(_truth())]), [])
    assert metrics["AP"] == 0.0 and metrics["AR"] == 0.0


def test_results_from_a_file_and_unchanged_when_passed_in(tmp_path):
    truth = _truth()
    results = [dict(_result(truth), bbox=[100, 100, 100, 100])]
    snapshot = json.dumps(results)
    (tmp_path / "ann.json").write_text(json.dumps(_dataset([_person(truth)])))
    (tmp_path / "res.json").write_text(snapshot)
    from_files = coco_keypoint_eval(tmp_path / "ann.json", tmp_path / "res.json")
    in_memory = coco_keypoint_eval(tmp_path / "ann.json", results)
    assert from_files["AP"] == pytest.approx(1.0)
    assert from_files == pytest.approx(in_memory, nan_ok=True)
    assert json.dumps(results) == snapshot  # pycocotools writes into what it gets; we copy


def test_images_without_results_count_as_misses_unless_left_out():
    first, second = _truth(0), _truth(1)
    dataset = _dataset([_person(first), _person(second, image_id=2, ann_id=2)], image_ids=(1, 2))
    both = coco_keypoint_eval(dataset, [_result(first)])
    # Half the people found, all precisely: precision 1 up to recall 0.5 → 51 of 101 points.
    assert both["AP"] == pytest.approx(51 / 101) and both["AR"] == pytest.approx(0.5)
    assert coco_keypoint_eval(dataset, [_result(first)], image_ids=[1])["AP"] == \
        pytest.approx(1.0)


def test_more_results_than_cocoeval_scores_are_reported(caplog):
    truth = _truth()
    # COCOeval keeps the 20 best-scored results of an image; 24 more poor ones are logged.
    results = [_result(truth)] + [_result(truth + 200, score=0.1)] * 24
    with caplog.at_level("WARNING", logger="edgepose.evaluate"):
        metrics = coco_keypoint_eval(_dataset([_person(truth)]), results)
    assert metrics["AP"] == pytest.approx(1.0)
    assert "more than 20 results" in caplog.text


def test_custom_sigmas_for_another_keypoint_count():
    truth = _truth(count=4)
    dataset = _dataset([_person(truth)])
    with pytest.raises(InputError, match="pass sigmas for 4"):
        coco_keypoint_eval(dataset, [_result(truth)])
    predicted = truth + [[5.0, 0.0], [0, 0], [0, 0], [0, 0]]
    sigmas = [0.05, 0.05, 0.05, 0.05]
    e = 25 / (2 * 10000.0 * (2 * 0.05) ** 2)  # 0.125 → OKS (3 + e^−0.125)/4 = 0.97
    assert (3 + math.exp(-e)) / 4 > 0.95
    assert coco_keypoint_eval(dataset, [_result(predicted)], sigmas=sigmas)["AP"] == \
        pytest.approx(1.0)


@pytest.mark.parametrize("result, message", [
    ({"image_id": 7}, "image_id 7"),                                   # image not annotated
    ({"category_id": 3}, "category_id 3"),                             # unknown category
    ({"keypoints": [1.0, 2.0, 1.0]}, "expected 51"),                   # wrong keypoint count
    ({"score": None}, "score"),                                         # no score
])
def test_bad_results(result, message):
    truth = _truth()
    with pytest.raises(InputError, match=message):
        coco_keypoint_eval(_dataset([_person(truth)]), [dict(_result(truth), **result)])


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),                                                # broken file
    ("[]", "expected a COCO object"),                                               # a results list
    (json.dumps({"images": [], "annotations": []}), "lacks the list"),             # no categories
    (json.dumps({"images": [{"id": 1}], "categories": [{"id": 1}],                 # detection file
                 "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
                                  "bbox": [0, 0, 1, 1], "area": 1}]}), "not a COCO keypoints"),
    (json.dumps(_dataset([{k: v for k, v in _person(_truth()).items()
                           if k != "num_keypoints"}])), "num_keypoints"),     # no num_keypoints
    (json.dumps(_dataset([_person(_truth(), image_id=9)])), "image id 9"),        # dangling image
    (json.dumps(_dataset([_person(_truth()), _person(_truth())])), "used once"),  # duplicate ids
    (json.dumps(_dataset([_person(_truth()),  # 17 and 4 keypoints
                          _person(_truth(count=4), ann_id=2)])), "different keypoint counts"),
])
def test_bad_annotation_files(tmp_path, content, message):
    path = tmp_path / "ann.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        coco_keypoint_eval(path, [])


def test_missing_annotation_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        coco_keypoint_eval(tmp_path / "absent.json", [])


def test_oks_agrees_with_pycocotools_compute_oks():
    pycocotools = pytest.importorskip("pycocotools.cocoeval")
    from pycocotools.coco import COCO

    rng = np.random.default_rng(7)
    annotations, results, truths = [], [], []
    for index in range(6):
        truth = rng.uniform(0, 400, (K, 2))
        visibility = rng.choice([0, 1, 2], K, p=[0.3, 0.2, 0.5])
        visibility[0] = 2  # at least one labelled keypoint: OKS is defined
        area = float(rng.uniform(500, 40000))
        annotations.append(_person(truth, visibility, area=area, ann_id=index + 1))
        truths.append((np.c_[truth, visibility], area))
    for index in range(5):
        anchor = truths[index % len(truths)][0][:, :2]
        predicted = anchor + rng.normal(0, rng.choice([1.0, 8.0, 40.0]), (K, 2))
        results.append(_result(predicted, score=1.0 - 0.1 * index))
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth = COCO()
        ground_truth.dataset = _dataset(annotations)
        ground_truth.createIndex()
        evaluator = pycocotools.COCOeval(ground_truth, ground_truth.loadRes(
            [dict(r) for r in results]), iouType="keypoints")
        evaluator.evaluate()
    reference = evaluator.ious[(1, 1)]  # rows: results by falling score; columns: annotations
    ours = np.array([[oks(np.reshape(r["keypoints"], (K, 3))[:, :2], truth, area, SIGMAS)
                      for truth, area in truths] for r in results])
    assert reference.shape == ours.shape == (5, 6)
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-12)
    assert 0.05 < ours.max() and ours.min() < 0.95  # the cases span the range, not all 0 or 1


# --- PCKh --------------------------------------------------------------------------------


def test_pckh_matches_a_brute_force_loop():
    rng = np.random.default_rng(3)
    n, k = 30, 16
    truth = rng.uniform(0, 300, (n, k, 2))
    predicted = truth + rng.normal(0, 12, (n, k, 2))
    visible = rng.random((n, k)) > 0.2
    heads = rng.uniform(15, 40, n)
    result = pckh(predicted, truth, visible, heads, mean_excludes=MPII_MEAN_EXCLUDES)

    correct = np.zeros(k)
    seen = np.zeros(k)
    for person in range(n):
        for joint in range(k):
            if visible[person, joint]:
                seen[joint] += 1
                dx, dy = predicted[person, joint] - truth[person, joint]
                if math.sqrt(dx * dx + dy * dy) <= 0.5 * heads[person]:
                    correct[joint] += 1
    np.testing.assert_allclose(result.per_joint, correct / seen)
    np.testing.assert_array_equal(result.visible, seen)
    kept = [j for j in range(k) if j not in (6, 7)]  # MPII leaves pelvis and thorax out
    assert result.mean == pytest.approx(correct[kept].sum() / seen[kept].sum())
    assert 0.2 < result.mean < 0.95  # noise chosen so the cases are mixed


def test_pckh_edges():
    truth = np.zeros((2, 3, 2))
    predicted = truth.copy()
    predicted[:, 0, 0] = 5.0          # exactly threshold × head size: counts as right (≤)
    predicted[:, 1, 0] = 5.0 + 1e-6   # just beyond: wrong
    visible = np.array([[1, 1, 0], [1, 1, 0]])
    result = pckh(predicted, truth, visible, np.array([10.0, 10.0]))
    assert result.per_joint[:2].tolist() == [1.0, 0.0]
    assert math.isnan(result.per_joint[2])  # never visible
    assert result.mean == 0.5
    assert json.loads(json.dumps(result.to_dict()))["per_joint"] == [1.0, 0.0, None]


def test_mpii_head_size_is_six_tenths_of_the_head_box_diagonal():
    assert mpii_head_sizes(np.array([[10, 20, 40, 60]])).tolist() == pytest.approx([30.0])


@pytest.mark.parametrize("shape, heads, message", [
    ((2, 3, 3), [1.0, 1.0], r"\(N, K, 2\)"),     # xy with a score column
    ((2, 3, 2), [1.0], "head_sizes"),            # one head size for two people
    ((2, 3, 2), [1.0, 0.0], "head_sizes"),       # zero head size
])
def test_pckh_bad_input(shape, heads, message):
    array = np.zeros(shape)
    with pytest.raises(InputError, match=message):
        pckh(array, array, np.ones(shape[:2]), np.array(heads))


# --- evaluate_model end to end -----------------------------------------------------------

HEIGHT, WIDTH, STRIDE = 64, 48, 4

# Each person a rectangle of its own grey level, so the stand-in runner can tell
# whom a crop shows from the crop's centre. (image id, box, grey level)
PEOPLE = [(1, (20, 40, 80, 160), 60), (1, (180, 30, 90, 180), 100),
          (2, (100, 50, 100, 150), 140), (3, (60, 20, 120, 200), 180)]


def _card(paradigm="top-down"):
    return ModelCard(family="test", variant="truth", paradigm=paradigm, keypoints="coco17",
                     input=InputSpec("input", HEIGHT, WIDTH),
                     outputs=(OutputSpec("heatmaps", "heatmaps", STRIDE),),
                     decoder=DecoderSpec("topdown", refine="dark"))


class TruthRunner(RunnerBase):
    """Answers each crop with Gaussians at its person's true keypoints.

    It tells the person from the grey level at the crop centre and maps the truth
    through the official crop transform of that person's annotated box, so only a
    correct chain — the right boxes to the right images, results under the right
    image ids, in the right format — scores AP near 1.
    """

    def __init__(self, truth, paradigm="top-down"):
        self.card = _card(paradigm)
        self.truth = truth  # grey level -> (box, keypoints (K, 3))
        self.inputs = (TensorSpec("input", np.dtype(np.float32), (None, 3, HEIGHT, WIDTH)),)
        self.outputs = (TensorSpec("heatmaps", np.dtype(np.float32),
                                   (None, K, HEIGHT // STRIDE, WIDTH // STRIDE)),)
        self.max_batch = None
        self.crops = 0

    def infer(self, feeds):
        crops = feeds["input"]
        h, w = HEIGHT // STRIDE, WIDTH // STRIDE
        ys, xs = np.mgrid[0:h, 0:w]
        out = np.zeros((crops.shape[0], K, h, w), np.float32)
        for n, crop in enumerate(crops):
            self.crops += 1
            middle = crop[:, HEIGHT // 2 - 2:HEIGHT // 2 + 2, WIDTH // 2 - 2:WIDTH // 2 + 2]
            grey = float(middle.mean())
            match = [g for g in self.truth if abs(g - grey) < 5]
            if not match:
                continue  # background: flat maps, a useless pose
            box, keypoints = self.truth[match[0]]
            centers, scales = box_to_center_scale(np.array([box]), WIDTH / HEIGHT)
            matrix = affine_matrices(centers, scales, (w, h))[0]
            xy = np.c_[keypoints[:, :2], np.ones(K)] @ matrix.T
            out[n] = np.exp(-((xs - xy[:, 0, None, None]) ** 2 + (ys - xy[:, 1, None, None]) ** 2)
                            / (2 * 2.0 ** 2))
        return {"heatmaps": out}


@pytest.fixture
def coco_folder(tmp_path):
    """Four images (the fourth with nobody and no file), annotations and the truth."""
    rng = np.random.default_rng(11)
    images = tmp_path / "images"
    images.mkdir()
    canvases = {i: np.zeros((240, 320, 3), np.uint8) for i in (1, 2, 3)}
    annotations, truth = [], {}
    for index, (image_id, (x, y, w, h), grey) in enumerate(PEOPLE):
        canvases[image_id][y:y + h, x:x + w] = grey
        keypoints = np.c_[rng.uniform(x + 0.1 * w, x + 0.9 * w, K),
                          rng.uniform(y + 0.1 * h, y + 0.9 * h, K), np.full(K, 2.0)]
        keypoints[3] = 0       # an unlabelled ear, as COCO writes it
        keypoints[4, 2] = 1    # a labelled, occluded one
        annotation = _person(keypoints[:, :2], keypoints[:, 2], area=float(w * h),
                             bbox=(x, y, w, h), image_id=image_id, ann_id=index + 1)
        annotations.append(annotation)
        truth[grey] = ((x, y, w, h), keypoints)
    # Neither is a box to run: a crowd region, and a person with no labelled keypoint.
    annotations.append(dict(_person(np.zeros((K, 2)), np.zeros(K), bbox=(250, 150, 50, 60),
                                    image_id=2, ann_id=10), iscrowd=1))
    annotations.append(_person(np.zeros((K, 2)), np.zeros(K), bbox=(10, 10, 40, 40),
                               image_id=2, ann_id=11))
    for image_id, canvas in canvases.items():
        cv2.imwrite(str(images / f"{image_id}.png"), canvas)
    path = tmp_path / "person_keypoints.json"
    path.write_text(json.dumps(_dataset(annotations, image_ids=(1, 2, 3, 4))))
    return path, images, truth


@pytest.fixture
def truth_runner(monkeypatch, coco_folder):
    runner = TruthRunner(coco_folder[2])
    monkeypatch.setattr(evaluate, "open_runner", lambda path, **options: runner)
    return runner


def test_evaluate_model_with_ground_truth_boxes(coco_folder, truth_runner):
    annotations, images, _ = coco_folder
    report = evaluate_model("truth.onnx", annotations, images)
    assert report.metrics["AP"] >= 0.95 and report.metrics["AR"] >= 0.95
    assert (report.images, report.people, truth_runner.crops) == (4, 4, 4)
    assert (report.family, report.variant, report.precision) == ("test", "truth", "fp32")
    assert report.backend == "TruthRunner" and report.box_source == "ground truth"
    assert report.refine == "dark" and report.flip_test is False
    assert truth_runner.closed
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["metrics"]["APm"] is None  # nobody medium-sized: null, not NaN, in JSON
    header, values = report.format_table().splitlines()
    assert header.split() == ["AP", "AP50", "AP75", "APm", "APl", "AR"]
    assert values.split()[3] == "n/a" and float(values.split()[0]) >= 0.95


def test_evaluate_model_with_a_detections_file(coco_folder, truth_runner, tmp_path):
    annotations, images, _ = coco_folder
    detections = [{"image_id": i, "category_id": 1, "bbox": list(box), "score": 0.9}
                  for i, box, _ in PEOPLE]
    detections += [
        {"image_id": 3, "category_id": 1, "bbox": [250, 200, 40, 30], "score": 0.1},  # below 0.5
        {"image_id": 3, "category_id": 2, "bbox": [250, 200, 40, 30], "score": 0.9},  # not a person
        {"image_id": 999, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},  # not annotated
    ]
    path = tmp_path / "detections.json"
    path.write_text(json.dumps(detections))
    report = evaluate_model("truth.onnx", annotations, images, detections=path,
                            detection_threshold=0.5, progress=False)
    assert report.people == 4 and report.metrics["AP"] >= 0.95
    assert "detections.json" in report.box_source


def test_evaluate_model_limit_scores_only_the_images_run(coco_folder, truth_runner):
    annotations, images, _ = coco_folder
    report = evaluate_model("truth.onnx", annotations, images, limit=1, progress=False)
    # Image 1 holds two people; the unrun images do not count as misses.
    assert (report.images, report.people) == (1, 2)
    assert report.metrics["AP"] >= 0.95


def _coco18_from_coco17(keypoints):
    """COCO-17 truth (K, 3) as an OpenPose COCO-18 pose: CMU's order, neck between the
    shoulders; written from the two layouts' published orders, not from the runtime's sets."""
    cmu_order = [0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3]
    neck = (keypoints[5, :2] + keypoints[6, :2]) / 2
    return np.array([neck if i is None else keypoints[i, :2] for i in cmu_order])


class TruthBottomUp:
    """Stands in for BottomUpPipeline: finds the people by their grey boxes in the frame and
    answers their true keypoints in COCO-18."""

    def __init__(self, runner):
        self.runner = runner

    def __call__(self, image):
        found = [truth for grey, truth in self.runner.truth.items() if (image == grey).any()]
        xy = np.array([_coco18_from_coco17(keypoints) for _, keypoints in found]).reshape(-1, 18, 2)
        return Poses(xy=xy, scores=np.ones(xy.shape[:2]), person_scores=np.ones(len(xy)),
                     keypoint_set="coco18")


@pytest.fixture
def bottom_up(coco_folder, monkeypatch):
    annotations, images, truth = coco_folder
    cv2.imwrite(str(images / "4.png"), np.zeros((240, 320, 3), np.uint8))  # bottom-up runs it
    runner = TruthRunner(truth, paradigm="bottom-up")
    runner.card = dataclasses.replace(runner.card, keypoints="coco18")
    monkeypatch.setattr(evaluate, "open_runner", lambda path, **options: runner)
    monkeypatch.setattr(evaluate, "bottom_up_pipeline", TruthBottomUp)
    return annotations, images


def test_bottom_up_model_is_scored_in_the_annotations_keypoint_set(bottom_up):
    annotations, images = bottom_up
    report = evaluate_model("openpose.onnx", annotations, images, progress=False)
    assert report.metrics["AP"] >= 0.95 and report.metrics["AR"] >= 0.95
    assert (report.images, report.people) == (4, 4)
    assert "coco17" in report.box_source


@pytest.mark.parametrize("option", [{"flip": True}, {"refine": "dark"}])
def test_bottom_up_refuses_top_down_options(bottom_up, option):
    annotations, images = bottom_up
    with pytest.raises(InputError, match="bottom-up"):
        evaluate_model("openpose.onnx", annotations, images, progress=False, **option)


@pytest.mark.parametrize("breakage, message", [
    ("no annotations", "does not exist"),              # annotation file missing
    ("detection file", "not a COCO keypoints file"),   # boxes only, no keypoints
    ("no images dir", "images folder"),                # images folder missing
    ("image missing", r"2\.png"),                      # a referenced image is gone
    ("limit 0", "limit"),                              # nonsense limit
])
def test_evaluate_model_bad_input(coco_folder, truth_runner, breakage, message):
    annotations, images, _ = coco_folder
    limit = None
    if breakage == "no annotations":
        annotations = annotations.with_name("absent.json")
    elif breakage == "detection file":
        data = json.loads(annotations.read_text())
        for annotation in data["annotations"]:
            del annotation["keypoints"], annotation["num_keypoints"]
        annotations.write_text(json.dumps(data))
    elif breakage == "no images dir":
        images = images.with_name("absent")
    elif breakage == "image missing":
        (images / "2.png").unlink()
    else:
        limit = 0
    with pytest.raises(InputError, match=message):
        evaluate_model("truth.onnx", annotations, images, limit=limit, progress=False)
    assert truth_runner.crops == 0  # refused before any inference


def test_eval_report_validates_its_metrics():
    with pytest.raises(InputError, match="missing"):
        EvalReport(metrics={"AP": 1.0}, images=1, people=1, backend="x", family="f",
                   variant="v", precision="fp32", flip_test=False, refine="shift",
                   box_source="ground truth", wall_time_s=0.1)


def test_missing_pycocotools_names_the_eval_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycocotools.cocoeval", None)  # import now fails
    with pytest.raises(MissingDependencyError, match=r"edgepose\[eval\]"):
        coco_keypoint_eval(_dataset([_person(_truth())]), [])


def test_evaluate_model_runs_a_real_onnx_model(coco_folder, exported_hrnet):
    # Random weights score ~0; this checks the ONNX Runtime runner drives the chain.
    annotations, images, _ = coco_folder
    report = evaluate_model(exported_hrnet, annotations, images, flip=True, progress=False)
    assert report.backend == "onnxruntime (CPUExecutionProvider)"
    assert report.random_init and report.flip_test and report.people == 4
    assert 0.0 <= report.metrics["AP"] <= 1.0


def test_boxes_the_pipeline_would_refuse_are_skipped_not_fatal():
    from edgepose.evaluate.datasets import usable_boxes

    # A detector's sliver and a runaway box: counted by the caller, never run.
    boxes, scores = usable_boxes([[10, 10, 0.001, 40], [0, 0, 2e6, 50], [10, 10, 30, 40]],
                                 [0.9, 0.8, 0.7], (100, 120, 3), clean=False)
    assert boxes.tolist() == [[10, 10, 30, 40]] and scores.tolist() == [pytest.approx(0.7)]
