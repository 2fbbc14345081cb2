"""Every detector output format, read back to known person boxes in frame pixels.

Each graph's outputs are constants encoding two people P1 and P2 plus boxes that must
not come back (a near-duplicate NMS removes, a non-person class, a score under the
threshold). The frame is 640x480 and the detector input 320x320, so the letterbox
halves the frame: centred (Ultralytics) it is placed 40 px down, in the corner
(YOLOX, mmdet) at the top left. The input-pixel numbers below are worked out by hand
from those two facts.
"""

import math

import numpy as np
import pytest

from edgepose.detect import Detector
from edgepose.detect.formats import anchor_count
from edgepose.errors import ModelFileError
from tests.edgepose.detect.graphs import constant_graph, nms_graph, save

FRAME = np.zeros((480, 640, 3), np.uint8)
# Frame boxes, xywh, and their scores.
P1, P2 = (100.0, 50.0, 200.0, 200.0), (400.0, 100.0, 120.0, 300.0)
EXPECTED_BOXES = np.array([P1, P2], np.float32)
EXPECTED_SCORES = np.array([0.9, 0.7], np.float32)
# The same boxes in input pixels, xyxy: centred letterbox (x/2, y/2 + 40) ...
P1_CENTRED, P2_CENTRED = (50, 65, 150, 165), (200, 90, 260, 240)
# ... and corner letterbox (x/2, y/2).
P1_CORNER, P2_CORNER = (50, 25, 150, 125), (200, 50, 260, 200)
CAR = (10, 10, 60, 60)
A = anchor_count(320, 320)          # 40*40 + 20*20 + 10*10 = 2100


def _cxcywh(box):
    x1, y1, x2, y2 = box
    return ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)


def _detect(tmp_path, model, **options):
    path = save(model, tmp_path / "detector.onnx")
    with Detector.open(path, **options) as detector:
        return detector, detector(FRAME)


def _check(found):
    np.testing.assert_allclose(found.boxes, EXPECTED_BOXES, atol=1e-3)
    np.testing.assert_allclose(found.scores, EXPECTED_SCORES, atol=1e-5)


def test_assumed_anchor_count():
    assert A == 2100


def yolov8_outputs():
    rows = np.zeros((1, 4 + 2, A), np.float32)          # classes: 0 person, 1 car
    def put(anchor, box, person, car=0.0):
        rows[0, :4, anchor] = _cxcywh(box)
        rows[0, 4, anchor], rows[0, 5, anchor] = person, car
    put(5, P1_CENTRED, 0.9)
    put(6, (54, 69, 154, 169), 0.8)                      # P1 shifted 4 px: IoU 0.85
    put(7, P2_CENTRED, 0.7)
    put(8, CAR, 0.3, car=0.95)                           # its best class is the car
    put(9, (250, 250, 300, 300), 0.1)                    # under the 0.3 threshold
    return {"output0": rows}


def test_yolov8_raw(tmp_path):
    model = constant_graph(yolov8_outputs(), metadata={
        "names": "{0: 'person', 1: 'car'}", "imgsz": "[320, 320]", "task": "detect"})
    detector, found = _detect(tmp_path, model)
    assert detector.card.format == "yolov8" and detector.card.person_class == 0
    assert detector.card.input.color == "RGB" and detector.card.pad == "center"
    assert "guessed" in detector.statement and "\n" not in detector.statement
    _check(found)


def test_the_person_class_comes_from_the_names(tmp_path):
    outputs = yolov8_outputs()
    outputs["output0"] = outputs["output0"][:, [0, 1, 2, 3, 5, 4]]    # person is class 1
    model = constant_graph(outputs, metadata={"names": "{0: 'car', 1: 'person'}"})
    detector, found = _detect(tmp_path, model)
    assert detector.card.person_class == 1
    _check(found)


def test_names_without_a_person_are_refused(tmp_path):
    model = constant_graph(yolov8_outputs(), metadata={"names": "{0: 'cat', 1: 'dog'}"})
    with pytest.raises(ModelFileError, match="no 'person'"):
        _detect(tmp_path, model)
    detector, found = _detect(tmp_path, model, person_class=0)   # the user says which
    assert detector.card.person_class == 0
    _check(found)


