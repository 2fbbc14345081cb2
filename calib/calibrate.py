"""`calibrate`: an FP32 edgepose ONNX file → an FP16 or INT8 graph, measured and gated.

The function behind `edgepose calibrate`. It reads the model card (preprocessing
comes from it), loads calibration data (calib.data), measures activation ranges
(calib.ranges, cached as JSON by calib.int8), writes the FP16 graph (calib.fp16) or
the INT8 Q/DQ graph (calib.int8), runs the accuracy gate when thresholds are given
(calib.gate), compares FP32/FP16/INT8 on held-out data (calib.report), and writes the
graph (card updated with precision and calibration details, checked by the TensorRT
lint) and `<out stem>.report.json`, both atomically.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import onnx

from calib.data import CalibrationData, load_calibration_data
from calib.fp16 import FP16_MAX, Overflow, convert_to_fp16, find_overflows
from calib.gate import (SENSITIVITY_SAMPLES, GateResult, Trial, check_thresholds,
                        layer_sensitivity, meets, run_gate)
from calib.int8 import (FALLBACKS, CalibrationCache, Int8GraphWriter, Layer, activation_tensors,
                        measure_ranges, model_fingerprint, placement_problems,
                        quantizable_layers, quantized_layers, write_int8)
from calib.ranges import DEFAULT_PERCENTILE, METHODS
from calib.report import AccuracyReport, HoldoutEvaluator, PrecisionRow
from edgepose.card import ModelCard
from edgepose.detect.card import DetectorCard
from edgepose.errors import CalibrationError, CardError, GateError, InputError, ModelFileError
from edgepose.io import atomic_path, check_output_path, remove_stale_scratch
from export.onnx_files.lint import check_onnx_for_tensorrt
from export.onnx_files.card import embed_card, find_card

log = logging.getLogger(__name__)

PRECISIONS = ("fp16", "int8")


@dataclass(frozen=True)
class CalibrationResult:
    """What `calibrate` wrote and measured.

    int8_layers: nodes running in INT8; fallback: INT8 layers the gate left in FP16/FP32;
    kept_fp32: nodes kept FP32 because their tensors exceed FP16's range.
    calibration_time_s: data, ranges and graph; total_time_s adds the gate and report.
    """

    path: Path
    precision: str
    card: ModelCard
    method: str | None
    samples: int
    skipped: int
    int8_layers: tuple[str, ...]
    fallback: tuple[str, ...]
    kept_fp32: tuple[Overflow, ...]
    gate: GateResult | None
    report: AccuracyReport | None
    report_path: Path | None
    cache: Path | None
    cache_reused: bool
    calibration_time_s: float
    total_time_s: float

    def summary(self) -> str:
        """Lines for the CLI: what was written, fallbacks, the accuracy table."""
        lines = [f"wrote {self.path} ({self.precision}"
                 + (f", {self.method} ranges" if self.method else "")
                 + f", {self.samples} calibration samples"
                 + (f", {self.skipped} unreadable image(s) skipped" if self.skipped else "")
                 + f"; calibration {self.calibration_time_s:.1f} s, total "
                 f"{self.total_time_s:.1f} s)"]
        if self.precision == "int8" or self.int8_layers:
            lines.append(f"  INT8 layers: {len(self.int8_layers)}; falling back: "
                         f"{len(self.fallback)}" + (f" ({', '.join(self.fallback[:8])}"
                                                    f"{', …' if len(self.fallback) > 8 else ''})"
                                                    if self.fallback else ""))
        if self.kept_fp32:
            lines.append(f"  kept FP32 (beyond ±{FP16_MAX:g} on the calibration data): "
                         + ", ".join(f"{o.node} (|{o.tensor}| = {o.absmax:.4g})"
                                     for o in self.kept_fp32))
        if self.gate is not None:
            lines.append(f"  accuracy gate {'met' if self.gate.met else 'NOT met (--force)'}: "
                         f"{self.gate.describe()}")
        if self.cache is not None:
            lines.append(f"  calibration cache {self.cache} "
                         f"({'reused' if self.cache_reused else 'written'})")
        if self.report is not None:
            lines.append(self.report.format_table())
        if self.report_path is not None:
            lines.append(f"  report: {self.report_path}")
        return "\n".join(lines)


def report_path_for(out: str | Path) -> Path:
    """Where calibrate writes the JSON report for graph `out`: model.int8.onnx → model.int8.report.json."""
    return Path(out).with_suffix(".report.json")


def read_card(model: onnx.ModelProto, model_path: Path) -> ModelCard | DetectorCard:
    """The pose or detector card in the graph; calibration preprocesses by it."""
    for card_type in (ModelCard, DetectorCard):
        try:
            card = find_card(model, card_type)
        except CardError as exc:
            raise ModelFileError(f"{model_path}: {exc}") from None
        if card is not None:
            return card
    raise ModelFileError(f"{model_path} carries no edgepose model card, and calibration "
                         "preprocesses its images the way the runtime will, from the card: "
                         "export the model with 'edgepose export' so it carries one")


def _load_model(model_path: Path) -> onnx.ModelProto:
    if not model_path.is_file():
        raise InputError(f"model file {str(model_path)!r} does not exist")
    try:
        return onnx.load(str(model_path))
    except Exception as exc:  # noqa: BLE001 - protobuf raises several unrelated types
        raise ModelFileError(f"{model_path} is not a readable ONNX file: {exc}") from None


def _check_arguments(precision: str, method: str, percentile: float, int8_fallback: str,
                     samples: Any, annotations: Any, max_ap_drop: float | None,
                     max_kpt_error: float | None) -> None:
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    if int8_fallback not in FALLBACKS:
        raise InputError(f"int8_fallback must be one of {FALLBACKS}, got {int8_fallback!r}")
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) or \
            not 0 < percentile <= 100:
        raise InputError(f"percentile must be in (0, 100], got {percentile!r}")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise InputError(f"samples must be a positive number, got {samples!r}")
    check_thresholds(max_ap_drop, max_kpt_error)
    if max_ap_drop is not None and annotations is None:
        raise InputError("--max-ap-drop needs COCO annotations (--annotations) to measure AP; "
                         "without them use --max-kpt-error")


def _statistics(model: onnx.ModelProto, dataset: CalibrationData, layers: Sequence[Layer] | None,
                method: str, percentile: float, cache: Path | None,
                input_name: str, progress: bool) -> tuple[CalibrationCache, bool]:
    fingerprint = model_fingerprint(model)
    data_fingerprint = dataset.calibration.fingerprint
    if cache is not None and cache.is_file():
        cached = CalibrationCache.load(cache)
        if cached.model_fingerprint != fingerprint:
            raise CalibrationError(f"calibration cache {str(cache)!r} was measured on another "
                                   "graph (model fingerprint differs); delete it or pass "
                                   "another --cache path")
        if cached.data_fingerprint != data_fingerprint:
            raise CalibrationError(f"calibration cache {str(cache)!r} was measured on other data "
                                   f"({cached.data.get('source', '?')}, "
                                   f"{cached.samples} samples); pass the same --data, "
                                   "--annotations, --samples and --seed, or delete the cache")
        usable = True
        if layers is not None:
            try:
                ranges = cached.ranges(method, percentile)
                usable = all(t in ranges for t in activation_tensors(layers))
            except CalibrationError:
                usable = False
        if usable:
            log.info("using the ranges in %s", cache)
            return cached, True
        log.info("%s lacks %s ranges for this graph; measuring them and rewriting it", cache,
                 method)
    stats = measure_ranges(model, input_name, dataset.calibration.inputs, layers=layers,
                           percentile=percentile, data_fingerprint=data_fingerprint,
                           data=dataset.summary(), method=method if layers else None,
                           progress=progress)
    if cache is not None:
        stats.save(cache)
    return stats, False


@dataclass(frozen=True)
class _Options:
    """calibrate's keyword arguments the steps below read, checked by _check_inputs."""

    precision: str
    method: str
    percentile: float
    int8_fallback: str
    max_ap_drop: float | None
    max_kpt_error: float | None
    force: bool
    seed: int
    progress: bool

    @property
    def int8(self) -> bool:
        return self.precision == "int8"

    @property
    def gated(self) -> bool:
        return self.max_ap_drop is not None or self.max_kpt_error is not None


