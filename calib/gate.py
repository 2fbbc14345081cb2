"""The accuracy gate: which INT8 layers must fall back so the model stays accurate enough.

1. The fully quantised graph is measured; if it meets the thresholds, nothing falls back.
2. Per-layer sensitivity: each layer alone is quantised (its input and weight Q/DQ),
   the rest left FP32, and the output error ‖y − y₃₂‖ / ‖y₃₂‖ on SENSITIVITY_SAMPLES
   calibration samples is recorded. All layers share one graph whose Q/DQ are switched
   in by a boolean input (Where(s[l], DQ(Q(x)), x)), so each layer costs one inference
   run, not a new session: about 30 s for HRNet-W10's 454 layers on 2 CPU cores.
3. The most sensitive layers fall back first: 1, 2, 4, 8, … until the thresholds hold,
   then a bisection finds the fewest that do. Each candidate is the real graph
   (FP16 fallback included), measured on the held-out data for what the thresholds
   ask (AP, keypoint displacement or both): about 2.5 s a candidate for HRNet-W10
   on 146 crops.
4. If even every layer falling back does not meet the thresholds, GateError carries
   the best result reached, unless `force`.

Thresholds: `max_ap_drop` in AP points (0–100 scale; 1.0 point = 0.010 on
pycocotools' scale) and `max_kpt_error`, the 90th percentile of keypoint
displacement from FP32 in image pixels (calib.report.GATE_PERCENTILE).
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from calib.fp16 import sort_nodes
from calib.int8 import FloatInputs, Layer
from calib.ranges import session
from edgepose.errors import GateError, InputError

log = logging.getLogger(__name__)

SENSITIVITY_SAMPLES = 4
SWITCH_INPUT = "edgepose_calib_layer_switch"


@dataclass(frozen=True)
class Trial:
    """One measured candidate: how many layers fell back and what it scored."""

    fallbacks: int
    ap_drop: float | None
    kpt_error: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"fallbacks": self.fallbacks, "ap_drop": self.ap_drop, "kpt_error": self.kpt_error}


@dataclass(frozen=True)
class GateResult:
    """What the gate decided.

    fallback: layers left unquantised, most sensitive first. ap_drop (points) and
    kpt_error (px) of the chosen graph. sensitivity: every layer's output error when
    quantised alone, most sensitive first (empty when nothing had to fall back).
    """

    met: bool
    fallback: tuple[str, ...]
    ap_drop: float | None
    kpt_error: float | None
    max_ap_drop: float | None
    max_kpt_error: float | None
    layers: int
    sensitivity: tuple[tuple[str, float], ...] = ()
    trials: tuple[Trial, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"met": self.met, "fallback": list(self.fallback), "ap_drop": self.ap_drop,
                "kpt_error_px": self.kpt_error, "max_ap_drop": self.max_ap_drop,
                "max_kpt_error_px": self.max_kpt_error, "layers": self.layers,
                "sensitivity": [[name, error] for name, error in self.sensitivity],
                "trials": [t.to_dict() for t in self.trials]}

    def describe(self) -> str:
        parts = []
        if self.max_ap_drop is not None:
            parts.append(f"AP drop {_fmt(self.ap_drop)} points (limit {self.max_ap_drop:g})")
        if self.max_kpt_error is not None:
            parts.append(f"keypoint p90 error {_fmt(self.kpt_error)} px "
                         f"(limit {self.max_kpt_error:g})")
        return (", ".join(parts) + f" with {len(self.fallback)} of {self.layers} INT8 layers "
                "falling back")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def check_thresholds(max_ap_drop: float | None, max_kpt_error: float | None) -> None:
    for name, value in (("max_ap_drop", max_ap_drop), ("max_kpt_error", max_kpt_error)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value < 0):
            raise InputError(f"{name} must be a number >= 0, got {value!r}")


def meets(ap_drop: float | None, kpt_error: float | None, max_ap_drop: float | None,
          max_kpt_error: float | None) -> bool:
    """Whether measured figures satisfy the thresholds that are set (None: not asked)."""
    if max_ap_drop is not None and (ap_drop is None or not ap_drop <= max_ap_drop):
        return False
    if max_kpt_error is not None and (kpt_error is None or not kpt_error <= max_kpt_error):
        return False
    return True


def _excess(trial: Trial, max_ap_drop: float | None, max_kpt_error: float | None) -> float:
    """How far a trial misses: summed excess over the limits, each relative to max(limit, 1)."""
    total = 0.0
    for value, limit in ((trial.ap_drop, max_ap_drop), (trial.kpt_error, max_kpt_error)):
        if limit is not None:
            total += math.inf if value is None else max(0.0, value - limit) / max(limit, 1.0)
    return total


# --- sensitivity -----------------------------------------------------------------------------


def switch_graph(fp32: onnx.ModelProto, qdq: onnx.ModelProto,
                 layers: Sequence[Layer]) -> onnx.ModelProto:
    """`qdq` (FP32 Q/DQ graph, all `layers` quantised) with each layer's Q/DQ switchable.

    Input SWITCH_INPUT (L,) bool: true quantises layer l, false leaves it FP32: each
    quantised input becomes Where(switch[l], DQ(Q(x)), x). (An If per input would skip
    the unused Q/DQ but costs more in ONNX Runtime's control flow than it saves.)
    """
    graph_model = copy.deepcopy(qdq)
    graph = graph_model.graph
    floats = FloatInputs(graph_model, fp32)
    index_of = {layer.node: i for i, layer in enumerate(layers)}
    added: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.name not in index_of:
            continue
        position_l = index_of[node.name]
        index_name = f"{SWITCH_INPUT}_index_{position_l}"
        graph.initializer.append(numpy_helper.from_array(np.array(position_l, np.int64),
                                                         index_name))
        gate = f"{SWITCH_INPUT}_{position_l}"
        added.append(helper.make_node("Gather", [SWITCH_INPUT, index_name], [gate], axis=0))
        for position, name in enumerate(node.input):
            original = floats.of(node, position)
            if original is None:
                continue
            stem = f"{node.name}_in{position}_switch"
            added.append(helper.make_node("Where", [gate, name, original], [stem], name=stem))
            node.input[position] = stem
    graph.node.extend(added)
    graph.input.append(helper.make_tensor_value_info(SWITCH_INPUT, TensorProto.BOOL,
                                                     [len(layers)]))
    sort_nodes(graph)
    return graph_model


def layer_sensitivity(fp32: onnx.ModelProto, qdq: onnx.ModelProto, layers: Sequence[Layer],
                      input_name: str, inputs: np.ndarray, *,
                      progress: bool = False) -> list[tuple[str, float]]:
    """(layer, relative output error with only that layer quantised), most sensitive first."""
    if len(inputs) == 0:
        raise InputError("no samples for the sensitivity pass")
    sess = session(switch_graph(fp32, qdq, layers))
    names = [o.name for o in sess.get_outputs()]
    mask = np.zeros(len(layers), np.bool_)
    reference = sess.run(names, {input_name: inputs, SWITCH_INPUT: mask})
    norm = math.sqrt(sum(float(np.sum(r.astype(np.float64) ** 2)) for r in reference)) or 1.0
    bar = None
    if progress:
        try:
            from tqdm import tqdm

            bar = tqdm(total=len(layers), desc="layer sensitivity", unit="layer", leave=False)
        except ImportError:
            bar = None
    results = []
    for index, layer in enumerate(layers):
        mask[:] = False
        mask[index] = True
        values = sess.run(names, {input_name: inputs, SWITCH_INPUT: mask})
        error = math.sqrt(sum(float(np.sum((v.astype(np.float64) - r) ** 2))
                              for v, r in zip(values, reference))) / norm
        results.append((layer.node, error))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    # Most sensitive first; equal errors keep graph order.
    order = sorted(range(len(results)), key=lambda i: (-results[i][1], i))
    return [results[i] for i in order]


# --- the search ---------------------------------------------------------------------------------


def run_gate(layers: Sequence[str], *, build: Callable[[Sequence[str]], onnx.ModelProto],
             measure: Callable[[onnx.ModelProto], tuple[float | None, float | None]],
             sensitivity: Callable[[], Sequence[tuple[str, float]]],
             max_ap_drop: float | None = None, max_kpt_error: float | None = None,
             force: bool = False) -> tuple[GateResult, onnx.ModelProto]:
    """Fall back the most sensitive layers until the thresholds hold.

    layers: the quantised layers. build(fallback) writes the graph with `fallback`
    unquantised; measure(graph) returns (AP drop in points or None, keypoint p90 px or
    None); sensitivity() ranks the layers (called only if the full INT8 graph fails).
    Returns the result and its graph; raises GateError when no candidate meets the
    thresholds, unless `force`, which returns the best candidate with met=False.
    """
    check_thresholds(max_ap_drop, max_kpt_error)
    trials: dict[int, Trial] = {}
    graphs: dict[int, onnx.ModelProto] = {}
    order: list[str] = []

    def trial(count: int) -> bool:
        if count not in trials:
            graph = build(order[:count] if count else [])
            ap_drop, kpt_error = measure(graph)
            trials[count] = Trial(count, ap_drop, kpt_error)
            graphs[count] = graph
            measured = [f"AP drop {_fmt(ap_drop)}"] if ap_drop is not None else []
            if kpt_error is not None:
                measured.append(f"keypoint p90 {_fmt(kpt_error)} px")
            log.info("gate: %d layer(s) falling back: %s", count, ", ".join(measured))
        found = trials[count]
        return meets(found.ap_drop, found.kpt_error, max_ap_drop, max_kpt_error)

    ranking: tuple[tuple[str, float], ...] = ()
    if trial(0):
        chosen = 0
    else:
        ranking = tuple(sensitivity())
        order = [name for name, _ in ranking]
        missing = set(layers) - set(order)
        order += [name for name in layers if name in missing]
        total = len(order)
        passed, failed = None, 0
        count = 1
        while count < total:
            if trial(count):
                passed = count
                break
            failed = count
            count *= 2
        if passed is None and trial(total):
            passed = total
        if passed is not None:
            while passed - failed > 1:
                middle = (passed + failed) // 2
                if trial(middle):
                    passed = middle
                else:
                    failed = middle
            chosen = passed
        else:
            chosen = min(trials, key=lambda k: (_excess(trials[k], max_ap_drop,
                                                        max_kpt_error), k))
    best = trials[chosen]
    met = meets(best.ap_drop, best.kpt_error, max_ap_drop, max_kpt_error)
    result = GateResult(met, tuple(order[:chosen]), best.ap_drop, best.kpt_error, max_ap_drop,
                        max_kpt_error, len(layers), ranking,
                        tuple(trials[k] for k in sorted(trials)))
    if not met and not force:
        raise GateError(result, graphs[chosen])
    if not met:
        log.warning("accuracy gate not met; writing the best graph as --force asks: %s",
                    result.describe())
    return result, graphs[chosen]
