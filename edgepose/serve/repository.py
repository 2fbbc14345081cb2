"""`edgepose triton`: a Triton Inference Server model repository for a pose model (and
its person detector), laid out as Triton reads it:

    REPO/
      <name>/                 the pose model: Python backend, edgepose's pipeline (BLS)
        config.pbtxt
        1/model.py            imports edgepose.serve.python_models.PoseModel
      <name>_net/             the pose network: tensorrt_plan (1/model.plan),
        config.pbtxt          onnxruntime_onnx (1/model.onnx), or on ONNX Runtime in
        1/…                   the Python backend (1/model.onnx + model.py)
      <name>_detector_net/    the detector's network, likewise (with a detector)
      edgepose_repository.json  what was exported from what, for people and programs

A request to <name> is one encoded image (plus person boxes for a top-down model
without a detector); the answer is the people (edgepose.serve.contract).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgepose import __version__
from edgepose.backends import ENGINE_SUFFIXES, ONNX_SUFFIXES
from edgepose.backends.base import TensorSpec
from edgepose.card import ModelCard
from edgepose.errors import InputError, ModelFileError
from edgepose.keypoints import get_keypoint_set
from edgepose.serve import contract
from edgepose.serve.config import ModelConfig, Tensor, dims_of
from edgepose.serve.python_models import (PARAM_DETECTOR_CARD, PARAM_DETECTOR_NETWORK,
                                          PARAM_NETWORK, network_description)
from edgepose.io import staged_folder
from edgepose.sidecar import read_sidecar, sha256_of_bytes

#: How a network model runs on the server: Triton's TensorRT backend (engines), its
#: onnxruntime backend, or ONNX Runtime inside the Python backend (servers without the
#: onnxruntime backend, such as the nvidia-pytriton one the tests start).
NETWORK_BACKENDS = ("tensorrt", "onnxruntime", "python")
#: max_batch_size for a network whose batch axis is dynamic, unless told otherwise.
DEFAULT_MAX_BATCH = 16
SUMMARY_FILE = "edgepose_repository.json"

_MODEL_PY = '''"""Triton Python-backend model written by `edgepose triton` (edgepose {version}).

