"""Graph hygiene before the TensorRT lint and build: folded, cleaned, and otherwise the same."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

pytest.importorskip("onnx_graphsurgeon")
ort = pytest.importorskip("onnxruntime")

from calib.fp16 import convert_to_fp16  # noqa: E402
from calib.int8 import measure_ranges, quantizable_layers, write_int8  # noqa: E402
from export.onnx_files.hygiene import tidied_onnx_file, tidy_for_tensorrt  # noqa: E402
from export.onnx_files.lint import lint_onnx  # noqa: E402
from tests.calib.tiny import OPSET, layer_zoo, tiny_pose  # noqa: E402

QDQ = ("QuantizeLinear", "DequantizeLinear")


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _inputs(shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _assert_same_on_ort(before: onnx.ModelProto, after: onnx.ModelProto,
                        feeds: dict[str, np.ndarray], *, exact: bool = True) -> None:
    expected, got = _run(before, feeds), _run(after, feeds)
    assert len(expected) == len(got)
    for e, g in zip(expected, got):
        if exact:
            np.testing.assert_array_equal(g, e)
        else:
            # Folding evaluates constants in ORT up front: same values, but float order
            # of a folded Mul/Div can move the last bit.
            np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-7)


def _kept_as_declared(before: onnx.ModelProto, after: onnx.ModelProto) -> None:
    assert list(after.metadata_props) == list(before.metadata_props)
    assert list(after.opset_import) == list(before.opset_import)
    assert after.ir_version == before.ir_version
    assert list(after.graph.input) == list(before.graph.input)
    assert list(after.graph.output) == list(before.graph.output)


def _untidy_pose() -> onnx.ModelProto:
    """tiny_pose with hygiene work to do: the first Conv's weights computed as
    Mul(w1_half, 2) from a Constant node, and a dead branch (Sigmoid → Neg) off relu1."""
    model = tiny_pose()
    graph = model.graph
    w1 = next(i for i in graph.initializer if i.name == "w1")
    half = numpy_helper.from_array(numpy_helper.to_array(w1) / 2, "w1_half")
    graph.initializer.remove(w1)
    graph.initializer.append(half)
    extra = [
        helper.make_node("Constant", [], ["two"], name="two",
                         value=numpy_helper.from_array(np.array(2.0, np.float32))),
        helper.make_node("Mul", ["w1_half", "two"], ["w1"], name="double_w1"),
    ]
    dead = [helper.make_node("Sigmoid", ["r1"], ["unused_a"], name="dead_sigmoid"),
            helper.make_node("Neg", ["unused_a"], ["unused_b"], name="dead_neg")]
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend([*extra, nodes[0], nodes[1], *dead, *nodes[2:]])
    graph.initializer.append(numpy_helper.from_array(np.ones(3, np.float32), "unused_weight"))
    onnx.checker.check_model(model)
    return model


def test_clean_demo_graphs_come_back_unchanged_and_equal():
    for model, shape in ((tiny_pose(), (2, 3, 32, 24)), (layer_zoo(), (2, 3, 16, 16))):
        tidied = tidy_for_tensorrt(model)
        assert not tidied.changed
        assert tidied.nodes_before == tidied.nodes_after == len(model.graph.node)
        _kept_as_declared(model, tidied.model)
        _assert_same_on_ort(model, tidied.model, {"input": _inputs(shape)})
        onnx.checker.check_model(tidied.model)


def test_constants_are_folded_and_dead_nodes_removed():
    model = _untidy_pose()
    before = onnx.ModelProto()
    before.CopyFrom(model)
    tidied = tidy_for_tensorrt(model)
    assert model == before                       # the argument is not modified
    assert tidied.changed
    ops = [n.op_type for n in tidied.model.graph.node]
    assert len(model.graph.node) == 10 and tidied.nodes_before == 10
    assert tidied.nodes_after == len(ops) == 6    # Constant, Mul, Sigmoid, Neg gone
    assert ops == [n.op_type for n in tiny_pose().graph.node]
    names = {i.name for i in tidied.model.graph.initializer}
    assert "w1" in names                          # the folded weight, under its tensor name
    assert not names & {"w1_half", "unused_weight"}
    _kept_as_declared(model, tidied.model)
    _assert_same_on_ort(model, tidied.model, {"input": _inputs((3, 3, 32, 24))}, exact=False)
    assert tidied.model.graph.value_info          # shapes inferred for the builder
    onnx.checker.check_model(tidied.model)


def test_the_card_survives(tmp_path):
    model = _untidy_pose()
    assert [p.key for p in model.metadata_props] == ["edgepose"]
    model.metadata_props.add(key="other", value="kept too")
    tidied = tidy_for_tensorrt(model).model
    assert [(p.key, p.value) for p in tidied.metadata_props] == \
        [(p.key, p.value) for p in model.metadata_props]


@pytest.mark.parametrize("fallback", ["fp32", "fp16"])
def test_qdq_graphs_keep_every_qdq_and_their_int8_weights(fallback):
    model = layer_zoo()
    inputs = _inputs((8, 3, 16, 16))
    ranges = measure_ranges(model, "input", inputs, layers=quantizable_layers(model))
    qdq = write_int8(model, ranges.ranges("entropy"), fallback=fallback)
    tidied = tidy_for_tensorrt(qdq).model
    count = lambda m: sum(n.op_type in QDQ for n in m.graph.node)  # noqa: E731
    assert count(tidied) == count(qdq) > 0
    int8 = lambda m: sorted(i.name for i in m.graph.initializer  # noqa: E731
                            if i.data_type == TensorProto.INT8)
    assert int8(tidied) == int8(qdq) and int8(qdq)
    _kept_as_declared(qdq, tidied)
    _assert_same_on_ort(qdq, tidied, {"input": inputs})


def test_fp16_graph_is_kept_as_converted():
    fp16 = convert_to_fp16(tiny_pose())
    tidied = tidy_for_tensorrt(fp16)
    assert not tidied.changed
    _kept_as_declared(fp16, tidied.model)
    _assert_same_on_ort(fp16, tidied.model, {"input": _inputs((2, 3, 32, 24))})


def test_subgraph_reads_from_the_outer_graph_keep_their_producer():
    """If bodies read `b` from the outer graph: cleanup must not drop its producer, and the
    order must stay valid (GraphSurgeon's toposort misses such reads, so none is run)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    c = helper.make_tensor_value_info("c", TensorProto.BOOL, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])

    def branch(op, out):
        return helper.make_graph([helper.make_node(op, ["b"], [out])], out, [],
                                 [helper.make_tensor_value_info(out, TensorProto.FLOAT, [2])])

    nodes = [helper.make_node("Relu", ["x"], ["b"], name="relu"),
             helper.make_node("Abs", ["x"], ["dead"], name="dead"),
             helper.make_node("If", ["c"], ["y"], name="if", then_branch=branch("Identity", "t"),
                              else_branch=branch("Neg", "e"))]
    model = helper.make_model(helper.make_graph(nodes, "g", [x, c], [y]),
                              opset_imports=[helper.make_opsetid("", OPSET)])
    tidied = tidy_for_tensorrt(model).model
    assert [n.name for n in tidied.graph.node] == ["relu", "if"]
    onnx.checker.check_model(tidied)
    for flag in (True, False):
        _assert_same_on_ort(model, tidied, {"x": np.array([1.0, -2.0], np.float32),
                                            "c": np.array(flag)})


def test_a_folded_qdq_scale_is_what_the_lint_and_the_build_see():
    """A scale computed from constants: the lint refuses it as written, the parser (which
    folds) would take it; linting the tidied graph agrees with the build."""
    scale = [helper.make_node("Constant", [], ["s_num"], name="s_num",
                              value=numpy_helper.from_array(np.array(0.2, np.float32))),
             helper.make_node("Constant", [], ["s_den"], name="s_den",
                              value=numpy_helper.from_array(np.array(10.0, np.float32))),
             helper.make_node("Div", ["s_num", "s_den"], ["s"], name="scale")]
    qdq = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="quant"),
           helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dequant")]
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 3, 8, 8])
          for n in ("x", "y")]
    zero = numpy_helper.from_array(np.array(0, np.int8), "z")
    model = helper.make_model(helper.make_graph([*scale, *qdq], "g", io[:1], io[1:], [zero]),
                              opset_imports=[helper.make_opsetid("", OPSET)])
    assert "qdq-scale" in {f.rule for f in lint_onnx(model)}
    tidied = tidy_for_tensorrt(model).model
    assert [n.op_type for n in tidied.graph.node] == list(QDQ)
    assert [f for f in lint_onnx(tidied) if f.severity == "error"] == []
    _assert_same_on_ort(model, tidied, {"x": _inputs((2, 3, 8, 8))})


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_file_on_disk_is_never_rewritten(tmp_path):
    untidy = tmp_path / "untidy.onnx"
    onnx.save(_untidy_pose(), str(untidy))
    digest, mtime = _digest(untidy), untidy.stat().st_mtime_ns
    out = tmp_path / "untidy.engine"
    with tidied_onnx_file(untidy, out) as (path, model):
        assert path != untidy and path.parent.parent == tmp_path   # a scratch copy beside out
        written = onnx.load(str(path))
        assert written.graph == model.graph and len(written.graph.node) == 6
        assert list(written.metadata_props) == list(model.metadata_props)
    assert not path.exists()                      # the scratch copy is gone
    assert (_digest(untidy), untidy.stat().st_mtime_ns) == (digest, mtime)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["untidy.onnx"]


