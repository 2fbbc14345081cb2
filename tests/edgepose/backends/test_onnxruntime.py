"""The ONNX Runtime runner and calib's sessions compute Q/DQ graphs as the graph says
(TensorRT's meaning), not through ORT's own fused INT8 CPU kernels."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from calib.int8 import write_int8
from calib.ranges import session
from edgepose.backends.onnxruntime import OnnxRuntimeRunner
from tests.calib.tiny import save, tiny_pose


def test_int8_graph_runs_as_written(tmp_path):
    model = tiny_pose(0)
    tensors = {name for node in model.graph.node for name in (*node.input, *node.output)}
    # Wide ranges: coarse INT8 steps, so any other rounding than the graph's shows.
    graph = write_int8(model, {name: 8.0 for name in tensors if name}, fallback="fp16")
    path = save(graph, tmp_path / "int8.onnx")
    inputs = np.random.default_rng(1).normal(size=(4, 3, 32, 24)).astype(np.float32)

    # The reference: every node executed one by one, no graph rewriting.
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    reference = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    expected = reference.run(None, {"input": inputs})[0].astype(np.float64)

    with OnnxRuntimeRunner(path) as runner:
        heatmaps = runner.infer({"input": inputs})["heatmaps"].astype(np.float64)
    # calib's sessions (ranges, the gate's layer sensitivity, accuracy rows) too.
    calibration = session(graph).run(None, {"input": inputs})[0].astype(np.float64)
    # ORT's fused kernels land 4e-2 of the output range away on this graph.
    for computed in (heatmaps, calibration):
        assert np.abs(computed - expected).max() <= 1e-5 * np.abs(expected).max()