Its logic is edgepose.serve.python_models.{cls}; export the repository again rather
than editing this file. python_path.json beside it, where present, lists folders to put
first on sys.path: Triton's Python stub does not inherit a virtual environment.
"""
import json as _json
import os as _os
import sys as _sys

_paths = _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "python_path.json")
if _os.path.exists(_paths):
    with open(_paths) as _file:
        for _path in reversed(_json.load(_file)):
            if _path not in _sys.path:
                _sys.path.insert(0, _path)

from edgepose.serve.python_models import {cls} as TritonPythonModel  # noqa: E402,F401
'''


@dataclass(frozen=True)
class Network:
    """One network file as the repository will serve it."""

    name: str
    source: Path
    backend: str
    card: Any
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    #: Triton's max_batch_size: 0 when the batch axis is fixed (part of dims).
    max_batch_size: int
    preferred_batch: tuple[int, ...] = ()
    tensorrt_version: str | None = None

    @property
    def pipeline_max_batch(self) -> int | None:
        """The most items one BLS call may carry."""
        if self.max_batch_size > 0:
            return self.max_batch_size
        return self.inputs[0].shape[0] if self.inputs and self.inputs[0].shape else None


@dataclass(frozen=True)
class ServingOptions:
    """network_backend: one of NETWORK_BACKENDS or "auto" (TensorRT for engines,
    onnxruntime for ONNX). max_batch: cap on a dynamic batch axis. preferred_batch and
    queue_delay_us: the network models' dynamic batching. network_instances and
    pose_instances: instances of each network model (on the GPU, except Python-backend
    ones) and of the pose model (CPU). python_path: folders the server's Python models
    put first on sys.path (where edgepose and its packages are installed on the server)."""

    network_backend: str = "auto"
    max_batch: int = DEFAULT_MAX_BATCH
    preferred_batch: tuple[int, ...] = ()
    queue_delay_us: int = 100
    network_instances: int = 1
    pose_instances: int = 2
    python_path: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.network_backend not in NETWORK_BACKENDS + ("auto",):
            raise InputError(f"network backend must be one of {('auto',) + NETWORK_BACKENDS}, "
                             f"got {self.network_backend!r}")
        for label, value in (("max batch", self.max_batch), ("network instances",
                                                              self.network_instances),
                             ("pose instances", self.pose_instances)):
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{label} must be a positive integer, got {value!r}")
        if self.queue_delay_us < 0:
            raise InputError(f"queue delay must be 0 or more microseconds, got "
                             f"{self.queue_delay_us}")
        bad = [b for b in self.preferred_batch if b < 1 or b > self.max_batch]
        if bad:
            raise InputError(f"preferred batch sizes {bad} are outside 1..{self.max_batch} "
                             "(the max batch)")


def _backend_for(path: Path, chosen: str) -> str:
    engine = path.suffix.lower() in ENGINE_SUFFIXES
    if not engine and path.suffix.lower() not in ONNX_SUFFIXES:
        raise InputError(f"cannot serve {str(path)!r}: expected an ONNX file "
                         f"({', '.join(ONNX_SUFFIXES)}) or a TensorRT engine "
                         f"({', '.join(ENGINE_SUFFIXES)})")
    if chosen == "auto":
        return "tensorrt" if engine else "onnxruntime"
    if engine != (chosen == "tensorrt"):
        raise InputError(f"the {chosen} network backend does not run {path.name}: TensorRT "
                         "serves engines, onnxruntime and python serve ONNX files")
    return chosen


def _onnx_network(name: str, path: Path, backend: str, card_type: Any,
                  options: ServingOptions) -> Network:
    from edgepose.backends.onnxruntime import OnnxRuntimeRunner
    from edgepose.detect import Detector

    if card_type is ModelCard:
        with OnnxRuntimeRunner(path, card_type=ModelCard) as runner:
            card, inputs, outputs = runner.card, runner.inputs, runner.outputs
    else:
        # A detector may carry no card: the runtime's own guess from the graph, as infer
        # would make it, is written into the repository.
        with Detector.open(path) as detector:
            card = detector.card
            inputs, outputs = detector.runner.inputs, detector.runner.outputs
    batch = inputs[0].shape[0]
    if any(t.shape[0] != batch for t in inputs + outputs):
        raise ModelFileError(f"{path}: its inputs and outputs do not share a batch axis, so "
                             "Triton cannot batch it")
    return Network(name, path, backend, card, inputs, outputs,
                   max_batch_size=options.max_batch if batch is None else 0,
                   preferred_batch=options.preferred_batch)


def _engine_network(name: str, path: Path, card_type: Any, options: ServingOptions) -> Network:
    """An engine's serving facts from its sidecar; the plan itself only TensorRT reads."""
    card, info = read_sidecar(path, card_type)
    digest = sha256_of_bytes(path.read_bytes())
    if digest != info.plan_sha256:
        raise ModelFileError(f"{path}: plan sha256 {digest[:12]}… differs from its sidecar's "
                             f"{info.plan_sha256[:12]}…; rebuild it with 'edgepose build'")
    spec = card.input
    image = ((3, spec.height, spec.width) if spec.layout == "NCHW"
             else (spec.height, spec.width, 3))
    batches = [p[spec.name] for p in info.profiles if spec.name in p]
    low = min((b["min"][0] for b in batches), default=None)
    high = max((b["max"][0] for b in batches), default=None)
    if high is None:
        raise ModelFileError(f"{path}: its sidecar states no optimisation profile for input "
                             f"{spec.name!r}; rebuild it with 'edgepose build'")
    dynamic = low != high
    inputs = (TensorSpec(spec.name, np.dtype(np.float32), (None if dynamic else high, *image)),)
    # Output shapes are in the plan; Triton completes them (and checks the input) on load.
    outputs = tuple(TensorSpec(n, np.dtype(np.float32), (None,)) for n in card.output_names)
    preferred = options.preferred_batch or tuple(
        sorted({b["opt"][0] for b in batches if low <= b["opt"][0] <= high}))
    return Network(name, path, "tensorrt", card, inputs, outputs,
                   max_batch_size=min(high, options.max_batch) if dynamic else 0,
                   preferred_batch=preferred, tensorrt_version=info.tensorrt_version)


def plan_network(name: str, path: str | Path, card_type: Any,
                 options: ServingOptions) -> Network:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file {str(path)!r} does not exist")
    backend = _backend_for(path, options.network_backend)
    if backend == "tensorrt":
        return _engine_network(name, path, card_type, options)
    return _onnx_network(name, path, backend, card_type, options)


def network_config(network: Network, options: ServingOptions) -> ModelConfig:
    batched = network.max_batch_size > 0
    tensors = [tuple(Tensor(t.name, t.dtype, dims_of(t.shape, batched)) for t in group)
               for group in (network.inputs, network.outputs)]
    common = dict(name=network.name, max_batch_size=network.max_batch_size,
                  dynamic_batching=batched, preferred_batch=network.preferred_batch,
                  queue_delay_us=options.queue_delay_us,
                  instance_count=options.network_instances)
    if network.backend == "tensorrt":
        return ModelConfig(platform="tensorrt_plan", instance_kind="KIND_GPU", **common)
    if network.backend == "onnxruntime":
        return ModelConfig(platform="onnxruntime_onnx", inputs=tensors[0], outputs=tensors[1],
                           instance_kind="KIND_AUTO", **common)
    return ModelConfig(backend="python", inputs=tensors[0], outputs=tensors[1],
                       instance_kind="KIND_CPU", **common)


