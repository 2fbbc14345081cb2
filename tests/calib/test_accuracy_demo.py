"""The issue's accuracy targets on the trained demo HRNet and the synthetic validation split.

INT8 (entropy ranges, FP16 fallback) may lose at most 1.0 AP point (0.010 on
pycocotools' scale) and FP16 at most 0.2 point, measured with ONNX Runtime on the CPU
(FP16 parts as FP16 emulation). Calibration data come from the distribution the
demo model was trained on (synthetic seed 1); AP is scored on the unseen validation
split (the `validation_split` fixture, seed 2) with ground-truth boxes.

The INT8 graph is made as a user would make it for this target: `--max-ap-drop`
gates it on the calibration data's held-out images (at half the target, since AP
on 60 images is a noisy estimate), and the validation split then checks it. The
ungated INT8 graph is measured too and printed, not asserted: models from the
demo trainer carry activations of several thousand in HRNet's stage 4, which
per-tensor INT8 cannot hold, and the gate is what keeps them usable.

Runtime on 2 CPU cores: about 6 minutes (export 30 s, ranges of 512 crops 60 s,
sensitivity of 454 layers 75 s, gate trials and AP evaluations the rest), hence slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from calib.calibrate import calibrate
from calib.data import load_calibration_data
from calib.report import compare_precisions
from export.onnx import read_card

INT8_MAX_AP_DROP = 1.0          # AP points
FP16_MAX_AP_DROP = 0.2
GATE_AP_DROP = 0.5              # what the INT8 graph is gated at on held-out calibration images
CALIBRATION_SEED = 1            # the demo checkpoint's training distribution
CALIBRATION_IMAGES = 300        # about 590 person crops after the 20 % hold-out

# Without the shipped checkpoint the demo_onnx fixture skips, naming the file.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def calibration_split(tmp_path_factory):
    from export.training.synthetic import SyntheticConfig, write_coco_dataset

    folder = tmp_path_factory.mktemp("calibration")
    annotations = write_coco_dataset(folder, CALIBRATION_IMAGES,
                                     SyntheticConfig(seed=CALIBRATION_SEED), workers=1,
                                     progress=False)
    return annotations, folder / "images"


def test_int8_and_fp16_hold_their_ap_on_the_validation_split(demo_onnx, validation_split,
                                                              calibration_split, tmp_path):
    calibration_annotations, calibration_images = calibration_split
    common = dict(data=calibration_images, annotations=calibration_annotations,
                  progress=False, cache=tmp_path / "ranges.json")
    fp16 = calibrate(demo_onnx, tmp_path / "demo.fp16.onnx", precision="fp16", **common)
    plain = calibrate(demo_onnx, tmp_path / "demo.int8.plain.onnx", precision="int8",
                      method="entropy", **common)
    gated = calibrate(demo_onnx, tmp_path / "demo.int8.onnx", precision="int8",
                      method="entropy", max_ap_drop=GATE_AP_DROP, **common)
    assert plain.samples == gated.samples == 512 and gated.gate.met

    annotations, images = validation_split
    card = read_card(demo_onnx)
    # Every person crop of the validation split, none held back.
    validation = load_calibration_data(images, card, annotations=annotations,
                                       samples=100_000, holdout=0, progress=False)
    image_ids = [image["id"] for image in json.loads(Path(annotations).read_text())["images"]]
    report = compare_precisions(
        {"fp16": (onnx.load(str(fp16.path)), "fp16"),
         "int8 entropy": (onnx.load(str(plain.path)), "int8"),
         f"int8 entropy gated ({len(gated.fallback)} fallbacks)":
             (onnx.load(str(gated.path)), "int8")},
        onnx.load(str(demo_onnx)), card, validation.calibration,
        source="synthetic validation split", annotations=annotations, images_dir=images,
        image_ids=image_ids)
    table = report.format_table()
    print(table)
    fp32, fp16_row, _, int8_row = report.rows
    assert fp32.ap >= 0.5, table                           # a trained model, not noise
    assert fp16_row.ap_drop <= FP16_MAX_AP_DROP, table
    assert int8_row.ap_drop <= INT8_MAX_AP_DROP, table
