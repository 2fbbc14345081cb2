"""ONNX lint: will TensorRT 10.3's ONNX parser take this graph as edgepose means it?

JetPack 6 ships TensorRT 10.3, the oldest TensorRT edgepose builds for, and this
workplace has no TensorRT at all; the lint is what stands in for the parser here.
It checks three things that the parser either rejects or quietly reinterprets:

- every operator is one the 10.3 parser imports (custom domains would need a
  TensorRT plugin that edgepose does not ship), and the opset is within its range;
- only the batch axis (0) of graph inputs and outputs is dynamic, so one
  optimisation profile over the batch describes the whole engine;
- QuantizeLinear/DequantizeLinear are symmetric INT8: the parser turns a UINT8
  zero point into INT8 (with only a warning) and requires zero points of 0, so any
  other form would run differently in TensorRT than in ONNX Runtime, our reference.

Findings carry a severity: "error" blocks a build, "info" records a fact worth
seeing (the axis of each per-channel Q/DQ).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np
import onnx
from onnx import numpy_helper

from edgepose.errors import LintError
from export.onnx_files.card import load_onnx

log = logging.getLogger(__name__)

# The operators marked "Y" in onnx/onnx-tensorrt docs/operators.md at tag 10.1-GA
# (commit 96e781103cfc4adf4a6bb557e94bac8e693f6f4c). The project's Changelog lists no
# operator added or removed in 10.2 GA (GRU/Squeeze importer changes) or 10.3 GA
# (tensor `axes` for Slice, ScatterElements plugin update), so this is 10.3's set.
# Newer parsers add operators (e.g. BlackmanWindow/HannWindow in 10.4, STFT in 10.5,
# Attention in 10.14) that a Jetson on JetPack 6 cannot import: do not extend this
# list from a newer operators.md.
TENSORRT_10_3_ONNX_OPS: frozenset[str] = frozenset({
    "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan",
    "Atanh", "AveragePool", "BatchNormalization", "Cast", "CastLike", "Ceil", "Celu",
    "Clip", "Concat", "Constant", "ConstantOfShape", "Conv", "ConvTranspose", "Cos",
    "Cosh", "CumSum", "DeformConv", "DepthToSpace", "DequantizeLinear", "Div", "Dropout",
    "Einsum", "Elu", "Equal", "Erf", "Exp", "Expand", "EyeLike", "Flatten", "Floor",
    "Gather", "GatherElements", "GatherND", "Gelu", "Gemm", "GlobalAveragePool",
    "GlobalLpPool", "GlobalMaxPool", "Greater", "GreaterOrEqual", "GridSample",
    "GroupNormalization", "GRU", "HardSigmoid", "HardSwish", "Hardmax", "Identity", "If",
    "ImageScaler", "InstanceNormalization", "IsInf", "IsNaN", "LayerNormalization",
    "LeakyRelu", "Less", "LessOrEqual", "Log", "LogSoftmax", "Loop", "LRN", "LSTM",
    "LpNormalization", "LpPool", "MatMul", "Max", "MaxPool", "Mean",
    "MeanVarianceNormalization", "Min", "Mish", "Mod", "Mul", "Neg", "NonMaxSuppression",
    "NonZero", "Not", "OneHot", "Or", "Pad", "ParametricSoftplus", "Pow", "PRelu",
    "QuantizeLinear", "RandomNormal", "RandomNormalLike", "RandomUniform",
    "RandomUniformLike", "Range", "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum",
    "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum",
    "ReduceSumSquare", "Relu", "Reshape", "Resize", "ReverseSequence", "RNN", "RoiAlign",
    "Round", "ScaledTanh", "Scan", "Scatter", "ScatterElements", "ScatterND", "Selu",
    "Shape", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Size", "Slice", "Softmax",
    "Softplus", "Softsign", "SpaceToDepth", "Split", "Sqrt", "Squeeze", "Sub", "Sum", "Tan",
    "Tanh", "ThresholdedRelu", "Tile", "TopK", "Transpose", "Trilu", "Unsqueeze",
    "Upsample", "Where", "Xor",
})

# Same operators.md: "TensorRT 10.0 supports operators in the inclusive range of opset
# 9 to opset 20"; no 10.x Changelog entry up to 10.3 widens it.
MIN_OPSET = 9
MAX_OPSET = 20

# Operators outside the default domain reach TensorRT only as plugins found in its
# registry at build time. edgepose ships no plugin, so none is known to be safe;
# add (domain, op_type) here only together with the plugin that implements it.
KNOWN_SAFE_CUSTOM_OPS: frozenset[tuple[str, str]] = frozenset()

DEFAULT_DOMAINS = ("", "ai.onnx")
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")

ERROR = "error"
INFO = "info"


@dataclass(frozen=True)
class LintFinding:
    """One lint result.

    node/op_type name the node ("" for graph-level findings such as the opset or a
    graph input); tensor names the tensor concerned, when there is one; axis is the
    quantisation axis of a per-channel Q/DQ.
    """

    node: str
    op_type: str
    rule: str
    message: str
    severity: str = ERROR
    tensor: str = ""
    axis: int | None = None

    def __str__(self) -> str:
        where = f"node {self.node!r} ({self.op_type})" if self.node or self.op_type else "graph"
        return f"{where} [{self.rule}]: {self.message}"


def lint_onnx(model: onnx.ModelProto | str | Path) -> list[LintFinding]:
    """Every finding for `model` (a ModelProto or the path of an ONNX file), errors and info."""
    model = _load(model)
    try:
        # Types of intermediate tensors tell whether a DequantizeLinear reads INT8.
        typed = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - inference fails on >2 GB or odd models; lint without it
        typed = model
    findings: list[LintFinding] = []
    findings += _check_opset(typed)
    findings += _check_io_axes(model.graph)  # as declared: inference may rewrite outputs
    constants = _constants(typed)
    types = _tensor_types(typed)
    for node in _nodes(typed):
        findings += _check_operator(node)
        if node.domain in DEFAULT_DOMAINS and node.op_type in QDQ_OPS:
            findings += _check_qdq(node, constants, types)
    return findings


def check_onnx_for_tensorrt(model: onnx.ModelProto | str | Path, *,
                            source: str | Path | None = None) -> None:
    """Raise LintError listing every error finding; log the info findings.

    source: what the messages call the graph (the builder lints a tidied copy of a file
    and names the file); by default the path, or "the ONNX graph" for a ModelProto.
    """
    if source is None:
        source = model if isinstance(model, (str, Path)) else "the ONNX graph"
    source = str(source)
    findings = lint_onnx(model)
    for finding in findings:
        if finding.severity == INFO:
            log.debug("%s: %s", source, finding)
    errors = [f for f in findings if f.severity == ERROR]
    if errors:
        raise LintError(source, errors)


def _load(model: onnx.ModelProto | str | Path) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    return load_onnx(model)


def _check_opset(model: onnx.ModelProto) -> list[LintFinding]:
    versions = [o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS]
    if not versions:
        return [LintFinding("", "", "opset", "the model imports no default-domain opset; "
                            f"expected one between {MIN_OPSET} and {MAX_OPSET}")]
    version = max(versions)
    if not MIN_OPSET <= version <= MAX_OPSET:
        nearest = min(max(version, MIN_OPSET), MAX_OPSET)
        return [LintFinding(
            "", "", "opset",
            f"default-domain opset is {version}; TensorRT 10.3's parser supports opset "
            f"{MIN_OPSET} to {MAX_OPSET}: re-export with opset_version={nearest} "
            "(edgepose exports opset 17 by default)")]
    return []


def _check_io_axes(graph: onnx.GraphProto) -> list[LintFinding]:
    initializers = {i.name for i in graph.initializer}
    findings = []
    values = [("input", v) for v in graph.input if v.name not in initializers]
    values += [("output", v) for v in graph.output]
    for kind, value in values:
        if not value.type.HasField("tensor_type"):
            findings.append(LintFinding("", "", "io-type", f"graph {kind} {value.name!r} is not a "
                                        "tensor; TensorRT engines take and return tensors only",
                                        tensor=value.name))
            continue
        if not value.type.tensor_type.HasField("shape"):
            findings.append(LintFinding("", "", "unknown-shape",
                                        f"graph {kind} {value.name!r} has no shape; expected a "
                                        "rank and fixed sizes on every axis but the batch (0)",
                                        tensor=value.name))
            continue
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if axis == 0 or (dim.HasField("dim_value") and dim.dim_value > 0):
                continue
            label = repr(dim.dim_param) if dim.dim_param else "unnamed"
            findings.append(LintFinding(
                "", "", "dynamic-axis",
                f"graph {kind} {value.name!r} axis {axis} is dynamic ({label}); only the batch "
                "axis (0) may be dynamic: re-export with fixed sizes on the other axes",
                tensor=value.name, axis=axis))
    return findings


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """`graph` and every subgraph of If/Loop/Scan nodes inside it."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for sub in attribute.graphs:
                    yield from _graphs(sub)


