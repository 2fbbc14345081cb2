"""`calibrate` end to end on a random-init HRNet, with the accuracy report it writes."""

from __future__ import annotations

import json
import math

import onnx
import pytest
from onnx import TensorProto

from calib.calibrate import calibrate, report_path_for
from calib.data import load_calibration_data
from calib.fp16 import convert_to_fp16
from calib.int8 import CalibrationCache, placement_problems, quantized_layers
from calib.ranges import CalibrationError
from calib.report import (EXECUTED_EMULATED, EXECUTED_FP32, AccuracyReport, HoldoutEvaluator,
                          OutputError, PrecisionRow, compare_precisions)
from edgepose.card import METADATA_KEY, ModelCard
from edgepose.errors import InputError
from edgepose.evaluate import evaluate_model
from export.onnx_files.lint import check_onnx_for_tensorrt
from tests.calib.tiny import save, tiny_pose, write_images


def _card(path) -> ModelCard:
    model = onnx.load(str(path))
    return ModelCard.from_json(next(p.value for p in model.metadata_props
                                    if p.key == METADATA_KEY))


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    from export.training.synthetic import SyntheticConfig, write_coco_dataset

    folder = tmp_path_factory.mktemp("people")
    annotations = write_coco_dataset(folder, 15, SyntheticConfig(seed=9), workers=1,
                                     progress=False)
    return annotations, folder / "images"


@pytest.fixture(scope="module")
def calibrated(exported_hrnet, people, tmp_path_factory):
    """FP16 and INT8 (entropy) graphs of the random-init HRNet, with a range cache."""
    annotations, images = people
    out = tmp_path_factory.mktemp("calibrated")
    common = dict(data=images, annotations=annotations, samples=16, progress=False,
                  cache=out / "ranges.json")
    fp16 = calibrate(exported_hrnet, out / "hrnet.fp16.onnx", precision="fp16", **common)
    int8 = calibrate(exported_hrnet, out / "hrnet.int8.onnx", precision="int8",
                     method="entropy", **common)
    return fp16, int8


def test_fp16_graph_is_written_with_its_card_and_report(calibrated):
    fp16, _ = calibrated
    model = onnx.load(str(fp16.path))
    check_onnx_for_tensorrt(model)
    for value in (*model.graph.input, *model.graph.output):
        assert value.type.tensor_type.elem_type == TensorProto.FLOAT
    card = _card(fp16.path)
    assert card.precision == "fp16" and card == fp16.card
    details = card.extra["calibration"]
    assert details["fp32_layers"] == [] and details["fp16_limit"] == 65504.0
    assert details["data"]["samples"] == 16 and details["data"]["kind"] == "coco"
    assert "emulation" in details["accuracy_executed_with"]
    assert [row.label for row in fp16.report.rows] == ["fp32", "fp16"]
    assert fp16.report_path == report_path_for(fp16.path) == fp16.path.with_suffix(
        ".report.json")


def test_int8_graph_is_written_with_its_card_and_report(calibrated):
    _, int8 = calibrated
    model = onnx.load(str(int8.path))
    check_onnx_for_tensorrt(model)
    assert placement_problems(model) == []
    assert len(quantized_layers(model)) == len(int8.int8_layers) == 454
    card = _card(int8.path)
    assert card.precision == "int8"
    details = card.extra["calibration"]
    assert details["method"] == "entropy" and details["int8_fallback"] == "fp16"
    assert details["int8_layers"] == 454 and details["fallback_layers"] == []
    assert details["data"]["fingerprint"].startswith("sha256:")
    assert set(details["accuracy"]) == {"fp32", "fp16", "int8 entropy"}
    assert int8.calibration_time_s > 0 and int8.total_time_s >= int8.calibration_time_s