def pose_config(name: str, pose: Network, detector: Network | None,
                instances: int = 1) -> ModelConfig:
    keypoint_set = pose.card.keypoints
    count = get_keypoint_set(keypoint_set).num_keypoints
    f32 = np.float32
    params = {contract.PARAM_KEYPOINT_SET: keypoint_set, contract.PARAM_CARD: pose.card.to_json(indent=None),
              contract.PARAM_PARADIGM: pose.card.paradigm,
              PARAM_NETWORK: network_description(pose.name, pose.inputs, pose.outputs,
                                                 pose.pipeline_max_batch)}
    if detector is not None:
        params[contract.PARAM_DETECTOR] = detector.name
        params[PARAM_DETECTOR_NETWORK] = network_description(
            detector.name, detector.inputs, detector.outputs, detector.pipeline_max_batch)
        params[PARAM_DETECTOR_CARD] = detector.card.to_json(indent=None)
    return ModelConfig(
        name=name, max_batch_size=0, backend="python", instance_kind="KIND_CPU",
        instance_count=instances,
        inputs=(Tensor(contract.IMAGE, np.uint8, (-1,)),
                Tensor(contract.BOXES, f32, (-1, 4), optional=True),
                Tensor(contract.BOX_SCORES, f32, (-1,), optional=True)),
        outputs=(Tensor(contract.KEYPOINTS, f32, (-1, count, 2)),
                 Tensor(contract.KEYPOINT_SCORES, f32, (-1, count)),
                 Tensor(contract.PERSON_SCORES, f32, (-1,)),
                 Tensor(contract.PERSON_BOXES, f32, (-1, 4))),
        parameters=params)


@dataclass(frozen=True)
class ExportedRepository:
    path: Path
    pose_model: str
    models: tuple[str, ...]
    summary: dict[str, Any]

    def describe(self) -> str:
        lines = [f"wrote the Triton model repository {self.path}: models "
                 f"{', '.join(self.models)}; send images to {self.pose_model!r}"]
        for model in self.summary["networks"]:
            lines.append(f"  {model['name']}: {model['backend']} from {model['source']}, "
                         f"max_batch_size {model['max_batch_size']}")
        return "\n".join(lines)


def _write_model(folder: Path, config: ModelConfig, files: Sequence[tuple[str, Path | str]],
                 python_class: str | None, python_path: Sequence[str]) -> None:
    version = folder / "1"
    version.mkdir(parents=True)
    (folder / "config.pbtxt").write_text(config.to_text())
    for filename, source in files:
        shutil.copyfile(source, version / filename)
    if python_class is not None:
        (version / "model.py").write_text(_MODEL_PY.format(version=__version__, cls=python_class))
        if python_path:
            (version / "python_path.json").write_text(json.dumps(list(python_path), indent=1))


def _network_files(network: Network) -> list[tuple[str, Path]]:
    if network.backend == "tensorrt":
        return [("model.plan", network.source)]
    return [("model.onnx", network.source)]


def export_repository(model: str | Path, out: str | Path, *, detector: str | Path | None = None,
                      name: str | None = None,
                      options: ServingOptions = ServingOptions()) -> ExportedRepository:
    """Write the repository for `model` (and `detector`) as the folder `out`, which must
    not exist yet; nothing is left behind on failure (edgepose.io.staged_folder)."""
    from edgepose.detect.card import DetectorCard

    out = Path(out)
    # The Python stub's working folder is not the caller's: relative folders become absolute.
    options = dataclasses.replace(options, python_path=tuple(
        str(Path(p).expanduser().absolute()) for p in options.python_path))
    name = name or Path(model).stem
    if not name.replace("_", "").replace("-", "").isalnum():
        raise InputError(f"model name {name!r}: use letters, digits, '_' and '-'")
    with staged_folder(out) as scratch:
        pose = plan_network(f"{name}_net", model, ModelCard, options)
        if pose.card.paradigm != "top-down" and detector is not None:
            raise InputError(f"a person detector does not apply to the bottom-up model "
                             f"{Path(model).name}: it finds people in the whole frame")
        found = (None if detector is None
                 else plan_network(f"{name}_detector_net", detector, DetectorCard, options))
        networks = [n for n in (pose, found) if n is not None]
        for network in networks:
            python = "OnnxNetworkModel" if network.backend == "python" else None
            _write_model(scratch / network.name, network_config(network, options),
                         _network_files(network), python, options.python_path)
        _write_model(scratch / name, pose_config(name, pose, found, options.pose_instances),
                     [], "PoseModel", options.python_path)
        summary = {
            "edgepose": __version__, "pose_model": name,
            "keypoint_set": pose.card.keypoints, "paradigm": pose.card.paradigm,
            "inputs": list(contract.INPUTS), "outputs": list(contract.OUTPUTS),
            "networks": [{"name": n.name, "backend": n.backend, "source": str(n.source),
                          "max_batch_size": n.max_batch_size,
                          "preferred_batch": list(n.preferred_batch),
                          "tensorrt_version": n.tensorrt_version} for n in networks],
            "python_path": list(options.python_path)}
        (scratch / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return ExportedRepository(out, name, tuple([name] + [n.name for n in networks]), summary)
