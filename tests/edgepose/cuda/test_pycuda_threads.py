"""pycuda's context is per thread: the CUDA layer makes the primary context current on
every thread that uses it (a pipelined stream runs its models on worker threads), once
each, and releases it once. The driver here is a double that keeps a context stack per
thread, as the CUDA driver does, and fails a call made with no current context."""

import threading
import types

import numpy as np
import pytest

from edgepose import _optional
from edgepose.cuda.pycuda_impl import PyCuda


class _Driver:
    """pycuda.driver as far as PyCuda uses it for streams, events and copies."""

    Error = RuntimeError

    def __init__(self):
        self.stacks = {}            # thread id → context stack
        self.retained = 0
        self.calls = []
        driver = self

        class Context:
            def push(self):
                driver.stacks.setdefault(threading.get_ident(), []).append(self)

            def detach(self):
                driver.stacks[threading.get_ident()].pop()
                driver.retained -= 1

            @staticmethod
            def synchronize():
                driver.require("Context.synchronize")

        class Device:
            def __init__(self, index):
                self.index = index

            def retain_primary_context(self):
                driver.retained += 1
                return Context()

        class Stream:
            def __init__(self, flags=0):
                driver.require("Stream")
                self.handle = 7

            def synchronize(self):
                driver.require("Stream.synchronize")

        self.Context, self.Device, self.Stream = Context, Device, Stream

    def init(self):
        pass

    def require(self, call):
        if not self.stacks.get(threading.get_ident()):
            raise RuntimeError(f"{call}: invalid context (none current on this thread)")
        self.calls.append((threading.get_ident(), call))

    def memcpy_htod_async(self, dst, src, stream):
        self.require("memcpy_htod_async")


@pytest.fixture
def driver(monkeypatch):
    fake = _Driver()
    monkeypatch.setattr(_optional, "pycuda_driver", lambda: fake)
    return fake


def test_every_thread_that_uses_the_layer_gets_the_context_current_once(driver):
    cuda = PyCuda()
    stream = cuda.stream()                       # the creating thread
    source = types.SimpleNamespace(array=np.zeros(4, np.uint8))
    destination = types.SimpleNamespace(ptr=1)
    errors = []

    def work():
        try:
            for _ in range(3):
                cuda.copy_htod_async(destination, source, 4, stream)
                stream.synchronize()
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert errors == []
    threads = {thread for thread, _ in driver.calls}
    assert len(threads) == 2                     # the creator and the worker
    assert [len(stack) for stack in driver.stacks.values()] == [1, 1]   # pushed once each
    assert driver.retained == 1                  # one retain, whatever the threads
    cuda.close()
    assert driver.retained == 0


def test_the_double_refuses_a_call_with_no_current_context(driver):
    # What makes the test above able to fail: the CUDA driver's rule, kept by the double.
    with pytest.raises(RuntimeError, match="invalid context"):
        driver.require("Stream.synchronize")