def _check_paths(model_path: Path, out: Path, cache: str | Path | None) -> Path:
    """The checked output path; found here, not after minutes of calibration."""
    if out.resolve() == model_path.resolve():
        raise InputError(f"out {str(out)!r} is the input model; write the calibrated graph "
                         "to another file")
    out = check_output_path(out, "output")
    if cache is not None:
        check_output_path(cache, "range cache")
    # Scratch folders of killed runs (one holds a candidate graph) go before new work.
    remove_stale_scratch(out.parent)
    return out


def _read_model(model_path: Path, options: _Options) -> tuple[onnx.ModelProto, ModelCard]:
    """The FP32 graph and its card, refused when calibration cannot apply to it."""
    model = _load_model(model_path)
    card = read_card(model, model_path)
    if card.precision != "fp32":
        raise InputError(f"{model_path} is already a {card.precision} graph; calibrate the FP32 "
                         "graph that 'edgepose export' wrote")
    if card.paradigm == "detector" and options.gated:
        raise InputError(f"{model_path} is a person detector; the accuracy gate measures pose "
                         "models (keypoint AP and displacement): calibrate it without one")
    if card.paradigm != "top-down" and options.gated:
        raise InputError(f"{card.family}/{card.variant} is a {card.paradigm} model; the accuracy "
                         "gate measures AP and keypoint displacement of top-down models only")
    return model, card


