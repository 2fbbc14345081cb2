"""Activation statistics: run a graph over calibration inputs, reduce each tensor to an amax.

Every INT8 activation in edgepose is quantised symmetrically, so a tensor's range is
one number, amax: scale = amax / 127, zero point 0. Four ways to choose it:

- ``minmax``: the largest |x| seen. Nothing is clipped; rare outliers cost resolution.
- ``percentile``: the given percentile (99.99 by default) of |x|.
- ``entropy``: TensorRT's calibration (Migacz, "8-bit Inference with TensorRT", GTC
  2017): over a 2048-bin histogram of |x|, the clip value whose 128-level quantised
  distribution Q has the least KL divergence from the clipped reference P. Details
  follow NVIDIA's published reference for it (pytorch-quantization's
  ``_compute_amax_entropy``): candidates are the bin edges 128 … 2048, the zero bin is
  given its neighbour's count (ReLU outputs put half of all values there, and that
  spike would otherwise decide the divergence), ties go to the larger clip value.
  One addition, `ENTROPY_MIN_KEPT`: a clip value that would clip more than half of a
  tensor is not considered (see amax_entropy for the blind spot it closes).
- ``mse``: the clip value, among the same bin edges, that minimises the mean squared
  error of symmetric INT8 quantisation, measured on the histogram at bin centres
  (searched every 16th edge, then every edge around the best).

Statistics come from two passes over the data: the first finds every float tensor's
absolute maximum (also what the FP16 range test needs), the second fills the
histograms of the tensors to quantise over [0, that maximum]. Histograms are only
needed by percentile, entropy and mse.

ONNX Runtime's calibrators (onnxruntime.quantization.calibrate) are not used here:
their entropy method histograms signed values with 128 bins by default, not
TensorRT's 2048 bins of |x|, and they have no MSE method.

Shape letters: S samples, B bins.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import onnx

from edgepose import _optional
from edgepose.backends.onnxruntime import reference_session_options
from edgepose.errors import CalibrationError, InputError

log = logging.getLogger(__name__)

METHODS = ("entropy", "percentile", "minmax", "mse")
HISTOGRAM_BINS = 2048
#: INT8 levels on one side of zero, 0 … 127: the entropy method's quantised bins.
QUANT_LEVELS = 128
INT8_MAX = 127
#: The smallest clip value tried is 128 bins of 2048, 1/16 of the maximum.
START_BIN = 128
DEFAULT_PERCENTILE = 99.99
#: The entropy method clips at most half of a tensor's values (see amax_entropy).
ENTROPY_MIN_KEPT = 0.5
#: Batch for statistics runs: every intermediate tensor comes back, so memory grows with it.
STATS_BATCH = 8


# --- ranges from statistics ---------------------------------------------------------------


def histogram_abs(values: np.ndarray, hist_max: float, bins: int = HISTOGRAM_BINS) -> np.ndarray:
    """Counts (B,) int64 of |values| over [0, hist_max] in `bins` equal bins.

    Bin k holds k·w <= |x| < (k+1)·w, w = hist_max / bins; |x| >= hist_max lands in the
    last bin. hist_max <= 0 (an all-zero tensor) puts everything in bin 0.
    """
    flat = np.abs(np.asarray(values, dtype=np.float32).ravel())
    if not hist_max > 0:
        counts = np.zeros(bins, np.int64)
        counts[0] = flat.size
        return counts
    index = (flat * np.float32(bins / hist_max)).astype(np.int64)
    np.minimum(index, bins - 1, out=index)
    return np.bincount(index, minlength=bins).astype(np.int64)


def _checked(counts: np.ndarray, hist_max: float) -> tuple[np.ndarray, float]:
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size < START_BIN or np.any(counts < 0):
        raise InputError(f"histogram: expected at least {START_BIN} non-negative counts (B,), "
                         f"got shape {counts.shape}")
    if not (math.isfinite(hist_max) and hist_max >= 0):
        raise InputError(f"histogram maximum must be a finite number >= 0, got {hist_max!r}")
    return counts, float(hist_max)


def amax_percentile(counts: np.ndarray, hist_max: float,
                    percentile: float = DEFAULT_PERCENTILE) -> float:
    """Upper edge of the bin where the cumulative share of |x| reaches `percentile` %.

    Within one bin width (hist_max / B) above np.percentile(|x|, percentile).
    """
    counts, hist_max = _checked(counts, hist_max)
    if not (isinstance(percentile, (int, float)) and 0 < percentile <= 100):
        raise InputError(f"percentile must be in (0, 100], got {percentile!r}")
    total = counts.sum()
    if total == 0 or hist_max == 0:
        return 0.0
    cumulative = np.cumsum(counts)
    index = int(np.searchsorted(cumulative, total * percentile / 100.0, side="left"))
    index = min(index, counts.size - 1)
    return (index + 1) * hist_max / counts.size


def amax_entropy(counts: np.ndarray, hist_max: float, *, levels: int = QUANT_LEVELS,
                 start_bin: int = START_BIN, min_kept: float = ENTROPY_MIN_KEPT) -> float:
    """TensorRT's entropy (KL-divergence) clip value for a histogram of |x|.

    For each candidate i in start_bin … B (clip at the edge i·w): P is bins 0 … i−1 with
    every count beyond added to bin i−1; Q merges bins 0 … i−1 into `levels` groups
    (bin k joins group ⌊k·levels / i⌋), then spreads each group's count evenly over
    its non-empty bins. KL(P‖Q) of the normalised P and Q picks i; an empty Q bin
    under a non-empty P bin makes the divergence infinite. Vectorised over all
    candidates with prefix sums: O(candidates × levels), not × B.

    min_kept guards a blind spot of the method: when the values below the clip fall
    in a single bin (a ReLU output whose non-zero values all sit near its maximum,
    once the zero bin takes its empty neighbour's count), P and Q are the same spike
    and the divergence is 0 however much is clipped; a random-init HRNet-W8 had two
    such tensors clipped to 15% of their range, which raised its output error
    sixfold. Candidates that clip more than 1 − min_kept of the histogram's mass are
    therefore not considered; min_kept=0 gives the published algorithm exactly.
    """
    counts, hist_max = _checked(counts, hist_max)
    bins = counts.copy()
    bins[0] = bins[1]
    total = bins.sum()
    size = bins.size
    if total == 0 or hist_max == 0:
        return 0.0
    candidates = np.arange(start_bin, size + 1, dtype=np.int64)            # (I,)
    prefix = np.concatenate([[0.0], np.cumsum(bins)])                        # C[m] = Σ bins[:m]
    nonzero = np.concatenate([[0], np.cumsum(bins > 0)])                     # NZ[m]
    with np.errstate(divide="ignore", invalid="ignore"):
        xlogx = np.where(bins > 0, bins * np.log(np.where(bins > 0, bins, 1.0)), 0.0)
    prefix_xlogx = np.concatenate([[0.0], np.cumsum(xlogx)])

    group = np.arange(levels + 1, dtype=np.int64)                            # (L+1,)
    # Group j starts at the first k with k·levels >= j·i: ceil(j·i / levels).
    starts = (group[None, :] * candidates[:, None] + levels - 1) // levels    # (I, L+1)
    group_sum = prefix[starts[:, 1:]] - prefix[starts[:, :-1]]               # (I, L)
    group_nonzero = nonzero[starts[:, 1:]] - nonzero[starts[:, :-1]]          # (I, L)
    with np.errstate(divide="ignore", invalid="ignore"):
        q_value = np.where(group_nonzero > 0, group_sum / np.maximum(group_nonzero, 1), 0.0)
        sum_p_log_q = np.where(group_sum > 0, group_sum * np.log(np.where(q_value > 0, q_value,
                                                                          1.0)), 0.0).sum(1)
    kept = prefix[candidates]                                                # Σ bins[:i] = Σ Q
    outliers = total - kept
    last = bins[candidates - 1]
    last_p = last + outliers
    with np.errstate(divide="ignore", invalid="ignore"):
        sum_p_log_p = (prefix_xlogx[candidates - 1]
                       + np.where(last_p > 0, last_p * np.log(np.where(last_p > 0, last_p, 1.0)),
                                  0.0))
        # The outliers sit in bin i−1 of P; Q there is its group's spread value, or 0.
        q_last = q_value[np.arange(candidates.size), (candidates - 1) * levels // candidates]
        q_last = np.where(last > 0, q_last, 0.0)
        sum_p_log_q = sum_p_log_q + np.where(outliers > 0,
                                             outliers * np.log(np.where(q_last > 0, q_last, 1.0)),
                                             0.0)
        divergence = (sum_p_log_p - sum_p_log_q) / total - math.log(total) + np.log(kept)
    divergence = np.where((outliers > 0) & (q_last <= 0), np.inf, divergence)
    divergence = np.where(kept > 0, divergence, np.inf)
    divergence = np.where(kept >= min_kept * total, divergence, np.inf)
    if not np.isfinite(divergence).any():
        return hist_max
    best = divergence.min()
    # Last minimum: equal divergences favour the wider range, as NVIDIA's reference does.
    index = int(np.flatnonzero(divergence <= best)[-1])
    return float(candidates[index]) * hist_max / size


def quantization_mse(values: np.ndarray, amax: float) -> float:
    """Mean squared error of symmetric INT8 fake quantisation of `values` with clip `amax`."""
    values = np.asarray(values, dtype=np.float64)
    if not amax > 0:
        return float(np.mean(values ** 2))
    scale = amax / INT8_MAX
    quantised = np.clip(np.round(values / scale), -INT8_MAX, INT8_MAX) * scale
    return float(np.mean((values - quantised) ** 2))


def _mse_errors(centres: np.ndarray, weights: np.ndarray, clips: np.ndarray) -> np.ndarray:
    """Σ weights·(c − q(c))² for each clip value (C,), q symmetric INT8 saturating at ±clip."""
    scale = clips[:, None] / INT8_MAX                                         # (C, 1)
    quantised = np.minimum(np.round(centres[None, :] / scale), INT8_MAX) * scale
    return ((centres[None, :] - quantised) ** 2) @ weights


def amax_mse(counts: np.ndarray, hist_max: float, *, start_bin: int = START_BIN,
             coarse_step: int = 16) -> float:
    """Clip value among the bin edges start_bin·w … B·w with the least INT8 quantisation MSE.

    Each bin's values are taken at its centre (as NVIDIA's pytorch-quantization
    does); the error of a clip a is Σ counts·(c − q_a(c))², q_a symmetric INT8 with
    scale a/127, saturating at ±a. Searched coarse to fine: every `coarse_step`-th
    edge, then every edge within one coarse step of the best (16× fewer evaluations
    than all 1921 edges; `coarse_step=1` searches them all). Ties go to the larger
    clip value.
    """
    counts, hist_max = _checked(counts, hist_max)
    size = counts.size
    if counts.sum() == 0 or hist_max == 0:
        return 0.0
    width = hist_max / size
    live = np.flatnonzero(counts)
    centres = (live + 0.5) * width
    weights = counts[live]
    coarse = np.arange(size, start_bin - 1, -max(1, int(coarse_step)))[::-1]
    errors = _mse_errors(centres, weights, coarse * width)
    best = int(coarse[np.flatnonzero(errors <= errors.min())[-1]])
    fine = np.arange(max(start_bin, best - coarse_step), min(size, best + coarse_step) + 1)
    errors = _mse_errors(centres, weights, fine * width)
    index = int(np.flatnonzero(errors <= errors.min())[-1])
    return float(fine[index]) * width


@dataclass(frozen=True)
class TensorStats:
    """What calibration saw of one tensor: |x| maximum and, when collected, its histogram."""

    absmax: float
    histogram: np.ndarray | None = None       # (HISTOGRAM_BINS,) counts over [0, absmax]

    def amax(self, method: str, percentile: float = DEFAULT_PERCENTILE) -> float:
        """The clip value by `method`; percentile, entropy and mse need the histogram."""
        if method not in METHODS:
            raise InputError(f"unknown range method {method!r}; expected one of {METHODS}")
        if method == "minmax":
            return float(self.absmax)
        if self.histogram is None:
            raise CalibrationError(f"the {method} method needs a histogram, and none was "
                                   "collected for this tensor")
        if method == "percentile":
            return amax_percentile(self.histogram, self.absmax, percentile)
        if method == "entropy":
            return amax_entropy(self.histogram, self.absmax)
        return amax_mse(self.histogram, self.absmax)


# --- running a graph ------------------------------------------------------------------------


def session(model: onnx.ModelProto, *, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session for an in-memory graph (the reference executor)."""
    ort = _optional.onnxruntime()
    return ort.InferenceSession(model.SerializeToString(),
                                reference_session_options(ort, threads),
                                providers=["CPUExecutionProvider"])