def _nodes(model: onnx.ModelProto) -> Iterator[onnx.NodeProto]:
    """Every node the parser imports: the graph, its subgraphs and the local functions used."""
    functions = {(f.domain, f.name): f for f in model.functions}
    seen: set[tuple[str, str]] = set()

    def expand(nodes) -> Iterator[onnx.NodeProto]:
        for node in nodes:
            key = (node.domain, node.op_type)
            if key in functions:
                # The parser inlines local functions, so their bodies are what it imports.
                if key not in seen:
                    seen.add(key)
                    yield from expand(functions[key].node)
                continue
            yield node

    for graph in _graphs(model.graph):
        yield from expand(graph.node)


def _check_operator(node: onnx.NodeProto) -> list[LintFinding]:
    name = node.name or "<unnamed>"
    if node.domain in DEFAULT_DOMAINS:
        if node.op_type in TENSORRT_10_3_ONNX_OPS:
            return []
        return [LintFinding(name, node.op_type, "unsupported-op",
                            f"{node.op_type} is not supported by TensorRT 10.3's ONNX parser "
                            "(onnx-tensorrt operators.md): replace it in the model or export it "
                            "as supported operators")]
    if (node.domain, node.op_type) in KNOWN_SAFE_CUSTOM_OPS:
        return []
    # Detector exporters end in EfficientNMS_TRT: a plugin TensorRT 11 deprecates.
    hint = (" (for NMS, ONNX NonMaxSuppression, which TensorRT builds into its own NMS layer)"
            if "nms" in node.op_type.lower() else "")
    return [LintFinding(name, node.op_type, "custom-domain",
                        f"operator {node.domain}::{node.op_type} is outside the ONNX default "
                        "domain; TensorRT would need a plugin for it, and edgepose ships none: "
                        f"export it as standard ONNX operators{hint}")]