def _int8_layers(model: onnx.ModelProto, model_path: Path) -> list[Layer]:
    layers = quantizable_layers(model)
    if not layers:
        raise InputError(f"{model_path} has no layer TensorRT runs in INT8 (Conv, "
                         "ConvTranspose, Gemm, MatMul with weights, residual Add)")
    return layers


def _fp16_overflows(model: onnx.ModelProto, stats: CalibrationCache) -> list[Overflow]:
    overflows = find_overflows(model, stats.absmax)
    if overflows:
        log.warning("%d node(s) exceed FP16's range on the calibration data and stay FP32: %s",
                    len(overflows), ", ".join(o.node for o in overflows))
    return overflows


def _holdout_evaluator(model: onnx.ModelProto, card: ModelCard, dataset: CalibrationData,
                       out: Path, options: _Options) -> HoldoutEvaluator | None:
    """The evaluator of the held-out data; None, with a warning, when there is none."""
    if len(dataset.holdout):
        return HoldoutEvaluator(model, card, dataset.holdout, annotations=dataset.annotations,
                                images_dir=dataset.images_dir,
                                image_ids=dataset.holdout_image_ids, scratch_beside=out)
    if options.gated:
        raise InputError("the accuracy gate needs held-out data, and the calibration data is "
                         "too small to hold any out; pass more images")
    log.warning("no held-out data: the accuracy report is skipped")
    return None


def _run_gate(model: onnx.ModelProto, card: ModelCard, dataset: CalibrationData,
              graph: onnx.ModelProto, writer: Int8GraphWriter | None,
              layers: Sequence[Layer] | None, amax: dict[str, float],
              evaluator: HoldoutEvaluator, options: _Options
              ) -> tuple[GateResult, onnx.ModelProto, list[tuple[onnx.ModelProto, PrecisionRow]]]:
    """The gate's result, the graph it chose, and every candidate it measured (the report
    reuses the chosen one's AP). GateError when unreachable unless options.force."""
    measured: list[tuple[onnx.ModelProto, PrecisionRow]] = []

    def measure(candidate: onnx.ModelProto) -> tuple[float | None, float | None]:
        row = evaluator.measure(candidate, "candidate", options.precision,
                                with_ap=options.max_ap_drop is not None,
                                with_errors=options.max_kpt_error is not None)
        measured.append((candidate, row))
        return row.ap_drop, row.kpt_error

    if options.int8:
        def sensitivity() -> list[tuple[str, float]]:
            qdq = write_int8(model, amax, fallback="fp32")
            return layer_sensitivity(model, qdq, layers, card.input.name,
                                     dataset.calibration.inputs[:SENSITIVITY_SAMPLES],
                                     progress=options.progress)

        gate, graph = run_gate([layer.node for layer in layers], build=writer.write,
                               measure=measure, sensitivity=sensitivity,
                               max_ap_drop=options.max_ap_drop,
                               max_kpt_error=options.max_kpt_error, force=options.force)
        return gate, graph, measured
    ap_drop, kpt_error = measure(graph)
    met = meets(ap_drop, kpt_error, options.max_ap_drop, options.max_kpt_error)
    gate = GateResult(met, (), ap_drop, kpt_error, options.max_ap_drop, options.max_kpt_error, 0,
                      trials=(Trial(0, ap_drop, kpt_error),))
    if not met and not options.force:
        raise GateError(gate, graph)
    return gate, graph, measured


