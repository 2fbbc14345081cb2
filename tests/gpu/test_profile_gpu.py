"""The profiler on a real GPU: CUDA-event stages, CUDA graphs, TensorRT's layer profiler.

A tiny top-down network (two strided convolutions, 17 heatmaps) is exported to ONNX
with an edgepose card, built into an engine for batches 1..4, and profiled. Run on a
GPU host with `pytest tests/gpu/test_profile_gpu.py -s` to see the side-by-side
table (ONNX Runtime on the CPU vs the engine); with EDGEPOSE_GPU_REPORT=<folder>
the report is also written there as JSON and PNG. No test asserts a speed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from edgepose import profile as prof
from edgepose.errors import InputError, MissingDependencyError

pytestmark = [pytest.mark.gpu, pytest.mark.tensorrt]

H, W, K, STRIDE = 64, 48, 17, 4
MAX_BATCH = 4


def _card():
    from edgepose.card import DecoderSpec, InputSpec, ModelCard, OutputSpec

    return ModelCard(family="test", variant="conv2", paradigm="top-down", keypoints="coco17",
                     input=InputSpec("input", H, W, mean=(123.675, 116.28, 103.53),
                                     std=(58.395, 57.12, 57.375)),
                     outputs=(OutputSpec("heatmaps", "heatmaps", STRIDE),),
                     decoder=DecoderSpec("topdown"))


def _onnx(path: Path) -> Path:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from edgepose.card import METADATA_KEY

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.normal(0, 0.1, size=shape).astype(np.float32), name)
               for name, shape in (("w1", (16, 3, 3, 3)), ("b1", (16,)),
                                   ("w2", (K, 16, 3, 3)), ("b2", (K,)))]
    nodes = [helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1],
                              strides=[2, 2], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["heatmaps"], pads=[1, 1, 1, 1],
                              strides=[2, 2], name="conv2")]
    graph = helper.make_graph(
        nodes, "conv2",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, H, W])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT,
                                       ["N", K, H // STRIDE, W // STRIDE])],
        initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {METADATA_KEY: _card().to_json()})
    onnx.save(model, str(path))
    return path


def _engine(onnx_path: Path, engine_path: Path) -> Path:
    trt = pytest.importorskip("tensorrt")
    if not hasattr(trt, "Builder"):
        pytest.skip("tensorrt imported without a Builder (the lean runtime or a stub)")
    from edgepose.cuda import get_cuda
    from edgepose.sidecar import EngineInfo, sha256_of_bytes, write_sidecar

    try:
        cuda = get_cuda()
    except MissingDependencyError as exc:
        pytest.skip(f"no CUDA Python layer here: {exc}")
    with cuda:
        device = cuda.require_device()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(onnx_path.read_bytes()), [str(parser.get_error(i))
                                                  for i in range(parser.num_errors)]
    config = builder.create_builder_config()
    # Layer names in the profiler's reports instead of bare indices.
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    profile = builder.create_optimization_profile()
    profile.set_shape("input", (1, 3, H, W), (2, 3, H, W), (MAX_BATCH, 3, H, W))
    config.add_optimization_profile(profile)
    plan = bytes(builder.build_serialized_network(network, config))
    engine_path.write_bytes(plan)
    write_sidecar(engine_path, _card(), EngineInfo(
        tensorrt_version=trt.__version__, device=device.name,
        compute_capability=device.compute_capability, plan_sha256=sha256_of_bytes(plan),
        profiles=({"input": {"min": [1, 3, H, W], "opt": [2, 3, H, W],
                             "max": [MAX_BATCH, 3, H, W]}},)))
    return engine_path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("profile_gpu")
    onnx_path = _onnx(folder / "conv2.onnx")
    return onnx_path, _engine(onnx_path, folder / "conv2.engine")


def _check_stages(batch):
    stages = batch.stages
    assert {"preprocess", "h2d", "infer", "d2h", "host_overhead", "decode",
            "end_to_end"} == set(stages)
    assert all(s.min >= 0 for s in stages.values())
    assert stages["infer"].mean > 0
    components = sum(s.mean for name, s in stages.items() if name != "end_to_end")
    # host_overhead is clamped at 0 when event and host clocks disagree by microseconds.
    assert math.isclose(components, stages["end_to_end"].mean, rel_tol=0.01, abs_tol=0.02)


@pytest.mark.parametrize("cuda_graph", [False, True], ids=["plain", "graph"])
def test_cuda_event_stages(models, cuda_graph):
    _, engine = models
    result = prof.profile_model(engine, batch_sizes=(1, MAX_BATCH), warmup=5, iters=50,
                                cuda_graph=cuda_graph, progress=False)
    assert result.timing == "cuda-events" and result.copies in ("pinned", "zero-copy")
    for batch in result.batches:
        _check_stages(batch)
        if result.copies == "pinned":
            assert batch.stages["h2d"].mean > 0 and batch.stages["d2h"].mean > 0
    assert result.memory.gpu_activation_bytes is not None
    assert result.memory.gpu_buffer_bytes and result.memory.gpu_buffer_bytes > 0


def test_layer_times_from_tensorrt_profiler(models):
    _, engine = models
    result = prof.profile_model(engine, batch_sizes=(2,), warmup=3, iters=10, layers=True,
                                progress=False)
    assert result.layers, "TensorRT reported no layer times"
    assert all(layer.name for layer in result.layers)
    assert sum(layer.share for layer in result.layers) == pytest.approx(1.0)
    assert result.layer_batch == 2


def test_a_batch_beyond_the_engine_profile_is_refused(models):
    _, engine = models
    with pytest.raises(InputError, match=rf"outside the engine .*profile 1\.\.{MAX_BATCH}"):
        prof.profile_model(engine, batch_sizes=(MAX_BATCH + 1,), warmup=1, iters=1,
                           progress=False)


def test_onnx_on_the_cpu_beside_the_engine(models, tmp_path):
    onnx_path, engine = models
    report = prof.profile_models([onnx_path, engine], batch_sizes=(1, MAX_BATCH), warmup=5,
                                 iters=50, progress=False)
    assert report.environment.cuda_devices and report.environment.tensorrt
    assert report.ratio(1, 1, "end_to_end") is not None
    table = report.format_table()
    print("\n" + table)
    folder = os.environ.get("EDGEPOSE_GPU_REPORT")
    out = Path(folder) if folder else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    prof.write_report_json(report, out / "profile_gpu.json")
    prof.write_plot(report, out / "profile_gpu.png")
    assert prof.read_report_json(out / "profile_gpu.json") == report
