"""The accuracy gate: sensitivity ranking, fallback search, and refusing the unreachable."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from calib.calibrate import calibrate
from calib.gate import (SWITCH_INPUT, GateError, layer_sensitivity, meets, run_gate,
                        switch_graph)
from calib.int8 import measure_ranges, quantizable_layers, quantized_layers, write_int8
from calib.ranges import session
from edgepose.errors import InputError
from tests.calib.tiny import save, tiny_pose, write_images

# --- the search, with stand-ins for building and measuring -------------------------------


class Fakes:
    """Layers L0 … L9; the error falls as the sensitive ones (by name) fall back."""

    def __init__(self, sensitive: int, floor: float = 0.0) -> None:
        self.layers = [f"L{i}" for i in range(10)]
        self.sensitive = {f"L{i}" for i in range(sensitive)}
        self.floor = floor
        self.sensitivity_calls = 0
        self.built: list[tuple[str, ...]] = []

    def build(self, fallback):
        self.built.append(tuple(fallback))
        model = onnx.ModelProto()
        model.doc_string = ",".join(fallback)
        return model

    def measure(self, model):
        fallback = set(filter(None, model.doc_string.split(",")))
        remaining = len(self.sensitive - fallback)
        return None, self.floor + 1.5 * remaining

    def sensitivity(self):
        self.sensitivity_calls += 1
        # Worst first: the sensitive layers, in reverse name order, then the rest.
        worst = sorted(self.sensitive, reverse=True)
        return [(name, 1.0) for name in worst] + \
            [(name, 0.0) for name in self.layers if name not in self.sensitive]

    def run(self, **kwargs):
        return run_gate(self.layers, build=self.build, measure=self.measure,
                        sensitivity=self.sensitivity, **kwargs)


def test_a_passing_int8_graph_needs_no_sensitivity_pass():
    fakes = Fakes(sensitive=0)
    result, model = fakes.run(max_kpt_error=1.0)
    assert result.met and result.fallback == () and fakes.sensitivity_calls == 0
    assert fakes.built == [()]


@pytest.mark.parametrize("sensitive, limit, expected", [
    (3, 0.0, 3, ),       # every sensitive layer must go
    (3, 1.6, 2),         # one may stay (1.5 px <= 1.6)
    (7, 0.0, 7),         # beyond the doubling steps: bisection finds 7 between 4 and 8
    (10, 0.0, 10),       # all of them
])
def test_the_fewest_most_sensitive_layers_fall_back(sensitive, limit, expected):
    fakes = Fakes(sensitive)
    result, model = fakes.run(max_kpt_error=limit)
    assert result.met and len(result.fallback) == expected
    assert set(result.fallback) <= fakes.sensitive
    assert model.doc_string == ",".join(result.fallback)
    assert [t.fallbacks for t in result.trials][0] == 0
    assert fakes.sensitivity_calls == 1 and result.layers == 10


def test_an_unreachable_gate_raises_with_the_best_result():
    fakes = Fakes(sensitive=4, floor=2.0)         # even all fallen back: 2 px > 1 px
    with pytest.raises(GateError, match="cannot be met.*--force") as caught:
        fakes.run(max_kpt_error=1.0)
    best = caught.value.best
    assert not best.met and best.kpt_error == 2.0 and len(best.fallback) >= 4
    assert caught.value.model.doc_string == ",".join(best.fallback)
    forced, model = Fakes(sensitive=4, floor=2.0).run(max_kpt_error=1.0, force=True)
    assert not forced.met and forced.kpt_error == 2.0 and forced.fallback == best.fallback


@pytest.mark.parametrize("ap_drop, kpt, max_ap, max_kpt, expected", [
    (0.5, 2.0, 1.0, None, True),     # only AP asked
    (1.5, 0.0, 1.0, None, False),
    (0.5, 2.0, 1.0, 1.0, False),     # both asked: both must hold
    (None, 0.0, 1.0, None, False),   # AP asked but unmeasured
    (0.0, 0.0, None, None, True),    # nothing asked
])
def test_meets(ap_drop, kpt, max_ap, max_kpt, expected):
    assert meets(ap_drop, kpt, max_ap, max_kpt) is expected


@pytest.mark.parametrize("value", [-1.0, float("nan"), "1", True])
def test_bad_thresholds_are_refused(value):
    with pytest.raises(InputError):
        Fakes(1).run(max_kpt_error=value)


# --- sensitivity on a real graph ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    model = tiny_pose(0)
    inputs = np.random.default_rng(0).standard_normal((8, 3, 32, 24)).astype(np.float32)
    layers = quantizable_layers(model)
    ranges = measure_ranges(model, "input", inputs, layers=layers).ranges("minmax")
    return model, inputs, layers, ranges


def test_switch_graph_reproduces_fp32_and_each_single_layer_graph(tiny):
    model, inputs, layers, ranges = tiny
    switched = session(switch_graph(model, write_int8(model, ranges, fallback="fp32"), layers))
    mask = np.zeros(len(layers), np.bool_)
    off = switched.run(None, {"input": inputs, SWITCH_INPUT: mask})[0]
    reference = session(model).run(None, {"input": inputs})[0]
    np.testing.assert_allclose(off, reference, rtol=1e-5, atol=1e-5 * np.abs(reference).max())
    for index, layer in enumerate(layers):
        mask[:] = False
        mask[index] = True
        on = switched.run(None, {"input": inputs, SWITCH_INPUT: mask})[0]
        alone = write_int8(model, ranges, fallback="fp32",
                           exclude=[other.node for other in layers if other is not layer])
        assert quantized_layers(alone) == [layer.node]
        expected = session(alone).run(None, {"input": inputs})[0]
        # Equal up to FP32 reordering (Where picks the same DQ values ORT fuses differently).
        np.testing.assert_allclose(on, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_sensitivity_ranks_every_layer_worst_first(tiny):
    model, inputs, layers, ranges = tiny
    ranking = layer_sensitivity(model, write_int8(model, ranges, fallback="fp32"), layers,
                                "input", inputs[:4])
    assert sorted(name for name, _ in ranking) == sorted(layer.node for layer in layers)
    errors = [error for _, error in ranking]
    assert errors == sorted(errors, reverse=True) and errors[0] > 0


# --- through calibrate ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gate") / "images"
    write_images(folder, 20, size=(64, 48))
    return folder


def test_an_impossible_threshold_really_falls_back_layers(tmp_path, images):
    model = save(tiny_pose(0), tmp_path / "tiny.onnx")
    result = calibrate(model, tmp_path / "tiny.int8.onnx", data=images, precision="int8",
                       samples=16, max_kpt_error=0.0, int8_fallback="fp32", progress=False)
    # INT8 moves keypoints; with FP32 fallback the gate can always reach 0 px.
    assert result.gate.trials[0].kpt_error > 0
    assert result.gate.met and result.gate.kpt_error == 0.0 and result.fallback
    written = onnx.load(str(result.path))
    assert set(quantized_layers(written)).isdisjoint(result.fallback)
    assert len(quantized_layers(written)) + len(result.fallback) == 4
    details = result.card.extra["calibration"]
    assert details["fallback_layers"] == list(result.fallback) and details["gate"]["met"]
    report = json.loads(result.report_path.read_text())
    assert report["rows"][-1]["keypoint_displacement_px"]["p90"] == 0.0
    # The report lists the layers that fell back, and every layer's sensitivity.
    assert report["fallback"] == list(result.fallback)
    assert len(report["gate"]["sensitivity"]) == 4 and report["gate"]["met"]
    assert f"INT8 layers falling back ({len(result.fallback)})" in result.report.format_table()


def test_an_unreachable_threshold_errors_without_force_and_writes_with_it(tmp_path, images):
    # Heatmaps of 1 + 1e-4·noise: FP16 flattens them, so with FP16 fallback no set of
    # fallbacks keeps every keypoint in place.
    model = save(tiny_pose(0, flat=True), tmp_path / "flat.onnx")
    out = tmp_path / "flat.int8.onnx"
    with pytest.raises(GateError) as caught:
        calibrate(model, out, data=images, precision="int8", samples=16, max_kpt_error=0.0,
                  progress=False)
    assert caught.value.best.kpt_error > 0 and not caught.value.best.met
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))
    forced = calibrate(model, out, data=images, precision="int8", samples=16,
                       max_kpt_error=0.0, force=True, progress=False)
    assert out.exists() and not forced.gate.met
    assert forced.card.extra["calibration"]["gate"]["met"] is False


def test_max_ap_drop_needs_annotations(tmp_path, images):
    model = save(tiny_pose(0), tmp_path / "tiny.onnx")
    with pytest.raises(InputError, match="--max-ap-drop needs COCO annotations"):
        calibrate(model, tmp_path / "o.onnx", data=images, precision="int8", max_ap_drop=1.0,
                  progress=False)


@pytest.mark.slow
def test_hrnet_gate_with_ap_threshold(exported_hrnet, tmp_path):
    """A random-init HRNet on synthetic people: the gate with both thresholds (~3 min)."""
    from export.training.synthetic import SyntheticConfig, write_coco_dataset

    annotations = write_coco_dataset(tmp_path / "data", 30, SyntheticConfig(seed=4),
                                     workers=1, progress=False)
    result = calibrate(exported_hrnet, tmp_path / "hrnet.int8.onnx", data=tmp_path / "data/images",
                       annotations=annotations, precision="int8", samples=32,
                       max_ap_drop=0.0, max_kpt_error=0.0, int8_fallback="fp32",
                       progress=False)
    assert result.gate.met and result.fallback
    assert len(result.gate.sensitivity) == 454
