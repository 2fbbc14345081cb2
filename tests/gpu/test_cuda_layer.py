"""The CUDA layer on a real GPU, for both implementations; TensorRT end to end where it imports.

Run on a GPU host: `pytest tests/gpu -s` prints the copy bandwidth table;
with EDGEPOSE_GPU_REPORT=<folder> it also writes it as JSON there.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from edgepose.cuda import get_cuda
from edgepose.errors import CudaError, MissingDependencyError

pytestmark = pytest.mark.gpu

IMPLEMENTATIONS = ["cuda-python", "pycuda"]
BANDWIDTH_BYTES = 64 * 2**20


@pytest.fixture(params=IMPLEMENTATIONS)
def cuda(request):
    try:
        layer = get_cuda(request.param)
    except MissingDependencyError as exc:
        pytest.skip(f"{request.param} is not importable here: {exc}")
    layer.require_device()
    yield layer
    layer.close()


def _random_bytes(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8)


def test_the_device_is_described(cuda):
    info = cuda.require_device()
    assert info.name
    major, minor = info.compute_capability.split(".")
    assert int(major) >= 5 and int(minor) >= 0
    assert cuda.device_count() >= 1


def test_pinned_round_trip_on_a_stream(cuda):
    n = 1 << 20
    with cuda.host_buffer(n) as src, cuda.host_buffer(n) as dst, \
            cuda.device_buffer(n) as device, cuda.stream() as stream:
        src.array[:] = _random_bytes(n)
        cuda.copy_htod_async(device, src, n, stream)
        cuda.copy_dtoh_async(dst, device, n, stream)
        stream.synchronize()
        np.testing.assert_array_equal(dst.array, src.array)


def test_typed_views_share_the_pinned_memory(cuda):
    with cuda.host_buffer(4 * 6 * 4) as buffer:
        view = buffer.view(np.float32, (4, 6))
        view[:] = np.arange(24, dtype=np.float32).reshape(4, 6)
        assert np.shares_memory(view, buffer.array)
        assert buffer.array[:4].view(np.float32)[0] == 0.0 and view[3, 5] == 23.0


def test_events_time_a_copy(cuda):
    n = 16 * 2**20
    with cuda.host_buffer(n) as host, cuda.device_buffer(n) as device, cuda.stream() as stream, \
            cuda.event() as start, cuda.event() as end:
        start.record(stream)
        cuda.copy_htod_async(device, host, n, stream)
        end.record(stream)
        end.synchronize()
        elapsed = end.elapsed_ms(start)
    assert 0.0 < elapsed < 10_000.0


def test_a_captured_graph_replays_a_copy(cuda):
    n = 1 << 16
    with cuda.host_buffer(n) as src, cuda.host_buffer(n) as dst, \
            cuda.device_buffer(n) as device, cuda.stream() as stream:
        cuda.begin_capture(stream)
        cuda.copy_htod_async(device, src, n, stream)
        cuda.copy_dtoh_async(dst, device, n, stream)
        graph = cuda.end_capture(stream)
        with graph:
            for seed in range(3):
                # Nothing ran at capture; each launch copies what is in `src` now.
                src.array[:] = _random_bytes(n, seed)
                graph.launch(stream)
                stream.synchronize()
                np.testing.assert_array_equal(dst.array, src.array)


class _Address:
    """A device address that is not ours to free (a mapped host buffer's)."""

    def __init__(self, ptr):
        self.ptr = ptr


def test_mapped_pinned_memory_is_reachable_from_the_device(cuda):
    info = cuda.require_device()
    if not info.zero_copy:
        pytest.skip(f"{info.name} is a discrete GPU; mapped zero-copy memory is for integrated "
                    "GPUs (Jetson)")
    n = 1 << 16
    with cuda.host_buffer(n, mapped=True) as mapped, cuda.host_buffer(n) as back, \
            cuda.stream() as stream:
        assert mapped.device_ptr
        mapped.array[:] = _random_bytes(n)
        cuda.copy_dtoh_async(back, _Address(mapped.device_ptr), n, stream)
        stream.synchronize()
        np.testing.assert_array_equal(back.array, mapped.array)


def test_a_failed_call_names_the_call_and_the_error(cuda):
    with pytest.raises(CudaError, match=r"(cudaMalloc|mem_alloc) failed: .*"
                                        r"(cudaErrorMemoryAllocation|out of memory)"):
        cuda.device_buffer(1 << 60)


def test_close_is_idempotent(cuda):
    buffer = cuda.host_buffer(1024)
    stream = cuda.stream()
    for resource in (buffer, stream):
        resource.close()
        resource.close()
        assert resource.closed


def _pageable_htod(cuda, device, array):
    """A plain (pageable) host→device copy, through the binding itself."""
    if cuda.name == "cuda-python":
        from edgepose import _optional

        rt = _optional.cuda_runtime()
        status = rt.cudaMemcpy(device.ptr, array.ctypes.data, array.nbytes,
                               rt.cudaMemcpyKind.cudaMemcpyHostToDevice)[0]
        assert int(status) == 0, status
    else:
        import pycuda.driver as drv

        drv.memcpy_htod(device.ptr, array)


def test_pinned_vs_pageable_bandwidth(cuda):
    n, repeats = BANDWIDTH_BYTES, 10
    pageable = _random_bytes(n)
    with cuda.host_buffer(n) as pinned, cuda.device_buffer(n) as device, \
            cuda.stream() as stream, cuda.event() as start, cuda.event() as end:
        pinned.array[:] = pageable
        cuda.copy_htod_async(device, pinned, n, stream)  # warm-up
        stream.synchronize()
        start.record(stream)
        for _ in range(repeats):
            cuda.copy_htod_async(device, pinned, n, stream)
        end.record(stream)
        end.synchronize()
        pinned_s = end.elapsed_ms(start) / 1000 / repeats
        _pageable_htod(cuda, device, pageable)  # warm-up
        cuda.synchronize()
        began = time.perf_counter()
        for _ in range(repeats):
            _pageable_htod(cuda, device, pageable)
        cuda.synchronize()
        pageable_s = (time.perf_counter() - began) / repeats
    device_name = cuda.require_device().name
    report = {"implementation": cuda.name, "device": device_name, "bytes": n,
              "pinned_h2d_gb_s": n / pinned_s / 1e9, "pageable_h2d_gb_s": n / pageable_s / 1e9}
    print(f"\nH2D {n // 2**20} MiB on {device_name} via {cuda.name}: "
          f"pinned {report['pinned_h2d_gb_s']:.1f} GB/s, "
          f"pageable {report['pageable_h2d_gb_s']:.1f} GB/s")
    folder = os.environ.get("EDGEPOSE_GPU_REPORT")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        path = Path(folder) / f"bandwidth_{cuda.name}.json"
        path.write_text(json.dumps(report, indent=2))
    assert report["pinned_h2d_gb_s"] > 0.5


# ---------------------------------------------------------------------------------------------
# TensorRT end to end: a one-Conv ONNX model built and run, compared with ONNX Runtime.

H, W = 16, 12


def _conv_onnx(path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.normal(size=(4,)).astype(np.float32), "b")
    node = helper.make_node("Conv", ["input", "w", "b"], ["heatmaps"], pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [node], "conv",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, H, W])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, ["N", 4, H, W])],
        initializer=[weight, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _build_engine(onnx_path, engine_path, cuda):
    trt = pytest.importorskip("tensorrt")
    if not hasattr(trt, "Builder"):
        pytest.skip("tensorrt imported without a Builder (the lean runtime or a stub)")
    from edgepose.card import DecoderSpec, InputSpec, ModelCard, OutputSpec
    from edgepose.sidecar import EngineInfo, sha256_of_bytes, write_sidecar

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(onnx_path.read_bytes()), [str(parser.get_error(i))
                                                  for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, 3, H, W), (2, 3, H, W), (4, 3, H, W))
    config.add_optimization_profile(profile)
    plan = bytes(builder.build_serialized_network(network, config))
    engine_path.write_bytes(plan)
    device = cuda.require_device()
    card = ModelCard(family="test", variant="conv", paradigm="top-down", keypoints="coco17",
                     input=InputSpec("input", H, W), decoder=DecoderSpec("topdown"),
                     outputs=(OutputSpec("heatmaps", "heatmaps", 1),))
    write_sidecar(engine_path, card, EngineInfo(
        tensorrt_version=trt.__version__, device=device.name,
        compute_capability=device.compute_capability, plan_sha256=sha256_of_bytes(plan),
        profiles=({"input": {"min": [1, 3, H, W], "opt": [2, 3, H, W], "max": [4, 3, H, W]}},)))
    return engine_path


