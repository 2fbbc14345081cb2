"""The Triton Python-backend models of a repository written by `edgepose triton`.

Each model.py there is three lines that import one class from here, so the logic is
edgepose's own, tested here, and upgraded with the package:

- PoseModel: one encoded image (and optional person boxes) in, people out. It runs
  edgepose's own pipeline — detector, crops or letterbox, decoding, grouping — and sends
  each network call to the repository's network models through BLS (Triton's
  Business Logic Scripting), so its results equal `edgepose infer` on the same image.
- OnnxNetworkModel: a network on ONNX Runtime inside the Python backend, for servers
  without Triton's onnxruntime backend (the nvidia-pytriton server the tests start).

`triton_python_backend_utils` exists only inside Triton's Python stub; it is imported
when a model initialises, and tests put a stand-in in sys.modules.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from edgepose.backends.base import RunnerBase, TensorSpec
from edgepose.errors import BackendError, EdgeposeError, InputError
from edgepose.serve import contract

#: Pose-model parameters naming a network model and what the pipeline needs of it.
PARAM_NETWORK = "edgepose_network"          # JSON: network_description()
PARAM_DETECTOR_NETWORK = "edgepose_detector_network"
PARAM_DETECTOR_CARD = "edgepose_detector_card"


def _pb_utils() -> Any:
    return importlib.import_module("triton_python_backend_utils")


def network_description(model: str, inputs: Sequence[TensorSpec],
                        outputs: Sequence[TensorSpec], max_batch: int | None) -> str:
    """What the pose model must know of a network model, as a config parameter."""
    def specs(tensors: Sequence[TensorSpec]) -> list[dict[str, Any]]:
        return [{"name": t.name, "dtype": np.dtype(t.dtype).name, "shape": list(t.shape)}
                for t in tensors]
    return json.dumps({"model": model, "inputs": specs(inputs), "outputs": specs(outputs),
                       "max_batch": max_batch}, sort_keys=True)


def _specs(entries: Sequence[Mapping[str, Any]]) -> tuple[TensorSpec, ...]:
    return tuple(TensorSpec(e["name"], np.dtype(e["dtype"]), tuple(e["shape"])) for e in entries)


class BlsRunner(RunnerBase):
    """A Runner whose `infer` is a BLS request to another model of the same server."""

    def __init__(self, pb_utils: Any, description: str, card: Any) -> None:
        data = json.loads(description)
        self._pb = pb_utils
        self.model = data["model"]
        self.path = f"Triton model {self.model!r}"
        self.card = card
        self.inputs = _specs(data["inputs"])
        self.outputs = _specs(data["outputs"])
        self.max_batch = data["max_batch"]
        self.metadata: dict[str, str] = {}
        self._output_names = [t.name for t in self.outputs]

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._require_open()
        pb = self._pb
        request = pb.InferenceRequest(
            model_name=self.model, requested_output_names=self._output_names,
            inputs=[pb.Tensor(name, np.ascontiguousarray(array)) for name, array in feeds.items()])
        response = request.exec()
        if response.has_error():
            raise BackendError(f"{self.path} failed: {response.error().message()}")
        return {name: pb.get_output_tensor_by_name(response, name).as_numpy()
                for name in self._output_names}


def _parameters(args: Mapping[str, str]) -> dict[str, str]:
    return contract.config_parameters(json.loads(args["model_config"]))


def _version_folder(args: Mapping[str, str]) -> Path:
    return Path(args["model_repository"]) / str(args["model_version"])


class PoseModel:
    """TritonPythonModel of the pose model (see the module docstring)."""

    def initialize(self, args: Mapping[str, str]) -> None:
        from edgepose.api import Estimator
        from edgepose.card import ModelCard
        from edgepose.detect import Detector
        from edgepose.detect.card import DetectorCard
        from edgepose.pipeline import pipeline_for

        self._pb = _pb_utils()
        params = _parameters(args)
        card = ModelCard.from_json(params[contract.PARAM_CARD])
        runner = BlsRunner(self._pb, params[PARAM_NETWORK], card)
        detector = None
        if params.get(PARAM_DETECTOR_NETWORK):
            detector_card = DetectorCard.from_json(params[PARAM_DETECTOR_CARD])
            detector_runner = BlsRunner(self._pb, params[PARAM_DETECTOR_NETWORK], detector_card)
            detector = Detector(detector_runner, detector_card,
                                f"detector {detector_runner.model}: {detector_card.describe()}")
        self.estimator = Estimator(pipeline_for(runner), detector)

    def execute(self, requests: Sequence[Any]) -> list[Any]:
        pb = self._pb
        responses = []
        for request in requests:
            try:
                tensors = self.answer({name: _input(pb, request, name) for name in contract.INPUTS})
                responses.append(pb.InferenceResponse(
                    output_tensors=[pb.Tensor(name, array) for name, array in tensors.items()]))
            except EdgeposeError as exc:
                responses.append(pb.InferenceResponse(output_tensors=[],
                                                      error=pb.TritonError(str(exc))))
        return responses

    def answer(self, inputs: Mapping[str, np.ndarray | None]) -> dict[str, np.ndarray]:
        """The outputs for one request's inputs (None where an optional one is absent)."""
        import cv2

        encoded = inputs[contract.IMAGE]
        if encoded is None or encoded.size == 0:
            raise InputError(f"{contract.IMAGE} is empty; send the bytes of an encoded image")
        image = cv2.imdecode(np.ascontiguousarray(encoded, dtype=np.uint8).reshape(-1),
                             cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(f"{contract.IMAGE} ({encoded.size} bytes) is not an image OpenCV "
                             "can decode; send JPEG or PNG bytes")
        poses = self.estimator(image, inputs.get(contract.BOXES),
                               inputs.get(contract.BOX_SCORES))
        return contract.poses_to_tensors(poses)

    def finalize(self) -> None:
        self.estimator.close()


def _input(pb: Any, request: Any, name: str) -> np.ndarray | None:
    tensor = pb.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()


class OnnxNetworkModel:
    """TritonPythonModel running `model.onnx` of its version folder on ONNX Runtime.

    Dynamic batching hands it several requests at once: they run as one batch (as
    Triton's onnxruntime backend does) and the outputs are split back by request.
    """

    def initialize(self, args: Mapping[str, str]) -> None:
        from edgepose.backends.onnxruntime import OnnxRuntimeRunner

        self._pb = _pb_utils()
        self.runner = OnnxRuntimeRunner(_version_folder(args) / "model.onnx", card_type=None)
        self._inputs = [t.name for t in self.runner.inputs]

    def execute(self, requests: Sequence[Any]) -> list[Any]:
        pb = self._pb
        try:
            feeds = [{name: _input(pb, request, name) for name in self._inputs}
                     for request in requests]
            answers = self.run(feeds)
        except EdgeposeError as exc:
            return [pb.InferenceResponse(output_tensors=[], error=pb.TritonError(str(exc)))
                    for _ in requests]
        return [pb.InferenceResponse(output_tensors=[pb.Tensor(name, array)
                                                     for name, array in answer.items()])
                for answer in answers]

    def run(self, feeds: Sequence[Mapping[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """Each request's outputs, from one run over the requests' batches together."""
        sizes = [len(next(iter(feed.values()))) for feed in feeds]
        joined = {name: np.concatenate([feed[name] for feed in feeds]) if len(feeds) > 1
                  else feeds[0][name] for name in self._inputs}
        outputs = self.runner.infer(joined)
        ends = np.cumsum(sizes)
        return [{name: array[end - size:end] for name, array in outputs.items()}
                for size, end in zip(sizes, ends)]

    def finalize(self) -> None:
        self.runner.close()
