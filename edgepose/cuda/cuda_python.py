"""The CUDA layer on cuda-python's runtime bindings (`cuda.bindings.runtime`), the default.

TensorRT's own samples moved to cuda-python, and it installs from wheels on
Jetson where pycuda must be compiled. Each binding call returns a tuple whose
first item is a cudaError_t; `_call` turns a failure into CudaError.
"""

from __future__ import annotations

import ctypes
from types import ModuleType
from typing import Any

import numpy as np

from edgepose import _optional
from edgepose.cuda.base import (Cuda, DeviceBuffer, DeviceInfo, Event, Graph, HostBuffer,
                                Stream, checked_nbytes)
from edgepose.errors import CudaError


def _error_name(rt: ModuleType, error: Any) -> str:
    name = getattr(error, "name", None)
    if isinstance(name, str):
        return name
    try:
        _, raw = rt.cudaGetErrorName(error)
        return raw.decode() if isinstance(raw, bytes) else str(raw)
    except Exception:  # noqa: BLE001 - the name is only for the message
        return f"cudaError {int(error)}"


def _call(rt: ModuleType, call: str, *args: Any) -> Any:
    """Run rt.<call>(*args); CudaError on failure, else the result without the status."""
    result = getattr(rt, call)(*args)
    error, values = result[0], result[1:]
    if int(error) != 0:  # cudaSuccess
        raise CudaError(f"{call} failed: {_error_name(rt, error)}")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


class _Stream(Stream):
    def __init__(self, rt: ModuleType) -> None:
        self._rt = rt
        self.raw = _call(rt, "cudaStreamCreateWithFlags", rt.cudaStreamNonBlocking)
        self.handle = int(self.raw)

    def synchronize(self) -> None:
        _call(self._rt, "cudaStreamSynchronize", self.raw)

    def _release(self) -> None:
        _call(self._rt, "cudaStreamDestroy", self.raw)


class _Event(Event):
    def __init__(self, rt: ModuleType) -> None:
        self._rt = rt
        self.raw = _call(rt, "cudaEventCreate")

    def record(self, stream: Stream) -> None:
        _call(self._rt, "cudaEventRecord", self.raw, stream.raw)

    def synchronize(self) -> None:
        _call(self._rt, "cudaEventSynchronize", self.raw)

    def elapsed_ms(self, start: Event) -> float:
        return float(_call(self._rt, "cudaEventElapsedTime", start.raw, self.raw))

    def _release(self) -> None:
        _call(self._rt, "cudaEventDestroy", self.raw)


class _HostBuffer(HostBuffer):
    def __init__(self, rt: ModuleType, nbytes: int, mapped: bool) -> None:
        self._rt = rt
        self.nbytes = checked_nbytes(nbytes, "host buffer")
        flags = rt.cudaHostAllocMapped if mapped else rt.cudaHostAllocDefault
        self.ptr = int(_call(rt, "cudaHostAlloc", self.nbytes, flags))
        try:
            self.device_ptr = (int(_call(rt, "cudaHostGetDevicePointer", self.ptr, 0))
                               if mapped else None)
        except CudaError:
            _call(rt, "cudaFreeHost", self.ptr)
            raise
        # A ctypes array over the pinned pages gives numpy a writable buffer without a copy.
        self.array = np.frombuffer((ctypes.c_ubyte * self.nbytes).from_address(self.ptr),
                                   dtype=np.uint8)

    def _release(self) -> None:
        self.array = np.empty(0, np.uint8)
        _call(self._rt, "cudaFreeHost", self.ptr)


class _DeviceBuffer(DeviceBuffer):
    def __init__(self, rt: ModuleType, nbytes: int) -> None:
        self._rt = rt
        self.nbytes = checked_nbytes(nbytes, "device buffer")
        self.ptr = int(_call(rt, "cudaMalloc", self.nbytes))

    def _release(self) -> None:
        _call(self._rt, "cudaFree", self.ptr)