@pytest.mark.tensorrt
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("cuda_graph", [False, True], ids=["plain", "graph"])
def test_a_built_engine_matches_onnx_runtime(tmp_path, implementation, cuda_graph):
    ort = pytest.importorskip("onnxruntime")
    try:
        cuda = get_cuda(implementation)
    except MissingDependencyError as exc:
        pytest.skip(f"{implementation} is not importable here: {exc}")
    from edgepose.backends.tensorrt import TensorRTRunner

    onnx_path = _conv_onnx(tmp_path / "conv.onnx")
    with cuda:
        engine = _build_engine(onnx_path, tmp_path / "conv.engine", cuda)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    with TensorRTRunner(engine, cuda_graph=cuda_graph, cuda_impl=implementation,
                        timing=True) as runner:
        assert runner.max_batch == 4
        for seed, n in enumerate((1, 3, 3, 4, 1)):
            x = np.random.default_rng(seed).normal(size=(n, 3, H, W)).astype(np.float32)
            got = runner.infer({"input": x})["heatmaps"]
            expected = session.run(["heatmaps"], {"input": x})[0]
            # TF32 may be used for FP32 convolutions on Ampere and newer.
            np.testing.assert_allclose(got, expected, rtol=1e-2, atol=1e-2)
            assert runner.last_timings.compute_ms > 0
        if cuda_graph:
            assert len(runner.graph_shapes) == 3
