"""`edgepose debug-precision`: the fewest layers to keep in FP32 so that a reduced-precision
graph, built as the engine that will ship (or run on ONNX Runtime where TensorRT is
absent), meets the stated tolerances against its FP32 graph.

The search is Polygraphy's `debug precision` (polygraphy/tools/debug/subtool/precision.py),
rewritten for graphs whose precision is written into the ONNX file. Polygraphy builds one
engine per trial with the first (forward) or last (reverse) k layers of the network in
higher precision, bisecting on k between the last failing and the first passing count,
with all layers marked as the starting point; it cannot run on TensorRT 11, whose
networks are strongly typed and ignore per-layer precision, so here each trial writes
the precision into the graph instead — the INT8 layers' Q/DQ removed (as calibrate's
gate does) or the FP16 nodes kept FP32 between Casts — and builds that graph.

After the bisection the prefix is refined (unless refine=False): its last layer is
needed (the prefix one shorter failed), so it is kept for good and the bisection runs
again over the layers before it, until the kept layers alone pass. For a monotone
verdict (keeping more never hurts) the result is irreducible: dropping any one kept
layer fails. It costs about (kept layers + 1) × log2(layers) trials, against log2(layers)
for the prefix alone. Every set returned is a set that was measured passing.

Ranges for the INT8 rewrite are read back from the candidate's own Q/DQ scales
(amax = scale × 127, symmetric INT8 as calib.int8 writes it), so the kept-INT8 layers
of each trial quantise exactly as the candidate does and no calibration cache or data
pass is needed; an FP16 scale rounds back to the same FP16 scale.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Mapping, Sequence

import onnx
from onnx import TensorProto, numpy_helper

from calib import compare as _compare
from calib.fp16 import convert_to_fp16, has_fp16
from calib.int8 import (INT8_MAX, Int8GraphWriter, placement_problems, quantizable_layers,
                        quantized_layers)
from edgepose.errors import InputError, ModelFileError, PrecisionError

log = logging.getLogger(__name__)

DIRECTIONS = ("forward", "reverse")
RUNNERS = ("onnxruntime", "tensorrt")
#: What this search mirrors in the installed Polygraphy (held there by a contract test).
POLYGRAPHY_MIRRORED = {"polygraphy.tools.debug.subtool.precision":
                       ("Precision", "BisectMarker", "LinearMarker")}


class PrecisionSearchError(PrecisionError):
    """No set of FP32 layers meets the tolerances: even every searched layer in FP32 fails."""


# --- the search -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchTrial:
    """One build and comparison: the layers kept FP32 (graph order) and the verdict."""

    kept: tuple[str, ...]
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"kept_fp32": len(self.kept), "layers": list(self.kept), "passed": self.passed}


@dataclass(frozen=True)
class SearchResult:
    """kept: the smallest passing set found, in graph order; trials in the order run."""

    kept: tuple[str, ...]
    layers: int
    direction: str
    refined: bool
    trials: tuple[SearchTrial, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"kept_fp32": list(self.kept), "layers": self.layers,
                "direction": self.direction, "refined": self.refined,
                "trials": [t.to_dict() for t in self.trials]}


def find_fp32_layers(layers: Sequence[str], passes: Callable[[Sequence[str]], bool], *,
                     direction: str = "forward", refine: bool = True) -> SearchResult:
    """The fewest of `layers` (graph order) to keep FP32 for `passes(kept)` to hold.

    passes(kept) builds and judges one candidate (kept in graph order); each distinct
    set is asked once. The first trial keeps nothing (the candidate as it is), the
    second keeps every layer; PrecisionSearchError when that fails too.
    """
    if direction not in DIRECTIONS:
        raise InputError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    names = list(dict.fromkeys(layers))
    if len(names) != len(layers):
        raise InputError("the layers to search repeat a name")
    position = {name: index for index, name in enumerate(names)}
    trials: list[SearchTrial] = []
    verdicts: dict[frozenset[str], bool] = {}

    def trial(kept: Iterable[str]) -> bool:
        chosen = frozenset(kept)
        if chosen not in verdicts:
            ordered = tuple(sorted(chosen, key=position.__getitem__))
            verdicts[chosen] = bool(passes(ordered))
            trials.append(SearchTrial(ordered, verdicts[chosen]))
        return verdicts[chosen]

    def result(kept: Iterable[str]) -> SearchResult:
        return SearchResult(tuple(sorted(kept, key=position.__getitem__)), len(names),
                            direction, refine, tuple(trials))

    if trial(()):
        return result(())
    if not trial(names):
        raise PrecisionSearchError(
            f"even all {len(names)} searched layer(s) in FP32 break the tolerances: the "
            "error is not in those layers' precision (compare the FP32 graph with itself, "
            "or look for layers the search does not cover)")
    order = names if direction == "forward" else names[::-1]
    required: list[str] = []
    candidates = order
    # Invariant: required + candidates passes (measured); required alone fails.
    while True:
        failing, passing = 0, len(candidates)
        while passing - failing > 1:
            middle = (failing + passing) // 2
            if trial(required + candidates[:middle]):
                passing = middle
            else:
                failing = middle
        if not refine:
            return result(required + candidates[:passing])
        required.append(candidates[passing - 1])
        candidates = candidates[:passing - 1]
        if not candidates or trial(required):
            return result(required)


# --- writing the precision back into the graph ----------------------------------------------


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {o: n for n in model.graph.node for o in n.output}


def ranges_from_scales(model: onnx.ModelProto) -> dict[str, float]:
    """Activation tensor → amax, read back from the QuantizeLinear scales of a graph that
    calib.int8 wrote (symmetric, scale = amax / 127). The tensor is the FP32 graph's: a
    Cast that an FP16 graph puts between it and its QuantizeLinear is looked through."""
    producer = _producers(model)
    initializers = {i.name: i for i in model.graph.initializer}
    ranges: dict[str, float] = {}
    for node in model.graph.node:
        if node.op_type != "QuantizeLinear":
            continue
        scale = initializers.get(node.input[1])
        if scale is None:
            raise ModelFileError(f"{node.name}: its scale is not an initializer; the search "
                                 "reads ranges from graphs 'edgepose calibrate' wrote")
        values = numpy_helper.to_array(scale).astype("float64").ravel()
        if values.size != 1:
            raise ModelFileError(f"{node.name}: activation scale is per channel; edgepose "
                                 "quantises activations per tensor")
        tensor = node.input[0]
        while tensor in producer and producer[tensor].op_type == "Cast":
            tensor = producer[tensor].input[0]
        ranges[tensor] = float(values[0]) * INT8_MAX
    return ranges


def _float_outputs(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    return {v.name: v.type.tensor_type.elem_type
            for v in (*inferred.graph.value_info, *inferred.graph.output)
            if v.type.HasField("tensor_type")}


def _recorded_fp32_nodes(model: onnx.ModelProto) -> list[str]:
    """The nodes calibrate kept FP32 for FP16 overflow, as its card records them."""
    from calib.calibrate import read_card

    try:
        card = read_card(model, Path("the candidate"))
    except ModelFileError:
        return []
    calibration = (getattr(card, "calibration", None)
                   or (getattr(card, "extra", None) or {}).get("calibration", {}))
    return [str(entry["node"]) for entry in (calibration or {}).get("fp32_layers", [])
            if isinstance(entry, Mapping) and "node" in entry]


class GraphRepair:
    """Writes `reduced` again from `fp32` with chosen layers kept in FP32.

    INT8 graph (it holds Q/DQ): the layers are its INT8 layers; a kept one loses its Q/DQ
    (Int8GraphWriter's exclude, with the candidate's own ranges) and, where the rest is
    FP16, stays FP32 too. INT8 layers the gate already left out stay out. FP16 graph: the
    layers are the FP32 graph's nodes that the candidate computes in FP16; kept ones join
    convert_to_fp16's keep_fp32. Nodes calibrate kept FP32 for overflow stay FP32.
    """

    def __init__(self, reduced: onnx.ModelProto, fp32: onnx.ModelProto) -> None:
        if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in fp32.graph.node) \
                or has_fp16(fp32):
            raise InputError("the reference must be the FP32 graph the candidate was "
                             "calibrated from; it holds Q/DQ or FP16")
        self.reduced, self.fp32 = reduced, fp32
        self.base_keep = [n for n in _recorded_fp32_nodes(reduced)
                          if n in {node.name for node in fp32.graph.node}]
        int8 = quantized_layers(reduced)
        if int8:
            self.kind = "int8"
            known = [layer.node for layer in quantizable_layers(fp32)]
            strangers = sorted(set(int8) - set(known))
            if strangers:
                raise InputError(f"the candidate's INT8 layers {strangers[:3]} are not layers of "
                                 "the reference: pass the FP32 graph it was calibrated from")
            self.layers = tuple(name for name in known if name in set(int8))
            self.left_out = tuple(name for name in known if name not in set(int8))
            fallback = "fp16" if has_fp16(reduced) else "fp32"
            self._writer = Int8GraphWriter(fp32, ranges_from_scales(reduced), fallback=fallback)
        elif has_fp16(reduced):
            self.kind = "fp16"
            self.layers = self._fp16_layers()
        else:
            raise InputError("the candidate holds neither INT8 Q/DQ nor FP16: it is an FP32 "
                             "graph, with nothing to keep in FP32")

    def _fp16_layers(self) -> tuple[str, ...]:
        half = _float_outputs(self.reduced)
        full = _float_outputs(self.fp32)
        # The converter renames the outputs it casts back at the graph's boundary, so a
        # node's FP16 output is looked up under the candidate's own name for it.
        written = {n.name: n for n in self.reduced.graph.node if n.name and n.output}
        kept = set(self.base_keep)
        return tuple(n.name for n in self.fp32.graph.node
                     if n.name in written and n.name not in kept and n.output
                     and full.get(n.output[0]) == TensorProto.FLOAT
                     and half.get(written[n.name].output[0]) == TensorProto.FLOAT16)

    def write(self, kept: Iterable[str]) -> onnx.ModelProto:
        """The candidate graph with `kept` (some of self.layers) in FP32, its card kept."""
        kept = list(kept)
        unknown = sorted(set(kept) - set(self.layers))
        if unknown:
            raise InputError(f"{unknown[:3]} are not layers this search covers")
        if self.kind == "int8":
            # keep_fp32 is read at write time; the quantised base is shared between trials.
            self._writer.keep_fp32 = tuple(self.base_keep) + tuple(kept)
            graph = self._writer.write(exclude=[*self.left_out, *kept])
        else:
            graph = convert_to_fp16(self.fp32, keep_fp32=[*self.base_keep, *kept])
        del graph.metadata_props[:]
        graph.metadata_props.extend(copy.deepcopy(self.reduced.metadata_props))
        problems = placement_problems(graph)
        if problems:
            raise PrecisionError("the repaired graph breaks the Q/DQ placement rules: "
                                 + "; ".join(problems[:5]))
        return graph


def repair_graph(reduced: onnx.ModelProto, fp32: onnx.ModelProto,
                 kept_fp32: Iterable[str]) -> onnx.ModelProto:
    """`reduced` (an INT8 Q/DQ or FP16 graph of `fp32`) with the layers in kept_fp32 in FP32."""
    return GraphRepair(reduced, fp32).write(kept_fp32)


# --- one trial: build (or not) and compare ----------------------------------------------------


@dataclass
class TrialJudge:
    """Builds and compares one trial graph. runner "tensorrt": an engine from the graph
    (build_engine with `build_config`; `trt` a double in tests), run in Polygraphy's
    TrtRunner; "onnxruntime": the graph itself on the CPU. Files live in `folder` only
    while their trial runs."""

    reference: Path
    data: Path
    folder: Path
    tolerances: Any
    runner: str = "onnxruntime"
    annotations: Path | None = None
    samples: int = 64
    seed: int = 0
    build_config: Any = None
    trt: ModuleType | None = None
    on_report: Callable[[Sequence[str], Any], None] | None = None
    _count: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.runner not in RUNNERS:
            raise InputError(f"runner must be one of {RUNNERS}, got {self.runner!r}")

    def __call__(self, graph: onnx.ModelProto, kept: Sequence[str] = ()) -> bool:
        self._count += 1
        stem = self.folder / f"trial{self._count}"
        onnx_path = stem.with_suffix(".onnx")
        onnx.save(graph, str(onnx_path))
        made = [onnx_path]
        try:
            candidate = onnx_path
            if self.runner == "tensorrt":
                from export.engine.tensorrt import BuildConfig, build_engine

                candidate = build_engine(onnx_path, stem.with_suffix(".engine"),
                                         self.build_config or BuildConfig(), trt=self.trt,
                                         progress=False)
                made += [candidate, candidate.with_name(candidate.name + ".json")]
            report = _compare.compare_models(
                candidate, self.reference, self.data, annotations=self.annotations,
                samples=self.samples, seed=self.seed, tolerances=self.tolerances,
                score_ap=self.tolerances.max_ap_drop is not None)
        finally:
            for path in made:
                path.unlink(missing_ok=True)
        if self.on_report is not None:
            self.on_report(kept, report)
        return report.passed


def search_fp32_layers(candidate: onnx.ModelProto, reference: onnx.ModelProto,
                       judge: Callable[[onnx.ModelProto, Sequence[str]], bool], *,
                       direction: str = "forward", refine: bool = True
                       ) -> tuple[SearchResult, onnx.ModelProto]:
    """The search over `candidate`'s layers, each trial the repaired graph judged by
    `judge(graph, kept)`; returns the result and the graph with its layers kept FP32."""
    repair = GraphRepair(candidate, reference)
    log.info("searching %d %s layer(s) for the fewest to keep in FP32", len(repair.layers),
             repair.kind.upper())
    result = find_fp32_layers(repair.layers, lambda kept: judge(repair.write(kept), kept),
                              direction=direction, refine=refine)
    return result, repair.write(result.kept)
