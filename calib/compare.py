"""`edgepose compare`: does a candidate (a TensorRT engine on the device, or a reduced-
precision ONNX graph anywhere) still compute what its FP32 reference graph computes?

Built on Polygraphy, NVIDIA's tool for this check: the reference runs in Polygraphy's
OnnxrtRunner on ONNX Runtime's CPU (with the reference session options: Q/DQ run as
written, as TensorRT reads them), an ONNX candidate likewise (FP16 parts emulated, as
`calibrate` measures them, since the CPU has no FP16 kernels for them), an engine in
Polygraphy's TrtRunner on the execution context edgepose opened after its sidecar
checks; Polygraphy's Comparator runs both on the same inputs — the calibration crops
edgepose makes from the images, as its own data loader — and judges the outputs
against the stated tolerances. Through edgepose's decoder the same outputs give the
keypoint displacement in pixels, and with annotations the AP of both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import onnx

from calib.calibrate import read_card
from calib.data import Samples, load_calibration_data
from calib.fp16 import emulate_fp16, has_fp16
from calib.ranges import session
from calib.report import graph_ap
from edgepose import _optional
from edgepose.backends import ENGINE_SUFFIXES, ONNX_SUFFIXES
from edgepose.card import ModelCard
from edgepose.errors import InputError
from edgepose.io import scratch_folder
from edgepose.pipeline import top_down_decoder
from export.onnx_files.card import load_onnx

log = logging.getLogger(__name__)

PERCENTILES = (50, 90, 99)
#: Polygraphy's error statistics that a tolerance may be checked on.
ERROR_STATS = ("elemwise", "max", "mean", "median")


def polygraphy() -> Any:
    return _optional.import_optional("polygraphy", "calib", "Comparing models with Polygraphy")


@dataclass(frozen=True)
class Tolerances:
    """What the candidate must meet; None: not checked (only reported).

    atol, rtol: Polygraphy's output tolerances, checked on error_stat ("elemwise": every
    element within atol or rtol). max_kpt_error: p90 keypoint displacement in pixels
    (top-down; the statistic calibrate's gate uses). max_ap_drop: AP points below the reference (with annotations)."""

    atol: float | None = None
    rtol: float | None = None
    error_stat: str = "elemwise"
    max_kpt_error: float | None = None
    max_ap_drop: float | None = None

    def __post_init__(self) -> None:
        if self.error_stat not in ERROR_STATS:
            raise InputError(f"error statistic must be one of {ERROR_STATS}, got "
                             f"{self.error_stat!r}")
        for name in ("atol", "rtol", "max_kpt_error", "max_ap_drop"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value >= 0):
                raise InputError(f"{name.replace('_', ' ')} must be a number ≥ 0, got {value!r}")

    @property
    def outputs_checked(self) -> bool:
        return self.atol is not None or self.rtol is not None


@dataclass(frozen=True)
class OutputDifference:
    """One output over every sample: absolute and relative error (|Δ| / |reference|,
    where the reference is not zero)."""

    name: str
    max_abs: float
    mean_abs: float
    max_rel: float
    mean_rel: float
    passed: bool | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class CompareReport:
    candidate: str
    reference: str
    executed: str
    samples: int
    outputs: tuple[OutputDifference, ...]
    displacement: tuple[float, ...] | None
    reference_ap: float | None
    candidate_ap: float | None
    tolerances: Tolerances
    failures: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def ap_drop(self) -> float | None:
        if self.reference_ap is None or self.candidate_ap is None:
            return None
        return (self.reference_ap - self.candidate_ap) * 100.0

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "reference": self.reference,
                "executed": self.executed, "samples": self.samples,
                "outputs": [o.to_dict() for o in self.outputs],
                "keypoint_displacement_px": None if self.displacement is None else dict(
                    zip((f"p{p}" for p in PERCENTILES), self.displacement)),
                "reference_ap": self.reference_ap, "candidate_ap": self.candidate_ap,
                "ap_drop_points": self.ap_drop, "tolerances": dict(self.tolerances.__dict__),
                "passed": self.passed, "failures": list(self.failures)}

    def format_table(self) -> str:
        lines = [f"{self.candidate} against {self.reference} on {self.samples} samples "
                 f"({self.executed})",
                 f"{'output':<20} {'max |Δ|':>10} {'mean |Δ|':>10} {'max rel':>10} "
                 f"{'mean rel':>10}  verdict"]
        for o in self.outputs:
            verdict = "-" if o.passed is None else "pass" if o.passed else "FAIL"
            lines.append(f"{o.name:<20} {o.max_abs:>10.4g} {o.mean_abs:>10.4g} "
                         f"{o.max_rel:>10.4g} {o.mean_rel:>10.4g}  {verdict}")
        if self.displacement is not None:
            lines.append("keypoint displacement px: " + ", ".join(
                f"p{p} {v:.3f}" for p, v in zip(PERCENTILES, self.displacement)))
        if self.ap_drop is not None:
            lines.append(f"AP: reference {self.reference_ap:.4f}, candidate "
                         f"{self.candidate_ap:.4f}, drop {self.ap_drop:.2f} points")
        lines.append("PASSED" if self.passed else "FAILED: " + "; ".join(self.failures))
        return "\n".join(lines)


