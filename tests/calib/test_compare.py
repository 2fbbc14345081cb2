"""`edgepose compare` and `build --verify` (calib/compare.py, edgepose/cli/compare.py):
Polygraphy's runners and Comparator on edgepose's crops, judged against tolerances.

Expected verdicts and figures come from numpy on the same outputs run by ONNX Runtime
directly, or from the tolerance's definition (an element fails when it is outside
every stated tolerance); a deliberately broken graph must fail.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

pytest.importorskip("polygraphy", reason="polygraphy is not installed (the 'calib' extra)")

from calib.compare import ERROR_STATS, Tolerances, compare_models  # noqa: E402
from calib.data import load_calibration_data  # noqa: E402
from calib.fp16 import convert_to_fp16  # noqa: E402
from calib.ranges import run_batched, session  # noqa: E402
from edgepose.cli import main  # noqa: E402
from edgepose.cli.compare import ERROR_STATS as CLI_ERROR_STATS  # noqa: E402
from edgepose.errors import EdgeposeError, InputError  # noqa: E402
from tests.calib.tiny import save, tiny_pose, topdown_card, write_images  # noqa: E402


@pytest.fixture
def work(tmp_path):
    save(tiny_pose(), tmp_path / "fp32.onnx")
    save(convert_to_fp16(tiny_pose()), tmp_path / "fp16.onnx")
    # The same graph with other weights: what a wrong export or a broken engine computes.
    save(tiny_pose(seed=1), tmp_path / "broken.onnx")
    write_images(tmp_path / "images", 6)
    return tmp_path


def _outputs(path, inputs):
    return run_batched(session(onnx.load(str(path))), "input", inputs)["heatmaps"]


def test_the_report_states_what_numpy_measures_on_the_same_crops(work):
    report = compare_models(work / "broken.onnx", work / "fp32.onnx", work / "images",
                            samples=6)
    crops = load_calibration_data(work / "images", topdown_card(), samples=6, holdout=0.0,
                                  progress=False).calibration.inputs
    reference, candidate = _outputs(work / "fp32.onnx", crops), _outputs(work / "broken.onnx",
                                                                        crops)
    delta = np.abs(candidate.astype(np.float64) - reference)
    (output,) = report.outputs
    assert output.name == "heatmaps" and report.samples == 6
    assert output.max_abs == pytest.approx(delta.max(), rel=1e-6)
    assert output.mean_abs == pytest.approx(delta.mean(), rel=1e-6)
    assert output.passed is None and report.passed     # nothing stated, nothing judged


def test_a_broken_graph_fails_and_the_same_graph_passes(work):
    strict = Tolerances(atol=1e-3, max_kpt_error=1.0)
    broken = compare_models(work / "broken.onnx", work / "fp32.onnx", work / "images",
                            samples=6, tolerances=strict)
    assert not broken.passed
    assert broken.outputs[0].passed is False
    assert any("keypoint displacement" in f for f in broken.failures)
    same = compare_models(work / "fp32.onnx", work / "fp32.onnx", work / "images", samples=6,
                          tolerances=strict)
    assert same.passed and same.outputs[0].max_abs == 0.0
    assert same.displacement == (0.0, 0.0, 0.0)


def test_a_stated_atol_binds_alone(work):
    # FP16 rounding: every element is within its own size × 1e-2 (rtol) but some are not
    # within 1e-4 (atol); with atol alone stated, the elements outside it fail.
    crops = load_calibration_data(work / "images", topdown_card(), samples=6, holdout=0.0,
                                  progress=False).calibration.inputs
    from calib.fp16 import emulate_fp16

    reference = _outputs(work / "fp32.onnx", crops)
    fp16 = run_batched(session(emulate_fp16(onnx.load(str(work / "fp16.onnx")))), "input",
                       crops)["heatmaps"]
    outside = np.abs(fp16.astype(np.float64) - reference) > 1e-4
    assert outside.any()
    report = compare_models(work / "fp16.onnx", work / "fp32.onnx", work / "images",
                            samples=6, tolerances=Tolerances(atol=1e-4))
    assert report.outputs[0].passed is False
    assert report.executed == "onnxruntime CPU, FP16 emulated"
    loose = compare_models(work / "fp16.onnx", work / "fp32.onnx", work / "images", samples=6,
                           tolerances=Tolerances(atol=1.0))
    assert loose.outputs[0].passed is True


def test_the_command_exits_1_on_a_broken_tolerance_and_writes_its_report(work, capsys):
    out = work / "report.json"
    code = main(["compare", str(work / "broken.onnx"), "--against", str(work / "fp32.onnx"),
                 "--data", str(work / "images"), "--samples", "4", "--max-kpt-error", "0.5",
                 "--json", str(out)])
    assert code == 1
    assert "FAILED" in capsys.readouterr().out
    written = json.loads(out.read_text())
    assert written["passed"] is False and written["samples"] == 4
    assert set(written["keypoint_displacement_px"]) == {"p50", "p90", "p99"}
    assert main(["compare", str(work / "fp32.onnx"), "--against", str(work / "fp32.onnx"),
                 "--data", str(work / "images"), "--samples", "4", "--atol", "0"]) == 0


def test_refusals(work):
    with pytest.raises(InputError, match="must be an ONNX graph"):
        compare_models(work / "fp32.onnx", next((work / "images").iterdir()), work / "images")
    with pytest.raises(InputError, match="does not exist"):
        compare_models(work / "nothing.onnx", work / "fp32.onnx", work / "images")
    with pytest.raises(InputError, match="error statistic"):
        Tolerances(error_stat="p95")
    with pytest.raises(InputError, match="≥ 0"):
        Tolerances(atol=-1.0)
    assert CLI_ERROR_STATS == ERROR_STATS


def test_an_engine_without_a_gpu_is_refused_in_one_line(work):
    from edgepose.sidecar import EngineInfo, sha256_of_bytes, write_sidecar

    engine = work / "m.engine"
    engine.write_bytes(b"plan")
    write_sidecar(engine, topdown_card(), EngineInfo("10.3.0.30", "Orin", "8.7",
                                                     sha256_of_bytes(b"plan")))
    # Opened by edgepose (sidecar checked, then the device) before Polygraphy's TrtRunner.
    with pytest.raises(EdgeposeError, match="CUDA|cuda|TensorRT"):
        compare_models(engine, work / "fp32.onnx", work / "images", samples=2)


@pytest.mark.parametrize("passes", [True, False])
def test_build_verify_writes_the_engine_only_when_it_passes(work, monkeypatch, passes, capsys):
    import calib.compare
    import export.engine.tensorrt as tensorrt_build
    from tests.export.engine.trt_double import make_tensorrt

    monkeypatch.setattr(tensorrt_build, "_device_identity", lambda: ("Orin", "8.7"))
    monkeypatch.setattr(tensorrt_build, "_load_tensorrt", lambda: make_tensorrt())
    seen = {}

    def judged(candidate, reference, data, **kwargs):
        seen.update(candidate=candidate, reference=reference, data=data, **kwargs)
        failures = () if passes else ("p90 keypoint displacement 3.000 px > 1.0 px",)
        return calib.compare.CompareReport(str(candidate), str(reference), "TensorRT", 4, (),
                                           None, None, None, kwargs["tolerances"], failures)

    monkeypatch.setattr(calib.compare, "compare_models", judged)
    out = work / "m.engine"
    code = main(["build", str(work / "fp32.onnx"), "--out", str(out), "--verify",
                 str(work / "images"), "--verify-max-kpt-error", "1.0", "--verify-samples", "4"])
    # Compared while still in scratch, against the ONNX being built by default.
    assert seen["candidate"] != out and seen["candidate"].name == "m.engine"
    assert seen["reference"] == work / "fp32.onnx" and seen["samples"] == 4
    assert seen["tolerances"].max_kpt_error == 1.0
    leftovers = [p.name for p in work.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    if passes:
        assert code == 0 and out.is_file() and (work / "m.engine.json").is_file()
    else:
        assert code == 2 and not out.exists() and not (work / "m.engine.json").exists()
        assert "was not written" in capsys.readouterr().err


def test_verify_flags_need_verify(work, capsys):
    assert main(["build", str(work / "fp32.onnx"), "--out", str(work / "m.engine"),
                 "--verify-atol", "0.1"]) == 2
    assert "need(s) --verify" in capsys.readouterr().err
