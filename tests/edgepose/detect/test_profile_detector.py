"""`edgepose profile --video --detector`: the detector runs on every frame, its time is
the "detect" stage, and the stages still add up to the end-to-end time."""

import numpy as np
import pytest

from edgepose import profile as prof
from edgepose.cli import main
from edgepose.errors import InputError
from tests.edgepose.detect.graphs import constant_graph, save
from tests.edgepose.detect.test_formats import yolov8_outputs
from tests.edgepose.test_profile import DelayRunner, _assert_sums, _factory, _write_video


@pytest.fixture
def detector_onnx(tmp_path):
    return save(constant_graph(yolov8_outputs()), tmp_path / "yolo.onnx")


def test_every_frame_is_detected_then_posed(tmp_path, detector_onnx):
    video = _write_video(tmp_path / "clip.avi")
    runner = DelayRunner(0.0)
    result = prof.profile_video("m.onnx", video, warmup=1, progress=False,
                                detector=detector_onnx,
                                runner_factory=_factory({"m.onnx": lambda: runner}))
    run = result.video
    # The constant detector finds the same two people in each of the 6 frames.
    assert run.frames == 6 and run.people == 12
    assert runner.batches == [2] * 7                    # the warm-up call, then 6 frames
    assert set(run.stages) == {"read", "detect", "preprocess", "infer", "decode", "end_to_end"}
    assert run.stages["detect"].count == 6 and run.stages["detect"].mean > 0
    _assert_sums(run.stages)
    assert "detector yolo.onnx" in result.source


def test_a_frame_where_nobody_is_found_runs_no_pose_model(tmp_path):
    nobody = np.zeros((1, 6, 2100), np.float32)
    detector = save(constant_graph({"output0": nobody}), tmp_path / "empty.onnx")
    runner = DelayRunner(0.0)
    result = prof.profile_video("m.onnx", _write_video(tmp_path / "clip.avi"), warmup=1,
                                progress=False, detector=detector,
                                runner_factory=_factory({"m.onnx": lambda: runner}))
    assert runner.batches == [] and result.video.people == 0
    assert result.video.stages["detect"].count == 6 and "infer" not in result.video.stages
    _assert_sums(result.video.stages)


def test_a_detector_needs_a_video_and_no_boxes(tmp_path, detector_onnx):
    with pytest.raises(InputError, match="frame by frame on a video"):
        prof.profile_models(["m.onnx"], detector=detector_onnx, progress=False,
                            runner_factory=_factory({"m.onnx": lambda: DelayRunner(0.0)}))
    with pytest.raises(InputError, match="not both"):
        prof.profile_video("m.onnx", _write_video(tmp_path / "clip.avi"), progress=False,
                           detector=detector_onnx, boxes=np.array([[0, 0, 10, 10]]),
                           runner_factory=_factory({"m.onnx": lambda: DelayRunner(0.0)}))


def test_the_cli_refuses_detector_settings_without_a_detector(tmp_path, capsys):
    assert main(["profile", "m.onnx", "--detector-score", "0.5"]) == 2
    assert "--detector-score need(s) --detector" in capsys.readouterr().err