class _Graph(Graph):
    def __init__(self, rt: ModuleType, graph: Any) -> None:
        self._rt = rt
        self._graph = graph
        try:
            self._exec = _call(rt, "cudaGraphInstantiate", graph, 0)
        except CudaError:
            _call(rt, "cudaGraphDestroy", graph)
            raise

    def launch(self, stream: Stream) -> None:
        _call(self._rt, "cudaGraphLaunch", self._exec, stream.raw)

    def _release(self) -> None:
        try:
            _call(self._rt, "cudaGraphExecDestroy", self._exec)
        finally:
            _call(self._rt, "cudaGraphDestroy", self._graph)


class CudaPython(Cuda):
    """cuda-python implementation; uses the device's primary context, as TensorRT does."""

    name = "cuda-python"

    def __init__(self) -> None:
        self._rt = _optional.cuda_runtime()

    def device_count(self) -> int:
        error, count = self._rt.cudaGetDeviceCount()
        if int(error) == 0:
            if count == 0:
                self.no_device_reason = "cudaGetDeviceCount found 0 devices"
            return int(count)
        name = _error_name(self._rt, error)
        # Both mean "no usable GPU here", which callers report; anything else is a fault.
        if name in ("cudaErrorNoDevice", "cudaErrorInsufficientDriver"):
            self.no_device_reason = f"cudaGetDeviceCount failed: {name}"
            return 0
        raise CudaError(f"cudaGetDeviceCount failed: {name}")

    def device(self, index: int = 0) -> DeviceInfo:
        rt = self._rt
        attr = rt.cudaDeviceAttr

        def get(which: str) -> int:
            return int(_call(rt, "cudaDeviceGetAttribute", getattr(attr, which), index))

        properties = _call(rt, "cudaGetDeviceProperties", index)
        name = properties.name
        if isinstance(name, bytes):
            name = name.split(b"\0", 1)[0].decode(errors="replace")
        major = get("cudaDevAttrComputeCapabilityMajor")
        minor = get("cudaDevAttrComputeCapabilityMinor")
        return DeviceInfo(index=index, name=str(name), compute_capability=f"{major}.{minor}",
                          integrated=bool(get("cudaDevAttrIntegrated")),
                          can_map_host_memory=bool(get("cudaDevAttrCanMapHostMemory")))

    def stream(self) -> Stream:
        return _Stream(self._rt)

    def event(self) -> Event:
        return _Event(self._rt)

    def host_buffer(self, nbytes: int, *, mapped: bool = False) -> HostBuffer:
        return _HostBuffer(self._rt, nbytes, mapped)

    def device_buffer(self, nbytes: int) -> DeviceBuffer:
        return _DeviceBuffer(self._rt, nbytes)

    def copy_htod_async(self, dst: DeviceBuffer, src: HostBuffer, nbytes: int,
                        stream: Stream) -> None:
        _call(self._rt, "cudaMemcpyAsync", dst.ptr, src.ptr, nbytes,
              self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream.raw)

    def copy_dtoh_async(self, dst: HostBuffer, src: DeviceBuffer, nbytes: int,
                        stream: Stream) -> None:
        _call(self._rt, "cudaMemcpyAsync", dst.ptr, src.ptr, nbytes,
              self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream.raw)

    def begin_capture(self, stream: Stream) -> None:
        # Global mode, as TensorRT's CUDA-graph example uses: unsafe calls from any
        # thread during capture fail loudly instead of corrupting the graph.
        _call(self._rt, "cudaStreamBeginCapture", stream.raw,
              self._rt.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal)

    def end_capture(self, stream: Stream) -> Graph:
        graph = _call(self._rt, "cudaStreamEndCapture", stream.raw)
        return _Graph(self._rt, graph)

    def synchronize(self) -> None:
        _call(self._rt, "cudaDeviceSynchronize")
