"""Buffer planning for engine I/O: pure logic, no CUDA, no TensorRT.

The runner allocates each I/O buffer once, for the largest shape the engine's
optimisation profile admits, and reuses it for every call. This module decides
those sizes, maps TensorRT data types to numpy, and checks a requested input
shape against the profile with a message that gives the engine's range.

Shapes follow TensorRT: a tuple per tensor, -1 marking an axis sized at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from edgepose.errors import InputError, ModelFileError

Shape = tuple[int, ...]

#: TensorRT DataType member name → numpy dtype, for the types numpy can hold.
TENSORRT_TO_NUMPY: Mapping[str, np.dtype] = {
    "FLOAT": np.dtype(np.float32),
    "HALF": np.dtype(np.float16),
    "INT8": np.dtype(np.int8),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
}

#: TensorRT types an engine may declare for I/O that numpy has no dtype for.
NO_NUMPY_TYPE: Mapping[str, str] = {
    "BF16": "bfloat16",
    "FP8": "8-bit float",
    "INT4": "packed 4-bit integers",
    "FP4": "packed 4-bit floats",
    "E8M0": "8-bit exponent-only scales",
}


def numpy_dtype(tensorrt_type: str, tensor: str) -> np.dtype:
    """numpy dtype for a TensorRT DataType name ("FLOAT", "HALF", …) of I/O tensor `tensor`."""
    dtype = TENSORRT_TO_NUMPY.get(tensorrt_type)
    if dtype is not None:
        return dtype
    if tensorrt_type in NO_NUMPY_TYPE:
        raise ModelFileError(
            f"engine tensor {tensor!r} is {tensorrt_type} ({NO_NUMPY_TYPE[tensorrt_type]}), which "
            "numpy cannot hold; rebuild the engine with FP32 or FP16 inputs and outputs "
            "(edgepose's FP16 and INT8 graphs keep their I/O in FP32)"
        )
    raise ModelFileError(f"engine tensor {tensor!r} has TensorRT type {tensorrt_type}, which "
                         f"edgepose does not know; supported: {sorted(TENSORRT_TO_NUMPY)}")


@dataclass(frozen=True)
class ProfileRange:
    """An input's shape range in one optimisation profile (min ≤ opt ≤ max per axis)."""

    min: Shape
    opt: Shape
    max: Shape

    def __post_init__(self) -> None:
        for name in ("min", "opt", "max"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if not len(self.min) == len(self.opt) == len(self.max):
            raise ModelFileError(f"profile shapes differ in rank: min {self.min}, opt {self.opt}, "
                                 f"max {self.max}")
        if any(not 0 <= lo <= hi for lo, hi in zip(self.min, self.max)):
            raise ModelFileError(f"profile range min {self.min} .. max {self.max} is empty")


@dataclass(frozen=True)
class TensorDesc:
    """What the engine says about one I/O tensor.

    shape: the engine's shape, -1 on run-time axes. profile: inputs only; None
    for a static input (its shape is its whole range).
    """

    name: str
    is_input: bool
    dtype: np.dtype
    shape: Shape
    profile: ProfileRange | None = None

    @property
    def max_shape(self) -> Shape:
        """Largest input shape the engine admits (inputs only)."""
        return self.profile.max if self.profile is not None else self.shape


@dataclass(frozen=True)
class BufferPlan:
    """One tensor's buffer: sized once for `max_shape`."""

    name: str
    is_input: bool
    dtype: np.dtype
    max_shape: Shape
    nbytes: int


def nbytes(dtype: np.dtype, shape: Shape) -> int:
    """Bytes of a C-contiguous array of `dtype` and `shape`."""
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def check_input_shape(desc: TensorDesc, shape: Sequence[int]) -> Shape:
    """`shape` as a tuple if the engine admits it for input `desc`; InputError otherwise.

    Axis 0 is the batch: its message says so, with the engine's batch range.
    """
    shape = tuple(int(v) for v in shape)
    low, high = ((desc.profile.min, desc.profile.max) if desc.profile is not None
                 else (desc.shape, desc.shape))
    if len(shape) != len(high):
        raise InputError(f"input {desc.name!r} has shape {shape}; this engine takes "
                         f"{len(high)} axes, shape {_range_text(low, high)}")
    for axis, (value, lo, hi) in enumerate(zip(shape, low, high)):
        if lo <= value <= hi:
            continue
        if axis == 0:
            raise InputError(f"batch {value} is outside this engine's profile {lo}..{hi}; "
                             f"split the batch, or rebuild with 'edgepose build --batch "
                             f"MIN:OPT:MAX'")
        raise InputError(f"input {desc.name!r} axis {axis} is {value}, outside this engine's "
                         f"profile {lo}..{hi} (shape {_range_text(low, high)})")
    return shape


def _range_text(low: Shape, high: Shape) -> str:
    axes = [str(lo) if lo == hi else f"{lo}..{hi}" for lo, hi in zip(low, high)]
    return "(" + ", ".join(axes) + ")"


def plan_buffers(tensors: Sequence[TensorDesc],
                 output_shapes: Callable[[Mapping[str, Shape]], Mapping[str, Shape]]
                 ) -> tuple[BufferPlan, ...]:
    """One BufferPlan per tensor, in `tensors` order, each for its largest shape.

    output_shapes: given every input's max shape, the outputs' shapes — the
    runner answers with the execution context (set_input_shape, then
    get_tensor_shape). Asked only when some output has a run-time axis.
    """
    inputs = {t.name: t.max_shape for t in tensors if t.is_input}
    for name, shape in inputs.items():
        if any(v < 0 for v in shape):
            raise ModelFileError(f"engine input {name!r} has run-time axes {shape} but no "
                                 "optimisation profile; rebuild with 'edgepose build'")
    resolved: Mapping[str, Shape] = {}
    if any(any(v < 0 for v in t.shape) for t in tensors if not t.is_input):
        resolved = {k: tuple(int(v) for v in s) for k, s in output_shapes(inputs).items()}
    plans = []
    for t in tensors:
        shape = inputs[t.name] if t.is_input else tuple(resolved.get(t.name, t.shape))
        if any(v < 0 for v in shape):
            raise ModelFileError(
                f"engine output {t.name!r} has shape {shape} even with every input at its "
                "largest; a data-dependent output shape cannot be planned ahead, and edgepose's "
                "pose models have none — check the ONNX graph"
            )
        plans.append(BufferPlan(t.name, t.is_input, t.dtype, shape, nbytes(t.dtype, shape)))
    return tuple(plans)