class _EngineContext:
    """The execution context of an engine that edgepose opened (sidecar, plan checksum,
    TensorRT version and GPU checked), for Polygraphy's TrtRunner; closed after."""

    def __init__(self, path: Path, card_type: type) -> None:
        self.path, self.card_type = path, card_type
        self.runner: Any = None

    def __call__(self) -> Any:
        from edgepose.backends.tensorrt import TensorRTRunner

        self.runner = TensorRTRunner(self.path, card_type=self.card_type)
        return self.runner.execution_context

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()


def _runners(candidate: Path, reference_graph: onnx.ModelProto, card: Any
             ) -> tuple[list[Any], str, list[Any], onnx.ModelProto | None]:
    """([reference runner, candidate runner], how the candidate runs, things to close,
    the graph ONNX Runtime runs in place of the candidate's file when its FP16 parts are
    emulated, else None)."""
    from polygraphy.backend.onnxrt import OnnxrtRunner

    reference = OnnxrtRunner(lambda: session(reference_graph), name="reference (onnxruntime)")
    suffix = candidate.suffix.lower()
    if suffix in ONNX_SUFFIXES:
        graph = load_onnx(candidate)
        emulated = emulate_fp16(graph) if has_fp16(graph) else None
        executed = "onnxruntime CPU" + (", FP16 emulated" if emulated is not None else "")
        ran = emulated if emulated is not None else graph
        runner = OnnxrtRunner(lambda: session(ran), name="candidate (onnxruntime)")
        return [reference, runner], executed, [], emulated
    if suffix in ENGINE_SUFFIXES:
        from polygraphy.backend.trt import TrtRunner

        context = _EngineContext(candidate, type(card))
        return ([reference, TrtRunner(context, name="candidate (tensorrt)")], "TensorRT",
                [context], None)
    raise InputError(f"cannot compare {str(candidate)!r}: expected an ONNX file or a TensorRT "
                     f"engine ({', '.join(ONNX_SUFFIXES + ENGINE_SUFFIXES)})")


def _feeds(samples: Samples, input_name: str, batch: int) -> Iterator[dict[str, np.ndarray]]:
    """Polygraphy's data loader: any iterable of feed dicts."""
    for start in range(0, len(samples), batch):
        yield {input_name: samples.inputs[start:start + batch]}


def _difference(name: str, reference: np.ndarray, candidate: np.ndarray,
                passed: bool | None) -> OutputDifference:
    reference = reference.astype(np.float64)
    delta = np.abs(candidate.astype(np.float64) - reference)
    nonzero = reference != 0
    relative = delta[nonzero] / np.abs(reference[nonzero])
    return OutputDifference(name, float(delta.max(initial=0.0)), float(delta.mean()),
                            float(relative.max(initial=0.0)),
                            float(relative.mean()) if relative.size else 0.0, passed)


def _joined(iterations: Sequence[Mapping[str, np.ndarray]], name: str) -> np.ndarray:
    return np.concatenate([np.asarray(iteration[name]) for iteration in iterations])


def _verdicts(accuracy: Any) -> dict[str, bool]:
    """Per output: whether every iteration passed Polygraphy's check (one comparison
    function, one runner pair)."""
    passed: dict[str, bool] = {}
    for result in accuracy:
        for iterations in result.values():
            for iteration in iterations:
                for name, verdict in iteration.items():
                    passed[name] = passed.get(name, True) and bool(verdict)
    return passed