def _yolox_anchor(stride, gx, gy):
    offset = {8: 0, 16: 40 * 40, 32: 40 * 40 + 20 * 20}[stride]
    return offset + gy * (320 // stride) + gx


def test_yolox_raw_before_its_grid_decoding(tmp_path):
    rows = np.zeros((1, A, 5 + 2), np.float32)
    def put(stride, gx, gy, box, objectness, person, car=0.0):
        cx, cy, w, h = _cxcywh(box)
        rows[0, _yolox_anchor(stride, gx, gy)] = (cx / stride - gx, cy / stride - gy,
                                                   math.log(w / stride), math.log(h / stride),
                                                   objectness, person, car)
    put(32, 3, 2, P1_CORNER, 0.9, 1.0)            # centre (100, 75) lies in cell (3, 2)
    put(8, 12, 9, P1_CORNER, 0.85, 0.9)           # the same box from a stride-8 cell
    put(16, 14, 7, P2_CORNER, 0.8, 0.875)         # 0.8 * 0.875 = 0.7
    put(8, 2, 2, CAR, 0.99, 0.1, 0.9)
    detector, found = _detect(tmp_path, constant_graph({"output": rows}))
    assert detector.card.format == "yolox" and detector.card.pad == "corner"
    assert detector.card.input.color == "BGR" and detector.card.input.std == (1.0, 1.0, 1.0)
    _check(found)


def test_end_to_end(tmp_path):
    rows = np.zeros((1, 300, 6), np.float32)
    rows[0, 0] = (*CAR, 0.95, 2)
    rows[0, 1] = (*P1_CENTRED, 0.9, 0)
    rows[0, 2] = (*P2_CENTRED, 0.7, 0)
    rows[0, 3] = (250, 250, 300, 300, 0.2, 0)
    detector, found = _detect(tmp_path, constant_graph({"output0": rows}))
    assert detector.card.format == "end2end"
    _check(found)


def test_mmdeploy(tmp_path):
    dets = np.array([[(*P2_CORNER, 0.7), (*CAR, 0.99), (*P1_CORNER, 0.9),
                      (250, 250, 300, 300, 0.05)]], np.float32)
    labels = np.array([[0, 2, 0, 0]], np.int64)
    detector, found = _detect(tmp_path, constant_graph({"dets": dets, "labels": labels}))
    assert detector.card.format == "mmdeploy" and detector.card.pad == "corner"
    _check(found)


def test_efficient_nms_reads_only_the_first_num_dets(tmp_path):
    boxes = np.array([[P1_CENTRED, CAR, P2_CENTRED, (0, 0, 300, 300), (0, 0, 300, 300)]],
                     np.float32)
    outputs = {"num_dets": np.array([[3]], np.int32), "det_boxes": boxes,
               "det_scores": np.array([[0.9, 0.95, 0.7, 0.99, 0.99]], np.float32),
               "det_classes": np.array([[0, 2, 0, 0, 0]], np.int32)}   # padding after 3
    detector, found = _detect(tmp_path, constant_graph(outputs))
    assert detector.card.format == "efficientnms"
    _check(found)


@pytest.mark.parametrize("center_point_box", [0, 1])
def test_a_graph_with_onnx_nms_inside(tmp_path, center_point_box):
    boxes = np.array([P1_CENTRED, (54, 69, 154, 169), P2_CENTRED, CAR, (250, 250, 300, 300)],
                     np.float64)
    if center_point_box:
        boxes = np.array([_cxcywh(b) for b in boxes])
    scores = np.zeros((1, 2, 5), np.float32)
    scores[0, 0] = (0.9, 0.8, 0.7, 0.0, 0.1)
    scores[0, 1, 3] = 0.95
    model = nms_graph(boxes[None], scores, iou=0.5, score=0.25,
                      center_point_box=center_point_box)
    detector, found = _detect(tmp_path, model)
    assert detector.card.format == "onnx_nms"
    assert detector.card.box_encoding == ("cxcywh" if center_point_box else "xyxy")
    _check(found)


def test_the_format_can_be_named_where_the_shapes_do_not_tell(tmp_path):
    rows = np.zeros((1, 300, 6), np.float32)
    rows[0, 0] = (*P1_CENTRED, 0.9, 0)
    rows[0, 1] = (*P2_CENTRED, 0.7, 0)
    odd = {"out": rows, "extra": np.zeros((1, 2, 2), np.float32)}   # two outputs: no guess
    with pytest.raises(ModelFileError, match="name the format"):
        _detect(tmp_path, constant_graph(odd))
    with pytest.raises(ModelFileError, match="format end2end reads 1 output"):
        _detect(tmp_path, constant_graph(odd), format="end2end")
    _, found = _detect(tmp_path, constant_graph({"out": rows}), format="end2end")
    _check(found)


def test_thresholds_and_cap_can_be_overridden(tmp_path):
    model = constant_graph(yolov8_outputs())
    detector, found = _detect(tmp_path, model, score_threshold=0.05, max_detections=2)
    assert detector.card.score_threshold == 0.05
    np.testing.assert_allclose(found.scores, [0.9, 0.7])    # the 0.1 box is third: capped
    _, found = _detect(tmp_path, model, score_threshold=0.05)
    np.testing.assert_allclose(found.scores, [0.9, 0.7, 0.1], atol=1e-6)
    _, found = _detect(tmp_path, model, iou_threshold=0.9)  # the duplicate now survives
    np.testing.assert_allclose(found.scores, [0.9, 0.8, 0.7], atol=1e-6)
