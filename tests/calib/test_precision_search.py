"""The FP32-layer search (calib/precision_search.py) and `edgepose debug-precision`.

Expected sets come from brute force over every subset, or from driving Polygraphy's own
BisectMarker (the algorithm this search mirrors) with the same verdicts; the whole loop
runs on the CPU with a tiny INT8 graph whose one bad range must be found, and the engine
path runs through the recording TensorRT double with the comparison replaced.
"""

from __future__ import annotations

import importlib
import itertools
import math

import numpy as np
import onnx
import pytest

pytest.importorskip("polygraphy", reason="polygraphy is not installed (the 'calib' extra)")

import calib.compare  # noqa: E402
from calib.compare import Tolerances  # noqa: E402
from calib.data import load_calibration_data  # noqa: E402
from calib.fp16 import convert_to_fp16  # noqa: E402
from calib.int8 import measure_ranges, quantizable_layers, quantized_layers, write_int8  # noqa: E402
from calib.precision_search import (POLYGRAPHY_MIRRORED, GraphRepair,  # noqa: E402
                                    PrecisionSearchError, TrialJudge, find_fp32_layers,
                                    ranges_from_scales, search_fp32_layers)
from edgepose.errors import InputError, PrecisionError  # noqa: E402
from tests.calib.tiny import save, tiny_pose, topdown_card, write_images  # noqa: E402

NAMES = [f"L{i}" for i in range(10)]


def _subsets(names):
    for size in range(len(names) + 1):
        yield from itertools.combinations(names, size)


def _brute_force_smallest(names, passes):
    return min((s for s in _subsets(names) if passes(s)), key=len)


def _needs(hidden):
    return lambda kept: set(hidden) <= set(kept)


@pytest.mark.parametrize("hidden", [("L3",), ("L0",), ("L9",), ("L2", "L7"), ("L1", "L4", "L8"),
                                    ("L5", "L6")])
@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_the_refined_search_finds_the_brute_force_minimum(hidden, direction):
    passes = _needs(hidden)
    result = find_fp32_layers(NAMES, passes, direction=direction)
    assert set(result.kept) == set(_brute_force_smallest(NAMES, passes))
    assert result.trials[-1].passed or any(t.kept == result.kept and t.passed
                                           for t in result.trials)


def test_with_any_monotone_verdict_the_result_passes_and_is_irreducible():
    rng = np.random.default_rng(0)
    names = NAMES[:8]
    for _ in range(30):
        weights = dict(zip(names, rng.integers(0, 5, len(names))))
        threshold = int(rng.integers(1, sum(weights.values()) + 1))

        def passes(kept):
            return sum(weights[n] for n in kept) >= threshold

        result = find_fp32_layers(names, passes)
        assert passes(result.kept)
        assert all(not passes([n for n in result.kept if n != dropped])
                   for dropped in result.kept)
        assert len(result.trials) == len({t.kept for t in result.trials})   # none repeated


def _polygraphy_bisect(count, direction, passes):
    """Polygraphy's BisectMarker driven as its debug loop drives it: the marked count."""
    from polygraphy.tools.debug.subtool.precision import BisectMarker

    marker = BisectMarker(count, direction)
    while True:
        indices = list(marker.select_layers())
        if marker.step(passes(indices)):
            return marker.good


@pytest.mark.parametrize("direction", ["forward", "reverse"])
@pytest.mark.parametrize("hidden", [{3}, {0}, {9}, {2, 7}, {5, 6}])
def test_without_refining_it_keeps_the_prefix_polygraphy_would(direction, hidden):
    by_index = {name: index for index, name in enumerate(NAMES)}
    result = find_fp32_layers(NAMES, lambda kept: hidden <= {by_index[n] for n in kept},
                              direction=direction, refine=False)
    marked = _polygraphy_bisect(len(NAMES), direction, lambda indices: hidden <= set(indices))
    assert len(result.kept) == marked
    expected = NAMES[:marked] if direction == "forward" else NAMES[len(NAMES) - marked:]
    assert list(result.kept) == expected


