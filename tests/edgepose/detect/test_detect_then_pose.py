"""Detect → crop → pose: the detector's boxes feed the top-down model in the Python
API, `edgepose infer` and `edgepose eval`, exactly as the same boxes given by hand do."""

import json

import numpy as np
import pytest

import edgepose
from edgepose.api import WHOLE_FRAME_WARNING
from edgepose.cli import main
from edgepose.detect import Detector
from edgepose.errors import InputError
from edgepose.evaluate import evaluate_model
from tests.edgepose.detect.graphs import constant_graph, save
from tests.edgepose.detect.test_formats import yolov8_outputs

FRAME = np.random.default_rng(3).integers(0, 255, (256, 320, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def detector_onnx(tmp_path_factory):
    model = constant_graph(yolov8_outputs(), metadata={"names": "{0: 'person', 1: 'car'}"})
    return save(model, tmp_path_factory.mktemp("detector") / "yolo.onnx")


def test_the_estimator_poses_the_people_the_detector_finds(exported_hrnet, detector_onnx):
    with Detector.open(detector_onnx) as detector:
        found = detector(FRAME)
    assert len(found) == 2
    with edgepose.load(exported_hrnet) as plain:
        by_hand = plain(FRAME, found.boxes, found.scores)
    with edgepose.load(exported_hrnet, detector=detector_onnx) as estimator:
        detected = estimator(FRAME)
        assert WHOLE_FRAME_WARNING not in estimator.warnings(None)
        np.testing.assert_array_equal(estimator.last_detections.boxes, found.boxes)
    np.testing.assert_array_equal(detected.xy, by_hand.xy)
    np.testing.assert_array_equal(detected.person_scores, by_hand.person_scores)
    np.testing.assert_array_equal(detected.boxes, found.boxes)


def test_detector_settings_reach_the_detector(exported_hrnet, detector_onnx):
    with edgepose.load(exported_hrnet, detector=detector_onnx,
                       detector_options={"score_threshold": 0.05}) as estimator:
        assert len(estimator(FRAME)) == 3
    with pytest.raises(InputError, match="unknown detector setting"):
        edgepose.load(exported_hrnet, detector=detector_onnx,
                      detector_options={"score": 0.05})


def test_infer_writes_the_detector_and_its_people_beside_the_poses(exported_hrnet,
                                                                    detector_onnx, tmp_path):
    import cv2

    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), FRAME)
    out = tmp_path / "poses.json"
    assert main(["infer", "--model", str(exported_hrnet), "--detector", str(detector_onnx),
                 "--image", str(image), "--json", str(out), "--detector-max", "1"]) == 0
    payload = json.loads(out.read_text())
    assert len(payload["results"]) == 1 and len(payload["detector"]["people"]) == 1
    assert payload["detector"]["card"]["max_detections"] == 1
    assert "guessed from the graph" in payload["detector"]["statement"]
    assert WHOLE_FRAME_WARNING not in payload["warnings"]


def test_eval_with_a_detector_equals_eval_with_its_boxes_as_a_detections_file(
        exported_hrnet, detector_onnx, validation_split, tmp_path):
    annotations, images = validation_split
    ids = sorted(image["id"] for image in json.loads(annotations.read_text())["images"])
    with Detector.open(detector_onnx) as detector:     # the same boxes on every frame
        found = detector(FRAME)
    detections = tmp_path / "detections.json"
    detections.write_text(json.dumps([dict(entry, image_id=i) for i in ids
                                      for entry in found.to_json()]))
    from_file = evaluate_model(exported_hrnet, annotations, images, detections=detections,
                               limit=8, progress=False)
    from_detector = evaluate_model(exported_hrnet, annotations, images, detector=detector_onnx,
                                   limit=8, progress=False)
    assert dict(from_detector.metrics) == pytest.approx(dict(from_file.metrics), nan_ok=True)
    assert from_detector.people == from_file.people == 16
    assert "guessed" in from_detector.detector
    box = from_detector.box_metrics
    assert box is not None and 0.0 <= box["AP"] <= 1.0
    with pytest.raises(InputError, match="not both"):
        evaluate_model(exported_hrnet, annotations, images, detector=detector_onnx,
                       detections=detections, limit=2, progress=False)
