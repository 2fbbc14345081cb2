"""FP16 graphs for strongly typed TensorRT networks, and their FP16 emulation on the CPU.

TensorRT 11 has no FP16 builder flag: a network runs in FP16 where its graph says
FP16. `convert_to_fp16` writes that graph: weights and activations in FP16, the
graph inputs and outputs kept FP32 with Casts at the boundary, and the nodes listed
in `keep_fp32` left in FP32 between Casts. The conversion itself is ONNX Runtime's
maintained converter (onnxruntime.transformers.float16.convert_float_to_float16,
which knows, for example, that Resize's `scales` stay FP32); edgepose adds the
range test (`find_overflows`: nodes whose tensors exceed ±65504 on the calibration
data stay FP32), sorts the nodes the converter appends, and checks the result.

Measuring FP16 accuracy on the CPU. ONNX Runtime's CPU provider (1.32 on x86-64)
has no FP16 kernels for Conv, Relu, Add or Resize; its InsertCastTransformer runs
such nodes in FP32 between inserted Casts, and RemoveDuplicateCastTransformer then
drops the inserted Cast pairs between consecutive FP32 nodes. The graph so runs in
FP32 with FP16-rounded weights only: on a random-init HRNet-W8 its output equals,
bit for bit, that of the FP32 graph with rounded weights, and it misses the
activation rounding that TensorRT's FP16 layers do. Reports therefore run
`emulate_fp16(graph)`: the same graph in FP32 with every FP16 initializer widened
exactly and every tensor the graph stores in FP16 rounded through Cast(FP16) →
Cast(FP32) where it is produced. Each node computes in FP32 (as TensorRT's FP16
kernels accumulate in FP32) on FP16 values and its outputs are rounded to FP16.
Rounding after every node is slightly pessimistic: TensorRT fuses Conv+ReLU(+Add)
and rounds once per fused layer.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgepose.errors import Fp16Error

log = logging.getLogger(__name__)

FP16_MAX = 65504.0
#: Suffixes of the tensors emulate_fp16 adds around each rounding.
_UNROUNDED, _HALF = "__fp32_unrounded", "__fp16"


@dataclass(frozen=True)
class Overflow:
    """A node kept in FP32 because `tensor`, one of its inputs or outputs, exceeds FP16."""

    node: str
    op_type: str
    tensor: str
    absmax: float

    def to_dict(self) -> dict[str, object]:
        return {"node": self.node, "op_type": self.op_type, "tensor": self.tensor,
                "absmax": float(self.absmax)}


def find_overflows(model: onnx.ModelProto, absmax: Mapping[str, float],
                   limit: float = FP16_MAX) -> tuple[Overflow, ...]:
    """Nodes that must stay FP32: each reads or writes a tensor with |x| > limit.

    absmax: tensor name → largest |x| on the calibration data (activations); the
    weights are read from the graph. The producer of an overflowing tensor and every
    consumer of it are listed (a consumer in FP16 would read a Cast to inf).
    """
    magnitudes = {name: float(value) for name, value in absmax.items()}
    for initializer in model.graph.initializer:
        if initializer.data_type == TensorProto.FLOAT:
            array = numpy_helper.to_array(initializer)
            if array.size:
                magnitudes[initializer.name] = float(np.max(np.abs(array)))
    found: dict[str, Overflow] = {}
    for node in model.graph.node:
        for tensor in (*node.input, *node.output):
            value = magnitudes.get(tensor)
            if tensor and value is not None and not value <= limit:
                if node.name not in found:
                    found[node.name] = Overflow(node.name, node.op_type, tensor, value)
    return tuple(found.values())


def _reads(node: onnx.NodeProto) -> set[str]:
    """Tensors a node reads: its inputs and what its subgraphs take from the outer scope."""
    names = set(node.input)
    for attribute in node.attribute:
        graphs = [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else \
            list(attribute.graphs)
        for sub in graphs:
            inner = {i.name for i in sub.initializer} | {v.name for v in sub.input}
            for child in sub.node:
                names |= _reads(child) - inner
                inner.update(child.output)
    return names


def sort_nodes(graph: onnx.GraphProto) -> None:
    """Topological order, keeping the given order where it is already valid.

    Not onnx-graphsurgeon's Graph.toposort: it regroups nodes by depth even where the order
    is valid, ignores what If/Loop bodies read from the outer graph (0.6.1 leaves an If
    before the producer of such a tensor), and passes reads of undefined tensors silently.
    """
    known = {v.name for v in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = [(node, _reads(node)) for node in graph.node]
    ordered: list[onnx.NodeProto] = []
    while pending:
        waiting = []
        for node, reads in pending:
            if reads <= known:
                ordered.append(node)
                known.update(node.output)
            else:
                waiting.append((node, reads))
        if len(waiting) == len(pending):
            missing = sorted({n for _, reads in pending for n in reads if n not in known})
            raise Fp16Error(f"the graph has a cycle or reads undefined tensors {missing[:3]}")
        pending = waiting
    del graph.node[:]
    graph.node.extend(ordered)


def _node_names(model: onnx.ModelProto) -> None:
    """Name unnamed nodes: the converter's node_block_list and our lists go by name."""
    used = {n.name for n in model.graph.node if n.name}
    for index, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{index}"
            while name in used:
                name += "_"
            node.name = name
            used.add(name)


