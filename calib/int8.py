"""INT8 graphs with explicit Q/DQ for strongly typed TensorRT, and the calibration cache.

TensorRT 11 has no INT8 builder flag and no calibrator: a layer runs in INT8 where
the graph quantises its inputs. The graph written here follows TensorRT's Q/DQ
placement guidance:

- QuantizeLinear → DequantizeLinear pairs on the activation inputs of Conv,
  ConvTranspose, Gemm and MatMul, and on both inputs of residual Adds (Adds of two
  computed tensors), where TensorRT fuses them into INT8 kernels; nowhere else (no
  Q/DQ on outputs, on Relu, Resize or Concat inputs, or on biases, which stay float).
- Symmetric INT8, zero point 0: activations per tensor (scale = amax / 127 from the
  chosen range method), weights per output channel (axis 0; axis 1 for
  ConvTranspose; Gemm by transB; MatMul axis 1), stored as INT8 initializers behind a
  DequantizeLinear.
- One Q/DQ pair per consuming node, so a layer falls back alone (the accuracy gate
  removes layers one by one).
- Layers left unquantised run in FP16 by default: the whole graph becomes FP16
  (calib.fp16.convert_to_fp16), Q/DQ scales included, which needs opset 19; nodes
  whose tensors overflow FP16 stay FP32. With fallback "fp32" the graph stays FP32.

Who does what. onnxruntime.quantization's QDQQuantizer (the quantizer behind
quantize_static with QuantFormat.QDQ) inserts the Q/DQ pairs and quantises the
weights per channel: it is maintained and handles the per-op details (weight axes,
shared initializers). It is given our ranges as a TensorsData and told exactly
which nodes to quantise, with ActivationSymmetric/WeightSymmetric, QuantizeBias off,
outputs never quantised and dedicated pairs. It is called directly rather than
through quantize_static, which would run its own calibration pass first (taking
precomputed ranges only from a cache file, since onnxruntime 1.32).

What it lacks for TensorRT is written here: the placement rules (which nodes, both
Add inputs; verified afterwards by `placement_problems`), giving float inputs back to
nodes left out whose input tensor it quantised for a neighbour (`_strip_foreign_qdq`;
the same stripping turns one quantised graph into each of the gate's candidates),
TensorRT's entropy and the MSE range methods (calib.ranges), the FP16 fallback with
FP16 scales kept in FP16's normal range, and the JSON cache. Its calibrators and
cache are not used (see calib.ranges). onnx-graphsurgeon is not needed: the graph
edits are a few lines of onnx.helper.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from calib.fp16 import convert_to_fp16
from calib.ranges import (DEFAULT_PERCENTILE, INT8_MAX, METHODS, CalibrationError, TensorStats,
                          collect_statistics)
from edgepose.errors import InputError
from edgepose.io import write_json_atomic

log = logging.getLogger(__name__)

WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
RESIDUAL_OPS = ("Add",)
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
FALLBACKS = ("fp16", "fp32")
#: FP16 Q/DQ scales (opset 19) need this opset; TensorRT 10.3 parses up to 20.
FP16_QDQ_OPSET = 19
#: Smallest normal FP16 number: FP16 scales are kept at or above it.
FP16_MIN_NORMAL = float(np.finfo(np.float16).tiny)
CACHE_FORMAT = "edgepose-calibration-cache"
CACHE_VERSION = 1


# --- which layers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """One quantisable node: the activation inputs to quantise and its weight, if any."""

    node: str
    op_type: str
    activations: tuple[str, ...]
    weight: str | None = None

    def describe(self) -> str:
        return f"{self.node} ({self.op_type} {self.weight or ' + '.join(self.activations)})"


def _constants(model: onnx.ModelProto) -> set[str]:
    names = {i.name for i in model.graph.initializer}
    names.update(o for n in model.graph.node if n.op_type == "Constant" for o in n.output)
    return names


def quantizable_layers(model: onnx.ModelProto) -> tuple[Layer, ...]:
    """The nodes TensorRT runs in INT8 when their inputs carry Q/DQ, in graph order.

    Conv/ConvTranspose/Gemm with a constant weight; MatMul with one constant operand
    (weight) or none (two activations); Add of two computed tensors (residual).
    """
    constants = _constants(model)
    initializers = {i.name for i in model.graph.initializer}
    layers = []
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx") or not node.name:
            continue
        inputs = [name for name in node.input]
        if node.op_type in ("Conv", "ConvTranspose", "Gemm"):
            if len(inputs) >= 2 and inputs[1] in initializers and inputs[0] not in constants:
                layers.append(Layer(node.name, node.op_type, (inputs[0],), inputs[1]))
        elif node.op_type == "MatMul" and len(inputs) == 2:
            if inputs[1] in initializers and inputs[0] not in constants:
                layers.append(Layer(node.name, node.op_type, (inputs[0],), inputs[1]))
            elif not any(name in constants for name in inputs):
                layers.append(Layer(node.name, node.op_type, tuple(inputs)))
        elif node.op_type in RESIDUAL_OPS and len(inputs) == 2:
            if not any(name in constants for name in inputs) and inputs[0] != inputs[1]:
                layers.append(Layer(node.name, node.op_type, tuple(inputs)))
    return tuple(layers)


def activation_tensors(layers: Iterable[Layer]) -> list[str]:
    """The activation tensors `layers` quantise, each once, in order."""
    return list(dict.fromkeys(t for layer in layers for t in layer.activations))


# --- the calibration cache -----------------------------------------------------------------------


def model_fingerprint(model: onnx.ModelProto) -> str:
    """sha256 of the graph (nodes and weights), metadata left out."""
    graph = copy.deepcopy(model.graph)
    digest = hashlib.sha256(graph.SerializeToString(deterministic=True))
    return "sha256:" + digest.hexdigest()


@dataclass(frozen=True)
class CalibrationCache:
    """Ranges measured once, reusable (`--cache FILE`).

    absmax: every float tensor → largest |x| (the FP16 range test, minmax).
    amax: method → tensor → clip value, for the tensors INT8 quantises (empty when
    only FP16 was asked for). percentile: the one the "percentile" entry used.
    """

    model_fingerprint: str
    data_fingerprint: str
    samples: int
    absmax: Mapping[str, float]
    amax: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    percentile: float = DEFAULT_PERCENTILE
    data: Mapping[str, Any] = field(default_factory=dict)
    method: str | None = None

    def ranges(self, method: str, percentile: float = DEFAULT_PERCENTILE) -> dict[str, float]:
        """tensor → amax by `method`; CalibrationError when the cache lacks them."""
        if method not in METHODS:
            raise InputError(f"unknown range method {method!r}; expected one of {METHODS}")
        if method == "percentile" and not math.isclose(percentile, self.percentile):
            raise CalibrationError(f"the cache holds the {self.percentile} percentile, not "
                                   f"{percentile}")
        if method not in self.amax:
            raise CalibrationError(f"the cache holds no {method} ranges")
        return dict(self.amax[method])

    def to_dict(self) -> dict[str, Any]:
        tensors: dict[str, dict[str, float]] = {}
        chosen = self.amax.get(self.method or "", {})
        for name, value in self.absmax.items():
            entry: dict[str, float] = {"absmax": float(value)}
            if name in chosen:
                entry["amax"] = float(chosen[name])
            for method, values in self.amax.items():
                if name in values:
                    entry[method] = float(values[name])
            tensors[name] = entry
        return {"format": CACHE_FORMAT, "version": CACHE_VERSION, "method": self.method,
                "percentile": self.percentile, "samples": self.samples,
                "data_fingerprint": self.data_fingerprint,
                "model_fingerprint": self.model_fingerprint, "data": dict(self.data),
                "histogram_bins": 2048, "tensors": tensors}

    def save(self, path: str | Path) -> Path:
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "CalibrationCache":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CalibrationError(f"calibration cache {str(path)!r} is not readable JSON "
                                   f"({exc}); delete it to recalibrate") from None
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
            raise CalibrationError(f"{str(path)!r} is not an edgepose calibration cache "
                                   f"(format {data.get('format') if isinstance(data, dict) else None!r}"
                                   f", expected {CACHE_FORMAT!r}); pass another --cache path")
        if data.get("version") != CACHE_VERSION:
            raise CalibrationError(f"calibration cache {str(path)!r} has version "
                                   f"{data.get('version')!r}; this edgepose reads version "
                                   f"{CACHE_VERSION}: delete it to recalibrate")
        try:
            tensors = data["tensors"]
            absmax = {name: float(entry["absmax"]) for name, entry in tensors.items()}
            amax: dict[str, dict[str, float]] = {}
            for name, entry in tensors.items():
                for method in METHODS:
                    if method in entry:
                        amax.setdefault(method, {})[name] = float(entry[method])
            return cls(model_fingerprint=str(data["model_fingerprint"]),
                       data_fingerprint=str(data["data_fingerprint"]),
                       samples=int(data["samples"]), absmax=absmax, amax=amax,
                       percentile=float(data.get("percentile", DEFAULT_PERCENTILE)),
                       data=dict(data.get("data", {})), method=data.get("method"))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CalibrationError(f"calibration cache {str(path)!r} is malformed ({exc!r}); "
                                   "delete it to recalibrate") from None


def measure_ranges(model: onnx.ModelProto, input_name: str, inputs: np.ndarray, *,
                   layers: Sequence[Layer] | None, percentile: float = DEFAULT_PERCENTILE,
                   data_fingerprint: str = "", data: Mapping[str, Any] | None = None,
                   method: str | None = None, progress: bool = False) -> CalibrationCache:
    """Statistics of `inputs` through `model`, reduced by every range method.

    layers: the layers INT8 will quantise (their activation tensors get histograms
    and ranges by all four methods); None measures only |x| maxima (FP16).
    """
    tensors = activation_tensors(layers) if layers is not None else []
    stats: dict[str, TensorStats] = collect_statistics(model, input_name, inputs,
                                                       histograms=tensors, progress=progress)
    amax: dict[str, dict[str, float]] = {}
    for name in tensors:
        for range_method in METHODS:
            amax.setdefault(range_method, {})[name] = stats[name].amax(range_method, percentile)
    return CalibrationCache(model_fingerprint=model_fingerprint(model),
                            data_fingerprint=data_fingerprint, samples=len(inputs),
                            absmax={k: v.absmax for k, v in stats.items()}, amax=amax,
                            percentile=percentile, data=dict(data or {}), method=method)


# --- writing the graph ----------------------------------------------------------------------------


def _safe_amax(value: float, floor: float) -> float:
    """A usable clip value: an all-zero (or unmeasured) tensor gets 1.0, any scale works."""
    if not (math.isfinite(value) and value > 0):
        return 1.0
    return max(value, floor)


def _upgrade_opset(model: onnx.ModelProto, version: int) -> onnx.ModelProto:
    current = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                  default=0)
    if current >= version:
        return model
    upgraded = onnx.version_converter.convert_version(model, version)
    upgraded.metadata_props.extend(p for p in model.metadata_props
                                   if p.key not in {q.key for q in upgraded.metadata_props})
    return upgraded


def _insert_qdq(model: onnx.ModelProto, layers: Sequence[Layer],
                amax: Mapping[str, float], floor: float) -> onnx.ModelProto:
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
    from onnxruntime.quantization.quant_utils import save_and_reload_model_with_shape_infer

    tensors = activation_tensors(layers)
    missing = [t for t in tensors if t not in amax]
    if missing:
        raise CalibrationError(f"no range for tensor(s) {missing[:3]}; recalibrate (the cache "
                               "may come from another graph)")
    ranges = {}
    for name in tensors:
        value = np.float32(_safe_amax(float(amax[name]), floor))
        ranges[name] = TensorData(lowest=np.array(-value, np.float32),
                                  highest=np.array(value, np.float32))
    op_types = sorted({layer.op_type for layer in layers})
    arguments: dict[str, Any] = dict(
        model=save_and_reload_model_with_shape_infer(model), per_channel=True,
        reduce_range=False, weight_qType=QuantType.QInt8, activation_qType=QuantType.QInt8,
        tensors_range=TensorsData(CalibrationMethod.MinMax, ranges),
        nodes_to_quantize=[layer.node for layer in layers], nodes_to_exclude=[],
        op_types_to_quantize=op_types,
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                       "QuantizeBias": False, "OpTypesToExcludeOutputQuantization": op_types,
                       "DedicatedQDQPair": True, "AddQDQPairToWeight": False,
                       "ForceQuantizeNoInputCheck": False})
    if "mode" in inspect.signature(QDQQuantizer.__init__).parameters:
        # onnxruntime < 1.18 also took the (then redundant) mode and static arguments.
        from onnxruntime.quantization.quant_utils import QuantizationMode

        arguments.update(mode=QuantizationMode.QLinearOps, static=True)
    quantized = QDQQuantizer(**arguments).quantize_model()
    del quantized.graph.value_info[:]
    return quantized


class FloatInputs:
    """The float tensor behind each quantised input of a Q/DQ graph made from `original`.

    An activation's is the input of its QuantizeLinear; a weight's (an INT8 initializer
    behind a lone DequantizeLinear) is the FP32 graph's weight of the same node and
    input, copied into `model` the first time it is asked for.
    """

    def __init__(self, model: onnx.ModelProto, original: onnx.ModelProto) -> None:
        self.graph = model.graph
        self.producer = {o: n for n in self.graph.node for o in n.output}
        self.originals = {n.name: n for n in original.graph.node}
        self.weights = {i.name: i for i in original.graph.initializer}
        self.present = {i.name for i in self.graph.initializer}

    def of(self, node: onnx.NodeProto, position: int) -> str | None:
        """The float tensor for input `position` of `node`; None when it is not quantised."""
        dq = self.producer.get(node.input[position])
        if dq is None or dq.op_type != "DequantizeLinear":
            return None
        q = self.producer.get(dq.input[0])
        if q is not None and q.op_type == "QuantizeLinear":
            return q.input[0]
        weight = self.original_weight(node, position)
        if weight is None:
            raise CalibrationError(f"cannot find the float weight behind {dq.name}")
        if weight.name not in self.present:
            self.graph.initializer.append(copy.deepcopy(weight))
            self.present.add(weight.name)
        return weight.name

    def original_weight(self, node: onnx.NodeProto, position: int) -> onnx.TensorProto | None:
        """The FP32 graph's weight at input `position` of the node named like `node`; None
        when there is no such node or that input is not a weight."""
        match = self.originals.get(node.name)
        if match is None or position >= len(match.input):
            return None
        return self.weights.get(match.input[position])


def _strip_foreign_qdq(model: onnx.ModelProto, original: onnx.ModelProto,
                       quantised: set[str]) -> int:
    """Give nodes outside `quantised` their float inputs back; drop Q/DQ left unused.

    ORT's quantizer puts a Q/DQ pair on every consumer of a tensor it quantises for one
    node, so a layer left out (a gate fallback) whose input is shared with a quantised
    layer would still read INT8. Returns how many inputs were restored.
    """
    graph = model.graph
    floats = FloatInputs(model, original)
    restored = 0
    for node in graph.node:
        if node.name in quantised or node.op_type in QDQ_OPS:
            continue
        for position in range(len(node.input)):
            source = floats.of(node, position)
            if source is not None:
                node.input[position] = source
                restored += 1
    while True:
        used = {name for n in graph.node for name in n.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if n.op_type in QDQ_OPS and n.output[0] not in used]
        if not dead:
            break
        dead_names = {id(n) for n in dead}
        kept = [n for n in graph.node if id(n) not in dead_names]
        del graph.node[:]
        graph.node.extend(kept)
    used = {name for n in graph.node for name in n.input}
    kept_init = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept_init)
    return restored


def _weight_dequantizers(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    initializers = {i.name: i for i in model.graph.initializer}
    return [n for n in model.graph.node if n.op_type == "DequantizeLinear"
            and n.input[0] in initializers
            and initializers[n.input[0]].data_type == TensorProto.INT8]


def _floor_weight_scales(model: onnx.ModelProto, original: onnx.ModelProto,
                         floor: float) -> int:
    """Raise FP16 weight scales below `floor` to it and requantise those channels.

    ORT picks scale = max|w_c| / 127 per channel; a near-zero channel gives a scale
    FP16 can only hold as a subnormal (or 0). Returns how many channels changed.
    """
    initializers = {i.name: i for i in model.graph.initializer}
    floats = FloatInputs(model, original)
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in model.graph.node:
        for position, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, position))
    changed = 0
    for dq in _weight_dequantizers(model):
        scale_init = initializers[dq.input[1]]
        scale = numpy_helper.to_array(scale_init).astype(np.float32)
        low = ~(scale >= floor)
        if not low.any():
            continue
        # The float weight this DQ stands for: the FP32 graph's input of the same node.
        users = consumers.get(dq.output[0], [])
        weight = floats.original_weight(*users[0]) if users else None
        if weight is None:
            raise CalibrationError(f"cannot find the float weight behind {dq.name}")
        source = numpy_helper.to_array(weight)
        axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
        new_scale = np.where(low, np.float32(floor), scale).astype(np.float32)
        shape = [1] * source.ndim
        shape[axis] = -1
        quantized = np.clip(np.round(source / new_scale.reshape(shape)), -INT8_MAX, INT8_MAX)
        initializers[dq.input[0]].CopyFrom(numpy_helper.from_array(quantized.astype(np.int8),
                                                                   dq.input[0]))
        scale_init.CopyFrom(numpy_helper.from_array(new_scale.astype(
            numpy_helper.to_array(scale_init).dtype), dq.input[1]))
        changed += int(low.sum())
    return changed


def _qdq_feeding(model: onnx.ModelProto, nodes: Iterable[str]) -> set[str]:
    """Names of the Q and DQ nodes on the inputs of `nodes`."""
    producer = {o: n for n in model.graph.node for o in n.output}
    wanted = set(nodes)
    found: set[str] = set()
    for node in model.graph.node:
        if node.name not in wanted:
            continue
        for name in node.input:
            dq = producer.get(name)
            if dq is not None and dq.op_type == "DequantizeLinear":
                found.add(dq.name)
                q = producer.get(dq.input[0])
                if q is not None and q.op_type == "QuantizeLinear":
                    found.add(q.name)
    return found


class Int8GraphWriter:
    """INT8 Q/DQ graphs of one FP32 `model` and its ranges, with different layers left out.

    ORT's quantizer is the slow part (about 4 s for HRNet-W10 on 2 CPU cores, most of it
    rewiring consumers tensor by tensor), and the accuracy gate writes a dozen graphs
    that differ only in their fallbacks. So it runs once, over every layer the wanted
    ones allow, and each graph strips the Q/DQ of its excluded layers from a copy.

    amax: activation tensor → clip value (CalibrationCache.ranges). fallback: "fp16"
    makes the unquantised rest FP16 (keep_fp32 names nodes that stay FP32), "fp32"
    leaves it FP32. Metadata is carried over; the caller embeds the final card.
    """

    def __init__(self, model: onnx.ModelProto, amax: Mapping[str, float], *,
                 fallback: str = "fp16", keep_fp32: Iterable[str] = ()) -> None:
        if fallback not in FALLBACKS:
            raise InputError(f"int8 fallback must be one of {FALLBACKS}, got {fallback!r}")
        self.model = model
        self.amax = amax
        self.fallback = fallback
        self.keep_fp32 = tuple(keep_fp32)
        self.layers = quantizable_layers(model)
        self._floor = FP16_MIN_NORMAL * INT8_MAX if fallback == "fp16" else 0.0
        self._base = _upgrade_opset(model, FP16_QDQ_OPSET) if fallback == "fp16" else model
        self._quantized: onnx.ModelProto | None = None
        self._covered: frozenset[str] = frozenset()

    def _quantize(self, wanted: Sequence[Layer]) -> None:
        # Every layer with ranges, so later graphs only strip; a wanted layer without
        # ranges is passed on for _insert_qdq to name.
        ranged = [layer for layer in self.layers
                  if all(t in self.amax for t in layer.activations)]
        names = {layer.node for layer in ranged}
        cover = ranged if all(layer.node in names for layer in wanted) else list(wanted)
        self._quantized = _insert_qdq(self._base, cover, self.amax, self._floor)
        self._covered = frozenset(layer.node for layer in cover)

    def write(self, exclude: Iterable[str] = ()) -> onnx.ModelProto:
        """The graph with the layers named in `exclude` unquantised (the gate's fallbacks)."""
        excluded = set(exclude)
        layers = [layer for layer in self.layers if layer.node not in excluded]
        wanted = {layer.node for layer in layers}
        if not wanted:
            quantized = copy.deepcopy(self._base)
        else:
            if not wanted <= self._covered:
                self._quantize(layers)
            quantized = copy.deepcopy(self._quantized)
        _strip_foreign_qdq(quantized, self._base, wanted)
        del quantized.metadata_props[:]
        quantized.metadata_props.extend(self.model.metadata_props)
        if self.fallback == "fp16":
            keep = set(self.keep_fp32)
            keep |= _qdq_feeding(quantized, keep)
            quantized = convert_to_fp16(quantized, keep_fp32=keep)
            changed = _floor_weight_scales(quantized, self.model, FP16_MIN_NORMAL)
            if changed:
                log.info("%d weight channel(s) had scales below FP16's normal range; raised "
                         "to %g", changed, FP16_MIN_NORMAL)
        problems = placement_problems(quantized)
        if problems:
            raise CalibrationError("the Q/DQ graph breaks TensorRT's placement rules:\n  - "
                                   + "\n  - ".join(problems[:10]))
        return quantized


def write_int8(model: onnx.ModelProto, amax: Mapping[str, float], *, fallback: str = "fp16",
               exclude: Iterable[str] = (), keep_fp32: Iterable[str] = ()) -> onnx.ModelProto:
    """The INT8 Q/DQ graph of an FP32 `model`; exclude: layers left unquantised.

    One graph; Int8GraphWriter writes several of one model without re-running ORT's
    quantizer, and explains the arguments.
    """
    return Int8GraphWriter(model, amax, fallback=fallback, keep_fp32=keep_fp32).write(exclude)


# --- checks -------------------------------------------------------------------------------------------


def placement_problems(model: onnx.ModelProto) -> list[str]:
    """Q/DQ that TensorRT would not fuse where edgepose means it to; empty when all is well.

    Every DequantizeLinear feeds only Conv/ConvTranspose/Gemm/MatMul inputs or Add
    inputs; every QuantizeLinear feeds only a DequantizeLinear; a quantised Add has
    both inputs quantised; a quantised weighted node has its weight quantised; zero
    points are INT8 zeros.
    """
    problems = []
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    initializers = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear":
            bad = [c.op_type for c in consumers.get(node.output[0], [])
                   if c.op_type != "DequantizeLinear"]
            if bad:
                problems.append(f"{node.name}: QuantizeLinear feeds {bad}, not a "
                                "DequantizeLinear")
        if node.op_type in QDQ_OPS:
            zero = initializers.get(node.input[2]) if len(node.input) > 2 else None
            if zero is None or zero.data_type != TensorProto.INT8 or \
                    np.any(numpy_helper.to_array(zero) != 0):
                problems.append(f"{node.name}: zero point is not an INT8 zero initializer")
        if node.op_type == "DequantizeLinear":
            for consumer in consumers.get(node.output[0], []):
                if consumer.op_type not in WEIGHTED_OPS + RESIDUAL_OPS:
                    problems.append(f"{node.name}: DequantizeLinear feeds {consumer.op_type} "
                                    f"{consumer.name!r}, where TensorRT does not fuse Q/DQ")
        if node.op_type in RESIDUAL_OPS and len(node.input) == 2:
            quantised = [producer.get(i) is not None and producer[i].op_type == "DequantizeLinear"
                         for i in node.input]
            if any(quantised) and not all(quantised):
                problems.append(f"{node.name}: Add has Q/DQ on one input only; TensorRT needs "
                                "both inputs of a residual Add quantised")
        if node.op_type in WEIGHTED_OPS and len(node.input) >= 2:
            data = producer.get(node.input[0])
            weight = producer.get(node.input[1])
            if data is not None and data.op_type == "DequantizeLinear" and \
                    node.input[1] not in initializers and \
                    (weight is None or weight.op_type != "DequantizeLinear"):
                problems.append(f"{node.name}: input quantised but weight not")
    return problems


def weight_axes(model: onnx.ModelProto) -> dict[str, tuple[str, int, int]]:
    """Per weight DequantizeLinear: (consumer op type, axis, channels) — for checks and tests."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    initializers = {i.name: i for i in model.graph.initializer}
    axes = {}
    for dq in _weight_dequantizers(model):
        users = consumers.get(dq.output[0], [])
        op_type = users[0].op_type if users else ""
        axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
        scale = initializers[dq.input[1]]
        axes[dq.name] = (op_type, axis, int(np.prod(scale.dims)) if scale.dims else 1)
    return axes


def quantized_layers(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes of `model` that read a DequantizeLinear output."""
    producer = {o: n for n in model.graph.node for o in n.output}
    return [n.name for n in model.graph.node if n.op_type not in QDQ_OPS
            and any(producer.get(i) is not None and producer[i].op_type == "DequantizeLinear"
                    for i in n.input)]
