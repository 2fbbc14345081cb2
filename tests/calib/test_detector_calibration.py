"""Detectors get FP16 and INT8 graphs from calibrate as pose models do: calibrated on
whole letterboxed frames, the detector card carried over with the new precision."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from calib.calibrate import calibrate
from calib.data import model_inputs
from calib.int8 import quantized_layers
from edgepose.detect import Detector, DetectorCard
from edgepose.detect.letterbox import letterbox_image, plan_letterbox
from edgepose.errors import InputError
from edgepose.preprocess import normalize_to_tensor
from export.onnx_files.card import read_card
from export.onnx_files.detector import export_detector
from tests.calib.tiny import write_images

SIZE = 64


def _conv_detector(path):
    """images (1, 3, 64, 64) → Conv 8x8 stride 8 → Relu → Conv 1x1 → (1, 5, 64): a
    YOLOv8-shaped head over an 8x8 grid (boxes in row 0-3, a sigmoid person score)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array((rng.standard_normal((8, 3, 8, 8)) * 0.05)
                                     .astype(np.float32), "w1"),
             numpy_helper.from_array((rng.standard_normal((5, 8, 1, 1)) * 0.5)
                                     .astype(np.float32), "w2"),
             numpy_helper.from_array(np.array([32, 32, 20, 30, 0], np.float32), "b2"),
             numpy_helper.from_array(np.array([1, 5, 64], np.int64), "shape")]
    nodes = [helper.make_node("Conv", ["images", "w1"], ["c1"], strides=[8, 8], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2"),
             helper.make_node("Reshape", ["c2", "shape"], ["flat"], name="flatten"),
             helper.make_node("Slice", ["flat", "s0", "s4", "ax"], ["boxes"], name="box_rows"),
             helper.make_node("Slice", ["flat", "s4", "s5", "ax"], ["logit"], name="score_row"),
             helper.make_node("Sigmoid", ["logit"], ["score"], name="sigmoid"),
             helper.make_node("Concat", ["boxes", "score"], ["output0"], axis=1, name="concat")]
    inits += [numpy_helper.from_array(np.array([v], np.int64), n)
              for n, v in (("s0", 0), ("s4", 4), ("s5", 5), ("ax", 1))]
    graph = helper.make_graph(
        nodes, "tiny_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 5, 64])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def carded(tmp_path):
    user = _conv_detector(tmp_path / "tiny.onnx")
    out = tmp_path / "tiny.carded.onnx"
    export_detector(user, out, format="yolov8", score_threshold=0.05)
    return out


def test_calibration_inputs_are_the_detectors_own_letterboxed_frames(carded):
    card = read_card(carded)
    image = np.random.default_rng(1).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    inputs, centers, scales = model_inputs(image, card)
    plan = plan_letterbox((80, 48), (SIZE, SIZE), "letterbox", "center")
    expected = normalize_to_tensor(letterbox_image(image, plan, (SIZE, SIZE), 114)[None],
                                   np.zeros(3), np.full(3, 255.0), "RGB")
    np.testing.assert_array_equal(inputs, expected)
    assert centers is None and scales is None


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_a_detector_gets_its_graph_and_keeps_its_card(carded, tmp_path, precision):
    images = tmp_path / "frames"
    write_images(images, 12, size=(48, 80))
    out = tmp_path / f"tiny.{precision}.onnx"
    result = calibrate(carded, out, data=images, precision=precision, samples=8,
                       progress=False)
    card = read_card(out)
    assert isinstance(card, DetectorCard) and card.precision == precision
    assert card.calibration["data"]["samples"] == 8 and result.report is None
    assert card.with_updates(precision="fp32", calibration=None) == read_card(carded)
    if precision == "int8":
        assert {"conv1", "conv2"} <= set(quantized_layers(onnx.load(str(out))))
    frame = np.random.default_rng(2).integers(0, 255, (48, 80, 3), dtype=np.uint8)
    with Detector.open(carded) as fp32, Detector.open(out) as reduced:
        want, got = fp32(frame), reduced(frame)
    assert len(want) > 0 and len(got) == len(want)
    np.testing.assert_allclose(got.boxes, want.boxes, atol=2.0)


def test_the_gate_is_refused_for_a_detector(carded, tmp_path):
    write_images(tmp_path / "frames", 4)
    with pytest.raises(InputError, match="person detector"):
        calibrate(carded, tmp_path / "x.onnx", data=tmp_path / "frames", precision="int8",
                  max_kpt_error=3.0, progress=False)
