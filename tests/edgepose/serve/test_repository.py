"""`edgepose triton`'s repository (edgepose/serve/repository.py, config.py,
python_models.py) without a server: the configs read back as Triton's own protobuf, the
batching facts come from the graph or the engine's sidecar, nothing is overwritten or
half-written, and the Python models answer as the local pipeline does when their BLS
calls are served in-process by a stand-in for Triton's Python-backend module."""

from __future__ import annotations

import json
import sys
import types

import cv2
import numpy as np
import pytest

pytest.importorskip("tritonclient.grpc.model_config_pb2", reason="the 'triton' extra is not "
                    "installed")

import edgepose  # noqa: E402
from edgepose.errors import InputError, ModelFileError  # noqa: E402
from edgepose.serve import contract  # noqa: E402
from edgepose.serve import repository as repo  # noqa: E402
from edgepose.serve.config import read_config, string_parameters  # noqa: E402
from edgepose.serve.repository import ServingOptions, export_repository  # noqa: E402
from edgepose.sidecar import EngineInfo, sha256_of_bytes, write_sidecar  # noqa: E402
from tests.calib.tiny import save, tiny_pose, topdown_card  # noqa: E402


@pytest.fixture
def tiny_onnx(tmp_path):
    return save(tiny_pose(), tmp_path / "tiny.onnx")


def _config(folder):
    return read_config((folder / "config.pbtxt").read_text())


def test_an_onnx_model_becomes_a_batched_network_and_a_pose_model(tiny_onnx, tmp_path):
    out = tmp_path / "repo"
    exported = export_repository(tiny_onnx, out, options=ServingOptions(
        network_backend="onnxruntime", max_batch=8, preferred_batch=(4,), queue_delay_us=250))
    assert exported.models == ("tiny", "tiny_net")
    net = _config(out / "tiny_net")
    assert net.platform == "onnxruntime_onnx" and net.max_batch_size == 8
    # The graph's (batch, 3, 32, 24) → (batch, 17, 16, 12), batch axis left out.
    assert [(t.name, list(t.dims)) for t in net.input] == [("input", [3, 32, 24])]
    assert [(t.name, list(t.dims)) for t in net.output] == [("heatmaps", [17, 16, 12])]
    assert list(net.dynamic_batching.preferred_batch_size) == [4]
    assert net.dynamic_batching.max_queue_delay_microseconds == 250
    assert (out / "tiny_net/1/model.onnx").read_bytes() == tiny_onnx.read_bytes()
    pose = _config(out / "tiny")
    assert pose.backend == "python" and pose.max_batch_size == 0
    assert [t.name for t in pose.input] == ["IMAGE", "BOXES", "BOX_SCORES"]
    assert [t.optional for t in pose.input] == [False, True, True]
    assert list(pose.output[0].dims) == [-1, 17, 2]
    params = string_parameters(pose)
    assert params[contract.PARAM_KEYPOINT_SET] == "coco17"
    assert json.loads(params[contract.PARAM_CARD])["family"] == "tiny"
    summary = json.loads((out / repo.SUMMARY_FILE).read_text())
    assert summary["pose_model"] == "tiny" and summary["networks"][0]["max_batch_size"] == 8
    compile((out / "tiny/1/model.py").read_text(), "model.py", "exec")


