"""TensorRTRunner against a recording double of the TensorRT runtime API and a fake CUDA.

The fake CUDA keeps "device" memory as numpy arrays keyed by fake pointers and
runs queued work at once (or records it while a stream is being captured). The
TensorRT double computes its outputs from whatever sits at the addresses bound
with set_tensor_address, so a wrong binding, a missing copy or a stale graph
shows up as wrong numbers, not only as a wrong call log. The double exposes
exactly the names in TENSORRT_RUNTIME_NAMES, so the runner cannot use a
TensorRT name the contract test does not check.
"""

from __future__ import annotations

import itertools
import types
from dataclasses import dataclass, field

import numpy as np
import pytest

import edgepose.cuda
from edgepose import _optional
from edgepose.backends import open_runner
from edgepose.backends.tensorrt import (TENSORRT_RUNTIME_NAMES, TensorRTRunner,
                                        choose_tensorrt_module)
from edgepose.card import DecoderSpec, InputSpec, ModelCard, OutputSpec
from edgepose.cuda.base import (Cuda, DeviceBuffer, DeviceInfo, Event, Graph, HostBuffer,
                                Stream)
from edgepose.errors import (BackendError, CudaError, InputError, MissingDependencyError,
                             ModelFileError)
from edgepose.sidecar import EngineInfo, sha256_of_bytes, write_sidecar

H, W, K = 8, 6, 2  # input height, width; keypoints
DISCRETE = DeviceInfo(0, "Fake H100", "9.0", integrated=False, can_map_host_memory=True)
JETSON = DeviceInfo(0, "Fake Orin", "8.7", integrated=True, can_map_host_memory=True)


# ---------------------------------------------------------------------------------------------
# Fake CUDA: numpy memory behind fake pointers; every call journaled.

class FakeCuda(Cuda):
    name = "fake"

    def __init__(self, devices=(DISCRETE,)):
        self.devices = list(devices)
        self.memory: dict[int, np.ndarray] = {}
        self.calls: list[tuple] = []
        self.resources: list = []
        self.capturing: dict[int, list] = {}
        self._pointers = itertools.count(0x10000, 0x10000)
        self._clock = itertools.count()
        self.frees = 0

    def _pointer(self, array):
        ptr = next(self._pointers)
        self.memory[ptr] = array
        return ptr

    def device_count(self):
        self.calls.append(("device_count",))
        if not self.devices:
            self.no_device_reason = "cudaGetDeviceCount failed: cudaErrorNoDevice"
        return len(self.devices)

    def device(self, index=0):
        return self.devices[index]

    def stream(self):
        return self._keep(FakeStream(self))

    def event(self):
        return self._keep(FakeEvent(self))

    def host_buffer(self, nbytes, *, mapped=False):
        return self._keep(FakeHostBuffer(self, nbytes, mapped))

    def device_buffer(self, nbytes):
        return self._keep(FakeDeviceBuffer(self, nbytes))

    def _keep(self, resource):
        self.resources.append(resource)
        return resource

    def enqueue(self, stream_handle, work, label):
        """Run `work` now, or record it while `stream_handle` is being captured."""
        if stream_handle in self.capturing:
            self.capturing[stream_handle].append(work)
        else:
            work()

    def copy_htod_async(self, dst, src, nbytes, stream):
        self.calls.append(("copy_htod", dst.ptr, nbytes))
        self.enqueue(stream.handle, lambda: self._copy(dst.ptr, src.ptr, nbytes), "htod")

    def copy_dtoh_async(self, dst, src, nbytes, stream):
        self.calls.append(("copy_dtoh", src.ptr, nbytes))
        self.enqueue(stream.handle, lambda: self._copy(dst.ptr, src.ptr, nbytes), "dtoh")

    def _copy(self, dst, src, nbytes):
        self.memory[dst][:nbytes] = self.memory[src][:nbytes]

    def begin_capture(self, stream):
        self.calls.append(("begin_capture",))
        self.capturing[stream.handle] = []

    def end_capture(self, stream):
        self.calls.append(("end_capture",))
        return self._keep(FakeGraph(self, self.capturing.pop(stream.handle)))

    def synchronize(self):
        self.calls.append(("sync", "device"))

    def _release(self):
        self.frees += 1

    def count(self, name):
        return sum(1 for call in self.calls if call[0] == name)


class FakeStream(Stream):
    def __init__(self, cuda):
        self.cuda = cuda
        self.handle = next(cuda._pointers)
        self.frees = 0

    def synchronize(self):
        self.cuda.calls.append(("sync", "stream"))

    def _release(self):
        self.frees += 1


