"""The latency profiler: statistics, stage accounting, reports, plot, errors, and real runs.

Stage accounting runs on a virtual clock (edgepose.profile.timing._now_ns): stand-in
runners, crops and decoders move it on by known amounts, so every stage's time is
checked exactly, free of a shared machine's noise. TensorRT's side runs the real
TensorRTRunner on the fake CUDA and TensorRT doubles of
tests/edgepose/backends/test_tensorrt.py, whose events tick 1.5 ms per record.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepose import pipeline as pipeline_module
from edgepose import profile as prof
from edgepose.backends.base import RunnerBase, TensorSpec
from edgepose.backends.tensorrt import CallTimings
from edgepose.card import DecoderSpec, InputSpec, ModelCard, OutputSpec
from edgepose.decode.topdown import TopDownDecoder
from edgepose.errors import InputError, MissingDependencyError
from edgepose.pipeline import TopDownPipeline
from edgepose.profile import options, timing
from tests.edgepose.backends.test_tensorrt import (  # noqa: F401 - `install` is a fixture
    INPUT_MODE, OUTPUT_MODE, FakeNetwork, FakeTensor, install, write_engine)

HEIGHT, WIDTH, K = 64, 48, 17
HM_H, HM_W = HEIGHT // 4, WIDTH // 4
# A stage total is exact per call on the CPU (contiguous checkpoints); summing the
# means adds float rounding only. On the GPU path host_overhead is clamped at 0.
SUM_TOLERANCE_MS = 0.01
SUM_TOLERANCE_REL = 0.005
TICK_MS = 1e-3  # VirtualClock.TICK_NS in ms


def _card(paradigm="top-down", flip_test=False, precision="fp32"):
    return ModelCard(family="test", variant="delay", paradigm=paradigm, keypoints="coco17",
                     input=InputSpec("input", HEIGHT, WIDTH, mean=(0, 0, 0), std=(1, 1, 1)),
                     outputs=(OutputSpec("heatmaps", "heatmaps", 4),),
                     decoder=DecoderSpec("topdown", flip_test=flip_test), precision=precision)


def _wait(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class VirtualClock:
    """Stands in for perf_counter_ns: each read moves it on 1 µs (one TICK_MS), runners
    and patched stages by their delay."""

    TICK_NS = 1000

    def __init__(self):
        self.ns = 0

    def __call__(self):
        self.ns += self.TICK_NS
        return self.ns

    def advance(self, ms):
        self.ns += round(ms * 1e6)


@pytest.fixture
def clock(monkeypatch):
    virtual = VirtualClock()
    monkeypatch.setattr(timing, "_now_ns", virtual)
    return virtual


@pytest.fixture
def slow_stages(monkeypatch, clock):
    """Cropping costs PRE_MS and decoding DECODE_MS on the virtual clock."""
    crop, decode = pipeline_module.crop_batch, TopDownDecoder.decode

    def slow_crop(*args, **kwargs):
        clock.advance(PRE_MS)
        return crop(*args, **kwargs)

    def slow_decode(self, *args, **kwargs):
        clock.advance(DECODE_MS)
        return decode(self, *args, **kwargs)

    monkeypatch.setattr(pipeline_module, "crop_batch", slow_crop)
    monkeypatch.setattr(TopDownDecoder, "decode", slow_decode)
    return clock


PRE_MS, DECODE_MS = 0.25, 0.75


class DelayRunner(RunnerBase):
    """Answers after `delay_ms` with heatmaps peaked where the crop is brightest.

    With a VirtualClock the delay moves that clock; without one it is a real busy wait.
    """

    def __init__(self, delay_ms, *, max_batch=None, card=None, clock=None):
        self.card = card or _card()
        self.delay_ms = delay_ms
        self.clock = clock
        self.inputs = (TensorSpec("input", np.dtype(np.float32), (max_batch, 3, HEIGHT, WIDTH)),)
        self.outputs = (TensorSpec("heatmaps", np.dtype(np.float32), (None, K, HM_H, HM_W)),)
        self.max_batch = max_batch
        self.batches = []

    def infer(self, feeds):
        x = feeds["input"]
        self.batches.append(x.shape[0])
        if self.clock is not None:
            self.clock.advance(self.delay_ms)
        else:
            _wait(self.delay_ms / 1000)
        small = x.sum(axis=1)[:, ::4, ::4]
        heat = np.repeat(small[:, None], K, axis=1).astype(np.float32)
        return {"heatmaps": heat + np.arange(K, dtype=np.float32)[None, :, None, None] * 0.01}


class GpuDelayRunner(DelayRunner):
    """A runner reporting CUDA-event stages the way TensorRTRunner(timing=True) does."""

    timing = True
    activation_bytes = 1000
    buffer_bytes = (2000, 3000)  # the proposed TensorRTRunner hook: (device, pinned host)
    zero_copy = False

    def __init__(self, h2d_ms, compute_ms, d2h_ms, host_ms, **kw):
        super().__init__(h2d_ms + compute_ms + d2h_ms + host_ms, **kw)
        self.last_timings = None
        self.event_times = (h2d_ms, compute_ms, d2h_ms)

    def infer(self, feeds):
        out = super().infer(feeds)
        self.last_timings = CallTimings(*self.event_times)
        return out


def _factory(runners):
    """runner_factory answering by file name from {name: zero-arg runner maker}."""
    opened = []

    def factory(path, *, cuda_graph=False):
        runner = runners[Path(path).name]()
        opened.append((Path(path).name, cuda_graph))
        return runner

    factory.opened = opened
    return factory


def _profile(runner, name="m.onnx", **kw):
    kw.setdefault("warmup", 2)
    kw.setdefault("iters", 10)
    return prof.profile_model(name, progress=False, runner_factory=_factory({name: lambda: runner}),
                              **kw)


def _component_sum(stages):
    return sum(s.mean for name, s in stages.items() if name != "end_to_end")


def _assert_sums(stages):
    total = stages["end_to_end"].mean
    assert math.isclose(_component_sum(stages), total, rel_tol=SUM_TOLERANCE_REL,
                        abs_tol=SUM_TOLERANCE_MS)


# ---------------------------------------------------------------------------------------------
# Statistics

def _reference_percentile(values, q):
    """Linear interpolation between closest ranks, written out from a sorted list."""
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low = int(math.floor(rank))
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@pytest.mark.parametrize("samples", [
    [3.0],                                           # one sample: every statistic is it
    [1.0, 2.0],                                      # interpolation between two
    [5.0, 1.0, 4.0, 4.0, 2.0, 9.0, 0.5],             # unsorted, with a tie
    list(np.random.default_rng(0).gamma(2.0, 3.0, 501)),  # a long, skewed tail like latency
])
def test_stage_stats_match_a_sorted_list_reference(samples):
    stats = prof.stage_stats(samples)
    n = len(samples)
    mean = sum(samples) / n
    assert stats.count == n
    assert stats.mean == pytest.approx(mean, rel=1e-12)
    assert stats.std == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in samples) / n),
                                      rel=1e-9, abs=1e-12)
    assert stats.min == min(samples) and stats.max == max(samples)
    for name, q in (("p50", 50), ("p90", 90), ("p99", 99)):
        assert getattr(stats, name) == pytest.approx(_reference_percentile(samples, q), rel=1e-12)


@pytest.mark.parametrize("samples, message", [
    ([], "no samples"),                  # nothing timed
    ([1.0, -0.5], "non-negative"),       # a negative duration is a clock bug
    ([1.0, float("nan")], "finite"),     # NaN from a failed event read
])
def test_stage_stats_refuse_unusable_samples(samples, message):
    with pytest.raises(InputError, match=message):
        prof.stage_stats(samples)


def test_layer_summary_averages_and_ranks():
    layers = prof.summarize_layers({"conv1": [1.0, 3.0], "relu": [0.5, 0.5], "conv2": [4.0]})
    assert [layer.name for layer in layers] == ["conv2", "conv1", "relu"]
    assert [layer.mean_ms for layer in layers] == [4.0, 2.0, 0.5]
    assert sum(layer.share for layer in layers) == pytest.approx(1.0)
    assert layers[0].share == pytest.approx(4.0 / 6.5)


# ---------------------------------------------------------------------------------------------
# Stage accounting

def test_cpu_stages_are_non_negative_and_sum_to_end_to_end(clock):
    runner = DelayRunner(3.0, clock=clock)
    result = _profile(runner, batch_sizes=(1, 3), warmup=3, iters=12)
    assert [b.batch for b in result.batches] == [1, 3]
    assert runner.batches == [1] * 15 + [3] * 15  # first call + 2 warm-up + 12 timed per size
    for batch in result.batches:
        stages = batch.stages
        assert set(stages) == {"preprocess", "infer", "decode", "end_to_end"}  # no h2d/d2h on CPU
        assert all(s.min >= 0 for s in stages.values())
        assert all(s.count == 12 for s in stages.values())
        _assert_sums(stages)
        assert set(batch.first_call_ms) == set(stages)
        assert batch.frames_per_s == pytest.approx(1000 / stages["end_to_end"].mean)
        assert batch.people_per_s == pytest.approx(batch.batch * batch.frames_per_s)
    assert result.timing == "perf_counter_ns" and result.copies is None
    assert result.memory.gpu_bytes is None and result.backend == "onnxruntime"


def test_stage_accounting_on_a_virtual_clock_is_exact(clock):
    result = _profile(DelayRunner(3.0, clock=clock), batch_sizes=(2,), iters=5)
    stages = result.batches[0].stages
    # One clock read closes each stage: preprocess at the hook after the input tensor;
    # infer at the hook after the runner; decode at the hooks after the copy and after
    # the decoder, and at the end of the call.
    assert stages["preprocess"].min == stages["preprocess"].max == pytest.approx(TICK_MS)
    assert stages["infer"].min == stages["infer"].max == pytest.approx(3.0 + TICK_MS)
    assert stages["decode"].min == stages["decode"].max == pytest.approx(3 * TICK_MS)
    assert stages["end_to_end"].mean == pytest.approx(3.0 + 5 * TICK_MS)
    assert _component_sum(stages) == pytest.approx(stages["end_to_end"].mean, abs=1e-9)
    assert stages["end_to_end"].std == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("flip, runs", [
    (False, 1),   # one runner call per chunk
    (True, 2),    # the flip test runs the mirrored crops too: twice the runner's time
])
def test_each_stage_gets_the_time_spent_in_it(slow_stages, flip, runs):
    """Cropping, the runner and decoding cost known, different amounts: each lands in its stage."""
    result = _profile(DelayRunner(2.0, clock=slow_stages, card=_card(flip_test=flip)),
                      batch_sizes=(3,), iters=4).batches[0]
    stages = result.stages
    # Without flip: ticks at preprocess | infer | decode (copy), decode (decoder), end.
    # With flip: + preprocess (mirror), infer, decode (copy), decode (flip merge).
    ticks = {"preprocess": runs, "infer": runs, "decode": 3 + 2 * (runs - 1)}
    assert stages["preprocess"].mean == pytest.approx(PRE_MS + ticks["preprocess"] * TICK_MS)
    assert stages["infer"].mean == pytest.approx(runs * 2.0 + ticks["infer"] * TICK_MS)
    assert stages["decode"].mean == pytest.approx(DECODE_MS + ticks["decode"] * TICK_MS)
    assert stages["end_to_end"].mean == pytest.approx(
        PRE_MS + runs * 2.0 + DECODE_MS + sum(ticks.values()) * TICK_MS)
    assert result.first_call_ms == {name: pytest.approx(s.mean) for name, s in stages.items()}


def test_gpu_stages_come_from_the_runner_events(clock):
    runner = GpuDelayRunner(0.4, 2.0, 0.3, 0.5, max_batch=4, clock=clock)
    result = _profile(runner, name="m.engine", batch_sizes=(2,), iters=8)
    stages = result.batches[0].stages
    assert set(stages) == {"preprocess", "h2d", "infer", "d2h", "host_overhead", "decode",
                           "end_to_end"}
    assert stages["h2d"].mean == pytest.approx(0.4)
    assert stages["infer"].mean == pytest.approx(2.0) and stages["infer"].std == pytest.approx(0)
    assert stages["d2h"].mean == pytest.approx(0.3)
    # The host time the events do not cover: the runner's 0.5 ms plus one clock tick.
    assert stages["host_overhead"].mean == pytest.approx(0.5 + TICK_MS)
    assert all(s.min >= 0 for s in stages.values())
    assert _component_sum(stages) == pytest.approx(stages["end_to_end"].mean, abs=1e-9)
    assert result.timing == "cuda-events" and result.copies == "pinned"
    assert result.memory.gpu_activation_bytes == 1000
    assert result.memory.gpu_buffer_bytes == 2000 and result.memory.pinned_host_bytes == 3000
    assert result.memory.gpu_bytes == 3000


def test_gpu_events_add_up_over_the_flip_test_runs(clock):
    runner = GpuDelayRunner(0.4, 2.0, 0.3, 0.5, max_batch=4, clock=clock,
                            card=_card(flip_test=True))
    stages = _profile(runner, name="m.engine", batch_sizes=(2,), iters=3).batches[0].stages
    assert stages["h2d"].mean == pytest.approx(0.8) and stages["infer"].mean == pytest.approx(4.0)
    assert stages["d2h"].mean == pytest.approx(0.6)
    assert stages["host_overhead"].mean == pytest.approx(2 * (0.5 + TICK_MS))


def test_flip_test_runs_the_model_twice_per_call_and_matches_the_pipeline():
    runner = DelayRunner(0.0, card=_card(flip_test=True))
    result = _profile(runner, batch_sizes=(2,), warmup=1, iters=3)
    assert result.flip_test and runner.batches == [2] * 8
    frame = prof.synthetic_frame((320, 240))
    boxes = prof.grid_boxes(3, 320, 240)
    timed = timing._TimedPipeline(DelayRunner(0.0, card=_card(flip_test=True), max_batch=2),
                                  gpu_timed=False)
    _, ours = timed.run(frame, boxes)
    theirs = TopDownPipeline(DelayRunner(0.0, card=_card(flip_test=True), max_batch=2))(
        frame, boxes)
    np.testing.assert_array_equal(ours.xy, theirs.xy)
    np.testing.assert_array_equal(ours.scores, theirs.scores)
    np.testing.assert_array_equal(ours.person_scores, theirs.person_scores)


@pytest.mark.parametrize("flip, people, max_batch, expected", [
    (False, 1, None, ["preprocess", "infer", "decode", "decode"]),   # one chunk
    (False, 3, 2, ["preprocess", "infer", "decode"] * 2 + ["decode"]),  # two chunks, one decode
    (True, 1, None, ["preprocess", "infer", "decode", "preprocess", "infer", "decode",
                     "decode", "decode"]),                            # mirror, second run, merge
])
def test_the_pipeline_stage_hook_marks_each_boundary(flip, people, max_batch, expected):
    pipeline = TopDownPipeline(DelayRunner(0.0, card=_card(flip_test=flip), max_batch=max_batch))
    assert TopDownPipeline.stage_hook is None and pipeline.stage_hook is None
    plain = pipeline(prof.synthetic_frame((320, 240)), prof.grid_boxes(people, 320, 240))
    seen = []
    pipeline.stage_hook = seen.append
    hooked = pipeline(prof.synthetic_frame((320, 240)), prof.grid_boxes(people, 320, 240))
    assert seen == expected
    np.testing.assert_array_equal(plain.xy, hooked.xy)  # the hook changes nothing it sees


def test_a_batch_sweep_runs_each_batch_in_one_runner_call():
    """A dynamic batch axis would run in chunks of DEFAULT_CHUNK; the sweep times batch B whole."""
    runner = DelayRunner(0.0)
    _profile(runner, batch_sizes=(pipeline_module.DEFAULT_CHUNK + 4,), warmup=1, iters=2)
    assert runner.batches == [pipeline_module.DEFAULT_CHUNK + 4] * 3


@pytest.mark.parametrize("chunk, max_batch", [
    (0, None),    # no people per call
    (5, 4),       # more than the runner takes
    (True, None), # a bool is not a count
])
def test_a_pipeline_chunk_outside_the_runner_batch_is_refused(chunk, max_batch):
    with pytest.raises(InputError, match=rf"chunk is {chunk!r}; expected an integer from 1"):
        TopDownPipeline(DelayRunner(0.0, max_batch=max_batch), chunk=chunk)


def test_a_duration_bounds_the_timed_calls():
    result = _profile(DelayRunner(1.0), iters=None, duration_s=0.05)
    batch = result.batches[0]
    assert 1 <= batch.iterations <= 60 and len(batch.samples_ms) == batch.iterations


def test_given_boxes_fill_the_batch_in_order():
    boxes = np.array([[10, 10, 40, 80], [100, 20, 50, 90]], np.float32)
    np.testing.assert_array_equal(options.boxes_for(5, boxes, 320, 240),
                                  boxes[[0, 1, 0, 1, 0]])
    assert prof.grid_boxes(5, 320, 240).shape == (5, 4)


# ---------------------------------------------------------------------------------------------
# TensorRTRunner (on the fake CUDA and TensorRT doubles)

def _pose17_network(layers=False):
    """The double's engine with 17 heatmap channels (the card says coco17)."""

    h, w = 8, 6

    def compute(inputs):
        x = inputs["input"]
        heat = np.stack([x[:, 0, ::2, ::2] * (k + 1) for k in range(K)], axis=1)
        pafs = np.stack([x[:, c, ::2, ::2] for c in (1, 2, 1, 2)], axis=1)
        return {"heatmaps": heat.astype(np.float32), "pafs": pafs.astype(np.float16)}

    def output_shape(shapes):
        n = shapes["input"][0]
        return {"heatmaps": (n, K, h // 2, w // 2), "pafs": (n, 4, h // 2, w // 2)}

    return FakeNetwork(
        tensors=[FakeTensor("input", INPUT_MODE, "FLOAT", (-1, 3, h, w),
                            ((1, 3, h, w), (2, 3, h, w), (4, 3, h, w))),
                 FakeTensor("heatmaps", OUTPUT_MODE, "FLOAT", (-1, K, h // 2, w // 2)),
                 FakeTensor("pafs", OUTPUT_MODE, "HALF", (-1, 4, h // 2, w // 2))],
        compute=compute, output_shape=output_shape)


def _add_layer_profiling(trt):
    """Give the double TensorRT's IProfiler and a context that reports two layers per run."""

    class IProfiler:
        def __init__(self):
            pass

    context_cls = trt._classes["IExecutionContext"]
    plain_execute = context_cls.execute_async_v3

    def execute_async_v3(self, stream_handle):
        ok = plain_execute(self, stream_handle)
        if getattr(self, "profiler", None) is not None:
            self.profiler.report_layer_time("conv", 0.75)
            self.profiler.report_layer_time("head", 0.25)
        return ok

    trt.IProfiler = IProfiler
    context_cls.execute_async_v3 = execute_async_v3
    context_cls.profiler = None


def test_tensorrt_runner_event_timings_pinned_buffers_and_layers(install, tmp_path):
    doubles = install(network=_pose17_network())
    _add_layer_profiling(doubles.trt)
    path = write_engine(tmp_path)
    result = prof.profile_model(path, batch_sizes=(1, 4), warmup=2, iters=5, layers=True,
                                progress=False)
    for batch in result.batches:
        stages = batch.stages
        # The fake events tick 1.5 ms per record: one tick per stage.
        for name in ("h2d", "infer", "d2h"):
            assert stages[name].mean == pytest.approx(1.5) and stages[name].std == pytest.approx(0)
        assert stages["host_overhead"].min >= 0
    assert result.backend == "tensorrt" and result.timing == "cuda-events"
    assert result.device == "Fake H100 (compute capability 9.0)" and result.copies == "pinned"
    assert result.memory.gpu_activation_bytes == 12345  # the double's device_memory_size_v2
    # Planned once for batch 4: input 4x3x8x6 fp32, heatmaps 4x17x4x3 fp32, pafs 4x4x4x3 fp16.
    planned = 4 * 3 * 8 * 6 * 4 + 4 * K * 4 * 3 * 4 + 4 * 4 * 4 * 3 * 2
    assert result.memory.gpu_buffer_bytes == planned == result.memory.pinned_host_bytes
    assert [(layer.name, layer.mean_ms) for layer in result.layers] == [("conv", 0.75),
                                                                        ("head", 0.25)]
    assert result.layer_batch == 1
    assert "top 2 of 2 layers" in prof.ProfileReport((result,), prof.collect_environment()
                                                     ).format_table()


def test_a_batch_outside_the_engine_profile_names_the_range(install, tmp_path):
    install(network=_pose17_network())
    with pytest.raises(InputError, match=r"batch size\(s\) \[8\] are outside the engine "
                                         r"model\.engine's optimisation profile 1\.\.4"):
        prof.profile_model(write_engine(tmp_path), batch_sizes=(1, 8), warmup=1, iters=1,
                           progress=False)


def test_a_batch_beyond_a_fixed_onnx_batch_names_the_range():
    with pytest.raises(InputError, match=r"\[2\] are outside m\.onnx's batch range 1\.\.1"):
        _profile(DelayRunner(0.0, max_batch=1), batch_sizes=(1, 2))


def test_the_profiler_names_exist_on_the_tensorrt_11_lean_bindings():
    try:
        import tensorrt_lean as trt
    except Exception as exc:  # noqa: BLE001 - the wheels fail in several ways without libraries
        pytest.skip(f"tensorrt_lean is not importable ({type(exc).__name__}: {exc})")
    for owner, names in prof.TENSORRT_PROFILER_NAMES.items():
        target = trt if owner == "tensorrt" else getattr(trt, owner)
        assert all(hasattr(target, name) for name in names), owner


# ---------------------------------------------------------------------------------------------
# Several models: ratios, table, JSON, plot

@pytest.fixture(scope="module")
def two_model_report():
    """fast.onnx (2 ms) then slow.onnx (5 ms), timed on a virtual clock."""
    with pytest.MonkeyPatch.context() as patch:
        virtual = VirtualClock()
        patch.setattr(timing, "_now_ns", virtual)
        factory = _factory({"slow.onnx": lambda: DelayRunner(5.0, clock=virtual),
                            "fast.onnx": lambda: DelayRunner(2.0, clock=virtual)})
        return prof.profile_models(["fast.onnx", "slow.onnx"], batch_sizes=(1, 2), warmup=2,
                                   iters=10, progress=False, runner_factory=factory)


def test_ratios_compare_with_the_first_model(two_model_report):
    report = two_model_report
    assert [m.name for m in report.models] == ["fast.onnx", "slow.onnx"]
    for batch in (1, 2):
        assert report.ratio(1, batch, "infer") == pytest.approx((5.0 + TICK_MS) / (2.0 + TICK_MS))
        assert report.ratio(0, batch, "infer") == 1.0
        # End to end adds the same few host ticks to both: still 2.5 within 1 %.
        assert report.ratio(1, batch) == pytest.approx(2.5, rel=0.01)
    table = report.format_table()
    assert f"{report.ratio(1, 1, 'infer'):.2f}x" in table
    assert "end to end" in table and "h2d" not in table
    assert "[1] fast.onnx" in table and "[2] slow.onnx" in table


def test_json_round_trip(two_model_report, tmp_path):
    video = prof.VideoProfile(path="v.avi", frames=3, people=2, frame_size=(160, 120), wall_s=0.1,
                              stages={"read": prof.stage_stats([0.1, 0.2, 0.3]),
                                      "end_to_end": prof.stage_stats([1.0, 2.0, 3.0])},
                              first_frame_ms={"end_to_end": 9.0}, samples_ms=(1.0, 2.0, 3.0))
    with_video = prof.ModelProfile(**{**two_model_report.models[0].__dict__, "batches": (),
                                      "video": video,
                                      "layers": (prof.LayerTime("conv", 1.0, 1.0),),
                                      "layer_batch": 1})
    report = prof.ProfileReport(two_model_report.models + (with_video,),
                                two_model_report.environment, two_model_report.created)
    path = prof.write_report_json(report, tmp_path / "profile.json")
    data = json.loads(path.read_text())
    assert data["schema"] == prof.REPORT_SCHEMA
    assert data["models"][1]["batches"][0]["ratio_to_first"]["infer"] == report.ratio(1, 1, "infer")
    assert prof.read_report_json(path) == report
    assert prof.ProfileReport.from_dict(report.to_dict()) == report
    with pytest.raises(InputError, match="schema is 99"):
        prof.ProfileReport.from_dict({**data, "schema": 99})


def test_the_plot_is_a_png(two_model_report, tmp_path):
    path = prof.write_plot(two_model_report, tmp_path / "profile.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = cv2.imread(str(path))
    assert image is not None and image.shape == (620, 1400, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10  # something was drawn
    assert [p.name for p in tmp_path.iterdir()] == ["profile.png"]  # no temporary left
    with pytest.raises(InputError, match=r"\*\.png"):
        prof.write_plot(two_model_report, tmp_path / "profile.jpg")


def test_plot_image_is_bgr_uint8(two_model_report):
    image = prof.plot_image(two_model_report, size=(800, 500))
    assert image.shape == (500, 800, 3) and image.dtype == np.uint8
    assert image.flags.c_contiguous  # cv2.imencode takes it as it is
    # The first model's colour (matplotlib's tab:blue, RGB 31,119,180) appears in BGR order.
    assert np.any(np.all(image == (180, 119, 31), axis=-1))


def _renamed(report, names):
    models = tuple(prof.ModelProfile(**{**m.__dict__, "name": n}) for m, n in
                   zip(report.models, names))
    return prof.ProfileReport(models, report.environment, report.created)


def test_the_legend_holds_full_names_below_the_panels(two_model_report):
    long = "hrnet_w32_256x192_coco_int8_entropy_calibrated_on_val2017_512.engine"
    report = _renamed(two_model_report, ["hrnet_w32_256x192_fp32.onnx", long])
    figure = prof.plot_figure(report)
    figure.canvas.draw()
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "[1] hrnet_w32_256x192_fp32.onnx", f"[2] {long}"]
    renderer = figure.canvas.get_renderer()
    box = legend.get_window_extent(renderer)
    for axes in figure.axes:
        panel = axes.get_tightbbox(renderer)
        assert box.y1 <= panel.y0 + 1, "the legend overlaps a panel"
    assert 0 <= box.x0 and box.x1 <= figure.bbox.width  # nothing cut at the edge


def test_a_video_plot_fills_both_panels(tmp_path, clock):
    video = _write_video(tmp_path / "clip.avi")
    factory = _factory({"a.onnx": lambda: DelayRunner(2.0, clock=clock),
                        "b.onnx": lambda: DelayRunner(4.0, clock=clock)})
    report = prof.profile_models(["a.onnx", "b.onnx"], video=video, iters=4, warmup=1,
                                 progress=False, runner_factory=factory)
    left, right = prof.plot_figure(report).axes
    assert "stage" in left.get_title()
    bars = [patch.get_width() for patch in left.patches]
    # One bar per stage per model: read, preprocess, infer, decode.
    assert len(bars) == 8 and max(bars) == pytest.approx(4.0 + TICK_MS)
    assert right.patches  # the histogram


def test_plotting_without_matplotlib_names_the_extra(two_model_report, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'edgepose\[plot\]'"):
        prof.plot_image(two_model_report)


# ---------------------------------------------------------------------------------------------
# Video

def _write_video(path, frames=6, size=(160, 120)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    assert writer.isOpened(), "this OpenCV cannot write MJPG"
    for index in range(frames):
        frame = np.full((size[1], size[0], 3), 30, np.uint8)
        cv2.circle(frame, (20 + 15 * index, 60), 6, (255, 255, 255), -1)
        writer.write(frame)
    writer.release()
    return path


def test_video_runs_every_frame_through_the_chain(tmp_path):
    video = _write_video(tmp_path / "clip.avi")
    runner = DelayRunner(1.0, max_batch=2)
    result = prof.profile_video("m.onnx", video, warmup=2, progress=False,
                                boxes=np.array([[10, 10, 60, 100], [80, 10, 60, 100],
                                                [40, 5, 50, 90]], np.float32),
                                runner_factory=_factory({"m.onnx": lambda: runner}))
    run = result.video
    assert run.frames == 6 and run.people == 18 and run.frame_size == (160, 120)
    assert runner.batches == [2, 1] * 8  # chunks of the runner's max batch, as the pipeline does
    assert set(run.stages) == {"read", "preprocess", "infer", "decode", "end_to_end"}
    _assert_sums(run.stages)
    assert run.fps > 0 and run.people_per_s == pytest.approx(3 * run.fps)
    assert result.batches == ()


def test_video_per_frame_boxes_from_json(tmp_path):
    video = _write_video(tmp_path / "clip.avi")
    boxes = tmp_path / "boxes.json"
    # Frame 1 has nobody in it; the boxes end after frame 3 although the video goes on.
    boxes.write_text(json.dumps([[[10, 10, 60, 100]], [], [{"bbox": [5, 5, 50, 80], "score": 0.9}],
                                 [[10, 10, 60, 100], [80, 10, 60, 100]]]))
    runner = DelayRunner(0.0)
    result = prof.profile_video("m.onnx", video, boxes=boxes, warmup=1, progress=False,
                                runner_factory=_factory({"m.onnx": lambda: runner}))
    assert result.video.frames == 4 and result.video.people == 4
    assert result.video.stages["read"].count == 4 and result.video.stages["infer"].count == 3
    assert runner.batches == [1, 1, 1, 2]  # warm-up call, then frames 0, 2, 3


def test_video_stops_at_max_frames(tmp_path):
    video = _write_video(tmp_path / "clip.avi")
    result = prof.profile_video("m.onnx", video, warmup=1, max_frames=3, progress=False,
                                runner_factory=_factory({"m.onnx": lambda: DelayRunner(0.0)}))
    assert result.video.frames == 3


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing.avi", "does not exist"),                      # no such file
    (lambda tmp: (tmp / "bad.avi").write_text("not a video") and tmp / "bad.avi",
     "could not be opened"),                                                 # not a video
])
def test_a_missing_or_unreadable_video_is_an_input_error(tmp_path, make, message):
    with pytest.raises(InputError, match=message):
        prof.profile_video("m.onnx", make(tmp_path), progress=False,
                           runner_factory=_factory({"m.onnx": lambda: DelayRunner(0.0)}))


# ---------------------------------------------------------------------------------------------
# Arguments

@pytest.mark.parametrize("text, seconds", [
    ("10s", 10.0), ("500ms", 0.5), ("2m", 120.0), ("1.5s", 1.5), (" 2min ", 120.0), ("1h", 3600.0),
])
def test_durations(text, seconds):
    assert prof.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [
    "10",      # no unit: seconds or iterations?
    "",        # nothing
    "-1s",     # negative
    "0s",      # zero
    "10 sec",  # unknown unit
    "s",       # unit without a number
    "1e3ms",   # exponents are not durations people type
])
def test_bad_durations(text):
    with pytest.raises(InputError, match="duration"):
        prof.parse_duration(text)


@pytest.mark.parametrize("text, expected", [("1,2,4,8", (1, 2, 4, 8)), ("4", (4,)),
                                            ("8, 1", (8, 1))])
def test_batch_sizes(text, expected):
    assert prof.parse_batch_sizes(text) == expected


@pytest.mark.parametrize("kwargs, message", [
    (dict(iters=0), r"iteration count is 0"),                        # zero iterations
    (dict(iters=-5), r"iteration count is -5"),                      # negative iterations
    (dict(warmup=0), r"warmup is 0"),                                # the first call is warm-up
    (dict(iters=10, duration_s=1.0), "not both"),                    # two stop rules
    (dict(iters=None, duration_s=0.0), "duration is 0.0"),           # empty duration
    (dict(batch_sizes=()), "no batch sizes"),                        # nothing to run
    (dict(batch_sizes=(1, 0)), r"\[0\] are not positive"),           # batch 0
    (dict(batch_sizes=(2, 2)), "repeat"),                            # a size twice
    (dict(layers=True), "per-layer times need a TensorRT engine"),   # layers on ONNX Runtime
    (dict(image="missing.png"), "does not exist"),                   # no such image
])
def test_bad_arguments_are_refused_before_timing(kwargs, message):
    runner = DelayRunner(0.0)
    with pytest.raises(InputError, match=message):
        _profile(runner, **kwargs)
    assert runner.batches == []


def test_a_bottom_up_model_is_refused():
    with pytest.raises(InputError, match="needs a top-down model"):
        _profile(DelayRunner(0.0, card=_card(paradigm="bottom-up")))


@pytest.mark.parametrize("content, message", [
    ('{"0": []}', "one list of boxes per frame"),      # a mapping, not a list per frame
    ("[[[1, 2, 3]]]", "frame 0"),                     # a box with three numbers
    ("not json", "not valid JSON"),                   # broken file
])
def test_bad_per_frame_boxes(tmp_path, content, message):
    path = tmp_path / "boxes.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        prof.read_frame_boxes(path)


@pytest.mark.parametrize("kwargs, message", [
    (dict(models=["a.onnx"], runner_factory=None), "do not exist"),         # no such file
    (dict(models=["a.engine", "b.onnx"], layers=True),
     r"per-layer times need TensorRT engines .*; b\.onnx"),                 # layers on ONNX
    (dict(models=["a.engine", "b.onnx"], cuda_graph=True),
     "CUDA graphs apply to TensorRT engines; b.onnx"),                      # graphs on ONNX
    (dict(video="clip.avi", batch_sizes=(1, 2)), "do not apply to a video"),  # batch per frame
    (dict(video="clip.avi", image="frame.png"), "not both"),                # two frame sources
    (dict(models=[]), "no models"),                                         # nothing to do
])
def test_profile_models_checks_arguments_before_any_model_runs(kwargs, message):
    opened = _factory({})
    kwargs = {"models": ["a.onnx"], "runner_factory": opened, **kwargs}
    with pytest.raises(InputError, match=message):
        prof.profile_models(kwargs.pop("models"), progress=False, **kwargs)
    assert opened.opened == []


def test_profile_models_over_a_video(tmp_path, clock):
    video = _write_video(tmp_path / "clip.avi")
    factory = _factory({"a.onnx": lambda: DelayRunner(2.0, clock=clock),
                        "b.onnx": lambda: DelayRunner(4.0, clock=clock)})
    report = prof.profile_models(["a.onnx", "b.onnx"], video=video, iters=4, warmup=1,
                                 progress=False, runner_factory=factory)
    assert [m.video.frames for m in report.models] == [4, 4]
    assert report.ratio(1, None, "infer") == pytest.approx((4.0 + TICK_MS) / (2.0 + TICK_MS))
    table = report.format_table()
    assert "video  frames/s" in table and "video  video read" in table


def test_environment_is_read():
    env = prof.collect_environment()
    assert env.python and env.numpy == np.__version__ and env.opencv == cv2.__version__
    assert env.cpu_count and env.cpu_count >= 1
    rss, peak = prof.host_memory()
    assert rss is None or 0 < rss <= peak


# ---------------------------------------------------------------------------------------------
# A real model

def test_real_hrnet_onnx_profile(exported_hrnet, tmp_path):
    report = prof.profile_models([exported_hrnet], batch_sizes=(1, 2), warmup=2, iters=5,
                                 progress=True)
    model = report.models[0]
    assert (model.family, model.variant, model.backend) == ("hrnet", "w8_128x96", "onnxruntime")
    assert model.input_size == (96, 128) and model.device == "CPU"
    for batch in model.batches:
        assert "h2d" not in batch.stages and "d2h" not in batch.stages
        assert batch.stages["infer"].mean > 0
        _assert_sums(batch.stages)
    assert model.batches[1].output_bytes == 2 * K * 32 * 24 * 4
    assert model.memory.host_rss_bytes is None or model.memory.host_rss_bytes > 0
    assert report.environment.onnxruntime
    # The timed chain decodes what the pipeline decodes.
    from edgepose.backends import open_runner

    frame = prof.synthetic_frame((320, 240))
    boxes = prof.grid_boxes(3, 320, 240)
    with open_runner(exported_hrnet) as runner:
        _, ours = timing._TimedPipeline(runner, gpu_timed=False).run(frame, boxes)
        theirs = TopDownPipeline(runner)(frame, boxes)
    np.testing.assert_allclose(ours.xy, theirs.xy, atol=1e-4)
    prof.write_plot(report, tmp_path / "real.png")
    assert "end to end" in report.format_table()
