"""The CUDA layer on pycuda, for users who ask for it or have nothing else.

pycuda has no stream-capture API (as of 2026.1), so graphs go through the CUDA
driver library with ctypes, on the stream handles pycuda hands out. pycuda's
errors carry the driver call and the error text ("cuMemAlloc failed: out of
memory"); they become CudaError naming our call too.

pycuda needs a current context on the calling thread. This implementation
retains the device's primary context (the one the CUDA runtime, and so
TensorRT, uses) and makes it current on every thread that calls it, once per
thread: a pipelined stream runs its models on worker threads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from types import ModuleType
from typing import Any, Callable

import numpy as np

from edgepose import _optional
from edgepose.cuda.base import (Cuda, DeviceBuffer, DeviceInfo, Event, Graph, HostBuffer,
                                Stream, checked_nbytes)
from edgepose.errors import CudaError

_CU_STREAM_NON_BLOCKING = 1
_CU_STREAM_CAPTURE_MODE_GLOBAL = 0


def _call(drv: ModuleType, call: str, function: Callable[..., Any], *args: Any,
          **kwargs: Any) -> Any:
    try:
        return function(*args, **kwargs)
    except drv.Error as exc:
        raise CudaError(f"{call} failed: {exc}") from None


class _Driver:
    """The few driver entry points pycuda lacks, from libcuda via ctypes."""

    def __init__(self) -> None:
        path = ctypes.util.find_library("cuda") or "libcuda.so.1"
        try:
            self._lib = ctypes.CDLL(path)
        except OSError as exc:
            raise CudaError(f"loading the CUDA driver library {path} failed: {exc}") from None
        lib = self._lib
        handle = ctypes.c_void_p
        signatures = {
            "cuStreamBeginCapture_v2": [handle, ctypes.c_int],
            "cuStreamEndCapture": [handle, ctypes.POINTER(handle)],
            "cuGraphInstantiateWithFlags": [ctypes.POINTER(handle), handle, ctypes.c_ulonglong],
            "cuGraphLaunch": [handle, handle],
            "cuGraphExecDestroy": [handle],
            "cuGraphDestroy": [handle],
            "cuGetErrorName": [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)],
        }
        for name, argtypes in signatures.items():
            function = getattr(lib, name)
            function.argtypes = argtypes
            function.restype = ctypes.c_int

    def check(self, call: str, status: int) -> None:
        if status != 0:  # CUDA_SUCCESS
            text = ctypes.c_char_p()
            self._lib.cuGetErrorName(status, ctypes.byref(text))
            name = text.value.decode() if text.value else f"CUresult {status}"
            raise CudaError(f"{call} failed: {name}")

    def begin_capture(self, stream: int) -> None:
        self.check("cuStreamBeginCapture",
                   self._lib.cuStreamBeginCapture_v2(stream, _CU_STREAM_CAPTURE_MODE_GLOBAL))

    def end_capture(self, stream: int) -> int:
        graph = ctypes.c_void_p()
        self.check("cuStreamEndCapture", self._lib.cuStreamEndCapture(stream, ctypes.byref(graph)))
        return graph.value or 0

    def instantiate(self, graph: int) -> int:
        executable = ctypes.c_void_p()
        self.check("cuGraphInstantiateWithFlags",
                   self._lib.cuGraphInstantiateWithFlags(ctypes.byref(executable), graph, 0))
        return executable.value or 0

    def launch(self, executable: int, stream: int) -> None:
        self.check("cuGraphLaunch", self._lib.cuGraphLaunch(executable, stream))

    def destroy(self, graph: int, executable: int | None) -> None:
        try:
            if executable:
                self.check("cuGraphExecDestroy", self._lib.cuGraphExecDestroy(executable))
        finally:
            self.check("cuGraphDestroy", self._lib.cuGraphDestroy(graph))


class _Stream(Stream):
    def __init__(self, drv: ModuleType, current: Callable[[], None]) -> None:
        self._drv = drv
        self._current = current     # the context made current on the calling thread
        self.raw = _call(drv, "Stream", drv.Stream, flags=_CU_STREAM_NON_BLOCKING)
        self.handle = int(self.raw.handle)

    def synchronize(self) -> None:
        self._current()
        _call(self._drv, "Stream.synchronize", self.raw.synchronize)

    def _release(self) -> None:
        self.raw = None  # pycuda destroys the stream when its object goes


class _Event(Event):
    def __init__(self, drv: ModuleType, current: Callable[[], None]) -> None:
        self._drv = drv
        self._current = current
        self.raw = _call(drv, "Event", drv.Event)

    def record(self, stream: Stream) -> None:
        self._current()
        _call(self._drv, "Event.record", self.raw.record, stream.raw)

    def synchronize(self) -> None:
        self._current()
        _call(self._drv, "Event.synchronize", self.raw.synchronize)

    def elapsed_ms(self, start: Event) -> float:
        # pycuda: end.time_since(start) is the time from start to end in milliseconds.
        return float(_call(self._drv, "Event.time_since", self.raw.time_since, start.raw))

    def _release(self) -> None:
        self.raw = None


class _HostBuffer(HostBuffer):
    def __init__(self, drv: ModuleType, nbytes: int, mapped: bool) -> None:
        self._drv = drv
        self.nbytes = checked_nbytes(nbytes, "host buffer")
        flags = drv.host_alloc_flags.DEVICEMAP if mapped else 0
        self.array = _call(drv, "pagelocked_empty", drv.pagelocked_empty, self.nbytes, np.uint8,
                           mem_flags=flags)
        self.ptr = int(self.array.ctypes.data)
        self.device_ptr = (int(_call(drv, "HostAllocation.get_device_pointer",
                                     self.array.base.get_device_pointer))
                           if mapped else None)

    def _release(self) -> None:
        allocation = self.array.base
        self.array = np.empty(0, np.uint8)
        _call(self._drv, "HostAllocation.free", allocation.free)


class _DeviceBuffer(DeviceBuffer):
    def __init__(self, drv: ModuleType, nbytes: int) -> None:
        self._drv = drv
        self.nbytes = checked_nbytes(nbytes, "device buffer")
        self._allocation = _call(drv, "mem_alloc", drv.mem_alloc, self.nbytes)
        self.ptr = int(self._allocation)

    def _release(self) -> None:
        _call(self._drv, "DeviceAllocation.free", self._allocation.free)


class _Graph(Graph):
    def __init__(self, driver: _Driver, graph: int) -> None:
        self._driver = driver
        self._graph = graph
        self._exec: int | None = None
        try:
            self._exec = driver.instantiate(graph)
        except CudaError:
            driver.destroy(graph, None)
            raise

    def launch(self, stream: Stream) -> None:
        self._driver.launch(self._exec, stream.handle)

    def _release(self) -> None:
        self._driver.destroy(self._graph, self._exec)


class PyCuda(Cuda):
    """pycuda implementation on the primary context of device `device_index`."""

    name = "pycuda"

    def __init__(self, device_index: int = 0) -> None:
        self._drv = _optional.pycuda_driver()
        self._device_index = device_index
        self._context: Any = None
        self._driver: _Driver | None = None
        self._initialised = False
        self._threads = threading.local()
        self._lock = threading.Lock()

    def _init(self) -> bool:
        """cuInit once; False (with the reason kept) where there is no usable GPU."""
        if not self._initialised:
            try:
                self._drv.init()
            except self._drv.Error as exc:
                self.no_device_reason = f"cuInit failed: {exc}"
                return False
            self._initialised = True
        return True

    def _ensure_context(self) -> None:
        """The primary context, retained once and current on the calling thread."""
        if getattr(self._threads, "current", False):
            return
        with self._lock:
            if self._context is None:
                if not self._init():
                    raise CudaError(f"no CUDA device is usable ({self.no_device_reason})")
                device = _call(self._drv, "Device", self._drv.Device, self._device_index)
                self._context = _call(self._drv, "Device.retain_primary_context",
                                      device.retain_primary_context)
        _call(self._drv, "Context.push", self._context.push)
        self._threads.current = True

    def device_count(self) -> int:
        if not self._init():
            return 0
        count = int(_call(self._drv, "Device.count", self._drv.Device.count))
        if count == 0:
            self.no_device_reason = "cuDeviceGetCount found 0 devices"
        return count

    def device(self, index: int = 0) -> DeviceInfo:
        drv = self._drv
        if not self._init():
            raise CudaError(f"no CUDA device is usable ({self.no_device_reason})")
        device = _call(drv, "Device", drv.Device, index)
        major, minor = _call(drv, "Device.compute_capability", device.compute_capability)
        attribute = drv.device_attribute
        integrated = _call(drv, "Device.get_attribute", device.get_attribute, attribute.INTEGRATED)
        can_map = _call(drv, "Device.get_attribute", device.get_attribute,
                        attribute.CAN_MAP_HOST_MEMORY)
        return DeviceInfo(index=index, name=str(_call(drv, "Device.name", device.name)),
                          compute_capability=f"{major}.{minor}", integrated=bool(integrated),
                          can_map_host_memory=bool(can_map))

    def stream(self) -> Stream:
        self._ensure_context()
        return _Stream(self._drv, self._ensure_context)

    def event(self) -> Event:
        self._ensure_context()
        return _Event(self._drv, self._ensure_context)

    def host_buffer(self, nbytes: int, *, mapped: bool = False) -> HostBuffer:
        self._ensure_context()
        return _HostBuffer(self._drv, nbytes, mapped)

    def device_buffer(self, nbytes: int) -> DeviceBuffer:
        self._ensure_context()
        return _DeviceBuffer(self._drv, nbytes)

    def copy_htod_async(self, dst: DeviceBuffer, src: HostBuffer, nbytes: int,
                        stream: Stream) -> None:
        self._ensure_context()
        _call(self._drv, "memcpy_htod_async", self._drv.memcpy_htod_async, dst.ptr,
              src.array[:nbytes], stream.raw)

    def copy_dtoh_async(self, dst: HostBuffer, src: DeviceBuffer, nbytes: int,
                        stream: Stream) -> None:
        self._ensure_context()
        _call(self._drv, "memcpy_dtoh_async", self._drv.memcpy_dtoh_async, dst.array[:nbytes],
              src.ptr, stream.raw)

    def _graph_driver(self) -> _Driver:
        if self._driver is None:
            self._driver = _Driver()
        return self._driver

    def begin_capture(self, stream: Stream) -> None:
        self._ensure_context()
        self._graph_driver().begin_capture(stream.handle)

    def end_capture(self, stream: Stream) -> Graph:
        driver = self._graph_driver()
        return _Graph(driver, driver.end_capture(stream.handle))

    def synchronize(self) -> None:
        self._ensure_context()
        _call(self._drv, "Context.synchronize", self._drv.Context.synchronize)

    def _release(self) -> None:
        if self._context is not None:
            if not getattr(self._threads, "current", False):
                # detach pops the context off the calling thread's stack: make it current
                # here first when another thread made it current.
                _call(self._drv, "Context.push", self._context.push)
            context, self._context = self._context, None
            self._threads.current = False
            # Detaching a current context pops it too (pycuda's context::detach).
            _call(self._drv, "Context.detach", context.detach)
