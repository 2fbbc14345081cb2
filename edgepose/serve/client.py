"""A client of the pose model `edgepose triton` writes: frames in, Poses out, the same
Poses `edgepose.load(model)` gives on the same pixels.

    with TritonPoseClient("grpc://gpu-host:8001") as client:
        poses = client.estimate(frame_bgr)

A BGR frame travels as a PNG (lossless, so the server decodes exactly these pixels);
already-encoded bytes (a camera's JPEG) travel as they are. What goes over the wire is
edgepose.serve.contract's.

Threads: create one client per thread, in the thread that uses it. tritonclient's HTTP
client runs on gevent, whose event loop belongs to the thread that made it, so an HTTP
client shared between threads fails; one client per thread is also what a closed-loop
load test wants (one connection per simulated user).
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

import cv2
import numpy as np

from edgepose._closing import Closeable
from edgepose._optional import import_optional, tritonclient
from edgepose.api import draw_result, draw_threshold_for, result_warnings
from edgepose.card import ModelCard
from edgepose.errors import BackendError, CardError, InputError
from edgepose.keypoints import get_keypoint_set
from edgepose.poses import Poses
from edgepose.serve.contract import (OUTPUTS, PARAM_CARD, PARAM_DETECTOR, PARAM_KEYPOINT_SET,
                                     PARAM_PARADIGM, config_parameters, poses_from_tensors,
                                     request_tensors)

_log = logging.getLogger(__name__)

PROTOCOLS = ("http", "grpc")
#: tritonserver's own default ports, taken when a URL names none.
DEFAULT_PORTS = {"http": 8000, "grpc": 8001}
DEFAULT_TIMEOUT_S = 60.0
PARADIGMS = ("top-down", "bottom-up")
#: numpy dtype → the datatype string of Triton's protocol, for the inputs of the contract.
#: PNG's fastest level: lossless all the same, and the encode is on every request's path.
_PNG_COMPRESSION = 1


@dataclass(frozen=True)
class TritonAddress:
    """Where a server listens: `protocol` ('http' or 'grpc') and `host_port`, the
    address as tritonclient takes it (no scheme)."""

    protocol: str
    host_port: str

    def __str__(self) -> str:
        return f"{self.protocol}://{self.host_port}"


def parse_triton_url(url: str, protocol: str | None = None) -> TritonAddress:
    """`http://host:port`, `grpc://host:port` or bare `host:port` (HTTP unless
    `protocol` is 'grpc'); without a port, Triton's default for the protocol."""
    if protocol is not None and protocol not in PROTOCOLS:
        raise InputError(f"Triton protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    text = url.strip() if isinstance(url, str) else ""
    if not text:
        raise InputError("empty Triton URL; expected http://HOST:PORT, grpc://HOST:PORT or "
                         "HOST:PORT")
    scheme, separator, rest = text.partition("://")
    if not separator:
        scheme, rest = protocol or "http", text
    scheme = scheme.lower()
    if scheme == "https":
        raise InputError(f"Triton URL {url!r}: TLS (https) is not supported by edgepose's "
                         "client; use http:// or grpc:// on a trusted network")
    if scheme not in PROTOCOLS:
        raise InputError(f"Triton URL {url!r}: unknown scheme {scheme!r}; expected http:// or "
                         "grpc://")
    if protocol is not None and protocol != scheme:
        raise InputError(f"Triton URL {url!r} says {scheme} but the protocol asked for is "
                         f"{protocol}; give one of them")
    try:
        parts = urlsplit(f"//{rest}")
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise InputError(f"Triton URL {url!r}: {exc}; expected HOST:PORT") from None
    if not host or parts.path not in ("", "/") or parts.query or parts.fragment or \
            parts.username or parts.password:
        raise InputError(f"Triton URL {url!r}: expected {scheme}://HOST:PORT with nothing "
                         "after the port")
    if port is None:
        port = DEFAULT_PORTS[scheme]
    bracketed = f"[{host}]" if ":" in host else host
    return TritonAddress(scheme, f"{bracketed}:{port}")


def encode_frame(image: np.ndarray) -> bytes:
    """A BGR uint8 (h, w, 3) frame as PNG bytes, which decode to exactly these pixels."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3 or 0 in image.shape:
        what = (f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray)
                else type(image).__name__)
        raise InputError(f"the image must be a BGR uint8 array (h, w, 3) or the bytes of an "
                         f"encoded image, got {what}")
    ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, _PNG_COMPRESSION])
    if not ok:
        raise InputError(f"OpenCV could not encode a {image.shape} frame as PNG")
    return encoded.tobytes()


class TritonPoseClient(Closeable):
    """One connection to an edgepose pose model on a Triton server.

    url: `http://host:port`, `grpc://host:port` or `host:port` (see parse_triton_url).
    model: the pose model's name in the repository; None takes the only model whose
        config carries the `edgepose_keypoint_set` parameter.
    timeout_s: the longest wait for one answer (and, over HTTP, for connecting).
    `client(image)` is `client.estimate(image)`, as for an Estimator. Not for sharing
    between threads: see the module's docstring.
    """

    model: str | None = None

    def __init__(self, url: str, model: str | None = None, protocol: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.address = parse_triton_url(url, protocol)
        if not (isinstance(timeout_s, (int, float)) and timeout_s > 0):
            raise InputError(f"timeout_s is {timeout_s!r}; expected a positive number of seconds")
        self.timeout_s = float(timeout_s)
        self._module = tritonclient(self.address.protocol)
        self._wire_dtype = import_optional("tritonclient.utils", "triton",
                                           "Talking to a Triton server").np_to_triton_dtype
        self._server_error = getattr(self._module, "InferenceServerException", ())
        self._client = self._connect()
        try:
            self.model = model if model is not None else self._find_pose_model()
            self.config = self._model_config(self.model)
            self._read_parameters(self.config)
        except BaseException:
            self.close()
            raise

    # --- what the model is -------------------------------------------------------------

    @property
    def top_down(self) -> bool:
        return self.paradigm == "top-down"

    @property
    def random_init(self) -> bool:
        return self.card is not None and self.card.random_init

    def describe(self) -> str:
        """One line: which model, where, of what kind."""
        what = f"{self.card.family} {self.card.variant}, " if self.card is not None else ""
        detector = f", detector {self.detector_model}" if self.detector_model else ""
        return (f"Triton model {self.model!r} at {self.address} ({what}{self.keypoint_set}, "
                f"{self.paradigm}{detector})")

    def warnings(self, boxes: np.ndarray | None = None) -> list[str]:
        """What a reader of results from a call with these `boxes` must be told (as
        Estimator.warnings)."""
        return result_warnings(self.random_init, self.top_down, boxes,
                               has_detector=bool(self.detector_model))

    @property
    def draw_threshold(self) -> float:
        """As Estimator.draw_threshold: the drawing of a local run and a served one agree."""
        return draw_threshold_for(self.top_down)

    def draw(self, image: np.ndarray, poses: Poses) -> np.ndarray:
        return draw_result(image, poses, random_init=self.random_init, top_down=self.top_down)

    # --- requests -----------------------------------------------------------------------

    def estimate(self, image: np.ndarray | bytes | bytearray | memoryview,
                 boxes: np.ndarray | None = None,
                 box_scores: np.ndarray | None = None) -> Poses:
        """Poses in `image`: a BGR uint8 frame, or the bytes of an encoded image.

        boxes: (N, 4) xywh person boxes in pixels for a top-down model; None runs the
        server's detector, or without one the whole image as one person.
        """
        if self.closed:
            raise InputError(f"this client of {self.address} is closed")
        if not self.top_down and (boxes is not None or box_scores is not None):
            raise InputError(f"boxes do not apply to the bottom-up model {self.model!r}: it "
                             "finds people in the whole frame")
        encoded = image if isinstance(image, (bytes, bytearray, memoryview)) \
            else encode_frame(image)
        tensors = request_tensors(encoded, boxes, box_scores)
        inputs = []
        for name, array in tensors.items():
            tensor = self._module.InferInput(name, list(array.shape),
                                             self._wire_dtype(array.dtype))
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        outputs = [self._module.InferRequestedOutput(name) for name in OUTPUTS]
        result = self._call(f"running model {self.model!r}", self._client.infer, self.model,
                            inputs, outputs=outputs, **self._timeout_keywords())
        return poses_from_tensors({name: result.as_numpy(name) for name in OUTPUTS},
                                  self.keypoint_set)

    __call__ = estimate

    # --- the connection ---------------------------------------------------------------

    def _connect(self) -> Any:
        try:
            if self.address.protocol == "http":
                return self._module.InferenceServerClient(
                    self.address.host_port, connection_timeout=self.timeout_s,
                    network_timeout=self.timeout_s)
            return self._module.InferenceServerClient(self.address.host_port)
        except self._server_error as exc:
            raise BackendError(f"cannot open a Triton client for {self.address}: "
                               f"{_message_of(exc)}") from None

    def _timeout_keywords(self) -> dict[str, float]:
        # The HTTP client takes its timeouts once, at construction; gRPC per call.
        return {"client_timeout": self.timeout_s} if self.address.protocol == "grpc" else {}

    def _call(self, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`function(*args, **kwargs)` with tritonclient's and the socket's failures as
        one-line edgepose errors."""
        try:
            return function(*args, **kwargs)
        except (socket.timeout, TimeoutError):
            raise BackendError(f"the Triton server at {self.address} did not answer within "
                               f"{self.timeout_s:g} s while {what}") from None
        except OSError as exc:
            raise BackendError(self._unreachable(exc)) from None
        except self._server_error as exc:
            message, status = _message_of(exc), _status_of(exc)
            if "unknown model" in message.lower() or "NOT_FOUND" in status:
                named = args[0] if args and isinstance(args[0], str) else self.model
                raise InputError(f"the Triton server at {self.address} has no ready model "
                                 f"{named!r} ({message}); {self._listing()}") from None
            if "UNAVAILABLE" in status:
                raise BackendError(self._unreachable(message)) from None
            if "DEADLINE_EXCEEDED" in status:
                raise BackendError(f"the Triton server at {self.address} did not answer within "
                                   f"{self.timeout_s:g} s while {what}") from None
            raise BackendError(f"the Triton server at {self.address} failed {what}: "
                               f"{message}") from None

    def _unreachable(self, why: object) -> str:
        return (f"cannot reach a Triton server at {self.address} ({why}); is tritonserver "
                f"running there, serving {self.address.protocol} on that port?")

    def _repository_models(self) -> list[str]:
        """The names of the ready models, in the server's order."""
        if self.address.protocol == "grpc":
            index = self._call("listing its models", self._client.get_model_repository_index,
                               as_json=True, client_timeout=self.timeout_s)
            entries = index.get("models", []) if isinstance(index, Mapping) else []
        else:
            entries = self._call("listing its models", self._client.get_model_repository_index)
        return [entry["name"] for entry in entries or ()
                if isinstance(entry, Mapping) and "name" in entry
                and entry.get("state", "READY") == "READY"]

    def _listing(self) -> str:
        try:
            names = self._repository_models()
        except (InputError, BackendError):
            return "its models could not be listed"
        return f"its ready models: {', '.join(names)}" if names else "it has no ready models"

    def _model_config(self, name: str) -> dict[str, Any]:
        if self.address.protocol == "grpc":
            answer = self._call(f"reading the config of {name!r}", self._client.get_model_config,
                                name, as_json=True, client_timeout=self.timeout_s)
            return dict(answer.get("config", {}))
        return dict(self._call(f"reading the config of {name!r}", self._client.get_model_config,
                               name))

    def _find_pose_model(self) -> str:
        names = self._repository_models()
        pose_models = [name for name in names
                       if PARAM_KEYPOINT_SET in config_parameters(self._model_config(name))]
        if len(pose_models) == 1:
            return pose_models[0]
        if not pose_models:
            listed = f"ready models: {', '.join(names)}" if names else "no ready models"
            raise InputError(f"no edgepose pose model on the Triton server at {self.address} "
                             f"({listed}); serve a repository from 'edgepose triton', or name "
                             "the model (--triton-model)")
        raise InputError(f"the Triton server at {self.address} serves several edgepose pose "
                         f"models ({', '.join(pose_models)}); name one (--triton-model)")

    def _read_parameters(self, config: Mapping[str, Any]) -> None:
        parameters = config_parameters(config)
        if PARAM_KEYPOINT_SET not in parameters:
            raise InputError(f"model {self.model!r} on the Triton server at {self.address} is "
                             f"not an edgepose pose model: its config has no "
                             f"{PARAM_KEYPOINT_SET!r} parameter (export it with "
                             "'edgepose triton')")
        self.keypoint_set = parameters[PARAM_KEYPOINT_SET]
        get_keypoint_set(self.keypoint_set)
        self.card: ModelCard | None = None
        if parameters.get(PARAM_CARD):
            try:
                self.card = ModelCard.from_json(parameters[PARAM_CARD])
            except CardError as exc:
                # The card only names the model and flags random weights; poses do not need it.
                _log.debug("the card of Triton model %r is unreadable: %s", self.model, exc)
        paradigm = parameters.get(PARAM_PARADIGM) or (self.card.paradigm if self.card else None)
        if paradigm not in PARADIGMS:
            raise InputError(f"model {self.model!r} on the Triton server at {self.address} has "
                             f"{PARAM_PARADIGM!r} {paradigm!r}; expected one of "
                             f"{', '.join(PARADIGMS)}")
        self.paradigm: str = paradigm
        self.detector_model: str | None = parameters.get(PARAM_DETECTOR) or None

    def _release(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None:
            try:
                client.close()
            except Exception as exc:  # noqa: BLE001 - closing must not hide the real error
                _log.debug("closing the Triton client of %s failed: %r", self.address, exc)


def _message_of(exc: BaseException) -> str:
    message = exc.message() if callable(getattr(exc, "message", None)) else None
    return str(message if message else exc).strip() or type(exc).__name__


def _status_of(exc: BaseException) -> str:
    status = exc.status() if callable(getattr(exc, "status", None)) else None
    return str(status or "")
