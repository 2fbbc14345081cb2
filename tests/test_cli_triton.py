"""`edgepose infer --triton` and `edgepose profile --triton` against a fake tritonclient
(the one of tests/edgepose/serve/test_client.py); no server runs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepose.cli import build_parser, main
from edgepose.poses import Poses

HERE = Path(__file__).resolve().parent


def _fakes():
    spec = importlib.util.spec_from_file_location(
        "edgepose_test_fake_triton", HERE / "edgepose" / "serve" / "test_client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fakes = _fakes()


def _help_of(verb):
    subparsers = next(action for action in build_parser()._actions
                      if hasattr(action, "choices") and isinstance(action.choices, dict))
    return subparsers.choices[verb].format_help()


@pytest.mark.parametrize("verb, options", [
    ("infer", ["--triton", "--triton-model", "--triton-protocol", "--triton-timeout"]),
    ("profile", ["--triton", "--triton-model", "--triton-protocol", "--triton-timeout",
                 "--concurrency"]),
])
def test_help_explains_the_triton_options(verb, options):
    text = _help_of(verb)
    for option in options:
        assert option in text
    assert "Triton server (instead of" in text


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "frame.png"
    pixels = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    cv2.imwrite(str(path), pixels)
    return path, pixels


def _answer():
    tensors = fakes.canned_tensors(2, seed=9)
    return tensors, Poses(xy=tensors["KEYPOINTS"], scores=tensors["KEYPOINT_SCORES"],
                          person_scores=tensors["PERSON_SCORES"], keypoint_set="coco17",
                          boxes=tensors["PERSON_BOXES"])


def test_infer_writes_what_a_local_run_would(monkeypatch, tmp_path, image, capsys):
    from edgepose.draw import DEFAULT_SCORE_THRESHOLD, draw_poses

    path, pixels = image
    tensors, poses = _answer()
    server = fakes.FakeTriton({"pose": fakes.pose_config("pose")},
                              answer=lambda model, inputs: tensors).install(monkeypatch)
    out_json, out_draw = tmp_path / "poses.json", tmp_path / "drawn.png"
    assert main(["infer", "--triton", "grpc://host:8001", "--image", str(path),
                 "--boxes", "1,2,30,40;5,6,20,20", "--image-id", "7",
                 "--json", str(out_json), "--draw", str(out_draw)]) == 0
    assert json.loads(out_json.read_text()) == poses.to_coco_results(7)
    np.testing.assert_array_equal(cv2.imread(str(out_draw)),
                                  draw_poses(pixels, poses,
                                             score_threshold=DEFAULT_SCORE_THRESHOLD))
    sent = server.requests[0]["inputs"]
    np.testing.assert_array_equal(cv2.imdecode(sent["IMAGE"].array, cv2.IMREAD_COLOR), pixels)
    np.testing.assert_array_equal(sent["BOXES"].array, [[1, 2, 30, 40], [5, 6, 20, 20]])
    assert "2 person(s)" in capsys.readouterr().out


def test_infer_without_boxes_keeps_the_whole_frame_warning(monkeypatch, tmp_path, image,
                                                           capsys):
    from edgepose.api import WHOLE_FRAME_WARNING

    tensors, poses = _answer()
    fakes.FakeTriton({"pose": fakes.pose_config("pose")},
                     answer=lambda model, inputs: tensors).install(monkeypatch)
    out_json = tmp_path / "poses.json"
    assert main(["infer", "--triton", "host:8000", "--image", str(image[0]),
                 "--json", str(out_json)]) == 0
    assert json.loads(out_json.read_text()) == {"warnings": [WHOLE_FRAME_WARNING],
                                                "results": poses.to_coco_results(0)}
    assert WHOLE_FRAME_WARNING in capsys.readouterr().err


@pytest.mark.parametrize("arguments, words", [
    (["infer", "--image", "IMAGE"], "--model"),
    (["infer", "--model", "m.onnx", "--image", "IMAGE", "--triton-model", "pose"],
     "--triton-model need(s) --triton"),
    (["infer", "--triton", "host:1", "--model", "m.onnx", "--image", "IMAGE"], "--model"),
    (["infer", "--triton", "host:1", "--image", "IMAGE", "--flip"], "--flip"),
    (["infer", "--triton", "host:1", "--image", "IMAGE", "--detector-score", "0.5"],
     "--detector-score"),
    (["infer", "--triton", "host:1", "--source", "IMAGE", "--jsonl", "x.jsonl"], "--source"),
    (["infer", "--triton", "https://host:1", "--image", "IMAGE"], "TLS"),
    (["profile", "m.onnx", "--concurrency", "1,4"], "--concurrency need(s) --triton"),
    (["profile"], "MODEL"),
    (["profile", "m.onnx", "--triton", "host:1"], "exclude"),
    (["profile", "--triton", "host:1", "--plot", "p.png"], "--plot"),
    (["profile", "--triton", "host:1", "--concurrency", "0"], "concurrency"),
])
def test_refusals_are_one_line(monkeypatch, image, capsys, arguments, words):
    fakes.FakeTriton({"pose": fakes.pose_config("pose")}).install(monkeypatch)
    arguments = [str(image[0]) if item == "IMAGE" else item for item in arguments]
    assert main(arguments) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("edgepose: error:") and "\n" not in error
    assert words in error


def test_an_unreachable_server_is_one_line(image, capsys):
    pytest.importorskip("tritonclient.http")
    assert main(["infer", "--triton", "http://127.0.0.1:1", "--triton-timeout", "2",
                 "--image", str(image[0])]) == 2
    error = capsys.readouterr().err.strip()
    assert "cannot reach a Triton server at http://127.0.0.1:1" in error and "\n" not in error


def test_profile_measures_each_level(monkeypatch, tmp_path, image, capsys):
    server = fakes.FakeTriton({"pose": fakes.pose_config("pose")}).install(monkeypatch)
    report = tmp_path / "levels.json"
    assert main(["profile", "--triton", "grpc://host:8001", "--concurrency", "1,3",
                 "--iters", "9", "--warmup", "2", "--image", str(image[0]),
                 "--json", str(report)]) == 0
    data = json.loads(report.read_text())
    assert [level["concurrency"] for level in data["levels"]] == [1, 3]
    assert [level["requests"] for level in data["levels"]] == [9, 9]
    assert data["model"] == "pose"
    # Timed requests, then each client's warm-up: 9 + 1*2 and 9 + 3*2.
    assert len(server.requests) == 9 + 2 + 9 + 6
    # The stored file travels as it is.
    assert server.requests[0]["inputs"]["IMAGE"].array.tobytes() == image[0].read_bytes()
    # One probing connection, then one per client thread.
    assert len(server.clients) == 1 + 1 + 3 and all(c.closed for c in server.clients)
    table = capsys.readouterr().out
    assert "req/s" in table and "p99" in table