@pytest.mark.parametrize("count", [2, 7, 16, 100, 454])
def test_one_needed_layer_costs_about_log2_trials(count):
    names = [f"n{i}" for i in range(count)]
    hidden = names[count * 2 // 3]
    prefix = find_fp32_layers(names, _needs([hidden]), refine=False)
    # nothing, everything, then a bisection of [0, count]
    assert len(prefix.trials) <= 2 + math.ceil(math.log2(count))
    refined = find_fp32_layers(names, _needs([hidden]))
    assert refined.kept == (hidden,)
    assert len(refined.trials) <= 3 + math.ceil(math.log2(count))


def test_a_passing_candidate_costs_one_trial_and_keeps_nothing():
    result = find_fp32_layers(NAMES, lambda kept: True)
    assert result.kept == () and [t.kept for t in result.trials] == [()]


def test_when_even_all_fp32_fails_the_error_says_so():
    asked = []
    with pytest.raises(PrecisionSearchError, match="even all 10 searched layer"):
        find_fp32_layers(NAMES, lambda kept: asked.append(kept) or False)
    assert asked == [(), tuple(NAMES)]
    assert issubclass(PrecisionSearchError, PrecisionError)


def test_refusals():
    with pytest.raises(InputError, match="direction"):
        find_fp32_layers(NAMES, lambda kept: True, direction="sideways")
    with pytest.raises(InputError, match="repeat"):
        find_fp32_layers(["a", "a"], lambda kept: True)


# --- the whole loop on the CPU ----------------------------------------------------------------


@pytest.fixture
def work(tmp_path):
    model = tiny_pose()
    save(model, tmp_path / "fp32.onnx")
    write_images(tmp_path / "images", 6)
    crops = load_calibration_data(tmp_path / "images", topdown_card(), samples=6, holdout=0.0,
                                  progress=False).calibration.inputs
    amax = measure_ranges(model, "input", crops, layers=quantizable_layers(model)).ranges("minmax")
    # r2 feeds only the head: a range 100× too small clips it there and nowhere else.
    return tmp_path, model, amax


def _cpu_judge(work_dir, tolerances, folder, seen=None):
    def on_report(kept, report):
        if seen is not None:
            seen.append((tuple(kept), report.passed))

    return TrialJudge(reference=work_dir / "fp32.onnx", data=work_dir / "images", folder=folder,
                      tolerances=tolerances, samples=6, on_report=on_report)


@pytest.mark.parametrize("fallback", ["fp32", "fp16"])
def test_ranges_read_back_from_the_scales_rewrite_the_same_graph(work, fallback):
    _, model, amax = work
    graph = write_int8(model, amax, fallback=fallback)
    read = ranges_from_scales(graph)
    assert set(read) == set(amax)
    tolerance = 1e-3 if fallback == "fp16" else 1e-6     # FP16 scales hold 11 bits
    assert all(read[t] == pytest.approx(amax[t], rel=tolerance) for t in amax)
    again = GraphRepair(graph, model).write([])
    assert quantized_layers(again) == quantized_layers(graph)
    assert _scales(again) == pytest.approx(_scales(graph))


def _scales(model):
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    return [float(numpy_helper.to_array(inits[n.input[1]]).ravel()[0])
            for n in model.graph.node if n.op_type == "QuantizeLinear"]


def test_the_search_on_the_cpu_finds_the_layer_with_the_bad_range(work, tmp_path):
    work_dir, model, amax = work
    bad = write_int8(model, {**amax, "r2": amax["r2"] / 100}, fallback="fp32")
    save(bad, work_dir / "bad.int8.onnx")
    tolerances = Tolerances(atol=0.5)
    repair = GraphRepair(bad, model)
    # The oracle: every subset compared, independently of the search.
    folder = tmp_path / "oracle"
    folder.mkdir()
    oracle = _cpu_judge(work_dir, tolerances, folder)
    verdicts = {s: oracle(repair.write(s), s) for s in _subsets(repair.layers)}
    assert not verdicts[()] and verdicts[tuple(repair.layers)]
    smallest = min((s for s, ok in verdicts.items() if ok), key=len)
    assert smallest == ("head",)            # the precondition the test is built on
    seen: list = []
    search = tmp_path / "search"
    search.mkdir()
    result, graph = search_fp32_layers(bad, model, _cpu_judge(work_dir, tolerances, search, seen))
    assert result.kept == smallest
    assert seen == [(t.kept, t.passed) for t in result.trials]
    assert all(verdicts[kept] == passed for kept, passed in seen)
    assert quantized_layers(graph) == ["conv1", "conv2", "residual"]
    assert list(search.iterdir()) == []                   # trial files gone after each trial


def test_an_fp16_candidate_keeps_fp16_nodes_in_fp32(work):
    _, model, _ = work
    fp16 = convert_to_fp16(model)
    repair = GraphRepair(fp16, model)
    assert repair.kind == "fp16"
    assert set(repair.layers) == {n.name for n in model.graph.node}
    kept = repair.write(["head"])
    inferred = onnx.shape_inference.infer_shapes(kept)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    head = next(n for n in kept.graph.node if n.name == "head")
    assert all(types[name] == onnx.TensorProto.FLOAT
               for name in head.input if name not in {i.name for i in kept.graph.initializer})


def test_a_fp32_candidate_or_a_reduced_reference_is_refused(work):
    _, model, amax = work
    with pytest.raises(InputError, match="neither INT8"):
        GraphRepair(model, model)
    with pytest.raises(InputError, match="FP32 graph the candidate"):
        GraphRepair(model, convert_to_fp16(model))


# --- the engine path, through the TensorRT double ---------------------------------------------


def test_each_trial_builds_an_engine_from_its_graph_and_compares_that(work, tmp_path,
                                                                      monkeypatch):
    import export.engine.tensorrt as tensorrt_build
    from tests.export.engine.trt_double import make_tensorrt

    _, model, amax = work
    bad = write_int8(model, amax, fallback="fp16")
    monkeypatch.setattr(tensorrt_build, "_device_identity", lambda: ("Orin", "8.7"))
    trt = make_tensorrt()
    compared = []

    def judged(candidate, reference, data, **kwargs):
        # The double's plan cannot run; the graph it parsed last is what this engine is.
        parsed = trt._recorder.calls("OnnxParser", "parse_from_file")[-1][0][0]
        graph = onnx.load(parsed)
        assert candidate.suffix == ".engine" and candidate.is_file()
        every = [layer.node for layer in quantizable_layers(model)]
        compared.append(tuple(n for n in every if n not in quantized_layers(graph)))
        failures = () if "residual" in compared[-1] else ("output(s) broken",)
        return calib.compare.CompareReport(str(candidate), str(reference), "TensorRT", 4, (),
                                           None, None, None, kwargs["tolerances"], failures)

    monkeypatch.setattr(calib.compare, "compare_models", judged)
    folder = tmp_path / "trials"
    folder.mkdir()
    seen = []
    judge = TrialJudge(reference=tmp_path / "fp32.onnx", data=tmp_path / "images",
                       folder=folder, tolerances=Tolerances(atol=0.1), runner="tensorrt",
                       trt=trt, on_report=lambda kept, report: seen.append(tuple(kept)))
    result, graph = search_fp32_layers(bad, model, judge)
    assert result.kept == ("residual",)
    # Every engine was built from the graph of its trial: its FP32 layers are the trial's.
    assert compared == seen
    assert len(trt._recorder.calls("Builder", "build_serialized_network")) == len(seen)
    assert list(folder.iterdir()) == []


# --- the command --------------------------------------------------------------------------------


def test_the_command_writes_the_repaired_graph_and_its_search(work, capsys):
    import json

    from edgepose.cli.precision_search import add_debug_precision, run_debug_precision

    work_dir, model, amax = work
    save(write_int8(model, {**amax, "r2": amax["r2"] / 100}, fallback="fp32"),
         work_dir / "bad.int8.onnx")
    import argparse

    parser = argparse.ArgumentParser()
    add_debug_precision(parser.add_subparsers())
    out, report = work_dir / "fixed.int8.onnx", work_dir / "search.json"
    args = parser.parse_args(["debug-precision", str(work_dir / "bad.int8.onnx"), "--against",
                              str(work_dir / "fp32.onnx"), "--data", str(work_dir / "images"),
                              "--out", str(out), "--json", str(report), "--atol", "0.5",
                              "--samples", "6", "--runner", "onnxruntime"])
    assert run_debug_precision(args) == 0
    assert quantized_layers(onnx.load(str(out))) == ["conv1", "conv2", "residual"]
    written = json.loads(report.read_text())
    assert written["kept_fp32"] == ["head"] and written["trials"][0]["passed"] is False
    err = capsys.readouterr().err
    assert err.count("trial: ") == len(written["trials"])


def test_the_command_refuses_without_a_tolerance_and_never_overwrites_an_input(work):
    import argparse

    from edgepose.cli.precision_search import add_debug_precision, run_debug_precision

    work_dir, model, amax = work
    save(write_int8(model, amax, fallback="fp32"), work_dir / "c.onnx")
    parser = argparse.ArgumentParser()
    add_debug_precision(parser.add_subparsers())
    base = ["debug-precision", str(work_dir / "c.onnx"), "--against", str(work_dir / "fp32.onnx"),
            "--data", str(work_dir / "images")]
    with pytest.raises(InputError, match="state what"):
        run_debug_precision(parser.parse_args(base + ["--out", str(work_dir / "o.onnx")]))
    with pytest.raises(InputError):
        run_debug_precision(parser.parse_args(base + ["--out", str(work_dir / "c.onnx"),
                                                      "--atol", "1"]))


# --- contract: the Polygraphy names this module and its comparison rely on --------------------


def test_every_polygraphy_name_used_exists_in_the_installed_polygraphy():
    for module_name, names in POLYGRAPHY_MIRRORED.items():
        module = importlib.import_module(module_name)
        assert all(hasattr(module, name) for name in names), module_name
    from polygraphy.tools.debug.subtool.precision import BisectMarker

    # The facts the search reproduces: all layers marked first, prefix or suffix marked.
    marker = BisectMarker(8, "forward")
    assert list(marker.select_layers()) == list(range(8))
    marker.num_layers_to_mark = 3
    assert list(marker.select_layers()) == [0, 1, 2]
    marker.direction = "reverse"
    assert list(marker.select_layers()) == [5, 6, 7]
    # What calib.compare (every trial's comparison) takes from Polygraphy.
    from polygraphy.backend.onnxrt import OnnxrtRunner
    from polygraphy.backend.trt import TrtRunner
    from polygraphy.comparator import Comparator, compare
    from polygraphy.logger import G_LOGGER

    assert callable(Comparator.run) and callable(Comparator.compare_accuracy)
    assert hasattr(compare, "SimpleCompareFunc") or hasattr(compare.CompareFunc, "simple")
    assert OnnxrtRunner and TrtRunner and G_LOGGER.verbosity