def test_a_tidy_file_is_built_as_it_is(tmp_path):
    tidy = tmp_path / "tidy.onnx"
    onnx.save(tiny_pose(), str(tidy))
    digest = _digest(tidy)
    with tidied_onnx_file(tidy, tmp_path / "tidy.engine") as (path, model):
        assert path == tidy
        assert [n.name for n in model.graph.node] == [n.name for n in tiny_pose().graph.node]
    assert _digest(tidy) == digest


def test_exported_hrnet_is_unchanged_by_tidying(exported_hrnet):
    model = onnx.load(str(exported_hrnet))
    tidied = tidy_for_tensorrt(model)
    _kept_as_declared(model, tidied.model)
    assert tidied.nodes_after <= tidied.nodes_before
    feeds = {model.graph.input[0].name: _inputs((2, 3, 128, 96))}
    _assert_same_on_ort(model, tidied.model, feeds, exact=not tidied.changed)
    assert lint_onnx(tidied.model) == lint_onnx(model)


def test_the_build_lints_and_parses_the_tidied_copy(tmp_path, monkeypatch):
    """build_engine: the lint passes on the tidied graph, the parser reads that same graph
    from a scratch copy, and the user's file is untouched."""
    import export.engine.tensorrt as tensorrt_build
    from export.engine.tensorrt import BuildConfig, build_engine
    from tests.export.engine import trt_double

    monkeypatch.setattr(tensorrt_build, "_device_identity", lambda: ("GPU", "8.7"))
    parsed: list[tuple[str, int]] = []
    original_parse = trt_double.OnnxParser.parse_from_file

    def parse_and_look(self, model: str) -> bool:
        parsed.append((model, len(onnx.load(model).graph.node)))
        return original_parse(self, model)

    monkeypatch.setattr(trt_double.OnnxParser, "parse_from_file", parse_and_look)
    source = tmp_path / "untidy.onnx"
    onnx.save(_untidy_pose(), str(source))
    digest = _digest(source)
    out = tmp_path / "untidy.engine"
    build_engine(source, out, BuildConfig(batch=(1, 2, 4)), trt=trt_double.make_tensorrt(),
                 progress=False)
    [(path, nodes)] = parsed
    assert path != str(source) and nodes == 6
    assert _digest(source) == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["untidy.engine", "untidy.engine.json",
                                                         "untidy.onnx"]