def _constants(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Values of initializers and Constant-node outputs, across the graph and its subgraphs."""
    values: dict[str, np.ndarray] = {}
    for graph in _graphs(model.graph):
        for initializer in graph.initializer:
            values[initializer.name] = numpy_helper.to_array(initializer)
        for node in graph.node:
            if node.op_type != "Constant" or node.domain not in DEFAULT_DOMAINS or not node.output:
                continue
            for attribute in node.attribute:
                if attribute.name == "value" and attribute.type == onnx.AttributeProto.TENSOR:
                    values[node.output[0]] = numpy_helper.to_array(attribute.t)
                elif attribute.name in ("value_float", "value_floats", "value_int", "value_ints"):
                    values[node.output[0]] = np.asarray(onnx.helper.get_attribute_value(attribute))
    return values


def _tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    """ONNX element type (TensorProto.DataType) of every tensor whose type is known."""
    types: dict[str, int] = {}
    for graph in _graphs(model.graph):
        for value in (*graph.input, *graph.output, *graph.value_info):
            if value.type.HasField("tensor_type") and value.type.tensor_type.elem_type:
                types[value.name] = value.type.tensor_type.elem_type
        for initializer in graph.initializer:
            types[initializer.name] = initializer.data_type
        for node in graph.node:
            if node.op_type == "Constant" and node.output:
                for attribute in node.attribute:
                    if attribute.name == "value" and attribute.type == onnx.AttributeProto.TENSOR:
                        types[node.output[0]] = attribute.t.data_type
    return types


def _input(node: onnx.NodeProto, index: int) -> str:
    return node.input[index] if len(node.input) > index else ""


def _check_qdq(node: onnx.NodeProto, constants: Mapping[str, np.ndarray],
               types: Mapping[str, int]) -> list[LintFinding]:
    name = node.name or "<unnamed>"

    def finding(rule: str, message: str, **kw) -> LintFinding:
        return LintFinding(name, node.op_type, rule, message, **kw)

    findings = []
    scale_name, zero_name = _input(node, 1), _input(node, 2)
    scale = constants.get(scale_name)
    if scale is None:
        findings.append(finding("qdq-scale", f"scale {scale_name!r} is not a constant; TensorRT's "
                                "Q/DQ needs initializer scales: fold it into an initializer",
                                tensor=scale_name))
    elif scale.size == 0 or not np.all(np.isfinite(scale)) or not np.all(scale > 0):
        bad = scale[~(np.isfinite(scale) & (scale > 0))] if scale.size else scale
        findings.append(finding("qdq-scale", f"scale {scale_name!r} must be finite and positive; "
                                f"got {bad.ravel()[:4].tolist()} among {scale.size} value(s): "
                                "recalibrate", tensor=scale_name))

    if zero_name:
        zero_type = types.get(zero_name)
        zero = constants.get(zero_name)
        if zero_type is not None and zero_type != onnx.TensorProto.INT8:
            findings.append(finding(
                "qdq-zero-point-type",
                f"zero point {zero_name!r} is {onnx.TensorProto.DataType.Name(zero_type)}; "
                "expected INT8 (TensorRT quantises to INT8 only and reads a UINT8 zero point as "
                "INT8, so ONNX Runtime and TensorRT would disagree): write symmetric INT8 Q/DQ",
                tensor=zero_name))
        if zero is None:
            findings.append(finding("qdq-zero-point",
                                    f"zero point {zero_name!r} is not a constant; expected an "
                                    "INT8 initializer of zeros", tensor=zero_name))
        elif np.any(zero != 0):
            findings.append(finding(
                "qdq-zero-point",
                f"zero point {zero_name!r} has non-zero values {np.unique(zero).tolist()[:4]}; "
                "TensorRT supports symmetric quantisation only (zero point 0): recalibrate "
                "symmetrically", tensor=zero_name))
    elif node.op_type == "QuantizeLinear":
        output_dtype = next((a.i for a in node.attribute if a.name == "output_dtype"), 0)
        if output_dtype != onnx.TensorProto.INT8:
            findings.append(finding(
                "qdq-zero-point-type",
                "QuantizeLinear has no zero point, so ONNX quantises to UINT8 while TensorRT "
                "quantises to INT8: add an INT8 zero-point initializer of 0"))
    else:
        data_type = types.get(_input(node, 0))
        if data_type is not None and data_type != onnx.TensorProto.INT8:
            findings.append(finding(
                "qdq-zero-point-type",
                f"DequantizeLinear reads {onnx.TensorProto.DataType.Name(data_type)} "
                f"{_input(node, 0)!r}; expected INT8 (symmetric INT8 Q/DQ only)",
                tensor=_input(node, 0)))

    if scale is not None and scale.ndim == 1 and scale.size > 1:
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        zero = constants.get(zero_name) if zero_name else None
        if zero is not None and zero.shape != scale.shape:
            findings.append(finding("qdq-scale", f"per-channel scale has shape {scale.shape} but "
                                    f"zero point has {zero.shape}; expected equal shapes",
                                    tensor=zero_name, axis=axis))
        findings.append(finding("qdq-per-channel",
                                f"per-channel over axis {axis} ({scale.size} channels)",
                                severity=INFO, tensor=_input(node, 0), axis=axis))
    return findings