def _accuracy_report(model: onnx.ModelProto, fp16_graph: onnx.ModelProto,
                     graph: onnx.ModelProto, dataset: CalibrationData,
                     evaluator: HoldoutEvaluator, gate: GateResult | None,
                     measured: list[tuple[onnx.ModelProto, PrecisionRow]],
                     overflows: Sequence[Overflow], options: _Options) -> AccuracyReport:
    """FP32, FP16 and (for int8) the written graph, compared on the held-out data."""
    rows: list[PrecisionRow] = [evaluator.measure(model, "fp32", "fp32"),
                                evaluator.measure(fp16_graph, "fp16", "fp16")]
    if options.int8:
        # The gate scored the chosen graph's AP already (when max_ap_drop is set).
        scored = next((row for candidate, row in measured
                       if candidate is graph and row.ap is not None), None)
        row = evaluator.measure(graph, f"int8 {options.method}", "int8",
                                with_ap=scored is None)
        rows.append(row if scored is None
                    else replace(row, ap=scored.ap, ap_drop=scored.ap_drop))
    return evaluator.report(
        rows, dataset.source, fallback=gate.fallback if gate is not None else (),
        kept_fp32=tuple(o.node for o in overflows),
        gate=gate.to_dict() if gate is not None else None)


def _calibration_details(written_precision: str, dataset: CalibrationData,
                         overflows: Sequence[Overflow], cache_path: Path | None,
                         calibration_time: float, int8_layers: tuple[str, ...],
                         gate: GateResult | None, report: AccuracyReport | None,
                         options: _Options) -> dict[str, Any]:
    """The card's "calibration" block: how the graph was made and what it measured."""
    details: dict[str, Any] = {
        "precision": written_precision,
        "tool": "edgepose calibrate",
        "data": dataset.summary(),
        "seed": options.seed,
        "fp16_limit": FP16_MAX,
        "fp32_layers": [o.to_dict() for o in overflows],
        "range_cache": cache_path.name if cache_path is not None else None,
        "calibration_time_s": round(calibration_time, 3),
        "accuracy_executed_with": ("onnxruntime CPU; graphs holding FP16 run as FP16 "
                                   "emulation (FP16 weights, activations rounded to FP16 "
                                   "after every node)"),
    }
    if options.int8:
        details.update({
            "method": options.method,
            "percentile": options.percentile if options.method == "percentile" else None,
            "histogram_bins": 2048,
            "activations": "per-tensor symmetric INT8, zero point 0",
            "weights": "per-channel symmetric INT8 (axis 0; ConvTranspose axis 1)",
            "int8_fallback": options.int8_fallback,
            "int8_layers": len(int8_layers),
            "fallback_layers": list(gate.fallback) if gate is not None else [],
        })
    if gate is not None:
        details["gate"] = {k: v for k, v in gate.to_dict().items() if k != "sensitivity"}
    if report is not None:
        details["accuracy"] = {row.label: {"ap": row.ap, "ap_drop_points": row.ap_drop,
                                           "kpt_p90_px": row.kpt_error,
                                           "relative_l2": {o.name: o.relative_l2
                                                           for o in row.outputs}}
                               for row in report.rows}
        details["accuracy_holdout_samples"] = report.samples
    return details


def _write(graph: onnx.ModelProto, card: ModelCard, out: Path,
           report: AccuracyReport | None) -> Path | None:
    """The graph with its card, checked, then its report; returns the report's path."""
    embed_card(graph, card)
    check_onnx_for_tensorrt(graph)
    problems = placement_problems(graph)
    if problems:
        raise CalibrationError("the written graph breaks the Q/DQ placement rules: "
                               + "; ".join(problems[:5]))
    with atomic_path(out) as temporary:
        onnx.save(graph, str(temporary))
    if report is None:
        return None
    return report.write_json(report_path_for(out)) if report_path_for(out) != out else None