def _cast_to(node: onnx.NodeProto) -> int | None:
    if node.op_type != "Cast":
        return None
    return next((a.i for a in node.attribute if a.name == "to"), None)


def _tidy_casts(model: onnx.ModelProto) -> None:
    """Undo two things the converter does that an FP16 graph for TensorRT should not hold.

    - Casts of constants (Resize's FP32 `scales` stored FP16 and cast back): folded
      into FP32 initializers.
    - FP32 → FP16 → FP32 round trips between two nodes kept in FP32 (the converter
      casts every kept node's outputs to FP16): the FP32 reader takes the FP32 tensor.
      An overflowing tensor would otherwise turn into inf exactly where keeping its
      nodes FP32 was meant to prevent it.
    """
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    outputs = {o.name for o in graph.output}
    types = {v.name: v.type.tensor_type.elem_type
             for v in (*graph.input, *onnx.shape_inference.infer_shapes(model).graph.value_info)}
    producer = {o: n for n in graph.node for o in n.output}
    rename: dict[str, str] = {}
    drop: set[int] = set()
    for node in graph.node:
        to = _cast_to(node)
        source = node.input[0] if node.input else ""
        if to is not None and source in initializers and node.output[0] not in outputs:
            array = numpy_helper.to_array(initializers[source])
            target = onnx.helper.tensor_dtype_to_np_dtype(to)
            graph.initializer.append(numpy_helper.from_array(array.astype(target), node.output[0]))
            drop.add(id(node))
            continue
        upstream = producer.get(source)
        if to == TensorProto.FLOAT and upstream is not None and \
                _cast_to(upstream) == TensorProto.FLOAT16 and \
                types.get(upstream.input[0]) == TensorProto.FLOAT:
            if node.output[0] in outputs:
                node.op_type = "Identity"
                del node.attribute[:]
                node.input[0] = upstream.input[0]
            else:
                rename[node.output[0]] = upstream.input[0]
                drop.add(id(node))
    kept = [n for n in graph.node if id(n) not in drop]
    for node in kept:
        for position, name in enumerate(node.input):
            node.input[position] = rename.get(name, name)
    while True:
        used = {name for n in kept for name in n.input} | outputs
        dead = [n for n in kept if _cast_to(n) is not None and n.output[0] not in used]
        if not dead:
            break
        kept = [n for n in kept if n not in dead]
    del graph.node[:]
    graph.node.extend(kept)
    used = {name for n in graph.node for name in n.input}
    live = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(live)


