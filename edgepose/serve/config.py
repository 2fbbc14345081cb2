"""Triton model configurations as data: the ModelConfig protobuf that Triton itself reads,
written as `config.pbtxt` text and read back to check it.

The message type comes from tritonclient (`tritonclient.grpc.model_config_pb2`, the
'triton' extra), so every field name and enum is Triton's own rather than a hand-kept copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Mapping, Sequence

import numpy as np

from edgepose._optional import import_optional
from edgepose.errors import InputError

#: numpy dtype → Triton data type name (model_config.proto's DataType).
_TRITON_TYPES = {np.dtype(np.float32): "TYPE_FP32", np.dtype(np.float16): "TYPE_FP16",
                 np.dtype(np.float64): "TYPE_FP64", np.dtype(np.int8): "TYPE_INT8",
                 np.dtype(np.uint8): "TYPE_UINT8", np.dtype(np.int32): "TYPE_INT32",
                 np.dtype(np.int64): "TYPE_INT64", np.dtype(np.bool_): "TYPE_BOOL"}


def model_config_proto() -> ModuleType:
    return import_optional("tritonclient.grpc.model_config_pb2", "triton",
                           "Writing Triton model configurations")


def triton_type(dtype: Any) -> str:
    try:
        return _TRITON_TYPES[np.dtype(dtype)]
    except (KeyError, TypeError):
        raise InputError(f"no Triton data type for {dtype!r}; edgepose serves "
                         f"{sorted(str(d) for d in _TRITON_TYPES)}") from None


@dataclass(frozen=True)
class Tensor:
    """One input or output as config.pbtxt states it: dims without the batch axis when
    the model batches (max_batch_size > 0); -1 marks an axis sized per request."""

    name: str
    dtype: Any
    dims: tuple[int, ...]
    optional: bool = False


@dataclass(frozen=True)
class ModelConfig:
    """What edgepose states about one model of a repository.

    platform: "tensorrt_plan" or "onnxruntime_onnx"; backend: "python" (exactly one of
    the two). inputs/outputs: empty lets Triton complete them from the model file
    (TensorRT plans, whose tensors only TensorRT can read). preferred_batch and
    queue_delay_us turn on dynamic batching (max_batch_size > 0). instance_kind
    "KIND_GPU" / "KIND_CPU" / "KIND_AUTO".
    """

    name: str
    max_batch_size: int
    platform: str = ""
    backend: str = ""
    inputs: tuple[Tensor, ...] = ()
    outputs: tuple[Tensor, ...] = ()
    dynamic_batching: bool = False
    preferred_batch: tuple[int, ...] = ()
    queue_delay_us: int = 0
    instance_kind: str = "KIND_AUTO"
    instance_count: int = 1
    parameters: Mapping[str, str] = field(default_factory=dict)
    default_model_filename: str = ""

    def to_proto(self) -> Any:
        proto = model_config_proto()
        if bool(self.platform) == bool(self.backend):
            raise InputError(f"model {self.name!r}: give exactly one of platform and backend")
        message = proto.ModelConfig(name=self.name, max_batch_size=self.max_batch_size)
        if self.platform:
            message.platform = self.platform
        if self.backend:
            message.backend = self.backend
        if self.default_model_filename:
            message.default_model_filename = self.default_model_filename
        for tensors, target in ((self.inputs, message.input), (self.outputs, message.output)):
            for tensor in tensors:
                entry = target.add()
                entry.name = tensor.name
                entry.data_type = proto.DataType.Value(triton_type(tensor.dtype))
                entry.dims.extend(int(d) for d in tensor.dims)
                if tensor.optional:
                    entry.optional = True
        if self.dynamic_batching:
            if self.max_batch_size < 1:
                raise InputError(f"model {self.name!r}: dynamic batching needs max_batch_size "
                                 f"> 0, got {self.max_batch_size}")
            batching = message.dynamic_batching
            batching.SetInParent()
            batching.preferred_batch_size.extend(self.preferred_batch)
            batching.max_queue_delay_microseconds = self.queue_delay_us
        group = message.instance_group.add()
        group.kind = proto.ModelInstanceGroup.Kind.Value(self.instance_kind)
        group.count = self.instance_count
        for key, value in self.parameters.items():
            message.parameters[key].string_value = value
        return message

    def to_text(self) -> str:
        """config.pbtxt, checked by parsing it back into an equal message."""
        from google.protobuf import text_format

        message = self.to_proto()
        text = text_format.MessageToString(message)
        if read_config(text) != message:
            raise InputError(f"model {self.name!r}: its config.pbtxt does not read back as "
                             "written")
        return text


def read_config(text: str) -> Any:
    """A config.pbtxt's ModelConfig message; InputError naming the first bad line."""
    from google.protobuf import text_format

    proto = model_config_proto()
    try:
        return text_format.Parse(text, proto.ModelConfig())
    except text_format.ParseError as exc:
        raise InputError(f"not a Triton model configuration: {exc}") from None


def string_parameters(message: Any) -> dict[str, str]:
    """A ModelConfig message's parameters as {key: string_value}."""
    return {key: value.string_value for key, value in message.parameters.items()}


def dims_of(shape: Sequence[int | None], batched: bool) -> tuple[int, ...]:
    """A runner's TensorSpec shape as config dims: the batch axis left out when batched,
    unknown axes as -1."""
    axes = list(shape[1:] if batched else shape)
    return tuple(-1 if axis is None else int(axis) for axis in axes)