def test_a_fixed_batch_graph_is_served_without_batching(tmp_path):
    model = tiny_pose()
    for value in list(model.graph.input) + list(model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_value = 1
    path = save(model, tmp_path / "fixed.onnx")
    export_repository(path, tmp_path / "repo", options=ServingOptions(network_backend="python"))
    net = _config(tmp_path / "repo/fixed_net")
    assert net.backend == "python" and net.max_batch_size == 0
    assert list(net.input[0].dims) == [1, 3, 32, 24]
    assert not net.HasField("dynamic_batching")
    assert (tmp_path / "repo/fixed_net/1/model.py").is_file()


def _engine(tmp_path, profiles, plan=b"a serialised plan"):
    engine = tmp_path / "pose.engine"
    engine.write_bytes(plan)
    write_sidecar(engine, topdown_card(), EngineInfo(
        tensorrt_version="10.3.0.30", device="Orin", compute_capability="8.7",
        plan_sha256=sha256_of_bytes(b"a serialised plan"), profiles=profiles))
    return engine


def test_an_engine_is_batched_as_its_profile_allows(tmp_path):
    engine = _engine(tmp_path, ({"input": {"min": [1, 3, 32, 24], "opt": [4, 3, 32, 24],
                                           "max": [8, 3, 32, 24]}},))
    exported = export_repository(engine, tmp_path / "repo", options=ServingOptions(max_batch=16))
    net = _config(tmp_path / "repo/pose_net")
    assert net.platform == "tensorrt_plan"
    assert net.max_batch_size == 8                      # the profile's max, under --max-batch
    assert list(net.dynamic_batching.preferred_batch_size) == [4]    # the profile's opt
    assert len(net.input) == 0 and len(net.output) == 0  # Triton reads them from the plan
    assert (tmp_path / "repo/pose_net/1/model.plan").read_bytes() == b"a serialised plan"
    assert exported.summary["networks"][0]["tensorrt_version"] == "10.3.0.30"


def test_a_static_engine_and_a_changed_plan(tmp_path):
    static = {"input": {"min": [1, 3, 32, 24], "opt": [1, 3, 32, 24], "max": [1, 3, 32, 24]}}
    engine = _engine(tmp_path, (static,))
    export_repository(engine, tmp_path / "repo")
    assert _config(tmp_path / "repo/pose_net").max_batch_size == 0
    engine.write_bytes(b"another plan")
    with pytest.raises(ModelFileError, match="sha256"):
        export_repository(engine, tmp_path / "repo2")
    assert not (tmp_path / "repo2").exists()


@pytest.mark.parametrize("options, match", [
    (dict(network_backend="tensorrt"), "does not run tiny.onnx"),
    (dict(preferred_batch=(32,), max_batch=16), "outside 1..16"),
    (dict(network_backend="tflite"), "network backend must be one of"),
    (dict(max_batch=0), "max batch must be a positive integer"),
])
def test_refused_options(tiny_onnx, tmp_path, options, match):
    with pytest.raises(InputError, match=match):
        export_repository(tiny_onnx, tmp_path / "repo", options=ServingOptions(**options))
    assert not (tmp_path / "repo").exists()


def test_an_existing_folder_is_never_overwritten(tiny_onnx, tmp_path):
    out = tmp_path / "repo"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="exists"):
        export_repository(tiny_onnx, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(InputError, match="letters, digits"):
        export_repository(tiny_onnx, tmp_path / "other", name="a b")


def test_a_failure_midway_leaves_nothing(tiny_onnx, tmp_path, monkeypatch):
    calls = []

    def fail_on_second(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise OSError("disk full")
        return original(*args, **kwargs)

    original = repo._write_model
    monkeypatch.setattr(repo, "_write_model", fail_on_second)
    with pytest.raises(OSError, match="disk full"):
        export_repository(tiny_onnx, tmp_path / "repo")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx"]


# A stand-in for triton_python_backend_utils: BLS requests go to the repository's
# network model, run in-process.
class _Tensor:
    def __init__(self, name, array):
        self._name, self._array = name, np.asarray(array)

    def name(self):
        return self._name

    def as_numpy(self):
        return self._array


class _Response:
    def __init__(self, output_tensors, error=None):
        self.tensors = {t.name(): t for t in output_tensors}
        self.error_value = error

    def has_error(self):
        return self.error_value is not None

    def error(self):
        return self.error_value


class _Error:
    def __init__(self, text):
        self.text = text

    def message(self):
        return self.text


class _Request:
    def __init__(self, inputs, model_name=None, requested_output_names=()):
        self.tensors = {t.name(): t for t in inputs}
        self.model_name = model_name

    def exec(self):
        return _SERVED[self.model_name].execute([self])[0]


_SERVED: dict = {}


def _stand_in():
    module = types.ModuleType("triton_python_backend_utils")
    module.Tensor = _Tensor
    module.InferenceResponse = _Response
    module.TritonError = _Error
    module.InferenceRequest = lambda model_name, requested_output_names, inputs: _Request(
        inputs, model_name, requested_output_names)
    module.get_input_tensor_by_name = lambda request, name: request.tensors.get(name)
    module.get_output_tensor_by_name = lambda response, name: response.tensors.get(name)
    return module


def _initialise(model, folder, name):
    model.initialize({"model_config": json.dumps(_as_json(_config(folder / name))),
                      "model_repository": str(folder / name), "model_version": "1"})
    return model


def _as_json(message):
    from google.protobuf import json_format

    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def test_the_python_models_answer_as_the_local_pipeline(tiny_onnx, tmp_path, monkeypatch):
    from edgepose.serve.python_models import OnnxNetworkModel, PoseModel

    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", _stand_in())
    export_repository(tiny_onnx, tmp_path / "repo", options=ServingOptions(
        network_backend="python", max_batch=2))
    _SERVED["tiny_net"] = _initialise(OnnxNetworkModel(), tmp_path / "repo", "tiny_net")
    pose = _initialise(PoseModel(), tmp_path / "repo", "tiny")
    try:
        frame = np.random.default_rng(3).integers(0, 255, (60, 80, 3), dtype=np.uint8)
        boxes = np.float32([[5, 5, 30, 40], [40, 10, 30, 45], [20, 15, 25, 30]])
        encoded = cv2.imencode(".png", frame)[1].tobytes()
        request = _Request([_Tensor(n, a) for n, a in
                            contract.request_tensors(encoded, boxes).items()])
        answer = pose.execute([request])[0]
        assert not answer.has_error()
        got = contract.poses_from_tensors(
            {n: t.as_numpy() for n, t in answer.tensors.items()}, "coco17")
        with edgepose.load(tiny_onnx) as estimator:
            want = estimator(frame, boxes)
        # Three people in BLS calls of at most two (max_batch) against one local call.
        np.testing.assert_allclose(got.xy, want.xy, atol=1e-4)
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)
        np.testing.assert_array_equal(got.boxes, want.boxes)
        bad = pose.execute([_Request([_Tensor("IMAGE", np.frombuffer(b"junk", np.uint8))])])[0]
        assert bad.has_error() and "not an image" in bad.error().message()
    finally:
        pose.finalize()
        _SERVED.pop("tiny_net").finalize()


def test_the_network_model_splits_a_dynamic_batch_back_by_request(tiny_onnx, tmp_path,
                                                                   monkeypatch):
    from edgepose.serve.python_models import OnnxNetworkModel

    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", _stand_in())
    export_repository(tiny_onnx, tmp_path / "repo", options=ServingOptions(
        network_backend="python"))
    network = _initialise(OnnxNetworkModel(), tmp_path / "repo", "tiny_net")
    rng = np.random.default_rng(0)
    first, second = (rng.standard_normal((n, 3, 32, 24)).astype(np.float32) for n in (1, 3))
    answers = network.execute([_Request([_Tensor("input", first)]),
                               _Request([_Tensor("input", second)])])
    with edgepose.backends.open_runner(tiny_onnx) as runner:
        for batch, answer in zip((first, second), answers):
            want = runner.infer({"input": batch})["heatmaps"]
            np.testing.assert_allclose(answer.tensors["heatmaps"].as_numpy(), want, atol=1e-5)
    network.finalize()
