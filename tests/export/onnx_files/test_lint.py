"""The ONNX lint that stands in for TensorRT 10.3's parser: operators, dynamic axes, Q/DQ."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgepose.errors import ModelFileError
from export.onnx_files.lint import (MAX_OPSET, TENSORRT_10_3_ONNX_OPS, LintError,
                                    check_onnx_for_tensorrt, lint_onnx)

BATCH = "batch"


def _model(nodes, *, inputs=None, outputs=None, initializers=(), opset=17, functions=(),
           extra_opsets=()):
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, [BATCH, 3, 8, 8])]
    outputs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, [BATCH, 3, 8, 8])]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    opsets = [helper.make_opsetid("", opset), *extra_opsets]
    return helper.make_model(graph, opset_imports=opsets, functions=list(functions))


def _errors(model):
    return [f for f in lint_onnx(model) if f.severity == "error"]


def _qdq_model(*, scale, zero=None, zero_type=TensorProto.INT8, weight_axis=None):
    """x → Q → DQ → y per tensor; with weight_axis, a per-channel DQ of a Conv weight."""
    inits = [numpy_helper.from_array(np.asarray(scale, np.float32), "s")]
    q_inputs = ["x", "s"]
    if zero is not None:
        inits.append(helper.make_tensor("z", zero_type, np.shape(zero),
                                        np.asarray(zero).ravel().tolist()))
        q_inputs.append("z")
    if weight_axis is None:
        nodes = [helper.make_node("QuantizeLinear", q_inputs, ["q"], name="quant"),
                 helper.make_node("DequantizeLinear", ["q", *q_inputs[1:]], ["y"], name="dequant")]
        return _model(nodes, initializers=inits)
    weights = numpy_helper.from_array(np.ones((3, 3, 1, 1), np.int8), "w")
    nodes = [helper.make_node("DequantizeLinear", ["w", *q_inputs[1:]], ["wf"], name="dq_w",
                              axis=weight_axis),
             helper.make_node("Conv", ["x", "wf"], ["y"], name="conv")]
    return _model(nodes, initializers=[weights, *inits])


def test_a_plain_conv_relu_graph_passes():
    w = numpy_helper.from_array(np.ones((3, 3, 1, 1), np.float32), "w")
    model = _model([helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
                    helper.make_node("Relu", ["c"], ["y"], name="relu")], initializers=[w])
    assert lint_onnx(model) == []
    check_onnx_for_tensorrt(model)


def test_the_exported_hrnet_passes(exported_hrnet):
    check_onnx_for_tensorrt(exported_hrnet)


def test_the_operator_list_is_10_3s():
    # Spot checks against onnx-tensorrt 10.1-GA operators.md (unchanged through 10.3).
    assert {"Conv", "Resize", "QuantizeLinear", "DeformConv",
            "LayerNormalization"} <= TENSORRT_10_3_ONNX_OPS
    # Unsupported in 10.3 ("N"), or added only in later parsers (10.4 windows, 10.5 STFT).
    assert not {"Unique", "DFT", "HannWindow", "STFT", "Col2Im",
                "Attention"} & TENSORRT_10_3_ONNX_OPS


@pytest.mark.parametrize("node, rule", [
    (helper.make_node("Unique", ["x"], ["y"], name="uniq"), "unsupported-op"),  # "N" in 10.3
    (helper.make_node("HannWindow", ["x"], ["y"], name="window"), "unsupported-op"),  # from 10.4
    (helper.make_node("FusedConv", ["x"], ["y"], name="fused", domain="com.microsoft"),
     "custom-domain"),  # would need a plugin
])
def test_unsupported_operators_are_named_with_node_and_type(node, rule):
    (finding,) = _errors(_model([node]))
    assert (finding.node, finding.op_type, finding.rule) == (node.name, node.op_type, rule)
    with pytest.raises(LintError, match=f"node '{node.name}' \\({node.op_type}\\)") as caught:
        check_onnx_for_tensorrt(_model([node]))
    assert caught.value.findings == [finding]


def test_operators_inside_subgraphs_and_local_functions_are_checked():
    branch = helper.make_graph([helper.make_node("Unique", ["x"], ["b"], name="inner")], "then",
                               [], [helper.make_tensor_value_info("b", TensorProto.FLOAT, None)])
    cond = numpy_helper.from_array(np.array(True), "cond")
    if_node = helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=branch,
                               else_branch=branch)
    assert [f.node for f in _errors(_model([if_node], initializers=[cond]))] == ["inner", "inner"]

    body = [helper.make_node("Relu", ["a"], ["b"], name="fn_relu")]
    function = helper.make_function("local", "Act", ["a"], ["b"], body,
                                    [helper.make_opsetid("", 17)])
    call = helper.make_node("Act", ["x"], ["y"], name="act", domain="local")
    # The parser inlines local functions: a body of supported ops is fine.
    assert _errors(_model([call], functions=[function],
                          extra_opsets=[helper.make_opsetid("local", 1)])) == []


@pytest.mark.parametrize("opset, ok", [(17, True), (MAX_OPSET, True), (MAX_OPSET + 1, False),
                                       (8, False)])
def test_opset_within_the_10_3_parser_range(opset, ok):
    findings = [f for f in _errors(_model([helper.make_node("Relu", ["x"], ["y"])], opset=opset))
                if f.rule == "opset"]
    assert (not findings) == ok


@pytest.mark.parametrize("shape, axis", [
    ([BATCH, 3, "height", 8], 2),  # dynamic H: one profile over the batch cannot cover it
    ([BATCH, 3, 8, None], 3),      # unnamed dynamic W
    ([BATCH, "c", 8, 8], 1),       # dynamic channels
])
def test_only_the_batch_axis_may_be_dynamic(shape, axis):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    (finding,) = _errors(_model([helper.make_node("Relu", ["x"], ["y"], name="r")], inputs=[x]))
    assert (finding.rule, finding.tensor, finding.axis) == ("dynamic-axis", "x", axis)
    assert "only the batch axis (0)" in finding.message


def test_dynamic_output_axes_are_found_and_a_static_batch_is_fine():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, "h", 8])
    (finding,) = _errors(_model([helper.make_node("Relu", ["x"], ["y"])], inputs=[x], outputs=[y]))
    assert (finding.tensor, finding.axis) == ("y", 2)


def test_symmetric_int8_per_tensor_qdq_passes():
    assert lint_onnx(_qdq_model(scale=0.02, zero=0)) == []


@pytest.mark.parametrize("kwargs, rule, node", [
    (dict(scale=0.02, zero=3), "qdq-zero-point", "quant"),  # asymmetric: TensorRT needs 0
    (dict(scale=0.02, zero=0, zero_type=TensorProto.UINT8), "qdq-zero-point-type", "quant"),
    (dict(scale=0.02), "qdq-zero-point-type", "quant"),  # no zero point: ONNX means UINT8
    (dict(scale=-0.5, zero=0), "qdq-scale", "quant"),     # negative scale
    (dict(scale=0.0, zero=0), "qdq-scale", "quant"),      # zero scale
    (dict(scale=float("nan"), zero=0), "qdq-scale", "quant"),
])
def test_qdq_must_be_symmetric_int8_with_positive_scales(kwargs, rule, node):
    findings = [f for f in _errors(_qdq_model(**kwargs)) if f.node == node]
    assert rule in {f.rule for f in findings}, findings
    assert all(f.op_type == "QuantizeLinear" for f in findings)


def test_uint8_qdq_is_flagged_on_both_nodes():
    rules = {(f.node, f.rule) for f in _errors(_qdq_model(scale=0.02, zero=128,
                                                           zero_type=TensorProto.UINT8))}
    assert {("quant", "qdq-zero-point-type"), ("dequant", "qdq-zero-point-type"),
            ("quant", "qdq-zero-point"), ("dequant", "qdq-zero-point")} <= rules


def test_a_computed_scale_is_flagged():
    nodes = [helper.make_node("Abs", ["x"], ["s"], name="abs"),
             helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], name="quant")]
    z = helper.make_tensor("z", TensorProto.INT8, [], [0])
    (finding,) = _errors(_model(nodes, initializers=[z]))
    assert (finding.rule, finding.tensor) == ("qdq-scale", "s")


def test_per_channel_weight_dq_is_accepted_and_its_axis_recorded():
    findings = lint_onnx(_qdq_model(scale=[0.1, 0.2, 0.3], zero=[0, 0, 0], weight_axis=0))
    assert [f for f in findings if f.severity == "error"] == []
    (info,) = findings
    assert (info.node, info.op_type, info.rule, info.axis) == ("dq_w", "DequantizeLinear",
                                                               "qdq-per-channel", 0)
    assert "3 channels" in info.message


def test_per_channel_with_an_asymmetric_channel_is_flagged():
    findings = _errors(_qdq_model(scale=[0.1, 0.2, 0.3], zero=[0, 1, 0], weight_axis=0))
    assert [(f.node, f.rule) for f in findings] == [("dq_w", "qdq-zero-point")]


def test_constant_node_zero_points_are_read():
    z = helper.make_node("Constant", [], ["z"], value=helper.make_tensor("zv", TensorProto.INT8,
                                                                       [], [5]))
    s = numpy_helper.from_array(np.float32(0.1), "s")
    nodes = [z, helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="quant"),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dequant")]
    assert {f.rule for f in _errors(_model(nodes, initializers=[s]))} == {"qdq-zero-point"}


def test_paths_are_read_and_a_missing_file_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.onnx"
    onnx.save(_model([helper.make_node("Unique", ["x"], ["y"], name="u")]), str(path))
    with pytest.raises(LintError, match=str(path).replace("\\", "\\\\") + ".*1 problem"):
        check_onnx_for_tensorrt(path)
    with pytest.raises(ModelFileError, match="does not exist"):
        lint_onnx(tmp_path / "absent.onnx")


def test_lint_errors_name_the_source_given():
    model = _model([helper.make_node("Mystery", ["x"], ["y"], name="m", domain="acme")],
                   extra_opsets=[helper.make_opsetid("acme", 1)])
    with pytest.raises(LintError, match="user.onnx"):
        check_onnx_for_tensorrt(model, source="user.onnx")
    with pytest.raises(LintError, match="the ONNX graph"):
        check_onnx_for_tensorrt(model)