def convert_to_fp16(model: onnx.ModelProto, keep_fp32: Iterable[str] = ()) -> onnx.ModelProto:
    """The FP16 graph of an FP32 `model`: I/O stay FP32, nodes in keep_fp32 stay FP32.

    Works on graphs with Q/DQ too: their scales become FP16, which needs opset 19 or
    later (the caller converts first). Metadata (the card) is carried over.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    source = copy.deepcopy(model)
    _node_names(source)
    keep = sorted(set(keep_fp32))
    unknown = sorted(set(keep) - {n.name for n in source.graph.node})
    if unknown:
        raise Fp16Error(f"nodes {unknown[:3]} to keep in FP32 are not in the graph")
    converted = convert_float_to_float16(source, keep_io_types=True, node_block_list=keep,
                                         disable_shape_infer=False)
    sort_nodes(converted.graph)
    # The converter leaves stale value_info (FP32 types of tensors now FP16); types are
    # re-inferred by whoever needs them.
    del converted.graph.value_info[:]
    _tidy_casts(converted)
    kept_props = {p.key: p.value for p in model.metadata_props}
    del converted.metadata_props[:]
    for key, value in kept_props.items():
        converted.metadata_props.add(key=key, value=value)
    for value in (*converted.graph.input, *converted.graph.output):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT16:
            raise Fp16Error(f"graph input/output {value.name!r} became FP16; edgepose keeps "
                            "graph I/O in FP32")
    onnx.checker.check_model(converted)
    return converted


def has_fp16(model: onnx.ModelProto) -> bool:
    """Whether the graph stores anything in FP16 (initializers, Casts, constants)."""
    if any(i.data_type == TensorProto.FLOAT16 for i in model.graph.initializer):
        return True
    for node in model.graph.node:
        for attribute in node.attribute:
            if node.op_type == "Cast" and attribute.name == "to" and \
                    attribute.i == TensorProto.FLOAT16:
                return True
            if attribute.type == onnx.AttributeProto.TENSOR and \
                    attribute.t.data_type == TensorProto.FLOAT16:
                return True
    return False


def _widen(tensor: onnx.TensorProto) -> onnx.TensorProto:
    array = numpy_helper.to_array(tensor).astype(np.float32)
    return numpy_helper.from_array(array, tensor.name)


def emulate_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """An FP32 graph that computes what `model` computes with its FP16 storage.

    FP16 initializers and constants are widened exactly; every tensor `model` holds
    in FP16 is rounded through Cast(FP16) → Cast(FP32) where it is produced; Casts to
    FP16 become roundings. Graphs without FP16 come back unchanged (a copy).
    """
    if not has_fp16(model):
        return copy.deepcopy(model)
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type
             for v in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output)
             if v.type.HasField("tensor_type")}
    for initializer in model.graph.initializer:
        types[initializer.name] = initializer.data_type

    emulated = copy.deepcopy(model)
    graph = emulated.graph
    for index, initializer in enumerate(graph.initializer):
        if initializer.data_type == TensorProto.FLOAT16:
            graph.initializer[index].CopyFrom(_widen(initializer))
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.TENSOR and \
                    attribute.t.data_type == TensorProto.FLOAT16:
                attribute.t.CopyFrom(_widen(attribute.t))
            if node.op_type == "Cast" and attribute.name == "to" and \
                    attribute.i == TensorProto.FLOAT16:
                attribute.i = TensorProto.FLOAT
        rounded = []
        for position, output in enumerate(node.output):
            if output and types.get(output) == TensorProto.FLOAT16:
                node.output[position] = output + _UNROUNDED
                rounded.append(output)
        nodes.append(node)
        for output in rounded:
            nodes.append(helper.make_node("Cast", [output + _UNROUNDED], [output + _HALF],
                                          to=TensorProto.FLOAT16,
                                          name=f"{output}__round_to_fp16"))
            nodes.append(helper.make_node("Cast", [output + _HALF], [output],
                                          to=TensorProto.FLOAT, name=f"{output}__widen"))
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]
    onnx.checker.check_model(emulated)
    return emulated