class FakeEvent(Event):
    def __init__(self, cuda):
        self.cuda = cuda
        self.time = None
        self.frees = 0

    def record(self, stream):
        self.cuda.calls.append(("event_record",))
        self.time = 1.5 * next(self.cuda._clock)

    def synchronize(self):
        self.cuda.calls.append(("sync", "event"))

    def elapsed_ms(self, start):
        return self.time - start.time

    def _release(self):
        self.frees += 1


class FakeHostBuffer(HostBuffer):
    def __init__(self, cuda, nbytes, mapped):
        self.nbytes = nbytes
        self.mapped = mapped
        self.array = np.zeros(nbytes, np.uint8)
        self.ptr = cuda._pointer(self.array)
        # Mapped: a second address for the same bytes, as cudaHostGetDevicePointer gives.
        self.device_ptr = cuda._pointer(self.array) if mapped else None
        self.frees = 0

    def _release(self):
        self.frees += 1


class FakeDeviceBuffer(DeviceBuffer):
    def __init__(self, cuda, nbytes):
        self.nbytes = nbytes
        self.ptr = cuda._pointer(np.zeros(nbytes, np.uint8))
        self.frees = 0

    def _release(self):
        self.frees += 1


class FakeGraph(Graph):
    def __init__(self, cuda, work):
        self.cuda = cuda
        self.work = work
        self.frees = 0

    def launch(self, stream):
        self.cuda.calls.append(("graph_launch", id(self)))
        for item in self.work:
            item()

    def _release(self):
        self.frees += 1


# ---------------------------------------------------------------------------------------------
# TensorRT double: only the names in TENSORRT_RUNTIME_NAMES are public.

@dataclass(frozen=True)
class FakeEnum:
    name: str


INPUT_MODE, OUTPUT_MODE = FakeEnum("INPUT"), FakeEnum("OUTPUT")


@dataclass
class FakeTensor:
    name: str
    mode: FakeEnum
    dtype: str
    shape: tuple  # -1 on run-time axes
    profile: tuple | None = None  # (min, opt, max) for dynamic inputs


@dataclass
class FakeNetwork:
    """The engine inside the plan: tensors in engine order, and what it computes."""

    tensors: list
    compute: object  # (inputs: dict name -> array) -> dict name -> array
    output_shape: object  # (input shapes: dict) -> dict name -> shape
    numpy: dict = field(default_factory=lambda: {"FLOAT": np.float32, "HALF": np.float16})


