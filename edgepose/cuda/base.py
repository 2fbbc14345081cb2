"""The CUDA layer's one small interface, shared by the cuda-python and pycuda implementations.

Only what the TensorRT runner needs: device facts, streams, events, pinned host
buffers (mapped for zero-copy on integrated GPUs), device buffers, async copies,
stream capture into CUDA graphs. Every resource is a context manager whose
`close()` frees it once and is safe to call again. Every failed CUDA call raises
`CudaError` naming the call and the CUDA error name.

Nothing here imports a CUDA binding; the implementations do, lazily.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from edgepose._closing import Closeable
from edgepose.errors import CudaError


@dataclass(frozen=True)
class DeviceInfo:
    """What the runtime needs to know about one GPU.

    compute_capability: "major.minor", the form the engine sidecar records.
    integrated: the GPU shares the host's memory (Jetson); pinned host memory
        mapped into the device's address space then needs no copies at all.
    """

    index: int
    name: str
    compute_capability: str
    integrated: bool
    can_map_host_memory: bool

    @property
    def zero_copy(self) -> bool:
        """True where engine I/O should live in mapped pinned host memory (integrated GPUs)."""
        return self.integrated and self.can_map_host_memory


class Resource(Closeable, abc.ABC):
    """A CUDA object freed by `close()`, once; also on garbage collection, best effort."""

    @abc.abstractmethod
    def _release(self) -> None:
        """Release the CUDA object; called once."""


class Stream(Resource):
    """A CUDA stream. `handle` is the raw cudaStream_t as an int (what TensorRT takes)."""

    handle: int

    @abc.abstractmethod
    def synchronize(self) -> None:
        """Block until all work queued on this stream has finished."""


class Event(Resource):
    """A CUDA event for timing work on a stream."""

    @abc.abstractmethod
    def record(self, stream: Stream) -> None: ...

    @abc.abstractmethod
    def synchronize(self) -> None: ...

    @abc.abstractmethod
    def elapsed_ms(self, start: "Event") -> float:
        """Milliseconds from `start` to this event; both must have completed."""


class HostBuffer(Resource):
    """Page-locked host memory seen as a flat uint8 numpy array.

    ptr: host address. device_ptr: the address kernels use to reach the same
    memory when the buffer was allocated mapped, else None. Arrays obtained from
    `array` or `view` are invalid once the buffer is closed.
    """

    nbytes: int
    ptr: int
    device_ptr: int | None
    array: np.ndarray

    def view(self, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """The first bytes of the buffer as an array of `shape` (no copy)."""
        dtype = np.dtype(dtype)
        count = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if count > self.nbytes:
            raise ValueError(f"a {dtype} view of shape {shape} needs {count} bytes; "
                             f"this buffer has {self.nbytes}")
        return self.array[:count].view(dtype).reshape(shape)


class DeviceBuffer(Resource):
    """Device memory; `ptr` is its address as an int."""

    nbytes: int
    ptr: int


class Graph(Resource):
    """An instantiated CUDA graph captured from a stream."""

    @abc.abstractmethod
    def launch(self, stream: Stream) -> None: ...


class Cuda(Resource):
    """One CUDA implementation; create resources through it, on the current device."""

    #: "cuda-python" or "pycuda", for messages and logs
    name: ClassVar[str]

    @abc.abstractmethod
    def device_count(self) -> int:
        """Visible CUDA devices; 0 (not an error) where there is no GPU or no driver."""

    @abc.abstractmethod
    def device(self, index: int = 0) -> DeviceInfo: ...

    #: why device_count() returned 0, in the binding's words, for require_device's message
    no_device_reason: str = ""

    def require_device(self, index: int = 0) -> DeviceInfo:
        """DeviceInfo of GPU `index`, or CudaError saying there is none.

        Call this before creating a TensorRT runtime: without a device TensorRT
        crashes the process while deserialising instead of raising.
        """
        count = self.device_count()
        if count == 0:
            reason = f" ({self.no_device_reason})" if self.no_device_reason else ""
            raise CudaError(
                f"no CUDA device is visible{reason}; TensorRT engines need an NVIDIA GPU "
                "and its driver. Check nvidia-smi and CUDA_VISIBLE_DEVICES, or run the "
                ".onnx model with ONNX Runtime on the CPU"
            )
        if not 0 <= index < count:
            raise CudaError(f"CUDA device {index} does not exist; {count} device(s) are visible")
        return self.device(index)

    @abc.abstractmethod
    def stream(self) -> Stream:
        """A new stream that does not synchronise with the legacy default stream."""

    @abc.abstractmethod
    def event(self) -> Event: ...

    @abc.abstractmethod
    def host_buffer(self, nbytes: int, *, mapped: bool = False) -> HostBuffer:
        """Pinned host memory; `mapped` also maps it into the device's address space."""

    @abc.abstractmethod
    def device_buffer(self, nbytes: int) -> DeviceBuffer: ...

    @abc.abstractmethod
    def copy_htod_async(self, dst: DeviceBuffer, src: HostBuffer, nbytes: int,
                        stream: Stream) -> None:
        """Queue a copy of the first `nbytes` of `src` to `dst` on `stream`."""

    @abc.abstractmethod
    def copy_dtoh_async(self, dst: HostBuffer, src: DeviceBuffer, nbytes: int,
                        stream: Stream) -> None:
        """Queue a copy of the first `nbytes` of `src` to `dst` on `stream`."""

    @abc.abstractmethod
    def begin_capture(self, stream: Stream) -> None:
        """Start recording the work queued on `stream` instead of running it."""

    @abc.abstractmethod
    def end_capture(self, stream: Stream) -> Graph:
        """Stop recording and instantiate what was recorded as a launchable graph."""

    @abc.abstractmethod
    def synchronize(self) -> None:
        """Block until all work on the device has finished."""

    def _release(self) -> None:
        """Most implementations own nothing beyond the resources they hand out."""


def checked_nbytes(nbytes: int, what: str) -> int:
    """Allocation sizes are positive ints; a zero-sized tensor still gets one byte."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or nbytes < 0:
        raise ValueError(f"{what} size must be a non-negative integer, got {nbytes!r}")
    return max(int(nbytes), 1)