def test_report_rows_compare_each_precision_with_fp32(calibrated):
    _, int8 = calibrated
    report = int8.report
    fp32, fp16, quantised = report.rows
    assert all(o.relative_l2 == 0 and o.max_relative == 0 for o in fp32.outputs)
    assert fp32.displacement == (0.0, 0.0, 0.0) and fp32.ap_drop == 0.0
    assert 0 < fp16.outputs[0].relative_l2 < quantised.outputs[0].relative_l2 < 0.2
    assert fp16.executed == quantised.executed == EXECUTED_EMULATED
    assert fp32.executed == EXECUTED_FP32
    assert all(row.ap is not None and 0 <= row.ap <= 1 for row in report.rows)
    assert quantised.displacement[0] <= quantised.displacement[1] <= quantised.displacement[2]
    assert report.random_init and report.samples > 0
    table = report.format_table()
    assert table.splitlines()[0].split()[0] == "precision"
    for label in ("fp32", "fp16", "int8 entropy", "RANDOM WEIGHTS"):
        assert label in table
    saved = json.loads(int8.report_path.read_text())
    assert saved == json.loads(json.dumps(report.to_dict()))
    assert [row["label"] for row in saved["rows"]] == ["fp32", "fp16", "int8 entropy"]
    assert set(saved["rows"][2]["keypoint_displacement_px"]) == {"p50", "p90", "p99"}


def test_report_ap_is_evaluate_model_on_the_held_out_images(exported_hrnet, people, tmp_path):
    annotations, images = people
    card = _card(exported_hrnet)
    data = load_calibration_data(images, card, annotations=annotations, samples=8,
                                 progress=False)
    model = onnx.load(str(exported_hrnet))
    report = compare_precisions({}, model, card, data.holdout, annotations=annotations,
                                images_dir=images, image_ids=data.holdout_image_ids)
    dataset = json.loads(annotations.read_text())
    keep = set(data.holdout_image_ids)
    subset = {**dataset, "images": [i for i in dataset["images"] if i["id"] in keep],
              "annotations": [a for a in dataset["annotations"] if a["image_id"] in keep]}
    held = tmp_path / "held.json"
    held.write_text(json.dumps(subset))
    expected = evaluate_model(exported_hrnet, held, images, progress=False).metrics["AP"]
    assert report.rows[0].ap == pytest.approx(expected, abs=1e-12)
    assert report.images == len(keep) == 3            # 20 % of 15 images



def test_measure_runs_only_what_it_is_asked_for(exported_hrnet, people):
    annotations, images = people
    card = _card(exported_hrnet)
    data = load_calibration_data(images, card, annotations=annotations, samples=8,
                                 progress=False)
    model = onnx.load(str(exported_hrnet))
    fp16 = convert_to_fp16(model, [])
    with HoldoutEvaluator(model, card, data.holdout, annotations=annotations,
                          images_dir=images, image_ids=data.holdout_image_ids) as evaluator:
        full = evaluator.measure(fp16, "fp16", "fp16")
        ap_only = evaluator.measure(fp16, "fp16", "fp16", with_errors=False)
        errors_only = evaluator.measure(fp16, "fp16", "fp16", with_ap=False)
    assert full.ap is not None and full.outputs and full.displacement is not None
    assert (ap_only.ap, ap_only.ap_drop) == (full.ap, full.ap_drop)
    assert ap_only.outputs == () and ap_only.displacement is None
    assert errors_only.ap is None and errors_only.ap_drop is None
    assert (errors_only.outputs, errors_only.displacement) == (full.outputs, full.displacement)


def test_the_int8_row_takes_its_ap_from_the_gate_instead_of_scoring_it_again(
        calibrated, exported_hrnet, people, tmp_path, monkeypatch):
    annotations, images = people
    scored = []
    score = HoldoutEvaluator._ap
    monkeypatch.setattr(HoldoutEvaluator, "_ap",
                        lambda self, model, label: scored.append(label) or score(self, model,
                                                                                 label))
    # A limit no random-init model can miss: the fully quantised graph is the one trial.
    result = calibrate(exported_hrnet, tmp_path / "hrnet.int8.onnx", data=images,
                       annotations=annotations, precision="int8", samples=16,
                       max_ap_drop=100.0, progress=False,
                       cache=calibrated[1].path.parent / "ranges.json")
    assert [trial.fallbacks for trial in result.gate.trials] == [0]
    assert result.gate.trials[0].kpt_error is None       # no keypoint limit: not measured
    int8_row = result.report.rows[-1]
    assert int8_row.ap_drop == result.gate.ap_drop and int8_row.displacement is not None
    assert scored == ["fp32", "candidate", "fp16"]

