"""Graph hygiene before the TensorRT lint and build, done by ONNX GraphSurgeon and ONNX.

TensorRT's parser folds constants and drops dead nodes itself, but only after the lint
has looked at the graph: a Q/DQ scale computed from constants, or an unsupported
operator on a constant-only branch, would be refused by the lint and accepted by the
build. `tidy_for_tensorrt` therefore does that work first, with the maintained tools
(GraphSurgeon's fold_constants and cleanup, ONNX's shape inference), and the
lint and the parser both read its result.

Kept as they were: the model card and every other metadata entry, the opset imports,
the IR version, and the graph's inputs and outputs as declared (names, order, types,
shapes; shape inference would otherwise write its own output shapes over them, and the
lint checks the declared ones). Q/DQ nodes are never folded (GraphSurgeon excludes
them), so INT8 weights stay INT8 behind their DequantizeLinear.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import onnx

from edgepose import _optional
from edgepose.errors import ModelFileError
from edgepose.io import scratch_folder
from export.onnx_files.card import load_onnx

log = logging.getLogger(__name__)

# Protobuf refuses to serialise a message of 2 GiB or more in one piece.
_PROTOBUF_LIMIT = 2**31 - 1


def graphsurgeon() -> Any:
    return _optional.import_optional("onnx_graphsurgeon", "export",
                                     "Tidying ONNX graphs before a TensorRT build")


@dataclass(frozen=True)
class Tidied:
    """The tidied graph and what changed: node counts before and after, and whether the
    nodes or weights differ (a reordering or new value_info alone does not count)."""

    model: onnx.ModelProto
    nodes_before: int
    nodes_after: int
    changed: bool


def tidy_for_tensorrt(model: onnx.ModelProto) -> Tidied:
    """A tidied copy of `model`: constants folded, unused nodes and weights removed, shapes
    inferred (value_info). `model` itself is not modified."""
    gs = graphsurgeon()
    # GraphSurgeon's graph shares the protos it imports and writes names into them
    # (fold_constants names the tensor of every Constant node), so it gets a copy.
    source = onnx.ModelProto()
    source.CopyFrom(model)
    graph = gs.import_onnx(source)
    # error_ok: a node ONNX Runtime cannot evaluate is left unfolded; the graph stays
    # valid either way.
    graph.fold_constants(error_ok=True)
    graph.cleanup(remove_unused_graph_inputs=False)
    # No graph.toposort(): the node order of a valid graph stays valid when nodes are
    # removed or folded, and GraphSurgeon's sort misses what If/Loop bodies read from the
    # outer graph (it put an If before the producer of such a tensor, onnx-graphsurgeon
    # 0.6.1), turning a valid order into an invalid one.
    exported = gs.export_onnx(graph, do_type_check=False)
    tidied = _with_model_fields(exported, model)
    tidied = _infer_shapes(tidied)
    _restore_io(tidied.graph, model.graph)
    before, after = len(model.graph.node), len(tidied.graph.node)
    return Tidied(tidied, before, after, _differs(model.graph, tidied.graph))


def _with_model_fields(exported: onnx.ModelProto, source: onnx.ModelProto) -> onnx.ModelProto:
    """`exported`'s graph and functions with every model-level field of `source`: GraphSurgeon
    drops metadata_props (the card) and writes opset imports of its own."""
    result = onnx.ModelProto()
    result.graph.CopyFrom(exported.graph)
    for field in ("ir_version", "producer_name", "producer_version", "domain", "model_version",
                  "doc_string"):
        setattr(result, field, getattr(source, field))
    result.opset_import.extend(source.opset_import)
    result.metadata_props.extend(source.metadata_props)
    result.training_info.extend(source.training_info)
    result.functions.extend(exported.functions)
    return result


def _infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # noqa: BLE001 - inference fails on >2 GB or odd models
        log.debug("shape inference skipped: %s", exc)
        return model


def _restore_io(graph: onnx.GraphProto, declared: onnx.GraphProto) -> None:
    """Put the declared graph inputs and outputs back, in their order."""
    outputs = [v.name for v in graph.output]
    if outputs != [v.name for v in declared.output]:
        raise ModelFileError(f"graph outputs changed while tidying the graph for TensorRT: "
                             f"{[v.name for v in declared.output]} became {outputs}")
    # Initializers that old IR versions also list as inputs may have been folded away.
    present = {v.name for v in graph.input} | {i.name for i in graph.initializer}
    del graph.input[:], graph.output[:]
    graph.input.extend(v for v in declared.input if v.name in present)
    graph.output.extend(declared.output)


def _differs(before: onnx.GraphProto, after: onnx.GraphProto) -> bool:
    def signature(graph: onnx.GraphProto) -> tuple[Any, ...]:
        nodes = sorted((n.op_type, tuple(n.input), tuple(n.output)) for n in graph.node)
        weights = sorted((i.name, i.data_type, tuple(i.dims)) for i in graph.initializer)
        return tuple(nodes), tuple(weights)

    return signature(before) != signature(after)


@contextlib.contextmanager
def tidied_onnx_file(path: str | Path,
                     beside: str | Path) -> Iterator[tuple[Path, onnx.ModelProto]]:
    """(file to build from, its graph): `path` itself when tidying changes nothing, else a
    tidied copy in a scratch folder beside `beside`, removed on exit. `path` is never
    rewritten."""
    path = Path(path)
    tidied = tidy_for_tensorrt(load_onnx(path))
    if not tidied.changed:
        yield path, tidied.model
        return
    log.info("tidied %s for TensorRT: %d nodes → %d (constants folded, unused nodes "
             "removed)", path, tidied.nodes_before, tidied.nodes_after)
    with scratch_folder(beside, "build") as folder:
        copy = folder / path.name
        _save(tidied.model, copy)
        yield copy, tidied.model


def _save(model: onnx.ModelProto, path: Path) -> None:
    try:
        large = model.ByteSize() > _PROTOBUF_LIMIT
    except (ValueError, OverflowError):  # some protobuf builds overflow computing it
        large = True
    if large:
        onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                  location=path.name + ".data")
    else:
        onnx.save(model, str(path))