def compare_models(candidate: str | Path, reference: str | Path, data: str | Path, *,
                   annotations: str | Path | None = None, samples: int = 64, batch: int = 1,
                   seed: int = 0, tolerances: Tolerances = Tolerances(),
                   score_ap: bool = True, progress: bool = False) -> CompareReport:
    """Run `candidate` and the FP32 `reference` graph on the same calibration crops of
    `data` (an image folder, with `annotations` a COCO keypoint file, or a video) and
    compare them; see the module docstring. batch: samples per inference call (an
    engine built for batch 1 takes 1). With annotations the crops are the annotated
    people (without, a top-down model crops whole images, where several people make
    argmax flips between them likely), and score_ap scores both models' AP on them."""
    polygraphy()  # a missing package named with its extra, before any work
    from polygraphy.comparator import Comparator, compare as comparisons

    candidate, reference = Path(candidate), Path(reference)
    for path, role in ((candidate, "candidate"), (reference, "reference")):
        if not path.is_file():
            raise InputError(f"the {role} {str(path)!r} does not exist")
    if reference.suffix.lower() not in ONNX_SUFFIXES:
        raise InputError(f"the reference must be an ONNX graph, got {reference.name!r}")
    if not isinstance(batch, int) or batch < 1:
        raise InputError(f"batch must be a positive integer, got {batch!r}")
    reference_graph = load_onnx(reference)
    card = read_card(reference_graph, reference)
    if has_fp16(reference_graph):
        # `build --verify` of an FP16 graph: the graph itself is the reference, emulated.
        reference_graph = emulate_fp16(reference_graph)
    dataset = load_calibration_data(data, card, annotations=annotations, samples=samples,
                                    seed=seed, holdout=0.0, progress=progress)
    chosen = dataset.calibration
    from polygraphy.logger import G_LOGGER

    runners, executed, closing, emulated = _runners(candidate, reference_graph, card)
    # Polygraphy logs every iteration's statistics; the report below says what matters.
    with G_LOGGER.verbosity(G_LOGGER.ERROR):
        try:
            results = Comparator.run(runners, data_loader=_feeds(chosen, card.input.name,
                                                                 batch))
        finally:
            for item in closing:
                item.close()
    # Polygraphy fails an element only when it is outside both tolerances, so one left
    # unstated must be 0, not Polygraphy's default, for the stated one to bind alone.
    # SimpleCompareFunc since Polygraphy 0.53; CompareFunc.simple before (deprecated there).
    simple = getattr(comparisons, "SimpleCompareFunc", None) or comparisons.CompareFunc.simple
    compare = simple(atol=tolerances.atol or 0.0, rtol=tolerances.rtol or 0.0,
                     check_error_stat=tolerances.error_stat)
    with G_LOGGER.verbosity(G_LOGGER.CRITICAL):
        accuracy = Comparator.compare_accuracy(results, compare_func=compare)
    verdicts = _verdicts(accuracy) if tolerances.outputs_checked else {}
    (_, reference_runs), (_, candidate_runs) = list(results.items())
    names = list(reference_runs[0].keys())
    reference_out = {n: _joined(reference_runs, n) for n in names}
    candidate_out = {n: _joined(candidate_runs, n) for n in names}
    outputs = tuple(_difference(n, reference_out[n], candidate_out[n], verdicts.get(n))
                    for n in names)
    displacement = _displacement(card, chosen, reference_out, candidate_out)
    reference_ap = candidate_ap = None
    if (score_ap and annotations is not None and isinstance(card, ModelCard)
            and card.paradigm == "top-down"):
        reference_ap = _ap(reference, None, dataset)
        candidate_ap = _ap(candidate, emulated, dataset)
    report = CompareReport(str(candidate), str(reference), executed, len(chosen), outputs,
                           displacement, reference_ap, candidate_ap, tolerances)
    return CompareReport(**{**report.__dict__, "failures": _failures(report)})


def _displacement(card: Any, chosen: Samples, reference: Mapping[str, np.ndarray],
                  candidate: Mapping[str, np.ndarray]) -> tuple[float, ...] | None:
    if not (isinstance(card, ModelCard) and card.paradigm == "top-down"
            and chosen.centers is not None):
        return None
    decoder = top_down_decoder(card)
    name = card.output("heatmaps").name

    def decode(outputs: Mapping[str, np.ndarray]) -> np.ndarray:
        return decoder.decode(np.asarray(outputs[name], np.float32), chosen.centers,
                              chosen.scales)[0]

    moved = np.linalg.norm(decode(candidate) - decode(reference), axis=2).ravel()
    return tuple(float(np.percentile(moved, p)) for p in PERCENTILES)


def _ap(model: Path, emulated: onnx.ModelProto | None, dataset: Any) -> float:
    """COCO keypoint AP on the annotated images (ground-truth boxes), as 'edgepose eval'
    scores it; a graph with FP16 parts is scored as executed (`emulated`)."""
    from edgepose.evaluate import evaluate_model

    if emulated is None:
        return float(evaluate_model(model, dataset.annotations, dataset.images_dir,
                                    progress=False).metrics["AP"])
    with scratch_folder(model, "compare") as folder:
        return graph_ap(emulated, dataset.annotations, dataset.images_dir,
                        folder / "emulated.onnx")


def _failures(report: CompareReport) -> tuple[str, ...]:
    tol = report.tolerances
    failed = []
    broken = [o.name for o in report.outputs if o.passed is False]
    if broken:
        failed.append(f"output(s) {broken} exceed atol {tol.atol} / rtol {tol.rtol} "
                      f"({tol.error_stat})")
    if tol.max_kpt_error is not None:
        if report.displacement is None:
            failed.append("--max-kpt-error needs a top-down pose model")
        elif report.displacement[PERCENTILES.index(90)] > tol.max_kpt_error:
            failed.append(f"p90 keypoint displacement "
                          f"{report.displacement[PERCENTILES.index(90)]:.3f} px > "
                          f"{tol.max_kpt_error} px")
    if tol.max_ap_drop is not None:
        if report.ap_drop is None:
            failed.append("--max-ap-drop needs --annotations and a top-down pose model")
        elif report.ap_drop > tol.max_ap_drop:
            failed.append(f"AP drop {report.ap_drop:.2f} points > {tol.max_ap_drop}")
    return tuple(failed)
