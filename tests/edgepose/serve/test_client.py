"""TritonPoseClient without a server: a fake tritonclient module answers with canned
tensors, and records what the client sent."""

from __future__ import annotations

import json
import sys
import threading
import types

import cv2
import numpy as np
import pytest

from edgepose.errors import BackendError, InputError, MissingDependencyError
from edgepose.poses import Poses
from edgepose.serve import client as client_module
from edgepose.serve.client import TritonPoseClient, encode_frame, parse_triton_url

COCO17 = 17


class FakeServerError(Exception):
    """tritonclient.utils.InferenceServerException's interface."""

    def __init__(self, msg, status=None):
        super().__init__(msg)
        self._msg, self._status = msg, status

    def message(self):
        return self._msg

    def status(self):
        return self._status


class FakeInput:
    def __init__(self, name, shape, datatype):
        self.name, self.shape, self.datatype = name, list(shape), datatype
        self.array = None

    def set_data_from_numpy(self, array):
        assert list(array.shape) == self.shape, (array.shape, self.shape)
        self.array = array.copy()


class FakeOutput:
    def __init__(self, name):
        self.name = name


class FakeResult:
    def __init__(self, tensors):
        self.tensors = tensors

    def as_numpy(self, name):
        return self.tensors.get(name)


def pose_config(name, keypoint_set="coco17", paradigm="top-down", detector="", card=None):
    parameters = {"edgepose_keypoint_set": {"string_value": keypoint_set},
                  "edgepose_paradigm": {"string_value": paradigm},
                  "edgepose_detector_model": {"string_value": detector}}
    if card is not None:
        parameters["edgepose_card"] = {"string_value": card}
    return {"name": name, "backend": "python", "max_batch_size": 0, "parameters": parameters}


class FakeTriton:
    """A server's models (name → config) and the answer to every infer; `module(protocol)`
    is what edgepose._optional.tritonclient would return."""

    def __init__(self, configs, answer=None, failure=None):
        self.configs = configs
        self.answer = answer or (lambda model, inputs: canned_tensors(2))
        self.failure = failure      # raised by every call when set
        self.requests = []
        self.clients = []
        self.lock = threading.Lock()

    def module(self, protocol):
        server = self

        class Client:
            def __init__(self, url, **kwargs):
                self.url, self.kwargs, self.closed = url, kwargs, False
                with server.lock:
                    server.clients.append(self)

            def _check(self, kwargs):
                if server.failure is not None:
                    raise server.failure
                if protocol == "grpc":
                    assert "client_timeout" in kwargs
                else:
                    assert not kwargs, kwargs

            def get_model_repository_index(self, **kwargs):
                grpc_json = kwargs.pop("as_json", False)
                self._check(kwargs)
                entries = [{"name": name, "version": "1", "state": "READY"}
                           for name in server.configs]
                if protocol == "grpc":
                    assert grpc_json
                    return {"models": entries}
                return entries

            def get_model_config(self, name, **kwargs):
                grpc_json = kwargs.pop("as_json", False)
                self._check(kwargs)
                if name not in server.configs:
                    raise FakeServerError(f"Request for unknown model: '{name}' is not found",
                                          "StatusCode.NOT_FOUND" if protocol == "grpc" else "400")
                config = json.loads(json.dumps(server.configs[name]))
                if protocol == "grpc":
                    assert grpc_json
                    return {"config": config}
                return config

            def infer(self, model, inputs, outputs=None, **kwargs):
                self._check(kwargs)
                sent = {tensor.name: tensor for tensor in inputs}
                with server.lock:
                    server.requests.append({"model": model, "inputs": sent,
                                            "outputs": [o.name for o in outputs or ()],
                                            "kwargs": kwargs})
                return FakeResult(server.answer(model, {k: v.array for k, v in sent.items()}))

            def close(self):
                self.closed = True

        return types.SimpleNamespace(InferenceServerClient=Client, InferInput=FakeInput,
                                     InferRequestedOutput=FakeOutput,
                                     InferenceServerException=FakeServerError)

    def install(self, monkeypatch):
        monkeypatch.setattr(client_module, "tritonclient", self.module)
        return self


