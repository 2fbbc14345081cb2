"""`edgepose export detector` and `edgepose build` on a detector: the detector card
travels in the ONNX and into the engine's sidecar, as the pose card does."""

import hashlib

import onnx
import pytest

from edgepose.detect import Detector, DetectorCard
from edgepose.detect.card import DETECTOR_METADATA_KEY
from edgepose.errors import InputError, ModelFileError
from edgepose.sidecar import read_sidecar
from export.engine import tensorrt as tensorrt_build
from export.engine.tensorrt import BuildConfig, build_engine
from export.onnx_files.card import read_card
from export.onnx_files.detector import export_detector
from tests.edgepose.detect.graphs import constant_graph, save
from tests.edgepose.detect.test_formats import FRAME, _check, yolov8_outputs
from tests.export.engine.trt_double import make_tensorrt

NAMES = {"names": "{0: 'person', 1: 'car'}", "imgsz": "[320, 320]"}


@pytest.fixture
def user_onnx(tmp_path):
    return save(constant_graph(yolov8_outputs(), metadata=NAMES), tmp_path / "yolo.onnx")


def test_the_exported_copy_carries_the_card_and_runs_the_same(user_onnx, tmp_path):
    before = user_onnx.read_bytes()
    out = tmp_path / "yolo.carded.onnx"
    card = export_detector(user_onnx, out, score_threshold=0.25)
    assert user_onnx.read_bytes() == before                    # the input is untouched
    model = onnx.load(str(out))
    keys = [p.key for p in model.metadata_props]
    assert keys.count(DETECTOR_METADATA_KEY) == 1 and "names" in keys
    assert read_card(out) == card and isinstance(card, DetectorCard)
    assert card.score_threshold == 0.25
    assert card.source["onnx_sha256"] == hashlib.sha256(before).hexdigest()
    original = onnx.load(str(user_onnx))
    assert model.graph == original.graph                       # only the metadata changed
    with Detector.open(out) as detector:
        assert "embedded card" in detector.statement
        _check(detector(FRAME))


def test_a_graph_edgepose_cannot_read_is_not_written(tmp_path):
    bad = save(constant_graph({"a": yolov8_outputs()["output0"], "b": yolov8_outputs()["output0"]}),
               tmp_path / "two.onnx")
    with pytest.raises(ModelFileError, match="name the format"):
        export_detector(bad, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()
    with pytest.raises(InputError, match="reads an ONNX file"):
        export_detector(tmp_path / "model.engine", tmp_path / "out.onnx")


def test_build_writes_the_detector_card_into_the_sidecar(user_onnx, tmp_path, monkeypatch):
    monkeypatch.setattr(tensorrt_build, "_device_identity", lambda: ("Orin", "8.7"))
    carded = tmp_path / "yolo.carded.onnx"
    card = export_detector(user_onnx, carded)
    out = tmp_path / "yolo.engine"
    build_engine(carded, out, BuildConfig(batch=(1, 1, 1)), trt=make_tensorrt("10.3.0"))
    sidecar_card, info = read_sidecar(out, DetectorCard)
    assert sidecar_card.with_updates(engine=None) == card
    assert info.profiles == ({"images": {"min": [1, 3, 320, 320], "opt": [1, 3, 320, 320],
                                         "max": [1, 3, 320, 320]}},)


def test_an_efficient_nms_plugin_is_refused_with_the_standard_operator_named(tmp_path):
    from onnx import TensorProto, helper

    from export.onnx_files.lint import lint_onnx

    image = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])
    names = ("num_dets", "det_boxes", "det_scores", "det_classes")
    node = helper.make_node("EfficientNMS_TRT", ["images"], list(names), domain="TRT")
    model = helper.make_model(
        helper.make_graph([node], "g", [image],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4])
                           for n in names]),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("TRT", 1)])
    path = tmp_path / "plugin.onnx"
    onnx.save(model, str(path))
    findings = [f for f in lint_onnx(path) if f.rule == "custom-domain"]
    assert len(findings) == 1 and "ONNX NonMaxSuppression" in findings[0].message
