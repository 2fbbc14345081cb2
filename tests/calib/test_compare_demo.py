"""The demo model's FP16 and INT8 graphs checked against its FP32 graph through
Polygraphy on the CPU (`edgepose compare`), on the annotated people of the synthetic validation split;
a badly calibrated INT8 graph (ranges a twentieth of the measured ones, what "an INT8
engine that detects nothing" looks like) must fail the same check.

Tolerances: FP16 rounding moves a keypoint by hundredths of a pixel (p90 measured 0.01
px), INT8 by under a pixel (p90 0.95 px with entropy ranges on 64 crops); the gates sit
at 0.5 and 2 px, as a user would state them.
"""

from __future__ import annotations

import onnx
import pytest

pytest.importorskip("polygraphy", reason="polygraphy is not installed (the 'calib' extra)")

from calib.compare import Tolerances, compare_models  # noqa: E402
from calib.data import load_calibration_data  # noqa: E402
from calib.fp16 import convert_to_fp16  # noqa: E402
from calib.int8 import measure_ranges, quantizable_layers, write_int8  # noqa: E402
from edgepose.card import ModelCard  # noqa: E402
from export.onnx_files.card import find_card  # noqa: E402

SAMPLES = 48


@pytest.fixture(scope="module")
def graphs(demo_onnx, validation_split, tmp_path_factory):
    annotations, images = validation_split
    folder = tmp_path_factory.mktemp("compare-demo")
    model = onnx.load(str(demo_onnx))
    card = find_card(model, ModelCard)
    crops = load_calibration_data(images, card, annotations=annotations, samples=SAMPLES,
                                  seed=1, holdout=0.0, progress=False).calibration.inputs
    layers = quantizable_layers(model)
    amax = measure_ranges(model, card.input.name, crops, layers=layers).amax["entropy"]
    paths = {"fp16": folder / "fp16.onnx", "int8": folder / "int8.onnx",
             "int8-clipped": folder / "int8_clipped.onnx"}
    onnx.save(convert_to_fp16(model), str(paths["fp16"]))
    onnx.save(write_int8(model, amax), str(paths["int8"]))
    onnx.save(write_int8(model, {k: v / 20 for k, v in amax.items()}),
              str(paths["int8-clipped"]))
    return paths, images, annotations


@pytest.mark.parametrize("name, tolerances", [
    ("fp16", Tolerances(atol=0.05, error_stat="max", max_kpt_error=0.5)),
    ("int8", Tolerances(max_kpt_error=2.0)),
])
def test_the_demo_precisions_hold_against_fp32(graphs, demo_onnx, name, tolerances):
    paths, images, annotations = graphs
    report = compare_models(paths[name], demo_onnx, images, annotations=annotations,
                            samples=SAMPLES, tolerances=tolerances, score_ap=False)
    assert report.passed, report.format_table()
    assert report.samples == SAMPLES and report.displacement is not None
    assert report.outputs[0].max_abs > 0         # a reduced precision is not the same graph


def test_a_badly_calibrated_int8_graph_fails(graphs, demo_onnx):
    paths, images, annotations = graphs
    report = compare_models(paths["int8-clipped"], demo_onnx, images, annotations=annotations,
                            samples=SAMPLES, tolerances=Tolerances(max_kpt_error=2.0),
                            score_ap=False)
    assert not report.passed
    assert any("p90 keypoint displacement" in failure for failure in report.failures)


@pytest.mark.slow
def test_the_int8_ap_drop_on_annotated_images(graphs, demo_onnx):
    paths, images, annotations = graphs
    report = compare_models(paths["int8"], demo_onnx, images, annotations=annotations,
                            samples=SAMPLES, tolerances=Tolerances(max_ap_drop=1.5))
    assert report.passed, report.format_table()
    assert 0.5 < report.reference_ap <= 1.0