def canned_tensors(people, seed=0):
    """What a pose model answers for `people` people, as the wire carries it."""
    rng = np.random.default_rng(seed)
    return {"KEYPOINTS": rng.uniform(0, 60, (people, COCO17, 2)).astype(np.float32),
            "KEYPOINT_SCORES": rng.uniform(0, 1, (people, COCO17)).astype(np.float32),
            "PERSON_SCORES": rng.uniform(0, 1, (people,)).astype(np.float32),
            "PERSON_BOXES": rng.uniform(0, 50, (people, 4)).astype(np.float32)}


def frame(seed=1, shape=(48, 64, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# --- addresses ------------------------------------------------------------------------

@pytest.mark.parametrize("url, protocol, expected", [
    ("http://server:8000", None, ("http", "server:8000")),
    ("grpc://server:8001", None, ("grpc", "server:8001")),
    ("GRPC://server:9001", "grpc", ("grpc", "server:9001")),
    ("server:9000", None, ("http", "server:9000")),
    ("server:9001", "grpc", ("grpc", "server:9001")),
    ("server", None, ("http", "server:8000")),
    ("grpc://server", None, ("grpc", "server:8001")),
    ("localhost", "grpc", ("grpc", "localhost:8001")),
    ("[::1]:8001", "grpc", ("grpc", "[::1]:8001")),
    (" 127.0.0.1:8000/ ", None, ("http", "127.0.0.1:8000")),
])
def test_urls_name_protocol_and_address(url, protocol, expected):
    address = parse_triton_url(url, protocol)
    assert (address.protocol, address.host_port) == expected
    assert str(address) == f"{expected[0]}://{expected[1]}"


@pytest.mark.parametrize("url, protocol, words", [
    ("", None, "empty"),
    ("https://server:8000", None, "TLS"),
    ("ftp://server:8000", None, "scheme"),
    ("http://server:8000/v2/models", None, "nothing after the port"),
    ("http://user:pw@server:8000", None, "nothing after the port"),
    ("http://server:8000", "grpc", "says http"),
    ("server:port", None, "server:port"),
    ("server:70000", None, "70000"),
    ("server:8000", "udp", "protocol"),
])
def test_bad_urls_are_refused_in_one_line(url, protocol, words):
    with pytest.raises(InputError) as error:
        parse_triton_url(url, protocol)
    assert words in str(error.value) and "\n" not in str(error.value)


# --- frames ---------------------------------------------------------------------------

def test_a_frame_is_encoded_losslessly():
    image = frame(shape=(37, 53, 3))
    decoded = cv2.imdecode(np.frombuffer(encode_frame(image), np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(decoded, image)


@pytest.mark.parametrize("bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.float32),
                                 np.zeros((8, 8, 4), np.uint8), np.zeros((0, 8, 3), np.uint8),
                                 "image.png"])
def test_what_is_not_a_bgr_frame_is_refused(bad):
    with pytest.raises(InputError, match="BGR uint8"):
        encode_frame(bad)


# --- requests -------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_poses_are_the_servers_tensors(monkeypatch, protocol):
    answer = canned_tensors(3, seed=5)
    server = FakeTriton({"pose": pose_config("pose")},
                        answer=lambda model, inputs: answer).install(monkeypatch)
    image = frame()
    boxes = np.array([[1, 2, 30, 40], [5, 5, 20, 20], [0, 0, 64, 48]], np.float64)
    box_scores = np.array([0.9, 0.8, 0.7])
    with TritonPoseClient(f"{protocol}://host:1234", model="pose", timeout_s=7) as client:
        poses = client.estimate(image, boxes, box_scores)
    assert isinstance(poses, Poses) and poses.keypoint_set == "coco17"
    np.testing.assert_array_equal(poses.xy, answer["KEYPOINTS"])
    np.testing.assert_array_equal(poses.scores, answer["KEYPOINT_SCORES"])
    np.testing.assert_array_equal(poses.person_scores, answer["PERSON_SCORES"])
    np.testing.assert_array_equal(poses.boxes, answer["PERSON_BOXES"])

    [request] = server.requests
    assert request["model"] == "pose"
    assert set(request["outputs"]) == {"KEYPOINTS", "KEYPOINT_SCORES", "PERSON_SCORES",
                                       "PERSON_BOXES"}
    sent = request["inputs"]
    assert {name: tensor.datatype for name, tensor in sent.items()} == {
        "IMAGE": "UINT8", "BOXES": "FP32", "BOX_SCORES": "FP32"}
    np.testing.assert_array_equal(cv2.imdecode(sent["IMAGE"].array, cv2.IMREAD_COLOR), image)
    np.testing.assert_array_equal(sent["BOXES"].array, boxes.astype(np.float32))
    np.testing.assert_array_equal(sent["BOX_SCORES"].array, box_scores.astype(np.float32))
    [connection] = server.clients
    assert connection.url == "host:1234" and connection.closed
    if protocol == "grpc":
        assert request["kwargs"] == {"client_timeout": 7}
    else:
        assert connection.kwargs == {"connection_timeout": 7, "network_timeout": 7}


def test_encoded_bytes_travel_unchanged_and_no_boxes_means_none_sent(monkeypatch):
    server = FakeTriton({"pose": pose_config("pose")}).install(monkeypatch)
    encoded = cv2.imencode(".jpg", frame())[1].tobytes()
    with TritonPoseClient("host:1", model="pose") as client:
        client.estimate(encoded)
    sent = server.requests[0]["inputs"]
    assert set(sent) == {"IMAGE"}
    assert sent["IMAGE"].array.tobytes() == encoded


def test_bottom_up_people_without_boxes_and_boxes_refused(monkeypatch):
    def answer(model, inputs):
        tensors = canned_tensors(2)
        tensors["PERSON_BOXES"] = np.zeros((0, 4), np.float32)
        return tensors

    server = FakeTriton({"paf": pose_config("paf", paradigm="bottom-up")},
                        answer=answer).install(monkeypatch)
    with TritonPoseClient("host:1") as client:
        assert client.model == "paf" and not client.top_down
        assert client.estimate(frame()).boxes is None
        with pytest.raises(InputError, match="bottom-up"):
            client.estimate(frame(), np.array([[0, 0, 10, 10]], np.float32))
    assert len(server.requests) == 1


def test_the_only_pose_model_is_found(monkeypatch):
    FakeTriton({"detector": {"name": "detector", "parameters": {}},
                "plain": {"name": "plain"},
                "hrnet": pose_config("hrnet", detector="detector")}).install(monkeypatch)
    with TritonPoseClient("grpc://host:1") as client:
        assert client.model == "hrnet"
        assert client.detector_model == "detector"
        assert client.warnings() == []         # the server's detector finds the people


def test_warnings_and_drawing_follow_the_local_estimator(monkeypatch):
    from edgepose.api import BOTTOM_UP_DRAW_THRESHOLD, WHOLE_FRAME_WARNING
    from edgepose.draw import DEFAULT_SCORE_THRESHOLD, draw_poses

    FakeTriton({"td": pose_config("td"), "bu": pose_config("bu", paradigm="bottom-up")}
               ).install(monkeypatch)
    with TritonPoseClient("host:1", model="td") as top_down, \
            TritonPoseClient("host:1", model="bu") as bottom_up:
        assert top_down.warnings() == [WHOLE_FRAME_WARNING]
        assert top_down.warnings(np.zeros((1, 4), np.float32)) == []
        assert bottom_up.warnings() == []
        assert top_down.draw_threshold == DEFAULT_SCORE_THRESHOLD
        assert bottom_up.draw_threshold == BOTTOM_UP_DRAW_THRESHOLD
        poses = Poses(**{"xy": canned_tensors(1)["KEYPOINTS"],
                         "scores": np.linspace(0, 1, COCO17, dtype=np.float32)[None],
                         "person_scores": [0.5], "keypoint_set": "coco17"})
        image = frame(shape=(60, 60, 3))
        np.testing.assert_array_equal(
            bottom_up.draw(image, poses),
            draw_poses(image, poses, score_threshold=BOTTOM_UP_DRAW_THRESHOLD))


def test_a_random_weights_card_is_flagged(monkeypatch):
    from edgepose.api import RANDOM_WEIGHTS_BANNER

    card = {"family": "hrnet", "variant": "w8"}   # unreadable as a card: ignored
    FakeTriton({"m": pose_config("m", card=json.dumps(card))}).install(monkeypatch)
    with TritonPoseClient("host:1") as client:
        assert client.card is None and not client.random_init
        assert RANDOM_WEIGHTS_BANNER not in client.warnings()


# --- refusals -------------------------------------------------------------------------

def _error_of(monkeypatch, server, **kwargs):
    server.install(monkeypatch)
    with pytest.raises((InputError, BackendError)) as error:
        TritonPoseClient(kwargs.pop("url", "host:1"), **kwargs)
    message = str(error.value)
    assert "\n" not in message
    return error.value


def test_no_pose_model_names_the_models_there(monkeypatch):
    error = _error_of(monkeypatch, FakeTriton({"yolo": {"name": "yolo"}}))
    assert isinstance(error, InputError)
    assert "no edgepose pose model" in str(error) and "yolo" in str(error)


def test_several_pose_models_ask_for_a_name(monkeypatch):
    error = _error_of(monkeypatch, FakeTriton({"a": pose_config("a"), "b": pose_config("b")}))
    assert "several" in str(error) and "a, b" in str(error) and "--triton-model" in str(error)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_missing_model_is_named(monkeypatch, protocol):
    error = _error_of(monkeypatch, FakeTriton({"pose": pose_config("pose")}),
                      url=f"{protocol}://host:1", model="absent")
    assert isinstance(error, InputError)
    assert "'absent'" in str(error) and "pose" in str(error)


def test_a_model_without_the_parameters_is_not_a_pose_model(monkeypatch):
    error = _error_of(monkeypatch, FakeTriton({"yolo": {"name": "yolo"}}), model="yolo")
    assert isinstance(error, InputError) and "not an edgepose pose model" in str(error)


def test_an_unknown_paradigm_is_refused(monkeypatch):
    error = _error_of(monkeypatch, FakeTriton({"m": pose_config("m", paradigm="sideways")}))
    assert "sideways" in str(error)


@pytest.mark.parametrize("failure, words", [
    (ConnectionRefusedError(111, "Connection refused"), "cannot reach"),
    (FakeServerError("failed to connect to all addresses", "StatusCode.UNAVAILABLE"),
     "cannot reach"),
    (TimeoutError("timed out"), "did not answer within 3 s"),
    (FakeServerError("Deadline Exceeded", "StatusCode.DEADLINE_EXCEEDED"),
     "did not answer within 3 s"),
])
def test_an_unreachable_server_is_one_backend_error(monkeypatch, failure, words):
    error = _error_of(monkeypatch, FakeTriton({}, failure=failure), url="grpc://far:8001",
                      timeout_s=3)
    assert isinstance(error, BackendError)
    assert words in str(error) and "grpc://far:8001" in str(error)


def test_the_servers_error_message_is_passed_on(monkeypatch):
    def answer(model, inputs):
        raise FakeServerError("InputError: the image could not be decoded", "400")

    FakeTriton({"pose": pose_config("pose")}, answer=answer).install(monkeypatch)
    with TritonPoseClient("host:1") as client:
        with pytest.raises(BackendError) as error:
            client.estimate(b"not an image")
    assert "the image could not be decoded" in str(error.value)
    assert "'pose'" in str(error.value)


def test_a_misshapen_answer_is_refused(monkeypatch):
    def answer(model, inputs):
        tensors = canned_tensors(1)
        tensors["KEYPOINTS"] = np.zeros((1, 18, 2), np.float32)
        return tensors

    FakeTriton({"pose": pose_config("pose")}, answer=answer).install(monkeypatch)
    with TritonPoseClient("host:1") as client, pytest.raises(InputError, match="KEYPOINTS"):
        client.estimate(frame())


def test_a_closed_client_refuses_requests(monkeypatch):
    FakeTriton({"pose": pose_config("pose")}).install(monkeypatch)
    client = TritonPoseClient("host:1")
    client.close()
    with pytest.raises(InputError, match="closed"):
        client.estimate(frame())


def test_missing_tritonclient_names_the_extra(monkeypatch):
    from edgepose import _optional

    monkeypatch.setitem(sys.modules, "tritonclient.grpc", None)
    with pytest.raises(MissingDependencyError) as error:
        _optional.tritonclient("grpc")
    assert "edgepose[triton]" in str(error.value)
    with pytest.raises(ValueError):
        _optional.tritonclient("udp")