def session_batch(sess: Any, input_name: str, batch: int) -> int:
    """`batch`, or the graph's own batch where its input fixes one (detectors exported
    for one image at a time take exactly that)."""
    for spec in sess.get_inputs():
        if spec.name == input_name and spec.shape and isinstance(spec.shape[0], int) \
                and spec.shape[0] > 0:
            return spec.shape[0]
    return batch


def run_batched(sess: Any, input_name: str, inputs: np.ndarray, *, batch: int = 16,
                outputs: Sequence[str] | None = None,
                feeds: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every output over `inputs` (S, …) in batches, concatenated along the batch axis."""
    batch = session_batch(sess, input_name, batch)
    names = list(outputs) if outputs is not None else [o.name for o in sess.get_outputs()]
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for start in range(0, len(inputs), batch):
        values = sess.run(names, {input_name: inputs[start:start + batch], **(feeds or {})})
        for name, value in zip(names, values):
            parts[name].append(value)
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def float_tensors(model: onnx.ModelProto) -> list[str]:
    """Names of the float32 tensors the graph computes (graph input(s) and node outputs)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types: dict[str, int] = {}
    for value in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        if value.type.HasField("tensor_type"):
            types[value.name] = value.type.tensor_type.elem_type
    initializers = {i.name for i in model.graph.initializer}
    names = [v.name for v in model.graph.input if v.name not in initializers]
    for node in model.graph.node:
        names.extend(o for o in node.output if o)
    return [n for n in dict.fromkeys(names) if types.get(n) == onnx.TensorProto.FLOAT]


def _exposing(model: onnx.ModelProto, tensors: Sequence[str]) -> onnx.ModelProto:
    """A copy of `model` whose outputs are exactly `tensors` (float32)."""
    augmented = copy.deepcopy(model)
    del augmented.graph.output[:]
    graph_inputs = {v.name for v in model.graph.input}
    exposed = [t for t in tensors if t not in graph_inputs]
    augmented.graph.output.extend(
        onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for t in exposed)
    return augmented


def _progress(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit="sample", leave=False)


def collect_statistics(model: onnx.ModelProto, input_name: str, inputs: np.ndarray, *,
                       histograms: Iterable[str] = (), batch: int = STATS_BATCH,
                       progress: bool = False) -> dict[str, TensorStats]:
    """|x| maxima of every float tensor of `model`, and histograms of those in `histograms`.

    inputs: (S, …) float32 network inputs. Histograms take a second pass, over
    [0, the tensor's maximum] in HISTOGRAM_BINS bins.
    """
    if len(inputs) == 0:
        raise CalibrationError("no calibration inputs: nothing to measure ranges on")
    tensors = float_tensors(model)
    wanted = list(dict.fromkeys(histograms))
    unknown = [t for t in wanted if t not in tensors]
    if unknown:
        raise CalibrationError(f"tensor(s) {unknown[:3]} are not float tensors of the graph")
    sess = session(_exposing(model, tensors))
    batch = session_batch(sess, input_name, batch)
    exposed = [o.name for o in sess.get_outputs()]
    absmax = {t: 0.0 for t in tensors}
    nonfinite: set[str] = set()

    bar = _progress(len(inputs) * (2 if wanted else 1), progress, "calibration statistics")
    for start in range(0, len(inputs), batch):
        chunk = inputs[start:start + batch]
        values = dict(zip(exposed, sess.run(exposed, {input_name: chunk})))
        values[input_name] = chunk
        for name in tensors:
            value = values[name]
            if value.size:
                peak = float(max(value.max(), -value.min()))
                if not math.isfinite(peak):
                    nonfinite.add(name)
                    peak = float(np.max(np.abs(value[np.isfinite(value)]), initial=0.0))
                absmax[name] = max(absmax[name], peak)
        if bar is not None:
            bar.update(len(chunk))
    if nonfinite:
        log.warning("%d tensor(s) held inf or NaN on the calibration data (first: %s); their "
                    "ranges ignore those values", len(nonfinite), sorted(nonfinite)[0])

    counts = {t: np.zeros(HISTOGRAM_BINS, np.int64) for t in wanted}
    if wanted:
        names = [t for t in wanted if t != input_name]
        for start in range(0, len(inputs), batch):
            chunk = inputs[start:start + batch]
            values = dict(zip(names, sess.run(names, {input_name: chunk})))
            values[input_name] = chunk
            for name in wanted:
                value = values[name]
                if name in nonfinite:
                    value = value[np.isfinite(value)]
                counts[name] += histogram_abs(value, absmax[name])
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return {t: TensorStats(absmax[t], counts.get(t)) for t in tensors}
