"""A real Triton server (the tritonserver 2.51 of the nvidia-pytriton wheel, built by
`make triton-server`) serving a repository exported from the demo model and the demo
detector: poses through tritonclient (HTTP and gRPC) equal the local pipeline's.

The server's Python models run on the server home's own numpy 1 and OpenCV 4.10 (its
Python stub is built against numpy 1), whose bilinear crops differ from OpenCV 5's in
the last bit; so the reference is the local pipeline run on those same packages, in a
subprocess. Against the project's environment the people and boxes are the same and
the keypoints within a pixel (checked too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepose.serve import contract
from edgepose.serve.launch import LocalTritonServer, find_home

ROOT = Path(__file__).resolve().parents[3]
DEMO_IMAGES = sorted((ROOT / "assets/demo/people/images").glob("*.jpg"))
DEMO_DETECTOR = ROOT / "assets/models/person_detector_synthetic.onnx"


def _home_or_skip():
    pytest.importorskip("tritonclient.http", reason="tritonclient is not installed "
                        "(pip install -e '.[triton]')")
    home = find_home()
    why = home.missing()
    if why is not None:
        pytest.skip(f"no local Triton server: {why}")
    return home


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """The demo images as lossless PNG bytes, so that server and reference decode the
    same pixels whatever their OpenCV's JPEG decoder."""
    folder = tmp_path_factory.mktemp("frames")
    paths = []
    for image in DEMO_IMAGES:
        path = folder / (image.stem + ".png")
        path.write_bytes(cv2.imencode(".png", cv2.imread(str(image)))[1].tobytes())
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def served(tmp_path_factory, demo_onnx):
    home = _home_or_skip()
    from edgepose.serve.repository import ServingOptions, export_repository

    repository = tmp_path_factory.mktemp("triton") / "repository"
    options = ServingOptions(network_backend="python", max_batch=8,
                             python_path=(str(home.site_packages), str(ROOT)))
    export_repository(demo_onnx, repository, detector=DEMO_DETECTOR, name="pose",
                      options=options)
    with LocalTritonServer(repository, home=home.root) as server:
        yield server, repository, home


