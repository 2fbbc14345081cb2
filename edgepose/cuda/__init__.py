"""CUDA for the TensorRT runner: pinned and device buffers, streams, events, graphs.

Two implementations behind `edgepose.cuda.base.Cuda`: cuda-python (the default;
TensorRT's samples use it and it installs from wheels on Jetson) and pycuda
(when asked for, or when it is all there is). Neither is imported until
`get_cuda` is called.
"""

from __future__ import annotations

from edgepose.cuda.base import (Cuda, DeviceBuffer, DeviceInfo, Event, Graph, HostBuffer,
                                Stream)
from edgepose.errors import InputError, MissingDependencyError

IMPLEMENTATIONS = ("auto", "cuda-python", "pycuda")


def get_cuda(implementation: str = "auto") -> Cuda:
    """A CUDA layer: "cuda-python", "pycuda", or "auto" (cuda-python, else pycuda)."""
    if implementation not in IMPLEMENTATIONS:
        raise InputError(f"CUDA implementation {implementation!r} is unknown; expected one of "
                         f"{IMPLEMENTATIONS}")
    if implementation in ("auto", "cuda-python"):
        from edgepose.cuda.cuda_python import CudaPython

        try:
            return CudaPython()
        except MissingDependencyError:
            if implementation == "cuda-python":
                raise
    from edgepose.cuda.pycuda_impl import PyCuda

    try:
        return PyCuda()
    except MissingDependencyError:
        if implementation == "pycuda":
            raise
    # Neither is there: name cuda-python, the one we recommend installing.
    raise MissingDependencyError("cuda.bindings", "trt", "The CUDA layer (cuda-python or pycuda)")


__all__ = ["IMPLEMENTATIONS", "Cuda", "DeviceBuffer", "DeviceInfo", "Event", "Graph",
           "HostBuffer", "Stream", "get_cuda"]
