"""FP32 vs FP16 vs INT8 on held-out data: output error, keypoint displacement, COCO AP.

Every graph runs in ONNX Runtime on the CPU. Graphs that store anything in FP16 run
as their FP16 emulation (calib.fp16.emulate_fp16): ONNX Runtime's CPU kernels would
otherwise compute them in FP32 with FP16 weights only and understate the error. A
row's `executed` says how it ran.

Per row:
- per output: relative L2 error ‖y − y₃₂‖ / ‖y₃₂‖ over all held-out samples, and the
  largest absolute error relative to the FP32 output's range, max|y − y₃₂| / max|y₃₂|;
- top-down models: keypoint displacement from FP32 in image pixels (p50, p90, p99
  over every keypoint of every held-out crop), decoded by the card's decoder
  without flip test;
- with COCO annotations: AP on the held-out images by edgepose.evaluate (the
  ground-truth-box protocol) and its drop from FP32 in AP points (0–100).

Shape letters: S held-out samples, K keypoints.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import onnx

from calib.data import Samples
from calib.fp16 import emulate_fp16, has_fp16
from calib.ranges import run_batched, session
from edgepose.card import ModelCard
from edgepose.errors import InputError
from edgepose.io import scratch_folder, write_json_atomic
from edgepose.pipeline import top_down_decoder

log = logging.getLogger(__name__)

PERCENTILES = (50, 90, 99)
#: The displacement percentile the accuracy gate's --max-kpt-error bounds.
GATE_PERCENTILE = 90
EXECUTED_FP32 = "onnxruntime CPU, as written"
EXECUTED_EMULATED = ("onnxruntime CPU, FP16 emulated (FP16 weights; activations rounded to "
                     "FP16 after every node)")


@dataclass(frozen=True)
class OutputError:
    """Error of one output against FP32 over the held-out samples."""

    name: str
    relative_l2: float
    max_relative: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "relative_l2": self.relative_l2,
                "max_relative": self.max_relative}


@dataclass(frozen=True)
class PrecisionRow:
    """One graph's accuracy. displacement: keypoint px at PERCENTILES, None when not
    measurable (bottom-up); ap in [0, 1] and ap_drop in points, None without annotations."""

    label: str
    precision: str
    outputs: tuple[OutputError, ...]
    displacement: tuple[float, ...] | None
    ap: float | None
    ap_drop: float | None
    executed: str

    @property
    def kpt_error(self) -> float | None:
        """The gate's keypoint figure: displacement at GATE_PERCENTILE, px."""
        if self.displacement is None:
            return None
        return self.displacement[PERCENTILES.index(GATE_PERCENTILE)]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "precision": self.precision,
                "outputs": [o.to_dict() for o in self.outputs],
                "keypoint_displacement_px": None if self.displacement is None else
                {f"p{p}": v for p, v in zip(PERCENTILES, self.displacement)},
                "ap": _json(self.ap), "ap_drop_points": _json(self.ap_drop),
                "executed": self.executed}


def _json(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def _cell(value: float | None, spec: str) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else format(value, spec)


@dataclass(frozen=True)
class AccuracyReport:
    """Rows for each precision, FP32 first, on `samples` held-out inputs from `images`."""

    rows: tuple[PrecisionRow, ...]
    samples: int
    images: int
    source: str
    random_init: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    #: INT8 layers the accuracy gate left unquantised, most sensitive first.
    fallback: tuple[str, ...] = field(default_factory=tuple)
    #: Nodes kept FP32 because their tensors exceed FP16's range.
    kept_fp32: tuple[str, ...] = field(default_factory=tuple)
    #: The gate's thresholds and outcome (GateResult.to_dict), None without a gate.
    gate: Mapping[str, Any] | None = None

    def row(self, label: str) -> PrecisionRow:
        for row in self.rows:
            if row.label == label:
                return row
        raise KeyError(f"no row {label!r}; rows are {[r.label for r in self.rows]}")

    def format_table(self) -> str:
        """A plain-text table, one line per precision, then notes."""
        names = [o.name for o in self.rows[0].outputs] if self.rows else []
        header = ["precision"] + [f"{n} rel.err" for n in names] + \
                 [f"{n} max.err" for n in names] + \
                 [f"kpt p{p} px" for p in PERCENTILES] + ["AP", "dAP pts"]
        lines = [header]
        for row in self.rows:
            cells = [row.label]
            cells += [_cell(o.relative_l2, ".2e") for o in row.outputs]
            cells += [_cell(o.max_relative, ".2e") for o in row.outputs]
            cells += ([_cell(v, ".2f") for v in row.displacement] if row.displacement
                      else ["n/a"] * len(PERCENTILES))
            cells += [_cell(row.ap, ".3f"), _cell(row.ap_drop, "+.2f")]
            lines.append(cells)
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        text = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                          for i, (c, w) in enumerate(zip(line, widths))) for line in lines]
        text.append(f"held out: {self.samples} samples from {self.images} images/frames of "
                    f"{self.source}")
        if self.random_init:
            text.append("RANDOM WEIGHTS - untrained model: accuracy figures are not meaningful")
        for row in self.rows:
            text.append(f"{row.label}: {row.executed}")
        if self.gate is not None:
            limits = [f"{label} {self.gate[key]:g}{unit}" for key, label, unit in (
                ("max_ap_drop", "max AP drop", " points"),
                ("max_kpt_error_px", f"max keypoint p{GATE_PERCENTILE} error", " px"))
                if self.gate.get(key) is not None]
            text.append(f"accuracy gate {'met' if self.gate.get('met') else 'NOT met'}: "
                        + ", ".join(limits))
        if self.fallback:
            text.append(f"INT8 layers falling back ({len(self.fallback)}): "
                        + ", ".join(self.fallback))
        if self.kept_fp32:
            text.append(f"kept FP32, beyond FP16's range ({len(self.kept_fp32)}): "
                        + ", ".join(self.kept_fp32))
        text.extend(self.notes)
        return "\n".join(text)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [r.to_dict() for r in self.rows], "samples": self.samples,
                "images": self.images, "source": self.source, "random_init": self.random_init,
                "notes": list(self.notes), "gate_percentile": GATE_PERCENTILE,
                "fallback": list(self.fallback), "kept_fp32": list(self.kept_fp32),
                "gate": None if self.gate is None else dict(self.gate)}

    def write_json(self, path: str | Path) -> Path:
        return write_json_atomic(path, self.to_dict())


