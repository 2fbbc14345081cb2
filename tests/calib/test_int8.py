"""INT8 Q/DQ graphs: placement TensorRT fuses, symmetric INT8, per-channel weights, the cache."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from calib.fp16 import emulate_fp16
import calib.int8
from calib.int8 import (FP16_MIN_NORMAL, RESIDUAL_OPS, WEIGHTED_OPS, CalibrationCache,
                        Int8GraphWriter, activation_tensors, measure_ranges, model_fingerprint,
                        placement_problems, quantizable_layers, quantized_layers, weight_axes,
                        write_int8)
from calib.ranges import METHODS, CalibrationError, run_batched, session
from export.onnx_files.lint import check_onnx_for_tensorrt, lint_onnx
from tests.calib.tiny import layer_zoo, tiny_pose

FALLBACK_CASES = [
    pytest.param("fp32", id="fp32: unquantised layers stay FP32"),
    pytest.param("fp16", id="fp16: unquantised layers run FP16, FP16 scales"),
]


@pytest.fixture(scope="module")
def zoo():
    model = layer_zoo()
    inputs = np.random.default_rng(0).standard_normal((16, 3, 16, 16)).astype(np.float32)
    ranges = measure_ranges(model, "input", inputs, layers=quantizable_layers(model))
    return model, inputs, ranges


def _qdq(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]


def test_quantizable_layers_follow_tensorrt_fusion_rules(zoo):
    model, _, _ = zoo
    layers = {layer.node: layer for layer in quantizable_layers(model)}
    assert list(layers) == ["conv", "deconv", "proj", "residual", "gemm", "matmul",
                            "matmul_act"]
    assert layers["residual"].activations == ("down", "p")         # both inputs
    assert layers["matmul_act"].activations == ("ht", "h")          # two activations
    assert layers["conv"].weight == "conv_w" and layers["residual"].weight is None
    # An Add of a constant is a bias, not a residual; Relu, Resize, Concat, pooling: none.
    assert "add_const" not in layers


@pytest.mark.parametrize("fallback", FALLBACK_CASES)
def test_every_qdq_is_symmetric_int8_with_zero_point_zero(zoo, fallback):
    model, _, ranges = zoo
    qdq = write_int8(model, ranges.ranges("entropy"), fallback=fallback)
    initializers = {i.name: i for i in qdq.graph.initializer}
    nodes = _qdq(qdq)
    assert nodes
    for node in nodes:
        zero = initializers[node.input[2]]
        assert zero.data_type == TensorProto.INT8, node.name
        assert not np.any(numpy_helper.to_array(zero)), node.name
        scale = numpy_helper.to_array(initializers[node.input[1]])
        assert np.all(np.isfinite(scale)) and np.all(scale > 0)
        if fallback == "fp16":
            assert initializers[node.input[1]].data_type == TensorProto.FLOAT16
            assert np.all(scale >= FP16_MIN_NORMAL)
        else:
            assert initializers[node.input[1]].data_type == TensorProto.FLOAT
    check_onnx_for_tensorrt(qdq)
    assert not [f for f in lint_onnx(qdq) if f.severity == "error"]


@pytest.mark.parametrize("fallback", FALLBACK_CASES)
def test_weight_scales_are_per_channel_on_the_output_channel_axis(zoo, fallback):
    model, _, ranges = zoo
    qdq = write_int8(model, ranges.ranges("minmax"), fallback=fallback)
    axes = sorted(weight_axes(qdq).values())
    assert axes == [
        ("Conv", 0, 4),                    # the 1x1 projection, weight (C_out, C_in, 1, 1)
        ("Conv", 0, 8),
        ("ConvTranspose", 1, 4),           # weight (C_in, C_out, kH, kW): output channels on 1
        ("Gemm", 0, 10),                   # transB=1: weight (N, K)
        ("MatMul", 1, 6),                  # weight (K, N)
    ]
    initializers = {i.name: i for i in qdq.graph.initializer}
    for node in _qdq(qdq):
        if node.input[0] in initializers:                          # a weight DQ
            assert initializers[node.input[0]].data_type == TensorProto.INT8
        else:                                                      # activations: per tensor
            assert numpy_helper.to_array(initializers[node.input[1]]).ndim == 0


@pytest.mark.parametrize("fallback", FALLBACK_CASES)
def test_qdq_only_where_tensorrt_fuses_it(zoo, fallback):
    model, _, ranges = zoo
    qdq = write_int8(model, ranges.ranges("percentile"), fallback=fallback)
    assert placement_problems(qdq) == []
    producer = {o: n for n in qdq.graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in qdq.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for node in _qdq(qdq):
        for consumer in consumers.get(node.output[0], []):
            allowed = ("DequantizeLinear",) if node.op_type == "QuantizeLinear" \
                else WEIGHTED_OPS + RESIDUAL_OPS
            assert consumer.op_type in allowed, (node.name, consumer.op_type)
    quantised_inputs = {c.name: [producer[i].op_type == "DequantizeLinear"
                                 for i in c.input if i in producer]
                        for c in qdq.graph.node}
    assert quantised_inputs["residual"] == [True, True]
    assert not any(quantised_inputs["add_const"])
    for op in ("relu_d", "resize", "concat", "pool", "flatten", "transpose"):
        assert not any(quantised_inputs[op]), op
    assert sorted(quantized_layers(qdq)) == sorted(l.node for l in quantizable_layers(model))
    # One Q per quantised activation input, one DQ per Q plus one per weight.
    questions = [n for n in qdq.graph.node if n.op_type == "QuantizeLinear"]
    assert len(questions) == sum(len(l.activations) for l in quantizable_layers(model))


def test_fp16_fallback_makes_the_rest_fp16_with_fp32_io(zoo):
    model, inputs, ranges = zoo
    qdq = write_int8(model, ranges.ranges("entropy"), fallback="fp16")
    assert max(o.version for o in qdq.opset_import if o.domain in ("", "ai.onnx")) >= 19
    for value in (*qdq.graph.input, *qdq.graph.output):
        assert value.type.tensor_type.elem_type == TensorProto.FLOAT
    readers: dict[str, set[str]] = {}
    for node in qdq.graph.node:
        for name in node.input:
            readers.setdefault(name, set()).add(node.op_type)
    fp32_constants = [i.name for i in qdq.graph.initializer if i.data_type == TensorProto.FLOAT]
    assert all(readers[name] == {"Resize"} for name in fp32_constants)   # Resize's scales
    assert any(i.data_type == TensorProto.FLOAT16 for i in qdq.graph.initializer)
    fp32 = write_int8(model, ranges.ranges("entropy"), fallback="fp32")
    assert fp32.opset_import[0].version == 17 and not any(
        i.data_type == TensorProto.FLOAT16 for i in fp32.graph.initializer)


@pytest.mark.parametrize("fallback", FALLBACK_CASES)
def test_excluded_layers_read_float_even_when_their_input_is_shared(zoo, fallback):
    model, _, ranges = zoo
    # 'r' feeds both the ConvTranspose and the 1x1 projection: exclude one of them.
    qdq = write_int8(model, ranges.ranges("minmax"), fallback=fallback,
                       exclude=["proj", "residual"])
    assert sorted(quantized_layers(qdq)) == ["conv", "deconv", "gemm", "matmul",
                                               "matmul_act"]
    assert placement_problems(qdq) == []
    check_onnx_for_tensorrt(qdq)
    nothing = write_int8(model, ranges.ranges("minmax"), fallback=fallback,
                         exclude=[l.node for l in quantizable_layers(model)])
    assert not _qdq(nothing)



def test_writer_quantises_once_and_strips_to_what_quantising_only_the_kept_layers_gives(
        zoo, monkeypatch):
    model, inputs, ranges = zoo
    amax = ranges.ranges("minmax")
    quantiser_runs = []
    insert = calib.int8._insert_qdq
    monkeypatch.setattr(calib.int8, "_insert_qdq",
                        lambda *args: quantiser_runs.append(args[1]) or insert(*args))
    writer = Int8GraphWriter(model, amax, fallback="fp32")
    every = [layer.node for layer in quantizable_layers(model)]
    for exclude in ([], ["proj", "residual"], ["conv", "matmul_act"], every[1:]):
        written = writer.write(exclude)
        kept = [layer for layer in quantizable_layers(model) if layer.node not in exclude]
        # The reference quantises only the kept layers, as a one-off graph would.
        reference = insert(model, kept, amax, 0.0)
        calib.int8._strip_foreign_qdq(reference, model, {layer.node for layer in kept})
        assert sorted(quantized_layers(written)) == sorted(layer.node for layer in kept)
        assert len(_qdq(written)) == len(_qdq(reference))
        ours = run_batched(session(written), "input", inputs)
        theirs = run_batched(session(reference), "input", inputs)
        for name in ours:
            np.testing.assert_array_equal(ours[name], theirs[name])
    assert len(quantiser_runs) == 1 and len(quantiser_runs[0]) == len(every)

@pytest.mark.parametrize("method", METHODS)
def test_hrnet_int8_runs_in_onnxruntime_close_to_fp32(exported_hrnet, hrnet_inputs, method):
    model = onnx.load(str(exported_hrnet))
    calibration, held_out = hrnet_inputs
    ranges = hrnet_ranges(model, calibration)
    qdq = write_int8(model, ranges.ranges(method), fallback="fp16")
    check_onnx_for_tensorrt(qdq)
    assert placement_problems(qdq) == []
    assert len(quantized_layers(qdq)) == len(quantizable_layers(model)) == 454
    reference = run_batched(session(model), "input", held_out)["heatmaps"]
    value = run_batched(session(emulate_fp16(qdq)), "input", held_out)["heatmaps"]
    error = np.linalg.norm(value - reference) / np.linalg.norm(reference)
    assert error < 0.15, f"{method}: relative error {error:.3f}"


_RANGES: dict[str, CalibrationCache] = {}


def hrnet_ranges(model: onnx.ModelProto, inputs: np.ndarray) -> CalibrationCache:
    key = model_fingerprint(model)
    if key not in _RANGES:
        _RANGES[key] = measure_ranges(model, "input", inputs, layers=quantizable_layers(model))
    return _RANGES[key]


@pytest.fixture(scope="module")
def hrnet_inputs(exported_hrnet, tmp_path_factory):
    """Preprocessed crops of synthetic people: 16 to calibrate on, 8 held out."""
    from calib.data import load_calibration_data
    from export.training.synthetic import SyntheticConfig, write_coco_dataset
    from export.onnx import read_card

    folder = tmp_path_factory.mktemp("int8_data")
    annotations = write_coco_dataset(folder, 12, SyntheticConfig(seed=5), workers=1,
                                     progress=False)
    data = load_calibration_data(folder / "images", read_card(exported_hrnet),
                                 annotations=annotations, samples=16, progress=False)
    return data.calibration.inputs, data.holdout.inputs[:8]


def test_small_weight_channels_keep_normal_fp16_scales():
    model = tiny_pose(0)
    for init in model.graph.initializer:
        if init.name == "w2":
            weights = numpy_helper.to_array(init).copy()
            weights[0] = 0.0                    # a dead channel
            weights[1] *= 1e-7                  # a channel far below FP16's normal range
            init.CopyFrom(numpy_helper.from_array(weights, "w2"))
    inputs = np.random.default_rng(0).standard_normal((4, 3, 32, 24)).astype(np.float32)
    ranges = measure_ranges(model, "input", inputs, layers=quantizable_layers(model))
    qdq = write_int8(model, ranges.ranges("minmax"), fallback="fp16")
    initializers = {i.name: numpy_helper.to_array(i) for i in qdq.graph.initializer}
    scale = initializers["w2_scale"].astype(np.float32)
    assert np.all(scale >= FP16_MIN_NORMAL)
    quantised = initializers["w2_quantized"]
    assert not quantised[0].any() and not quantised[1].any()   # both round to zero
    assert np.abs(quantised[2:]).max() == 127                   # the rest keep full range


# --- the cache -------------------------------------------------------------------------------------


def test_cache_round_trips_and_holds_every_method(zoo, tmp_path):
    model, _, ranges = zoo
    path = ranges.save(tmp_path / "ranges.json")
    loaded = CalibrationCache.load(path)
    tensors = activation_tensors(quantizable_layers(model))
    for method in METHODS:
        assert loaded.ranges(method) == pytest.approx(ranges.ranges(method))
        assert set(loaded.ranges(method)) == set(tensors)
    assert loaded.absmax == pytest.approx(ranges.absmax)
    assert loaded.model_fingerprint == model_fingerprint(model)
    data = json.loads(path.read_text())
    assert data["format"] == "edgepose-calibration-cache" and data["histogram_bins"] == 2048
    entry = data["tensors"][tensors[0]]
    assert {"absmax", *METHODS} <= set(entry)
    assert not list(tmp_path.glob(".*.tmp"))                 # written atomically


@pytest.mark.parametrize("content, why", [
    ("not json", "not readable JSON"),
    ('{"format": "something-else"}', "not an edgepose calibration cache"),
    ('{"format": "edgepose-calibration-cache", "version": 99}', "version"),
    ('{"format": "edgepose-calibration-cache", "version": 1, "tensors": 3}', "malformed"),
])
def test_bad_cache_files_are_refused_with_a_fix(tmp_path, content, why):
    path = tmp_path / "cache.json"
    path.write_text(content)
    with pytest.raises(CalibrationError, match=why):
        CalibrationCache.load(path)


def test_cache_without_the_asked_method_says_so(zoo):
    model, _, ranges = zoo
    fp16_only = CalibrationCache(ranges.model_fingerprint, "x", 1, ranges.absmax)
    with pytest.raises(CalibrationError, match="no entropy ranges"):
        fp16_only.ranges("entropy")
    with pytest.raises(CalibrationError, match="percentile"):
        ranges.ranges("percentile", 99.0)


def test_model_fingerprint_ignores_the_card_but_not_the_weights():
    first, second = tiny_pose(0), tiny_pose(0)
    del second.metadata_props[:]
    assert model_fingerprint(first) == model_fingerprint(second)
    assert model_fingerprint(first) != model_fingerprint(tiny_pose(1))