def test_the_cache_is_reused_for_any_method_and_refused_for_other_data(calibrated,
                                                                       exported_hrnet, people,
                                                                       tmp_path):
    fp16, int8 = calibrated
    assert not fp16.cache_reused                # the FP16 run wrote |x| maxima only
    assert not int8.cache_reused                # INT8 needed histograms: measured, rewritten
    annotations, images = people
    cached = CalibrationCache.load(int8.cache)
    assert cached.method == "entropy" and len(cached.ranges("mse")) > 0
    again = calibrate(exported_hrnet, tmp_path / "mse.onnx", data=images,
                      annotations=annotations, samples=16, precision="int8", method="mse",
                      int8_fallback="fp32", cache=int8.cache, progress=False)
    assert again.cache_reused and again.precision == "int8"
    assert again.calibration_time_s < int8.calibration_time_s
    with pytest.raises(CalibrationError, match="other data"):
        calibrate(exported_hrnet, tmp_path / "x.onnx", data=images, annotations=annotations,
                  samples=12, precision="int8", cache=int8.cache, progress=False)
    assert not (tmp_path / "x.onnx").exists()


def test_fp16_calibration_lists_the_layers_kept_fp32(tmp_path):
    write_images(tmp_path / "images", 10, size=(64, 48))
    model = save(tiny_pose(1, gain=3e4), tmp_path / "hot.onnx")
    result = calibrate(model, tmp_path / "hot.fp16.onnx", data=tmp_path / "images",
                       precision="fp16", samples=8, progress=False)
    assert [o.node for o in result.kept_fp32] == ["conv2", "residual", "relu2", "head"]
    details = result.card.extra["calibration"]
    assert [o["node"] for o in details["fp32_layers"]] == ["conv2", "residual", "relu2", "head"]
    assert "kept FP32" in result.summary()
    assert result.report.kept_fp32 == ("conv2", "residual", "relu2", "head")
    assert math.isfinite(result.report.rows[1].outputs[0].relative_l2)
    assert result.report.rows[1].outputs[0].relative_l2 < 1e-2


@pytest.mark.parametrize("kwargs, match", [
    ({"precision": "int4"}, "precision must be one of"),
    ({"method": "kl"}, "method must be one of"),
    ({"int8_fallback": "bf16"}, "int8_fallback must be one of"),
    ({"percentile": 0}, "percentile must be in"),
    ({"samples": 0}, "samples must be a positive"),
    ({"max_kpt_error": -1.0}, "max_kpt_error must be a number >= 0"),
])
def test_bad_arguments_are_refused_before_any_work(tmp_path, kwargs, match):
    write_images(tmp_path / "images", 2, size=(40, 40))
    model = save(tiny_pose(0), tmp_path / "m.onnx")
    with pytest.raises(InputError, match=match):
        calibrate(model, tmp_path / "o.onnx", data=tmp_path / "images", progress=False,
                  **kwargs)


def test_refuses_to_overwrite_its_input_or_recalibrate_a_calibrated_graph(tmp_path):
    write_images(tmp_path / "images", 6, size=(40, 40))
    model = save(tiny_pose(0), tmp_path / "m.onnx")
    with pytest.raises(InputError, match="is the input model"):
        calibrate(model, model, data=tmp_path / "images", progress=False)
    fp16 = calibrate(model, tmp_path / "m.fp16.onnx", data=tmp_path / "images",
                     progress=False)
    with pytest.raises(InputError, match="already a fp16 graph"):
        calibrate(fp16.path, tmp_path / "again.onnx", data=tmp_path / "images",
                  progress=False)


def test_table_marks_what_was_not_measured():
    rows = (PrecisionRow("fp32", "fp32", (OutputError("pafs", 0.0, 0.0),), None, None, None,
                         EXECUTED_FP32),
            PrecisionRow("int8 mse", "int8", (OutputError("pafs", 0.01, 0.02),), None, None,
                         None, EXECUTED_EMULATED))
    report = AccuracyReport(rows, 4, 4, "frames", notes=("a note",))
    table = report.format_table()
    assert "n/a" in table and "a note" in table and "1.00e-02" in table
    assert report.row("int8 mse").kpt_error is None
    assert json.loads(json.dumps(report.to_dict()))["rows"][1]["ap"] is None
    with pytest.raises(KeyError):
        report.row("fp16")


def test_fp16_emulation_is_what_the_report_runs(tmp_path):
    from calib.report import executable

    model = tiny_pose(0)
    runnable, how = executable(convert_to_fp16(model))
    assert how == EXECUTED_EMULATED
    assert not any(i.data_type == TensorProto.FLOAT16 for i in runnable.graph.initializer)
    same, how = executable(model)
    assert how == EXECUTED_FP32 and same is model