def pose_network():
    """Engine I/O order (pafs, input, heatmaps) differs from the card's (input; heatmaps, pafs)."""

    def compute(inputs):
        x = inputs["input"]
        heat = np.stack([x[:, 0, ::2, ::2] * (k + 1) for k in range(K)], axis=1)
        pafs = np.stack([x[:, c, ::2, ::2] - 1 for c in (1, 2, 1, 2)], axis=1)
        return {"heatmaps": heat.astype(np.float32), "pafs": pafs.astype(np.float16)}

    def output_shape(shapes):
        n = shapes["input"][0]
        return {"heatmaps": (n, K, H // 2, W // 2), "pafs": (n, 4, H // 2, W // 2)}

    return FakeNetwork(
        tensors=[
            FakeTensor("pafs", OUTPUT_MODE, "HALF", (-1, 4, H // 2, W // 2)),
            FakeTensor("input", INPUT_MODE, "FLOAT", (-1, 3, H, W),
                       ((1, 3, H, W), (2, 3, H, W), (4, 3, H, W))),
            FakeTensor("heatmaps", OUTPUT_MODE, "FLOAT", (-1, K, H // 2, W // 2)),
        ],
        compute=compute, output_shape=output_shape)


def make_tensorrt(cuda, network, version="10.3.0", name="tensorrt"):
    """A module object shaped like `tensorrt`, journaling into module._journal."""
    journal: list[tuple] = []
    by_name = {t.name: t for t in network.tensors}

    class ILogger:
        def __init__(self):
            pass

        def log(self, severity, msg):  # pragma: no cover - the runner's subclass overrides it
            raise NotImplementedError

    class IExecutionContext:
        def __init__(self):
            self._shapes = {}
            self._addresses = {}

        def set_input_shape(self, name, shape):
            journal.append(("set_input_shape", name, tuple(shape)))
            low, _, high = by_name[name].profile
            if not all(lo <= v <= hi for v, lo, hi in zip(shape, low, high)):
                return False
            self._shapes[name] = tuple(shape)
            return True

        def set_tensor_address(self, name, address):
            journal.append(("set_tensor_address", name, address))
            self._addresses[name] = address
            return True

        def get_tensor_shape(self, name):
            tensor = by_name[name]
            if tensor.mode == INPUT_MODE:
                return self._shapes.get(name, tensor.shape)
            inputs = [t.name for t in network.tensors if t.mode == INPUT_MODE]
            if any(n not in self._shapes for n in inputs):
                return tensor.shape
            return network.output_shape(self._shapes)[name]

        def execute_async_v3(self, stream_handle):
            journal.append(("execute_async_v3", stream_handle))
            # Shapes and addresses are baked in when the work is queued, as kernels are.
            shapes, addresses = dict(self._shapes), dict(self._addresses)

            def run():
                arrays = {}
                for name, shape in shapes.items():
                    dtype = np.dtype(network.numpy[by_name[name].dtype])
                    size = int(np.prod(shape)) * dtype.itemsize
                    arrays[name] = cuda.memory[addresses[name]][:size].view(dtype).reshape(shape)
                for name, value in network.compute(arrays).items():
                    raw = np.ascontiguousarray(value).view(np.uint8).reshape(-1)
                    cuda.memory[addresses[name]][:raw.size] = raw

            cuda.enqueue(stream_handle, run, "execute")
            return True

    class ICudaEngine:
        num_optimization_profiles = 1
        device_memory_size_v2 = 12345

        @property
        def num_io_tensors(self):
            return len(network.tensors)

        def get_tensor_name(self, index):
            return network.tensors[index].name

        def get_tensor_mode(self, name):
            return by_name[name].mode

        def get_tensor_dtype(self, name):
            return FakeEnum(by_name[name].dtype)

        def get_tensor_shape(self, name):
            return by_name[name].shape

        def get_tensor_profile_shape(self, name, profile_index):
            journal.append(("get_tensor_profile_shape", name, profile_index))
            return list(by_name[name].profile)

        def create_execution_context(self):
            journal.append(("create_execution_context",))
            return IExecutionContext()

    class Runtime:
        def __init__(self, logger):
            journal.append(("Runtime",))
            self._logger = logger
            self.engine_host_code_allowed = False

        def deserialize_cuda_engine(self, plan):
            journal.append(("deserialize_cuda_engine", self.engine_host_code_allowed))
            if not bytes(plan).startswith(b"fake-plan"):
                self._logger.log(FakeEnum("ERROR"), "IRuntime::deserializeCudaEngine: magic tag "
                                 "does not match")
                return None
            return ICudaEngine()

    module = types.ModuleType(name)
    module.__version__ = version
    module.ILogger = ILogger
    module.Runtime = Runtime
    module.TensorIOMode = types.SimpleNamespace(INPUT=INPUT_MODE, OUTPUT=OUTPUT_MODE)
    module._journal = journal
    module._classes = {"ILogger": ILogger, "Runtime": Runtime, "ICudaEngine": ICudaEngine,
                       "IExecutionContext": IExecutionContext}
    return module


# ---------------------------------------------------------------------------------------------
# Fixtures: an engine file with its sidecar; the doubles installed.

def _card():
    return ModelCard(family="test", variant="tiny", paradigm="top-down", keypoints="coco17",
                     input=InputSpec("input", H, W),
                     outputs=(OutputSpec("heatmaps", "heatmaps", 2), OutputSpec("pafs", "pafs", 2)),
                     decoder=DecoderSpec("topdown"))


def write_engine(folder, *, version="10.3.0", cc="9.0", version_compatible=False,
                 hardware="none", plan=b"fake-plan v1", name="model.engine"):
    path = folder / name
    path.write_bytes(plan)
    info = EngineInfo(tensorrt_version=version, device="Fake", compute_capability=cc,
                      plan_sha256=sha256_of_bytes(plan), version_compatible=version_compatible,
                      hardware_compatibility=hardware)
    write_sidecar(path, _card(), info)
    return path


@dataclass
class Doubles:
    cuda: FakeCuda
    modules: dict
    imports: list

    @property
    def trt(self):
        return next(iter(self.modules.values()))

    def journal(self, *names):
        return [c for c in self.trt._journal if not names or c[0] in names]


@pytest.fixture
def install(monkeypatch):
    """install(device=..., modules={"tensorrt": "10.3.0"}, network=...) → Doubles."""

    def _install(device=DISCRETE, modules=None, network=None):
        cuda = FakeCuda(() if device is None else (device,))
        network = network or pose_network()
        modules = {name: make_tensorrt(cuda, network, version, name)
                   for name, version in (modules or {"tensorrt": "10.3.0"}).items()}
        doubles = Doubles(cuda, modules, [])

        def get_cuda(implementation="auto"):
            doubles.imports.append(("cuda", implementation))
            return cuda

        def tensorrt(name="tensorrt"):
            doubles.imports.append(("tensorrt", name))
            if name not in modules:
                raise MissingDependencyError(name, "trt", "Running TensorRT engines")
            return modules[name]

        monkeypatch.setattr(edgepose.cuda, "get_cuda", get_cuda)
        monkeypatch.setattr(_optional, "tensorrt", tensorrt)
        return doubles

    return _install


def _batch(n, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 3, H, W)).astype(np.float32)


def _expected(x):
    return pose_network().compute({"input": x})


def _per_infer(cuda, runner, feeds):
    """The fake-CUDA calls one infer makes."""
    return _traced(cuda, runner, feeds)[0]


def _traced(cuda, runner, feeds):
    """(fake-CUDA calls of one infer, its outputs)."""
    before = len(cuda.calls)
    out = runner.infer(feeds)
    return cuda.calls[before:], out


# ---------------------------------------------------------------------------------------------
# The double itself stays within the contract.

def test_the_double_exposes_exactly_the_contract_names(install, tmp_path):
    trt = install().trt
    public = {name for name in vars(trt) if not name.startswith("_")} | {"__version__"}
    assert public == set(TENSORRT_RUNTIME_NAMES["tensorrt"])
    logger_cls = trt._classes["ILogger"]
    instances = {"Runtime": trt.Runtime(None), "ICudaEngine": trt._classes["ICudaEngine"](),
                 "IExecutionContext": trt._classes["IExecutionContext"](),
                 "TensorIOMode": trt.TensorIOMode}
    for cls, obj in instances.items():
        assert {n for n in dir(obj) if not n.startswith("_")} == set(TENSORRT_RUNTIME_NAMES[cls]), cls
    assert {n for n in vars(logger_cls) if not n.startswith("_")} == set(
        TENSORRT_RUNTIME_NAMES["ILogger"])


# ---------------------------------------------------------------------------------------------
# Sidecar and device checks, all before a TensorRT runtime exists.

@pytest.mark.parametrize("engine, device, module, message", [
    (dict(version="10.3.0"), DISCRETE, "10.4.0",
     r"built with TensorRT 10\.3\.0 but this is TensorRT 10\.4\.0"),   # version mismatch
    (dict(cc="8.7"), DISCRETE, "10.3.0",
     r"built for compute capability 8\.7 .* this GPU is 9\.0"),          # another GPU
    (dict(hardware="ampere_plus"), DeviceInfo(0, "T4", "7.5", False, True), "10.3.0",
     r"Ampere and newer .* this GPU is 7\.5"),                            # HW-compat, too old a GPU
    (dict(version="11.4.0", version_compatible=True), DISCRETE, "10.3.0",
     r"built with TensorRT 11\.4\.0, newer than this TensorRT 10\.3\.0"),  # compat runs forward only
])
def test_plans_for_another_tensorrt_or_gpu_are_refused_before_a_runtime(
        install, tmp_path, engine, device, module, message):
    doubles = install(device=device, modules={"tensorrt": module})
    path = write_engine(tmp_path, **engine)
    with pytest.raises(ModelFileError, match=message):
        TensorRTRunner(path)
    assert doubles.journal("Runtime") == []


def test_a_changed_plan_is_refused_by_its_sha256(install, tmp_path):
    doubles = install()
    path = write_engine(tmp_path)
    path.write_bytes(b"fake-plan v2")  # rebuilt, sidecar stale
    with pytest.raises(ModelFileError, match="sha256"):
        TensorRTRunner(path)
    assert doubles.journal("Runtime") == []


def test_without_a_cuda_device_no_tensorrt_runtime_is_created(install, tmp_path):
    doubles = install(device=None)
    path = write_engine(tmp_path)
    with pytest.raises(CudaError, match=r"no CUDA device is visible \(.*cudaErrorNoDevice\)"):
        TensorRTRunner(path)
    assert doubles.journal("Runtime") == []
    assert not any(kind == "tensorrt" for kind, _ in doubles.imports)


def test_a_version_compatible_plan_from_an_older_tensorrt_runs_with_host_code_allowed(
        install, tmp_path):
    doubles = install(modules={"tensorrt": "10.8.0"})
    path = write_engine(tmp_path, version="10.3.0", version_compatible=True)
    with TensorRTRunner(path) as runner:
        out = runner.infer({"input": _batch(2)})
    np.testing.assert_allclose(out["heatmaps"], _expected(_batch(2))["heatmaps"])
    assert doubles.journal("deserialize_cuda_engine") == [("deserialize_cuda_engine", True)]


def test_an_ordinary_plan_does_not_allow_engine_host_code(install, tmp_path):
    doubles = install()
    with TensorRTRunner(write_engine(tmp_path)):
        pass
    assert doubles.journal("deserialize_cuda_engine") == [("deserialize_cuda_engine", False)]


def test_a_plan_tensorrt_cannot_read_gives_its_logged_error(install, tmp_path):
    install()
    path = write_engine(tmp_path, plan=b"not a plan")
    with pytest.raises(ModelFileError, match="could not deserialise.*magic tag does not match"):
        TensorRTRunner(path)


def test_a_sidecar_naming_tensors_the_engine_lacks_is_refused(install, tmp_path):
    network = pose_network()
    network.tensors[2].name = "heatmap"  # engine from another export
    install(network=network)
    with pytest.raises(ModelFileError, match=r"\['heatmaps'\] that the engine lacks"):
        TensorRTRunner(write_engine(tmp_path))


def test_an_engine_with_bf16_io_is_refused_by_tensor_name(install, tmp_path):
    network = pose_network()
    network.tensors[0].dtype = "BF16"
    install(network=network)
    with pytest.raises(ModelFileError, match="tensor 'pafs' is BF16"):
        TensorRTRunner(write_engine(tmp_path))


# ---------------------------------------------------------------------------------------------
# Which TensorRT module runs a plan.

def _info(version="10.3.0", compatible=False):
    return EngineInfo(tensorrt_version=version, device="x", compute_capability="8.7",
                      plan_sha256="0", version_compatible=compatible)


@pytest.mark.parametrize("compatible, available, expected", [
    (False, {"tensorrt": "10.3.0"}, "tensorrt"),                          # the full runtime runs all
    (True, {"tensorrt": "10.3.0", "tensorrt_lean": "10.3.0"}, "tensorrt"),  # full preferred
    (True, {"tensorrt_lean": "10.3.0"}, "tensorrt_lean"),                 # lean of the build version
    (True, {"tensorrt_lean": "10.4.0", "tensorrt_dispatch": "10.4.0"},
     "tensorrt_dispatch"),                                                # lean of another version
    (True, {"tensorrt_lean": "10.3.0", "tensorrt_dispatch": "10.3.0"},
     "tensorrt_lean"),                                                    # lean is the smaller one
    (True, {"tensorrt_dispatch": "10.7.0"}, "tensorrt_dispatch"),         # dispatch alone
    (True, {"tensorrt_lean": "10.7.0"}, "tensorrt_lean"),                 # tried, with a warning
])
def test_module_choice(compatible, available, expected):
    assert choose_tensorrt_module(_info(compatible=compatible), available) == expected


@pytest.mark.parametrize("available, error, message", [
    ({"tensorrt_lean": "10.3.0"}, ModelFileError, "without --version-compatible"),  # lean can't
    ({}, MissingDependencyError, r"edgepose\[trt\]"),                             # nothing there
])
def test_module_choice_for_an_ordinary_plan_without_full_tensorrt(available, error, message):
    with pytest.raises(error, match=message):
        choose_tensorrt_module(_info(compatible=False), available)


def test_the_lean_runtime_runs_a_version_compatible_plan(install, tmp_path):
    doubles = install(modules={"tensorrt_lean": "10.3.0"})
    path = write_engine(tmp_path, version_compatible=True)
    with TensorRTRunner(path) as runner:
        assert runner.tensorrt_module == "tensorrt_lean 10.3.0"
        out = runner.infer({"input": _batch(1)})
    np.testing.assert_allclose(out["heatmaps"], _expected(_batch(1))["heatmaps"])
    assert ("tensorrt", "tensorrt") in doubles.imports  # the full one was looked for first


def test_the_full_module_is_not_imported_past_when_present(install, tmp_path):
    doubles = install(modules={"tensorrt": "10.3.0"})
    with TensorRTRunner(write_engine(tmp_path)):
        pass
    assert [name for kind, name in doubles.imports if kind == "tensorrt"] == ["tensorrt"]


# ---------------------------------------------------------------------------------------------
# Binding, buffers, the call sequence.

def test_tensors_are_bound_by_name_whatever_the_engine_order(install, tmp_path):
    install()
    x = _batch(3)
    with TensorRTRunner(write_engine(tmp_path)) as runner:
        out = runner.infer({"input": x})
        assert [s.name for s in runner.inputs] == ["input"]
        assert [s.name for s in runner.outputs] == ["heatmaps", "pafs"]  # the card's order
        assert runner.outputs[1].dtype == np.float16
        assert runner.inputs[0].shape == (None, 3, H, W)
        assert runner.max_batch == 4
    expected = _expected(x)
    assert out["heatmaps"].shape == (3, K, H // 2, W // 2)
    assert out["pafs"].shape == (3, 4, H // 2, W // 2)
    np.testing.assert_array_equal(out["heatmaps"], expected["heatmaps"])
    np.testing.assert_array_equal(out["pafs"], expected["pafs"])


def test_buffers_are_sized_per_dtype_for_the_profile_maximum(install, tmp_path):
    doubles = install()
    with TensorRTRunner(write_engine(tmp_path)):
        addresses = {name: ptr for _, name, ptr in doubles.journal("set_tensor_address")}
        by_ptr = {r.ptr: r for r in doubles.cuda.resources if isinstance(r, FakeDeviceBuffer)}
        sizes = {name: by_ptr[ptr].nbytes for name, ptr in addresses.items()}
    assert sizes == {"input": 4 * 3 * H * W * 4,               # float32, batch 4
                     "heatmaps": 4 * K * (H // 2) * (W // 2) * 4,  # float32
                     "pafs": 4 * 4 * (H // 2) * (W // 2) * 2}      # float16
    host = sorted(r.nbytes for r in doubles.cuda.resources if isinstance(r, FakeHostBuffer))
    assert host == sorted(sizes.values())


def test_each_call_copies_in_executes_copies_out_and_waits_once(install, tmp_path):
    doubles = install()
    cuda = doubles.cuda
    with TensorRTRunner(write_engine(tmp_path)) as runner:
        bound = len(doubles.journal("set_tensor_address"))
        calls = _per_infer(cuda, runner, {"input": _batch(2)})
        assert [c[0] for c in calls] == ["copy_htod", "copy_dtoh", "copy_dtoh", "sync"]
        # Only the bytes of this batch move, not the whole planned buffer.
        assert calls[0][2] == 2 * 3 * H * W * 4
        assert sorted(c[2] for c in calls[1:3]) == sorted(
            [2 * K * (H // 2) * (W // 2) * 4, 2 * 4 * (H // 2) * (W // 2) * 2])
        journal = doubles.journal("set_input_shape", "set_tensor_address", "execute_async_v3")
        trace = journal[-2:]
        assert trace[0][:3] == ("set_input_shape", "input", (2, 3, H, W))
        assert trace[1][0] == "execute_async_v3"
        assert trace[1][1] == runner._stream.handle
        # Addresses never move after opening: bound once, never again.
        assert len(doubles.journal("set_tensor_address")) == bound == 3


def test_the_input_shape_is_set_only_when_it_changes(install, tmp_path):
    doubles = install()
    with TensorRTRunner(write_engine(tmp_path)) as runner:
        start = len(doubles.journal("set_input_shape"))
        for n in (2, 2, 3, 3, 2):
            runner.infer({"input": _batch(n)})
        shapes = [c[2][0] for c in doubles.journal("set_input_shape")[start:]]
    assert shapes == [2, 3, 2]
    assert len(doubles.journal("execute_async_v3")) == 5


@pytest.mark.parametrize("options", [
    dict(),                                # plain
    dict(timing=True),                     # events recorded, read after the one wait
    dict(cuda_graph=True),                 # capture on the first call, replay after
    dict(cuda_graph=True, timing=True),
])
def test_exactly_one_synchronisation_per_call(install, tmp_path, options):
    cuda = install().cuda
    with TensorRTRunner(write_engine(tmp_path), **options) as runner:
        for n in (1, 1, 2, 1):
            calls = _per_infer(cuda, runner, {"input": _batch(n)})
            assert [c for c in calls if c[0] == "sync"] == [("sync", "stream")]


def test_outputs_are_views_overwritten_by_the_next_call(install, tmp_path):
    doubles = install()
    with TensorRTRunner(write_engine(tmp_path)) as runner:
        first = runner.infer({"input": _batch(2, seed=1)})
        kept = first["heatmaps"].copy()
        hosts = [r.array for r in doubles.cuda.resources if isinstance(r, FakeHostBuffer)]
        assert any(np.shares_memory(first["heatmaps"], h) for h in hosts)
        runner.infer({"input": _batch(2, seed=2)})
        np.testing.assert_array_equal(first["heatmaps"], _expected(_batch(2, seed=2))["heatmaps"])
        assert not np.array_equal(first["heatmaps"], kept)


def test_copy_outputs_returns_arrays_the_caller_owns(install, tmp_path):
    doubles = install()
    with TensorRTRunner(write_engine(tmp_path), copy_outputs=True) as runner:
        first = runner.infer({"input": _batch(2, seed=1)})
        hosts = [r.array for r in doubles.cuda.resources if isinstance(r, FakeHostBuffer)]
        assert not any(np.shares_memory(first["heatmaps"], h) for h in hosts)
        runner.infer({"input": _batch(2, seed=2)})
    np.testing.assert_array_equal(first["heatmaps"], _expected(_batch(2, seed=1))["heatmaps"])


@pytest.mark.parametrize("feeds, message", [
    ({"input": _batch(5)}, r"batch 5 is outside this engine's profile 1\.\.4"),  # too many people
    ({"input": _batch(2)[:, :, :, :4].copy()}, r"axis 3 is 4"),                  # wrong crop width
    ({"input": _batch(2).astype(np.float64)}, r"'input' is float64; this engine takes float32"),
    ({"image": _batch(2)}, r"model inputs are \['input'\], got feeds \['image'\]"),
])
def test_bad_feeds_are_refused_before_any_gpu_work(install, tmp_path, feeds, message):
    doubles = install()
    with TensorRTRunner(write_engine(tmp_path)) as runner:
        before = (len(doubles.cuda.calls), len(doubles.journal()))
        with pytest.raises(InputError, match=message):
            runner.infer(feeds)
        assert (len(doubles.cuda.calls), len(doubles.journal())) == before


def test_timings_come_from_events_around_each_stage(install, tmp_path):
    doubles = install()
    with TensorRTRunner(write_engine(tmp_path), timing=True) as runner:
        assert runner.last_timings is None
        calls = _per_infer(doubles.cuda, runner, {"input": _batch(1)})
        timings = runner.last_timings
    kinds = [c[0] for c in calls]
    assert kinds == ["event_record", "copy_htod", "event_record", "event_record", "copy_dtoh",
                     "copy_dtoh", "event_record", "sync"]
    # The fake clock advances 1.5 ms per recorded event.
    assert (timings.h2d_ms, timings.compute_ms, timings.d2h_ms) == (1.5, 1.5, 1.5)
    assert timings.total_ms == 4.5


# ---------------------------------------------------------------------------------------------
# CUDA graphs and zero-copy.

def test_a_graph_is_captured_once_per_shape_and_replayed(install, tmp_path):
    doubles = install()
    cuda = doubles.cuda
    with TensorRTRunner(write_engine(tmp_path), cuda_graph=True) as runner:
        for seed, n in enumerate((2, 2, 2, 3, 3, 2)):
            x = _batch(n, seed=seed)
            out = runner.infer({"input": x})
            # Replays must read this call's input, not the one seen at capture time.
            np.testing.assert_array_equal(out["heatmaps"], _expected(x)["heatmaps"])
        assert sorted(k[0][0] for k in runner.graph_shapes) == [2, 3]
    assert cuda.count("begin_capture") == 2
    assert cuda.count("graph_launch") == 4           # calls 2, 3, 5 and 6
    assert len(doubles.journal("execute_async_v3")) == 4  # per shape: one plain run, one captured


def test_integrated_gpus_use_mapped_memory_and_copy_nothing(install, tmp_path):
    doubles = install(device=JETSON, modules={"tensorrt": "10.3.0"})
    cuda = doubles.cuda
    path = write_engine(tmp_path, cc="8.7")
    with TensorRTRunner(path) as runner:
        assert runner.zero_copy
        x = _batch(3)
        calls, out = _traced(cuda, runner, {"input": x})
        addresses = {name: ptr for _, name, ptr in doubles.journal("set_tensor_address")}
        np.testing.assert_array_equal(out["heatmaps"], _expected(x)["heatmaps"])
    assert [c[0] for c in calls] == ["sync"]
    hosts = [r for r in cuda.resources if isinstance(r, (FakeHostBuffer, FakeDeviceBuffer))]
    assert all(isinstance(r, FakeHostBuffer) and r.mapped for r in hosts)
    assert set(addresses.values()) == {r.device_ptr for r in hosts}


def test_zero_copy_results_are_correct(install, tmp_path):
    install(device=JETSON)
    with TensorRTRunner(write_engine(tmp_path, cc="8.7"), cuda_graph=True) as runner:
        for seed in range(3):
            x = _batch(2, seed=seed)
            out = runner.infer({"input": x})
            np.testing.assert_array_equal(out["pafs"], _expected(x)["pafs"])


# ---------------------------------------------------------------------------------------------
# Closing.

def test_close_frees_everything_once_and_is_idempotent(install, tmp_path):
    doubles = install()
    cuda = doubles.cuda
    runner = TensorRTRunner(write_engine(tmp_path), cuda_graph=True, timing=True)
    runner.infer({"input": _batch(1)})
    runner.infer({"input": _batch(1)})
    runner.close()
    runner.close()
    with runner:
        pass
    assert cuda.resources and all(r.frees == 1 for r in cuda.resources)
    assert {type(r).__name__ for r in cuda.resources} >= {"FakeGraph", "FakeEvent", "FakeStream",
                                                          "FakeHostBuffer", "FakeDeviceBuffer"}
    assert cuda.frees == 1
    with pytest.raises(BackendError, match="closed"):
        runner.infer({"input": _batch(1)})


def test_a_failed_open_frees_what_it_made(install, tmp_path):
    doubles = install()
    path = write_engine(tmp_path, plan=b"not a plan")
    with pytest.raises(ModelFileError):
        TensorRTRunner(path)
    assert doubles.cuda.frees == 1
    assert all(r.frees == 1 for r in doubles.cuda.resources)


# ---------------------------------------------------------------------------------------------
# open_runner picks the backend by suffix.

@pytest.mark.parametrize("name", ["model.engine", "model.plan", "MODEL.ENGINE"])
def test_open_runner_gives_engines_to_tensorrt(install, tmp_path, name):
    install()
    with open_runner(write_engine(tmp_path, name=name), cuda_graph=True) as runner:
        assert isinstance(runner, TensorRTRunner)
        assert runner.cuda_graph


def test_open_runner_refuses_options_of_the_other_backend(install, tmp_path):
    install()
    with pytest.raises(InputError, match="providers"):
        open_runner(write_engine(tmp_path), providers=["CUDAExecutionProvider"])
    with pytest.raises(InputError, match="apply to TensorRT engines"):
        open_runner(tmp_path / "model.onnx", cuda_graph=True)
    with pytest.raises(InputError, match=r"expected one of \('\.onnx', '\.engine', '\.plan'\)"):
        open_runner(tmp_path / "model.pt")


# ---------------------------------------------------------------------------------------------
# The real cuda-python bindings on a machine without a GPU or driver (CPU CI).

@pytest.fixture
def driverless_cuda_python():
    pytest.importorskip("cuda.bindings.runtime", reason="cuda-python is not installed")
    from edgepose.cuda.cuda_python import CudaPython

    cuda = CudaPython()
    if cuda.device_count() > 0:
        pytest.skip("this machine has a CUDA device; tests/gpu covers it")
    return cuda


def test_real_cuda_python_without_a_driver_says_so(driverless_cuda_python):
    with pytest.raises(CudaError, match=r"no CUDA device is visible \(cudaGetDeviceCount failed: "
                                        r"cudaError\w+\)"):
        driverless_cuda_python.require_device()


def test_real_cuda_python_errors_name_the_call_and_the_error(driverless_cuda_python):
    with pytest.raises(CudaError, match=r"^cudaMalloc failed: cudaError\w+$"):
        driverless_cuda_python.device_buffer(1024)


def test_the_runner_with_real_cuda_python_refuses_before_any_runtime(
        driverless_cuda_python, monkeypatch, tmp_path):
    cuda = FakeCuda()
    trt = make_tensorrt(cuda, pose_network())
    monkeypatch.setattr(_optional, "tensorrt", lambda name="tensorrt": trt)
    with pytest.raises(CudaError, match="no CUDA device is visible"):
        TensorRTRunner(write_engine(tmp_path), cuda_impl="cuda-python")
    assert trt._journal == []


# ---------------------------------------------------------------------------------------------
# Choosing the CUDA implementation (real get_cuda; nothing here touches a GPU).

def test_an_unknown_cuda_implementation_is_refused():
    with pytest.raises(InputError, match=r"'cupy' is unknown; expected one of \('auto', "
                                         r"'cuda-python', 'pycuda'\)"):
        edgepose.cuda.get_cuda("cupy")


def test_auto_prefers_cuda_python():
    pytest.importorskip("cuda.bindings.runtime", reason="cuda-python is not installed")
    assert edgepose.cuda.get_cuda("auto").name == "cuda-python"


def test_asking_for_a_missing_pycuda_names_its_extra(monkeypatch):
    def no_pycuda():
        raise MissingDependencyError("pycuda", "pycuda", "The pycuda CUDA layer")

    monkeypatch.setattr(_optional, "pycuda_driver", no_pycuda)
    with pytest.raises(MissingDependencyError, match=r"edgepose\[pycuda\]"):
        edgepose.cuda.get_cuda("pycuda")


def test_auto_falls_back_to_pycuda_and_else_names_cuda_python(monkeypatch):
    def missing(module, extra):
        def load():
            raise MissingDependencyError(module, extra, "test")
        return load

    monkeypatch.setattr(_optional, "cuda_runtime", missing("cuda.bindings", "trt"))
    monkeypatch.setattr(_optional, "pycuda_driver", missing("pycuda", "pycuda"))
    with pytest.raises(MissingDependencyError, match=r"cuda\.bindings.*edgepose\[trt\]"):
        edgepose.cuda.get_cuda("auto")
    fake_driver = types.SimpleNamespace(Error=RuntimeError)
    monkeypatch.setattr(_optional, "pycuda_driver", lambda: fake_driver)
    assert edgepose.cuda.get_cuda("auto").name == "pycuda"
