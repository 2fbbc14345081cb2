"""Tiny detector graphs, one per output format, whose outputs are known constants.

Each graph takes `images` (1, 3, H, W) and returns fixed arrays (added to 0 × the
input's mean, so the outputs depend on the input as a real graph's do); the tests
know which boxes the constants encode and check that edgepose reads them back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def constant_graph(outputs: Mapping[str, np.ndarray], *, size: tuple[int, int] = (320, 320),
                   metadata: Mapping[str, str] | None = None,
                   input_name: str = "images") -> onnx.ModelProto:
    """size: (height, width) of the input."""
    height, width = size
    nodes = [helper.make_node("ReduceMean", [input_name], ["mean"], keepdims=0),
             helper.make_node("Mul", ["mean", "zero"], ["nothing"])]
    inits = [numpy_helper.from_array(np.array(0, np.float32), "zero")]
    infos = []
    for name, value in outputs.items():
        value = np.asarray(value)
        inits.append(numpy_helper.from_array(value, f"{name}_value"))
        if value.dtype == np.float32:
            nodes.append(helper.make_node("Add", [f"{name}_value", "nothing"], [name]))
        else:   # integers: cast the zero in, so the output still hangs off the input
            nodes += [helper.make_node("Cast", ["nothing"], [f"{name}_zero"],
                                       to=helper.np_dtype_to_tensor_dtype(value.dtype)),
                      helper.make_node("Add", [f"{name}_value", f"{name}_zero"], [name])]
        infos.append(helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(value.dtype), list(value.shape)))
    graph = helper.make_graph(
        nodes, "detector", [helper.make_tensor_value_info(input_name, TensorProto.FLOAT,
                                                          [1, 3, height, width])],
        infos, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    return model


def nms_graph(boxes: np.ndarray, scores: np.ndarray, *, iou: float, score: float,
              center_point_box: int = 0, size: tuple[int, int] = (320, 320)) -> onnx.ModelProto:
    """A graph with ONNX NonMaxSuppression inside: outputs boxes (1, A, 4), scores
    (1, C, A) and the selected indices (K, 3), as exporters that end in NMS write it."""
    height, width = size
    inits = [numpy_helper.from_array(np.array(0, np.float32), "zero"),
             numpy_helper.from_array(boxes.astype(np.float32), "boxes_value"),
             numpy_helper.from_array(scores.astype(np.float32), "scores_value"),
             numpy_helper.from_array(np.array([100], np.int64), "max_out"),
             numpy_helper.from_array(np.array([iou], np.float32), "iou"),
             numpy_helper.from_array(np.array([score], np.float32), "score")]
    nodes = [helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
             helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
             helper.make_node("Add", ["boxes_value", "nothing"], ["boxes"]),
             helper.make_node("Add", ["scores_value", "nothing"], ["scores"]),
             helper.make_node("NonMaxSuppression", ["boxes", "scores", "max_out", "iou", "score"],
                              ["selected"], center_point_box=center_point_box)]
    graph = helper.make_graph(
        nodes, "nms_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, height, width])],
        [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, list(boxes.shape)),
         helper.make_tensor_value_info("scores", TensorProto.FLOAT, list(scores.shape)),
         helper.make_tensor_value_info("selected", TensorProto.INT64, ["K", 3])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path
