"""MPII PCKh against ground truth built at known distances from the model's own predictions."""

import json

import numpy as np
import pytest

from edgepose.backends import open_runner
from edgepose.errors import InputError
from edgepose.evaluate_mpii import evaluate_mpii, read_mpii_truth
from edgepose.io import write_image_atomic
from edgepose.keypoints import MPII16
from edgepose.pipeline import TopDownPipeline

scipy_io = pytest.importorskip("scipy.io")

PEOPLE = 6
# Distance of each joint's truth from the prediction, in head sizes: PCKh@0.5 counts
# those ≤ 0.5, PCKh@0.1 those ≤ 0.1.
FACTORS = np.array([0.05, 0.3, 0.45, 0.7, 1.5, 0.08, 0.2, 0.9,
                    0.55, 0.02, 0.4, 0.6, 0.1 - 1e-6, 0.35, 2.0, 0.25])


@pytest.fixture(scope="module")
def mpii_model(tmp_path_factory):
    """An MPII16 HRNet-carded ONNX graph whose network is one strided convolution.

    PCKh is checked against truth built from the model's own predictions, so any
    network will do; this one exports in milliseconds instead of HRNet's 30 s.
    """
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from export.families import hrnet_card
    from export.onnx_files.card import embed_card, save_onnx_atomic

    card = hrnet_card("w8_128x96", "mpii16", {"format": "random-init"})
    spec = card.input
    weight = np.random.default_rng(0).standard_normal((16, 3, 4, 4)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["heatmaps"], strides=[4, 4])], "mpii",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                       ["batch", 3, spec.height, spec.width])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT,
                                       ["batch", 16, spec.height // 4, spec.width // 4])],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    embed_card(model, card)
    return save_onnx_atomic(model, tmp_path_factory.mktemp("mpii") / "hrnet_mpii.onnx")


def _official_predictions(model, annotations, images):
    """The official HRNet steps written out: center − 1, c_y + 15·s, s × 1.25, predict, + 1.

    The people of an image run as one batch, as evaluate_mpii runs them."""
    predicted = np.zeros((len(annotations), 16, 2))
    with open_runner(model) as runner:
        pipeline = TopDownPipeline(runner)
        for name, image in images.items():
            people = [i for i, person in enumerate(annotations) if person["image"] == name]
            centers = np.array([annotations[i]["center"] for i in people], np.float64) - 1
            scales = np.array([annotations[i]["scale"] for i in people], np.float64)
            centers[:, 1] += 15 * scales
            poses = pipeline.run_centers_scales(image, centers,
                                                np.stack([scales * 1.25] * 2, axis=1))
            predicted[people] = poses.xy + 1
    return predicted


@pytest.fixture(scope="module")
def mpii_set(tmp_path_factory, mpii_model):
    """valid.json, gt_valid.mat, images, and what PCKh must be by construction."""
    folder = tmp_path_factory.mktemp("mpii_set")
    rng = np.random.default_rng(3)
    images = {}
    for name in ("a.png", "b.png"):  # lossless: the test and the code see the same pixels
        images[name] = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
        write_image_atomic(folder / name, images[name])
    annotations = [{"image": "a.png" if i < 4 else "b.png",
                    "center": [float(rng.uniform(100, 220)), float(rng.uniform(80, 160))],
                    "scale": float(rng.uniform(0.5, 1.0))} for i in range(PEOPLE)]
    (folder / "valid.json").write_text(json.dumps(annotations))

    predicted = _official_predictions(mpii_model, annotations, images)
    head_sides = rng.uniform(10, 30, (PEOPLE, 2))
    head_sizes = 0.6 * np.hypot(head_sides[:, 0], head_sides[:, 1])
    angles = rng.uniform(0, 2 * np.pi, (PEOPLE, 16))
    direction = np.stack([np.cos(angles), np.sin(angles)], axis=2)
    truth = predicted + FACTORS[None, :, None] * head_sizes[:, None, None] * direction
    missing = np.zeros((PEOPLE, 16), np.uint8)
    missing[0, [1, 4]] = 1  # two joints of person 0 not labelled
    corner = rng.uniform(0, 100, (PEOPLE, 2))
    scipy_io.savemat(folder / "gt_valid.mat", {
        "pos_gt_src": truth.transpose(1, 2, 0),
        "jnt_missing": missing.T,
        "headboxes_src": np.stack([corner.T, (corner + head_sides).T]),
        "dataset_joints": np.array([["rank"]] * 16, dtype=object)})

    visible = missing == 0
    counted = np.ones(16, bool)
    counted[[MPII16.names.index("pelvis"), MPII16.names.index("thorax")]] = False

    def expected(threshold):
        correct = (FACTORS[None, :] <= threshold) & visible
        per_joint = correct.sum(0) / visible.sum(0)
        mean = correct[:, counted].sum() / visible[:, counted].sum()
        return per_joint, mean

    return folder, expected


def _report(mpii_model, mpii_set):
    folder, _ = mpii_set
    return evaluate_mpii(mpii_model, folder / "valid.json", folder / "gt_valid.mat", folder)


def test_pckh_counts_exactly_the_joints_built_within_the_threshold(mpii_model, mpii_set):
    report = _report(mpii_model, mpii_set)
    _, expected = mpii_set
    for result, threshold in ((report.at_half, 0.5), (report.at_tenth, 0.1)):
        per_joint, mean = expected(threshold)
        np.testing.assert_allclose(result.per_joint, per_joint)
        assert result.mean == pytest.approx(mean)
    assert report.people == PEOPLE and report.images == 2


def test_groups_are_hrnets_rows_in_percent(mpii_model, mpii_set):
    rows = _report(mpii_model, mpii_set).groups()
    per_joint, mean = mpii_set[1](0.5)
    names = MPII16.names
    assert rows["Head"] == pytest.approx(100 * per_joint[names.index("head_top")])
    assert rows["Knee"] == pytest.approx(
        50 * (per_joint[names.index("left_knee")] + per_joint[names.index("right_knee")]))
    assert rows["Mean"] == pytest.approx(100 * mean)
    assert rows["Mean@0.1"] == pytest.approx(100 * mpii_set[1](0.1)[1])


def test_the_cli_prints_the_table_and_writes_json(mpii_model, mpii_set, tmp_path, capsys):
    from edgepose.cli import main

    folder, _ = mpii_set
    out = tmp_path / "pckh.json"
    assert main(["eval", "--model", str(mpii_model), "--annotations", str(folder / "valid.json"),
                 "--mpii-gt", str(folder / "gt_valid.mat"), "--images", str(folder),
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Mean@0.1" in text and "Shoulder" in text
    assert "RANDOM" in text.upper()  # the model under test is untrained, and says so
    saved = json.loads(out.read_text())
    assert saved["random_init"] is True
    assert saved["pckh"]["Mean"] == pytest.approx(100 * mpii_set[1](0.5)[1])


def test_a_mat_for_other_people_is_refused(mpii_set, tmp_path):
    folder, _ = mpii_set
    people = json.loads((folder / "valid.json").read_text())
    (tmp_path / "valid.json").write_text(json.dumps(people[:-1]))
    with pytest.raises(InputError, match="need"):
        read_mpii_truth(tmp_path / "valid.json", folder / "gt_valid.mat")


def test_a_file_that_is_not_mpiis_ground_truth_is_refused(mpii_set, tmp_path):
    folder, _ = mpii_set
    scipy_io.savemat(tmp_path / "other.mat", {"x": np.zeros(3)})
    with pytest.raises(InputError, match="not MPII's gt_valid.mat"):
        read_mpii_truth(folder / "valid.json", tmp_path / "other.mat")
    (tmp_path / "broken.mat").write_bytes(b"not a mat file")
    with pytest.raises(InputError, match="MATLAB"):
        read_mpii_truth(folder / "valid.json", tmp_path / "broken.mat")


def test_a_coco_model_is_refused(exported_hrnet, mpii_set):
    folder, _ = mpii_set
    with pytest.raises(InputError, match="mpii16"):
        evaluate_mpii(exported_hrnet, folder / "valid.json", folder / "gt_valid.mat", folder)
