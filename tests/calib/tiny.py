"""Tiny ONNX graphs with model cards, built in code for the calib tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgepose.card import METADATA_KEY, DecoderSpec, InputSpec, ModelCard, OutputSpec

OPSET = 17
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


def topdown_card(height: int = 32, width: int = 24, stride: int = 2,
                 family: str = "tiny") -> ModelCard:
    return ModelCard(
        family=family, variant=f"{height}x{width}", paradigm="top-down", keypoints="coco17",
        input=InputSpec(name="input", height=height, width=width, mean=IMAGENET_MEAN,
                        std=IMAGENET_STD),
        outputs=(OutputSpec(name="heatmaps", role="heatmaps", stride=stride),),
        decoder=DecoderSpec(name="topdown", refine="shift"),
        source={"format": "random-init"})


def with_card(model: onnx.ModelProto, card: ModelCard | None) -> onnx.ModelProto:
    if card is not None:
        model.metadata_props.add(key=METADATA_KEY, value=card.to_json(indent=None))
    return model


def _init(rng: np.random.Generator, name: str, shape: tuple[int, ...],
          scale: float = 0.3) -> onnx.TensorProto:
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def tiny_pose(seed: int = 0, *, flat: bool = False, gain: float = 1.0,
              card: ModelCard | None = None) -> onnx.ModelProto:
    """input (N,3,32,24) → Conv s2 → Relu → Conv → +residual → Relu → Conv 1x1 → heatmaps
    (N,17,16,12). flat: heatmaps ≈ 1 + 1e-4·noise, so FP16 rounding flattens them.
    gain multiplies the second Conv's weights (large gains overflow FP16)."""
    rng = np.random.default_rng(seed)
    card = card or topdown_card()
    inits = [_init(rng, "w1", (8, 3, 3, 3)), _init(rng, "b1", (8,), 0.1),
             numpy_helper.from_array((rng.standard_normal((8, 8, 3, 3)) * 0.2 * gain)
                                     .astype(np.float32), "w2"),
             _init(rng, "b2", (8,), 0.1)]
    if flat:
        inits += [_init(rng, "w3", (17, 8, 1, 1), 1e-4),
                  numpy_helper.from_array(np.ones(17, np.float32), "b3")]
    else:
        inits += [_init(rng, "w3", (17, 8, 1, 1), 0.5), _init(rng, "b3", (17,), 0.1)]
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1],
                         strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["a1"], name="residual"),
        helper.make_node("Relu", ["a1"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["heatmaps"], name="head"),
    ]
    spec = card.input
    graph = helper.make_graph(
        nodes, "tiny_pose",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                       ["batch", 3, spec.height, spec.width])],
        [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT,
                                       ["batch", 17, spec.height // 2, spec.width // 2])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    return with_card(model, card)


def layer_zoo(seed: int = 0) -> onnx.ModelProto:
    """Every op the INT8 writer quantises, and some it must not.

    input (N,3,16,16) → Conv → Relu → ConvTranspose s2 → Relu → Resize ×0.5 → Add(with
    the Relu before: residual) → Add(constant: not quantised) → GlobalAveragePool →
    Flatten → Gemm(transB) → MatMul(weight) → out (N,6); also MatMul of two activations.
    """
    rng = np.random.default_rng(seed)
    inits = [
        _init(rng, "conv_w", (8, 3, 3, 3)), _init(rng, "conv_b", (8,), 0.1),
        _init(rng, "deconv_w", (8, 4, 2, 2)),       # ConvTranspose: (C_in, C_out/group, kH, kW)
        _init(rng, "proj_w", (4, 8, 1, 1)),
        numpy_helper.from_array(np.array([1.0, 1.0, 0.5, 0.5], np.float32), "half"),
        numpy_helper.from_array(np.full((1, 8, 1, 1), 0.25, np.float32), "offset"),
        _init(rng, "gemm_w", (10, 8)), _init(rng, "gemm_b", (10,), 0.1),
        _init(rng, "mm_w", (10, 6)),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "conv_w", "conv_b"], ["c"], name="conv",
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("ConvTranspose", ["r", "deconv_w"], ["d"], name="deconv",
                         strides=[2, 2]),
        helper.make_node("Relu", ["d"], ["dr"], name="relu_d"),
        helper.make_node("Resize", ["dr", "", "half"], ["down"], name="resize", mode="nearest"),
        helper.make_node("Conv", ["r", "proj_w"], ["p"], name="proj"),
        helper.make_node("Add", ["down", "p"], ["res"], name="residual"),
        helper.make_node("Concat", ["res", "res"], ["cat"], name="concat", axis=1),
        helper.make_node("Add", ["cat", "offset"], ["biased"], name="add_const"),
        helper.make_node("GlobalAveragePool", ["biased"], ["g"], name="pool"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "gemm_w", "gemm_b"], ["h"], name="gemm", transB=1),
        helper.make_node("MatMul", ["h", "mm_w"], ["out"], name="matmul"),
        helper.make_node("Transpose", ["h"], ["ht"], name="transpose", perm=[1, 0]),
        helper.make_node("MatMul", ["ht", "h"], ["gram"], name="matmul_act"),
    ]
    graph = helper.make_graph(
        nodes, "layer_zoo",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 16, 16])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 6]),
         helper.make_tensor_value_info("gram", TensorProto.FLOAT, [10, 10])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def write_images(folder: Path, count: int, size: tuple[int, int] = (48, 64),
                 seed: int = 0, suffix: str = ".png") -> list[Path]:
    """`count` random images (h, w) = size with a few shapes, written with OpenCV."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        image = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
        cv2.rectangle(image, (5, 5), (size[1] // 2, size[0] // 2),
                      tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
        path = folder / f"{index:04d}{suffix}"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths
