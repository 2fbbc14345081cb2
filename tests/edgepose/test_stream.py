"""Streams: detector every K frames with boxes from the previous poses in between, the
pipelined mode equal to the serial loop frame for frame, and the sinks' files."""

import json

import cv2
import numpy as np
import pytest

import edgepose
from edgepose.errors import InputError
from edgepose.poses import Poses
from edgepose.sinks import JsonLinesSink, VideoSink
from edgepose.sources import Frame, open_source
from edgepose.stream import BOX_EXPANSION, StreamOptions, boxes_from_poses
from tests.edgepose.detect.graphs import constant_graph, save
from tests.edgepose.detect.test_formats import yolov8_outputs
from tests.edgepose.test_sources import _video


@pytest.fixture(scope="module")
def detector_onnx(tmp_path_factory):
    return save(constant_graph(yolov8_outputs()), tmp_path_factory.mktemp("det") / "yolo.onnx")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 256))
    rng = np.random.default_rng(0)
    for _ in range(9):
        writer.write(rng.integers(0, 255, (256, 320, 3), dtype=np.uint8))
    writer.release()
    return path


def test_boxes_from_poses_grow_the_keypoint_box_about_its_centre():
    xy = np.zeros((1, 17, 2), np.float32)
    xy[0, :, 0] = np.linspace(100, 140, 17)          # x from 100 to 140
    xy[0, :, 1] = np.linspace(50, 130, 17)           # y from 50 to 130
    scores = np.full((1, 17), 0.9, np.float32)
    scores[0, 0] = 0.1                               # too weak to shape the box
    xy[0, 0] = (0, 0)
    poses = Poses(xy=xy, scores=scores, person_scores=np.array([0.8]), keypoint_set="coco17")
    boxes, person = boxes_from_poses(poses, 640, 480)
    x0, x1 = xy[0, 1:, 0].min(), xy[0, 1:, 0].max()
    y0, y1 = xy[0, 1:, 1].min(), xy[0, 1:, 1].max()
    w, h = (x1 - x0) * BOX_EXPANSION, (y1 - y0) * BOX_EXPANSION
    np.testing.assert_allclose(boxes, [[(x0 + x1) / 2 - w / 2, (y0 + y1) / 2 - h / 2, w, h]],
                               rtol=1e-5)
    np.testing.assert_allclose(person, [0.8])
    clipped, _ = boxes_from_poses(poses, 120, 480)   # the frame's right edge cuts it
    assert clipped[0, 0] + clipped[0, 2] == pytest.approx(120)


def test_the_detector_runs_every_k_frames(exported_hrnet, detector_onnx, clip):
    with edgepose.load(exported_hrnet, detector=detector_onnx) as estimator:
        calls = []
        detector = estimator.detector
        original = detector.__class__.__call__

        class Counting(detector.__class__):
            def __call__(self, image):
                calls.append(1)
                return original(self, image)

        detector.__class__ = Counting
        results = list(estimator.stream(clip, det_interval=3, track=False))
    assert len(results) == 9 and len(calls) == 3            # frames 0, 3 and 6
    # Between detections the boxes follow the previous frame's keypoints.
    first, second = results[0][1], results[1][1]
    width, height = 320, 256
    expected, _ = boxes_from_poses(first, width, height)
    np.testing.assert_allclose(second.boxes, expected, atol=1e-4)


@pytest.mark.parametrize("interval", [1, 3])
def test_pipelined_equals_serial_frame_for_frame(exported_hrnet, detector_onnx, clip, interval):
    with edgepose.load(exported_hrnet, detector=detector_onnx) as estimator:
        serial = list(estimator.stream(clip, det_interval=interval, track=False))
        pipelined = list(estimator.stream(clip, det_interval=interval, track=False,
                                          pipelined=True))
    assert [f.index for f, _ in pipelined] == [f.index for f, _ in serial] == list(range(9))
    for (_, a), (_, b) in zip(serial, pipelined):
        np.testing.assert_array_equal(a.xy, b.xy)
        np.testing.assert_array_equal(a.boxes, b.boxes)


def test_a_pipelined_stream_stopped_early_stops_its_threads(exported_hrnet, detector_onnx,
                                                            clip):
    import threading

    with edgepose.load(exported_hrnet, detector=detector_onnx) as estimator:
        for index, _ in enumerate(estimator.stream(clip, pipelined=True, track=False)):
            if index == 1:
                break
    alive = [t.name for t in threading.enumerate() if t.name.startswith("edgepose ")]
    assert alive == []


def test_an_error_in_a_stage_reaches_the_caller(exported_hrnet, tmp_path):
    bad = tmp_path / "frames"
    bad.mkdir()
    (bad / "a.png").write_bytes(b"not a png")
    with edgepose.load(exported_hrnet) as estimator:
        with pytest.raises(InputError, match="could not be decoded"):
            list(estimator.stream(bad, pipelined=True, track=False))


def test_det_interval_is_checked():
    with pytest.raises(InputError, match="det_interval"):
        StreamOptions(det_interval=0)


def _poses(count):
    return Poses(xy=np.full((count, 17, 2), 5.0), scores=np.full((count, 17), 0.5),
                 person_scores=np.full(count, 0.7), keypoint_set="coco17",
                 boxes=np.tile([1.0, 2.0, 3.0, 4.0], (count, 1)),
                 track_ids=np.arange(1, count + 1))


def test_json_lines_hold_one_frame_per_line_and_appear_only_when_complete(tmp_path):
    out = tmp_path / "poses.jsonl"
    sink = JsonLinesSink(out)
    image = np.zeros((4, 4, 3), np.uint8)
    for index in range(3):
        sink.write(Frame(index, image, index / 10, f"f{index}"), _poses(index), None)
    assert not out.exists()                                  # nothing before the end
    sink.finish(True)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["frame"] for line in lines] == [0, 1, 2]
    assert [len(line["people"]) for line in lines] == [0, 1, 2]
    person = lines[2]["people"][1]
    assert person["track_id"] == 2 and person["box"] == [1.0, 2.0, 3.0, 4.0]
    assert len(person["keypoints"]) == 17 and person["keypoints"][0] == [5.0, 5.0, 0.5]
    aborted = tmp_path / "aborted.jsonl"
    sink = JsonLinesSink(aborted)
    sink.write(Frame(0, image, 0.0, "f0"), _poses(1), None)
    sink.finish(False)
    assert not aborted.exists() and [p.name for p in tmp_path.iterdir()] == ["poses.jsonl"]


def test_the_annotated_video_has_every_frame(tmp_path):
    source_path = _video(tmp_path / "in.avi", frames=5, size=(64, 48))
    out = tmp_path / "out.avi"
    with open_source(source_path) as source:
        sink = VideoSink(out, source.fps)
        for frame in source:
            sink.write(frame, _poses(0), frame.image)
        sink.finish(True)
    capture = cv2.VideoCapture(str(out))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0)
    capture.release()
    with pytest.raises(InputError, match="must end in"):
        VideoSink(tmp_path / "out.gif", 10)


def test_people_keep_their_track_ids_across_frames(exported_hrnet, detector_onnx, clip):
    # The constant detector finds the same two people in every frame: two ids, kept.
    with edgepose.load(exported_hrnet, detector=detector_onnx) as estimator:
        tracked = [poses.track_ids.tolist() for _, poses in estimator.stream(clip)]
        pipelined = [poses.track_ids.tolist()
                     for _, poses in estimator.stream(clip, pipelined=True)]
    assert tracked == [[1, 2]] * 9
    assert pipelined == tracked
