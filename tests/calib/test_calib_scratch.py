"""calibrate's scratch files live beside its output and never outlast it; a bad output
path is refused before any work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import calib.calibrate as calibrate_module
import calib.report as report_module
from calib.calibrate import calibrate
from edgepose.errors import InputError, ModelFileError
from edgepose.io import SCRATCH_PREFIX
from tests.calib.tiny import save, tiny_pose, topdown_card, write_images


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _scratch(folder: Path) -> set[str]:
    return {p.name for p in folder.glob(f"{SCRATCH_PREFIX}*")}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scratch") / "images"
    write_images(folder, 10, size=(64, 48))
    return folder


@pytest.fixture
def model(tmp_path):
    # In a folder of its own, so the output folder holds only what calibrate writes.
    (tmp_path / "models").mkdir()
    return save(tiny_pose(0), tmp_path / "models" / "tiny.onnx")


def test_a_killed_runs_scratch_is_removed_and_a_live_ones_kept(tmp_path, images, model,
                                                              monkeypatch):
    out_folder = tmp_path / "out"
    out_folder.mkdir()
    stale = out_folder / f"{SCRATCH_PREFIX}{_dead_pid()}.calib.k1ll3d"
    stale.mkdir()
    (stale / "candidate.onnx").write_bytes(b"\0" * 4096)
    # This process is alive, so a folder named with its pid stands for a concurrent run.
    live = out_folder / f"{SCRATCH_PREFIX}{os.getpid()}.calib.al1ve0"
    live.mkdir()
    seen: list[set[str]] = []
    measure = report_module.HoldoutEvaluator.measure

    def spy(self, *args, **kwargs):
        seen.append(_scratch(out_folder))
        return measure(self, *args, **kwargs)

    monkeypatch.setattr(report_module.HoldoutEvaluator, "measure", spy)
    result = calibrate(model, out_folder / "tiny.fp16.onnx", data=images, samples=16,
                       progress=False)
    assert result.report is not None and seen, "the held-out report must have run"
    # While measuring, the run's own scratch folder sat beside the output, not in /tmp.
    own = {name for name in seen[0] if name.startswith(f"{SCRATCH_PREFIX}{os.getpid()}.calib.")}
    assert own - {live.name}, seen[0]
    assert stale.name not in seen[0]
    assert not stale.exists()
    assert live.is_dir()
    assert _scratch(out_folder) == {live.name}
    assert {p.name for p in out_folder.iterdir()} == {
        live.name, "tiny.fp16.onnx", "tiny.fp16.report.json"}


def test_a_failed_run_leaves_no_scratch(tmp_path, images, model, monkeypatch):
    def fail(self, *args, **kwargs):
        raise InputError("measurement failed on purpose")

    monkeypatch.setattr(report_module.HoldoutEvaluator, "measure", fail)
    out = tmp_path / "tiny.fp16.onnx"
    with pytest.raises(InputError, match="measurement failed on purpose"):
        calibrate(model, out, data=images, samples=16, progress=False)
    assert not out.exists()
    assert _scratch(tmp_path) == set()


def test_stale_scratch_goes_even_when_the_run_is_refused_later(tmp_path, images, model):
    stale = tmp_path / f"{SCRATCH_PREFIX}{_dead_pid()}.calib.0ld000"
    stale.mkdir()
    not_onnx = tmp_path / "models" / "broken.onnx"
    not_onnx.write_bytes(b"not a protobuf")
    with pytest.raises(ModelFileError, match="not a readable ONNX file"):
        calibrate(not_onnx, tmp_path / "o.onnx", data=images, progress=False)
    assert not stale.exists()


@pytest.mark.parametrize("out, cache, match", [
    # the output names an existing folder: refused before the model is read
    ("folder", None, "output .* is a folder"),
    # the output's folder is missing
    ("missing/o.onnx", None, "output folder .* does not exist"),
    # the range cache is written after measuring, so its path is checked first too
    ("o.onnx", "folder", "range cache .* is a folder"),
])
def test_output_paths_are_checked_before_any_work(tmp_path, images, model, monkeypatch,
                                                  out, cache, match):
    (tmp_path / "folder").mkdir()
    called = []
    monkeypatch.setattr(calibrate_module, "_load_model",
                        lambda path: called.append(path) or pytest.fail("model was read"))
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(InputError, match=match):
        calibrate(model, tmp_path / out, data=images, progress=False,
                  cache=None if cache is None else tmp_path / cache)
    assert called == []
    assert sorted(p.name for p in tmp_path.iterdir()) == before


class _Holdout:
    """Stands in for calib.data.Samples where only its length is read."""

    def __len__(self) -> int:
        return 1


def test_an_evaluator_without_an_output_uses_a_named_scratch_folder(tmp_path, monkeypatch):
    # Without an output (compare_precisions) the folder goes to the system temp dir,
    # named so that the next run there removes it after a kill.
    monkeypatch.setattr(report_module.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(report_module.HoldoutEvaluator, "_measure_reference",
                        lambda self, *args: None)
    with report_module.HoldoutEvaluator(None, topdown_card(), _Holdout()) as evaluator:
        inside = _scratch(tmp_path)
        assert evaluator._scratch.parent == tmp_path
    assert len(inside) == 1 and next(iter(inside)).startswith(
        f"{SCRATCH_PREFIX}{os.getpid()}.calib.")
    assert _scratch(tmp_path) == set()