def _infer(module, url: str, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    client = module.InferenceServerClient(url)
    inputs = []
    for name, array in tensors.items():
        entry = module.InferInput(name, list(array.shape),
                                  "UINT8" if array.dtype == np.uint8 else "FP32")
        entry.set_data_from_numpy(array)
        inputs.append(entry)
    result = client.infer("pose", inputs)
    return {name: result.as_numpy(name) for name in contract.OUTPUTS}


_REFERENCE = """
import json, sys
import cv2, numpy as np
import edgepose
model, detector, boxes = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
estimator = edgepose.load(model, detector=detector or None)
answers = []
for path in sys.argv[4:]:
    frame = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    poses = estimator(frame, None if boxes is None else np.array(boxes, np.float32))
    answers.append({"xy": poses.xy.tolist(), "scores": poses.scores.tolist(),
                    "person_scores": poses.person_scores.tolist(),
                    "boxes": None if poses.boxes is None else poses.boxes.tolist(),
                    "numpy": np.__version__})
print(json.dumps(answers))
"""


def _reference_on_server_packages(home, model: Path, frames, detector=None, boxes=None):
    """The local pipeline on the server home's packages: `python -S` leaves the virtual
    environment's site-packages out, PYTHONPATH puts the home's first."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(home.site_packages), str(ROOT)]))
    done = subprocess.run([sys.executable, "-S", "-c", _REFERENCE, str(model),
                           str(detector or ""), json.dumps(boxes)] + [str(f) for f in frames],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    answers = json.loads(done.stdout)
    assert answers[0]["numpy"].startswith("1."), "the reference must run on the home's numpy"
    return answers


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_poses_through_triton_equal_the_local_pipeline(served, frames, demo_onnx, protocol):
    server, _, home = served
    import tritonclient.grpc
    import tritonclient.http

    module, url = ((tritonclient.http, server.http_url) if protocol == "http"
                   else (tritonclient.grpc, server.grpc_url))
    expected = _reference_on_server_packages(home, demo_onnx, frames, detector=DEMO_DETECTOR)
    people = 0
    for frame, want in zip(frames, expected):
        got = _infer(module, url, contract.request_tensors(frame.read_bytes()))
        people += len(got[contract.KEYPOINTS])
        np.testing.assert_array_equal(got[contract.PERSON_BOXES], np.float32(want["boxes"]))
        np.testing.assert_array_equal(got[contract.KEYPOINTS], np.float32(want["xy"]))
        np.testing.assert_array_equal(got[contract.KEYPOINT_SCORES], np.float32(want["scores"]))
        np.testing.assert_array_equal(got[contract.PERSON_SCORES],
                                      np.float32(want["person_scores"]))
    assert people >= len(frames), "the demo images have people in them"


def test_given_boxes_replace_the_detector(served, frames, demo_onnx):
    server, _, home = served
    import tritonclient.http

    boxes = [[10.0, 20.0, 60.0, 120.0], [150.0, 40.0, 70.0, 150.0]]
    want = _reference_on_server_packages(home, demo_onnx, frames[:1], boxes=boxes)[0]
    got = _infer(tritonclient.http, server.http_url,
                 contract.request_tensors(frames[0].read_bytes(), np.float32(boxes)))
    np.testing.assert_array_equal(got[contract.PERSON_BOXES], np.float32(boxes))
    np.testing.assert_array_equal(got[contract.KEYPOINTS], np.float32(want["xy"]))


def test_close_to_the_project_environment(served, frames, demo_onnx):
    # Other numpy and OpenCV: the same people and boxes, keypoints within a pixel.
    server, _, _ = served
    import edgepose
    import tritonclient.http

    estimator = edgepose.load(demo_onnx, detector=DEMO_DETECTOR)
    offsets = []
    for frame in frames:
        local = estimator(cv2.imdecode(np.fromfile(frame, np.uint8), cv2.IMREAD_COLOR))
        got = _infer(tritonclient.http, server.http_url,
                     contract.request_tensors(frame.read_bytes()))
        np.testing.assert_array_equal(got[contract.PERSON_BOXES], local.boxes)
        offsets.append(np.linalg.norm(got[contract.KEYPOINTS] - local.xy, axis=-1).ravel())
    assert np.median(np.concatenate(offsets)) < 0.5


def test_a_bad_request_is_refused_with_the_reason(served):
    server, _, _ = served
    import tritonclient.http
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException, match="not an image OpenCV can decode"):
        _infer(tritonclient.http, server.http_url, contract.request_tensors(b"not an image"))


def test_the_repository_config_reads_back_from_the_server(served):
    server, repository, _ = served
    import tritonclient.http

    from edgepose.serve.config import read_config, string_parameters

    client = tritonclient.http.InferenceServerClient(server.http_url)
    served_config = client.get_model_config("pose")
    written = read_config((repository / "pose" / "config.pbtxt").read_text())
    assert served_config["parameters"][contract.PARAM_KEYPOINT_SET]["string_value"] == "coco17"
    assert string_parameters(written)[contract.PARAM_KEYPOINT_SET] == "coco17"
    network = client.get_model_config("pose_net")
    assert network["max_batch_size"] == 8
    assert "dynamic_batching" in network
    assert client.is_model_ready("pose_detector_net")


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_the_client_and_infer_triton_give_the_served_poses(served, frames, demo_onnx, tmp_path,
                                                         protocol):
    server, _, home = served
    from edgepose.cli import main
    from edgepose.serve.client import TritonPoseClient

    url = f"{protocol}://{server.http_url if protocol == 'http' else server.grpc_url}"
    want = _reference_on_server_packages(home, demo_onnx, frames[1:2], detector=DEMO_DETECTOR)[0]
    with TritonPoseClient(url) as client:           # finds the one pose model by itself
        poses = client.estimate(frames[1].read_bytes())
    np.testing.assert_array_equal(poses.xy, np.float32(want["xy"]))
    out = tmp_path / "poses.json"
    assert main(["infer", "--triton", url, "--image", str(frames[1]), "--json", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    assert len(results) == len(want["xy"])
    assert sorted(r["score"] for r in results) == pytest.approx(sorted(want["person_scores"]))