def calibrate(model_path: str | Path, out: str | Path, *, data: str | Path,
              annotations: str | Path | None = None, precision: str = "fp16",
              method: str = "entropy", samples: int = 512,
              percentile: float = DEFAULT_PERCENTILE, int8_fallback: str = "fp16",
              max_ap_drop: float | None = None, max_kpt_error: float | None = None,
              force: bool = False, cache: str | Path | None = None, seed: int = 0,
              progress: bool = True) -> CalibrationResult:
    """Write the FP16 or INT8 graph of an FP32 edgepose ONNX file to `out`.

    data: a folder of images, or a video; annotations: a COCO keypoints file for the
    folder (top-down crops; AP in the report and the gate). method, percentile: INT8
    activation ranges. int8_fallback: what unquantised layers run in. max_ap_drop (AP
    points, 0–100 scale) and max_kpt_error (p90 keypoint displacement, px): the
    accuracy gate; GateError when unreachable unless force. cache: JSON range cache,
    reused when it matches the graph and the data, written otherwise.
    """
    started = time.perf_counter()
    model_path, out = Path(model_path), Path(out)
    _check_arguments(precision, method, percentile, int8_fallback, samples, annotations,
                     max_ap_drop, max_kpt_error)
    options = _Options(precision, method, percentile, int8_fallback, max_ap_drop,
                       max_kpt_error, force, seed, progress)
    out = _check_paths(model_path, out, cache)
    model, card = _read_model(model_path, options)
    cache_path = Path(cache) if cache is not None else None

    dataset = load_calibration_data(data, card, annotations=annotations, samples=samples,
                                    seed=seed, progress=progress)
    int8 = options.int8
    layers = _int8_layers(model, model_path) if int8 else None
    stats, reused = _statistics(model, dataset, layers, method, percentile, cache_path,
                                card.input.name, progress)
    overflows = _fp16_overflows(model, stats)
    keep = [o.node for o in overflows]
    # The FP16 graph is the output for --precision fp16 and a report row for int8.
    fp16_graph = convert_to_fp16(model, keep)
    amax = stats.ranges(method, percentile) if int8 else {}
    writer = Int8GraphWriter(model, amax, fallback=int8_fallback,
                             keep_fp32=keep if int8_fallback == "fp16" else ()) if int8 else None
    graph = writer.write() if int8 else fp16_graph
    calibration_time = time.perf_counter() - started

    evaluator = (None if card.paradigm == "detector"
                 else _holdout_evaluator(model, card, dataset, out, options))
    if evaluator is None and card.paradigm == "detector":
        log.warning("%s is a person detector: the accuracy report scores pose models, so "
                    "none is written; compare the boxes with 'edgepose eval --detector'",
                    model_path.name)
    try:
        gate, measured = None, []
        if options.gated:
            gate, graph, measured = _run_gate(model, card, dataset, graph, writer, layers, amax,
                                              evaluator, options)
        report = None
        if evaluator is not None:
            report = _accuracy_report(model, fp16_graph, graph, dataset, evaluator, gate,
                                      measured, overflows, options)
    finally:
        if evaluator is not None:
            evaluator.close()

    int8_layers = tuple(quantized_layers(graph)) if int8 else ()
    written_precision = "int8" if int8_layers else ("fp16" if (not int8 or
                                                              int8_fallback == "fp16")
                                                    else "fp32")
    details = _calibration_details(written_precision, dataset, overflows, cache_path,
                                   calibration_time, int8_layers, gate, report, options)
    if card.paradigm == "detector":
        new_card = card.with_updates(precision=written_precision, calibration=details)
    else:
        new_card = card.with_updates(precision=written_precision,
                                     extra={**card.extra, "calibration": details})
    report_path = _write(graph, new_card, out, report)
    total = time.perf_counter() - started
    log.info("wrote %s in %.1f s", out, total)
    return CalibrationResult(
        path=out, precision=written_precision, card=new_card, method=method if int8 else None,
        samples=len(dataset.calibration), skipped=len(dataset.skipped),
        int8_layers=int8_layers, fallback=tuple(gate.fallback) if gate is not None else (),
        kept_fp32=tuple(overflows), gate=gate, report=report, report_path=report_path,
        cache=cache_path, cache_reused=reused, calibration_time_s=calibration_time,
        total_time_s=total)