def executable(model: onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    """The graph ONNX Runtime should run to measure `model` honestly, and how it runs."""
    if has_fp16(model):
        return emulate_fp16(model), EXECUTED_EMULATED
    return model, EXECUTED_FP32


def graph_ap(model: onnx.ModelProto, annotations: str | Path, images_dir: str | Path,
             scratch_path: Path) -> float:
    """COCO keypoint AP of an in-memory graph, scored as 'edgepose eval' scores a file
    (ground-truth boxes): saved at scratch_path for the run, removed after."""
    from edgepose.evaluate import evaluate_model

    onnx.save(model, str(scratch_path))
    try:
        report = evaluate_model(scratch_path, annotations, images_dir, progress=False)
    finally:
        scratch_path.unlink(missing_ok=True)
    return float(report.metrics["AP"])


class HoldoutEvaluator:
    """Measures graphs against the FP32 graph on held-out samples (and images, for AP).

    annotations, images_dir, image_ids: a COCO keypoints file, its image folder and
    the held-out image ids; AP is scored on those images only. scratch_beside: the
    output being written; the candidate graphs AP is scored on go to a scratch folder
    beside it (edgepose.io.scratch_folder), or, when None, in the system temp folder.
    close() removes the scratch folder; the evaluator is a context manager.
    """

    def __init__(self, fp32: onnx.ModelProto, card: ModelCard, holdout: Samples, *,
                 annotations: str | Path | None = None, images_dir: str | Path | None = None,
                 image_ids: Sequence[int] = (), batch: int = 16,
                 scratch_beside: str | Path | None = None) -> None:
        if len(holdout) == 0:
            raise InputError("no held-out samples to measure accuracy on; pass more "
                             "calibration images (a fifth of them is held out)")
        self.card = card
        self.holdout = holdout
        self.batch = batch
        self.input_name = card.input.name
        self._scratch_stack: ExitStack | None = ExitStack()
        # Named like every edgepose scratch folder, so a killed run's folder (with its
        # candidate graph) is removed by the next run in the same place.
        beside = (Path(scratch_beside) if scratch_beside is not None
                  else Path(tempfile.gettempdir()) / "calib")
        self._scratch = self._scratch_stack.enter_context(scratch_folder(beside, "calib"))
        try:
            self._measure_reference(fp32, card, holdout, annotations, images_dir, image_ids)
        except BaseException:
            self.close()
            raise

    def _measure_reference(self, fp32: onnx.ModelProto, card: ModelCard, holdout: Samples,
                           annotations: str | Path | None, images_dir: str | Path | None,
                           image_ids: Sequence[int]) -> None:
        self.fp32_model = fp32
        self.reference = self._run(fp32)
        self.output_names = list(self.reference)
        self.topdown = card.paradigm == "top-down" and holdout.centers is not None
        self.decoder = top_down_decoder(card) if self.topdown else None
        self.reference_xy = self._decode(self.reference) if self.topdown else None
        self.annotation_file: Path | None = None
        self.images_dir = Path(images_dir) if images_dir is not None else None
        self.images = len({o.split("#")[0] for o in holdout.origins})
        if annotations is not None:
            if card.paradigm != "top-down":
                log.warning("COCO AP is measured for top-down models only; %s/%s is %s",
                            card.family, card.variant, card.paradigm)
            elif not image_ids:
                log.warning("no held-out annotated images: AP is not measured")
            else:
                self.annotation_file = self._held_out_annotations(Path(annotations), image_ids)
                self.images = len(image_ids)
        self.reference_ap = self._ap(fp32, "fp32") if self.annotation_file else None

    # -- plumbing --

    def close(self) -> None:
        if self._scratch_stack is not None:
            self._scratch_stack.close()
            self._scratch_stack = None

    def __enter__(self) -> "HoldoutEvaluator":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, model: onnx.ModelProto) -> dict[str, np.ndarray]:
        return run_batched(session(model), self.input_name, self.holdout.inputs,
                           batch=self.batch)

    def _decode(self, outputs: Mapping[str, np.ndarray]) -> np.ndarray:
        heatmaps = outputs[self.card.output("heatmaps").name]
        xy, _ = self.decoder.decode(np.asarray(heatmaps, np.float32), self.holdout.centers,
                                    self.holdout.scales)
        return xy

    def _held_out_annotations(self, path: Path, image_ids: Sequence[int]) -> Path:
        dataset = json.loads(path.read_text(encoding="utf-8"))
        keep = set(image_ids)
        subset = {**dataset, "images": [i for i in dataset["images"] if i.get("id") in keep],
                  "annotations": [a for a in dataset["annotations"]
                                  if a.get("image_id") in keep]}
        return write_json_atomic(self._scratch / "holdout.json", subset)

    def _ap(self, model: onnx.ModelProto, label: str) -> float:
        if self.images_dir is None:
            raise InputError("AP needs the folder of the annotated images")
        return graph_ap(model, self.annotation_file, self.images_dir,
                        self._scratch / f"{label.replace(' ', '_')}.onnx")

    # -- measurements --

    def measure(self, model: onnx.ModelProto, label: str, precision: str, *,
                with_ap: bool = True, with_errors: bool = True) -> PrecisionRow:
        """One row for `model` (as it would be written, FP16 parts included).

        with_ap, with_errors: whether to score AP, and output errors and keypoint
        displacement; each is a run over the held-out data, so the gate asks only for
        what its thresholds need (the row then has () / None for what was not measured).
        """
        runnable, executed = executable(model)
        errors = []
        displacement = None
        if with_errors:
            errors, displacement = self._errors(self._run(runnable))
        ap = ap_drop = None
        if with_ap and self.annotation_file is not None:
            ap = self.reference_ap if model is self.fp32_model else self._ap(runnable, label)
            ap_drop = (self.reference_ap - ap) * 100.0
        return PrecisionRow(label, precision, tuple(errors), displacement, ap, ap_drop, executed)

    def _errors(self, outputs: Mapping[str, np.ndarray]
                ) -> tuple[list[OutputError], tuple[float, ...] | None]:
        """Output errors against FP32, and keypoint displacement at PERCENTILES (top-down)."""
        errors = []
        for name in self.output_names:
            reference = self.reference[name].astype(np.float64)
            value = outputs[name].astype(np.float64)
            norm = float(np.linalg.norm(reference))
            peak = float(np.max(np.abs(reference))) if reference.size else 0.0
            difference = np.abs(value - reference)
            errors.append(OutputError(
                name, float(np.linalg.norm(value - reference) / norm) if norm else 0.0,
                float(difference.max() / peak) if peak else float(difference.max())))
        displacement = None
        if self.topdown:
            moved = np.linalg.norm(self._decode(outputs) - self.reference_xy, axis=2).ravel()
            displacement = tuple(float(np.percentile(moved, p)) for p in PERCENTILES)
        return errors, displacement

    def report(self, rows: Sequence[PrecisionRow], source: str, notes: Sequence[str] = (),
               **details: Any) -> AccuracyReport:
        """The report of `rows`; details: AccuracyReport's fallback, kept_fp32, gate."""
        return AccuracyReport(tuple(rows), len(self.holdout), self.images, source,
                              random_init=self.card.random_init, notes=tuple(notes),
                              **details)


def compare_precisions(models: Mapping[str, tuple[onnx.ModelProto, str]], fp32: onnx.ModelProto,
                       card: ModelCard, holdout: Samples, *, source: str = "held-out data",
                       annotations: str | Path | None = None,
                       images_dir: str | Path | None = None,
                       image_ids: Sequence[int] = (),
                       scratch_beside: str | Path | None = None) -> AccuracyReport:
    """The report for `models` (label → (graph, precision)) against `fp32` on `holdout`;
    scratch_beside as for HoldoutEvaluator."""
    with HoldoutEvaluator(fp32, card, holdout, annotations=annotations, images_dir=images_dir,
                          image_ids=image_ids, scratch_beside=scratch_beside) as evaluator:
        rows = [evaluator.measure(fp32, "fp32", "fp32")]
        rows += [evaluator.measure(model, label, precision)
                 for label, (model, precision) in models.items()]
        return evaluator.report(rows, source)
