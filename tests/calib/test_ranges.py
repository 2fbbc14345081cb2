"""Activation range methods against numpy references on known distributions."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from calib.ranges import (HISTOGRAM_BINS, METHODS, START_BIN, TensorStats, amax_entropy,
                          amax_mse, amax_percentile, collect_statistics, histogram_abs,
                          quantization_mse)
from edgepose.errors import InputError


def _samples(kind: str, size: int = 200_000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.standard_normal(size)
    if kind == "laplace":
        return rng.laplace(size=size)
    if kind == "relu":           # half exact zeros, as a ReLU output
        return np.maximum(rng.standard_normal(size), 0.0)
    if kind == "outlier":        # a normal bulk and a few far values
        return np.concatenate([rng.standard_normal(size), [30.0, -25.0, 40.0]])
    if kind == "uniform":
        return rng.uniform(-3, 3, size)
    raise ValueError(kind)


KINDS = ["normal", "laplace", "relu", "outlier", "uniform"]


# --- histogram -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_histogram_matches_numpy(kind):
    values = _samples(kind, 50_000)
    peak = float(np.abs(values).max())
    expected, _ = np.histogram(np.abs(values), bins=HISTOGRAM_BINS, range=(0, peak))
    counts = histogram_abs(values, peak)
    # Bins are computed in float32 (activations are float32): a value within rounding of
    # an edge may land in the neighbouring bin, nothing more.
    assert counts.sum() == expected.sum() == values.size
    assert np.abs(counts - expected).max() <= 2
    assert np.abs(np.cumsum(counts) - np.cumsum(expected)).max() <= 2


def test_histogram_of_zeros_puts_everything_in_bin_zero():
    counts = histogram_abs(np.zeros(10), 0.0)
    assert counts[0] == 10 and counts[1:].sum() == 0


# --- minmax and percentile ---------------------------------------------------------------------


def _graph(scale: float) -> onnx.ModelProto:
    """y = relu(x * scale): two tensors whose |x| maxima are known."""
    nodes = [helper.make_node("Mul", ["input", "k"], ["scaled"], name="mul"),
             helper.make_node("Relu", ["scaled"], ["out"], name="relu")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 4])],
        [numpy_helper.from_array(np.array(scale, np.float32), "k")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_minmax_is_the_largest_magnitude_seen_over_every_batch():
    inputs = np.random.default_rng(1).standard_normal((37, 4)).astype(np.float32)
    inputs[29, 2] = -9.0                              # the extreme sits in the last batch
    stats = collect_statistics(_graph(-2.0), "input", inputs, histograms=["scaled", "out"],
                               batch=8)
    assert stats["input"].amax("minmax") == pytest.approx(9.0)
    assert stats["scaled"].amax("minmax") == pytest.approx(18.0)
    assert stats["out"].amax("minmax") == pytest.approx(float(np.max(inputs * -2.0)))
    expected, _ = np.histogram(np.abs(inputs * -2.0), bins=HISTOGRAM_BINS, range=(0, 18.0))
    assert np.array_equal(stats["scaled"].histogram, expected)
    assert stats["input"].histogram is None           # only the asked-for histograms


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("percentile", [99.99, 99.9, 50.0])
def test_percentile_is_within_one_bin_above_numpy(kind, percentile):
    magnitudes = np.abs(_samples(kind))
    peak = float(magnitudes.max())
    amax = amax_percentile(histogram_abs(magnitudes, peak), peak, percentile)
    reference = float(np.percentile(magnitudes, percentile))
    width = peak / HISTOGRAM_BINS
    assert reference - 1e-12 <= amax <= reference + width + 1e-12


@pytest.mark.parametrize("percentile", [0, -1, 100.5, "99"])
def test_percentile_out_of_range_is_refused(percentile):
    with pytest.raises(InputError, match="percentile"):
        amax_percentile(np.ones(HISTOGRAM_BINS), 1.0, percentile)


# --- entropy ------------------------------------------------------------------------------------


def entropy_reference(counts: np.ndarray, hist_max: float, levels: int = 128,
                      start: int = 128, min_kept: float = 0.0) -> float:
    """TensorRT's entropy calibration written as the GTC 2017 slides state it, one
    candidate at a time, with NVIDIA's conventions (zero bin takes its neighbour's count;
    the last minimum wins; clip at the edge i·w). min_kept mirrors the guard."""
    bins = [float(c) for c in counts]
    bins[0] = bins[1]
    total = sum(bins)
    best, best_i = math.inf, None
    for i in range(start, len(bins) + 1):
        reference = bins[:i]
        outliers = sum(bins[i:])
        reference[i - 1] += outliers
        if total - outliers < min_kept * total:
            continue
        # Quantise bins 0 … i−1 into `levels` groups, then expand back over non-empty bins.
        groups: list[list[int]] = [[] for _ in range(levels)]
        for k in range(i):
            groups[k * levels // i].append(k)
        candidate = [0.0] * i
        for group in groups:
            nonempty = [k for k in group if bins[k] > 0]
            for k in nonempty:
                candidate[k] = sum(bins[k] for k in group) / len(nonempty)
        p_sum, q_sum = sum(reference), sum(candidate)
        divergence = 0.0
        for p, q in zip(reference, candidate):
            if p > 0:
                if q == 0:
                    divergence = math.inf
                    break
                divergence += p / p_sum * math.log((p / p_sum) / (q / q_sum))
        if divergence <= best:
            best, best_i = divergence, i
    return best_i * hist_max / len(bins)


@pytest.mark.parametrize("kind", KINDS)
def test_entropy_equals_the_loop_reference(kind):
    values = _samples(kind, 60_000, seed=3)
    peak = float(np.abs(values).max())
    counts = histogram_abs(values, peak)
    reference = entropy_reference(counts, peak)
    assert amax_entropy(counts, peak, min_kept=0.0) == pytest.approx(reference, rel=1e-12)
    # On these distributions the guard never binds: the default is the same clip.
    assert amax_entropy(counts, peak) == pytest.approx(reference, rel=1e-12)


def test_entropy_clips_outliers_but_keeps_the_bulk():
    values = _samples("outlier", 200_000)
    peak = float(np.abs(values).max())
    amax = amax_entropy(histogram_abs(values, peak), peak)
    assert 3.0 < amax < 0.5 * peak              # far below the 40 outlier, above 3σ


def test_entropy_guard_stops_clipping_most_of_a_tensor():
    # A ReLU output whose non-zero values all sit near the top: after the zero bin takes
    # its empty neighbour's count, one kept bin makes P = Q and the divergence 0.
    rng = np.random.default_rng(0)
    values = np.concatenate([np.zeros(3000), rng.uniform(8.0, 10.0, 9000), [1.2]])
    peak = float(values.max())
    counts = histogram_abs(values, peak)
    published = amax_entropy(counts, peak, min_kept=0.0)
    assert published == pytest.approx(entropy_reference(counts, peak))
    assert published < 0.2 * peak                    # the published method clips it all away
    guarded = amax_entropy(counts, peak)
    assert guarded == pytest.approx(entropy_reference(counts, peak, min_kept=0.5))
    assert np.mean(values[values > 0] <= guarded) >= 0.5


# --- mse --------------------------------------------------------------------------------------


def _candidates(peak: float) -> np.ndarray:
    return np.arange(START_BIN, HISTOGRAM_BINS + 1) * peak / HISTOGRAM_BINS


@pytest.mark.parametrize("kind", KINDS)
def test_mse_full_search_equals_brute_force_over_bin_centres(kind):
    values = _samples(kind, 20_000, seed=5)
    peak = float(np.abs(values).max())
    counts = histogram_abs(values, peak)
    width = peak / HISTOGRAM_BINS
    centres = (np.arange(HISTOGRAM_BINS) + 0.5) * width
    errors = []
    for clip in _candidates(peak):                  # one candidate at a time
        scale = clip / 127
        quantised = np.minimum(np.round(centres / scale), 127) * scale
        errors.append(float(np.sum(counts * (centres - quantised) ** 2)))
    errors = np.array(errors)
    best = _candidates(peak)[np.flatnonzero(errors <= errors.min() * (1 + 1e-12))[-1]]
    assert amax_mse(counts, peak, coarse_step=1) == pytest.approx(best, rel=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_mse_is_near_the_brute_force_minimum_on_the_raw_samples(kind):
    values = _samples(kind, 20_000, seed=7)
    peak = float(np.abs(values).max())
    amax = amax_mse(histogram_abs(values, peak), peak)
    brute = min(quantization_mse(values, clip) for clip in _candidates(peak)[::4])
    assert quantization_mse(values, amax) <= 1.05 * brute


def test_quantization_mse_of_exactly_representable_values_is_zero():
    values = np.array([-127, -3, 0, 5, 127], np.float64) * 0.5
    assert quantization_mse(values, 63.5) == 0.0


# --- shared behaviour ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_zero_for_an_all_zero_tensor(method):
    stats = TensorStats(0.0, histogram_abs(np.zeros(100), 0.0))
    assert stats.amax(method) == 0.0


@pytest.mark.parametrize("method", METHODS)
def test_every_method_stays_within_the_observed_range(method):
    values = _samples("laplace", 50_000)
    peak = float(np.abs(values).max())
    amax = TensorStats(peak, histogram_abs(values, peak)).amax(method)
    assert 0 < amax <= peak + 1e-9


@pytest.mark.parametrize("counts, hist_max, why", [
    (np.ones(64), 1.0, "fewer bins than the smallest candidate"),
    (-np.ones(HISTOGRAM_BINS), 1.0, "negative counts"),
    (np.ones(HISTOGRAM_BINS), float("nan"), "a NaN range"),
    (np.ones((2, HISTOGRAM_BINS)), 1.0, "not one axis"),
])
def test_bad_histograms_are_refused(counts, hist_max, why):
    with pytest.raises(InputError):
        amax_entropy(counts, hist_max)


def test_unknown_method_and_missing_histogram_are_refused():
    with pytest.raises(InputError, match="unknown range method"):
        TensorStats(1.0, None).amax("kl")
    with pytest.raises(Exception, match="needs a histogram"):
        TensorStats(1.0, None).amax("entropy")
