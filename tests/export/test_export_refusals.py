"""export refuses what would ship a broken or mislabelled model, before any file appears:
non-finite weights, a variant its training record contradicts, opsets torch.onnx does
not write as asked, pickles that are not weights-only, damaged files, bad output paths."""

from __future__ import annotations

import __main__
import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import pytest
import torch

import export.onnx as onnx_module
from edgepose.errors import CheckpointError, InputError
from edgepose.io import SCRATCH_PREFIX
# read_checkpoint is patched where prepare_hrnet looks it up.
from export.families import hrnet as families
from export.families import export_model, hrnet_card
from export.models.hrnet import build_hrnet, parse_hrnet_variant
from export.onnx import ExportError, write_onnx
from export.training.common import adamw_one_cycle, run_steps

VARIANT = "w8_128x96"


@pytest.fixture(scope="module")
def state_dict() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return build_hrnet(parse_hrnet_variant(VARIANT), 17).state_dict()


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _with(key: str, value: float) -> Callable[[dict], dict]:
    def poison(state: dict) -> dict:
        state = {k: v.clone() for k, v in state.items()}
        state[key].view(-1)[0] = value
        return state
    return poison


class _Payload:
    """Stands for the objects training scripts pickle beside the weights."""


class _RunsCode:
    """Unpickling this calls a function: what a malicious checkpoint does."""

    def __reduce__(self):
        return (os.getcwd, ())


def _save_plain(transform: Callable[[dict], dict] = lambda s: s):
    def write(folder: Path, state: dict) -> Path:
        path = folder / "hrnet.pth"
        torch.save(transform(state), path)
        return path
    return write


def _save_with_record(record: dict):
    def write(folder: Path, state: dict) -> Path:
        path = _save_plain()(folder, state)
        path.with_suffix(".json").write_text(json.dumps(record))
        return path
    return write


def _save_object(make: Callable[[], object]):
    def write(folder: Path, state: dict) -> Path:
        path = folder / "hrnet.pth"
        torch.save({"state_dict": state, "extra": make()}, path)
        return path
    return write


def _save_main_class(folder: Path, state: dict) -> Path:
    cls = type("TrainArgs", (), {"__module__": "__main__"})
    setattr(__main__, "TrainArgs", cls)
    path = folder / "hrnet.pth"
    try:
        torch.save({"state_dict": state, "args": cls()}, path)
    finally:
        delattr(__main__, "TrainArgs")
    return path


def _truncated(folder: Path, state: dict) -> Path:
    path = _save_plain()(folder, state)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _garbage(folder: Path, state: dict) -> Path:
    path = folder / "hrnet.pth"
    path.write_bytes(bytes(range(256)) * 16)
    return path


# (id, write the input files, export arguments, error, fragment of the message)
REFUSALS = [
    # NaN weights export and "pass" the PyTorch check (NaN vs NaN): refused at load
    ("nan-weights", _save_plain(_with("final_layer.weight", float("nan"))), {},
     CheckpointError, r"tensor 'final_layer\.weight' holds NaN/inf values; .*corrupt or "
                      r"diverged in training"),
    # an infinite BatchNorm statistic is as fatal as a weight
    ("inf-buffer", _save_plain(_with("bn1.running_var", float("inf"))), {},
     CheckpointError, r"tensor 'bn1\.running_var' holds NaN/inf values"),
    # HRNet loads at any input size: only the record tells 128x96 weights from 64x48 ones
    ("record-says-other-size", _save_with_record({"config": {"variant": "w8_64x64"}}), {},
     CheckpointError, r"trained as HRNet w8_64x64 \(its training record hrnet\.json says so\), "
                      r"but variant w8_128x96 was asked for"),
    # a record whose variant is not one cannot vouch for anything
    ("record-variant-unreadable", _save_with_record({"config": {"variant": 128}}), {},
     CheckpointError, r"hrnet\.json: config\.variant is 128; expected an HRNet variant"),
    # opset 5: torch.onnx would write 18 and say nothing
    ("opset-5", _save_plain(), {"opset": 5}, InputError,
     r"opset must be an integer from 16 to 23 .*got 5"),
    # opset 99: no such opset; torch.onnx writes 18
    ("opset-99", _save_plain(), {"opset": 99}, InputError,
     r"opset must be an integer from 16 to 23 .*got 99"),
    # opset 15: HRNet's downgrade fails and the file would declare 18
    ("opset-15", _save_plain(), {"opset": 15}, InputError, r"from 16 to 23 .*got 15"),
    # a bool is an int to Python, never an opset
    ("opset-bool", _save_plain(), {"opset": True}, InputError, r"got True"),
    # a pickled class beside the weights: not executed, and said to be not weights-only
    ("pickled-object", _save_object(_Payload), {}, CheckpointError,
     r"is not a weights-only checkpoint: it holds pickled code or objects "
     r"\(tests\.export\.test_export_refusals\._Payload\).*edgepose loads only weights-only"),
    # a class from the training script (__main__): the same, not "truncated"
    ("pickled-main-class", _save_main_class, {}, CheckpointError,
     r"is not a weights-only checkpoint: .*\(__main__\.TrainArgs\)"),
    # a pickle that calls a function when loaded
    ("pickled-code", _save_object(_RunsCode), {}, CheckpointError,
     r"is not a weights-only checkpoint: .*\((posix|nt)\.getcwd\)"),
    # an interrupted download
    ("truncated", _truncated, {}, CheckpointError, r"cannot read .*is it truncated"),
    # not a torch file at all
    ("garbage", _garbage, {}, CheckpointError, r"cannot read .*is it truncated"),
]


@pytest.mark.parametrize("write, kwargs, error, match",
                         [case[1:] for case in REFUSALS], ids=[case[0] for case in REFUSALS])
def test_refused_without_touching_inputs_or_writing_anything(tmp_path, state_dict, write,
                                                             kwargs, error, match):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    checkpoint = write(inputs, state_dict)
    before = _digests(inputs)
    with pytest.raises(error, match=match):
        export_model("hrnet", VARIANT, outputs / "hrnet.onnx", checkpoint=checkpoint,
                     **kwargs)
    assert _digests(inputs) == before
    assert list(outputs.iterdir()) == []


def test_the_shipped_checkpoint_refuses_a_variant_its_record_contradicts(tmp_path,
                                                                        demo_checkpoint):
    # The case: 256x192 asked of the demo model trained at 128x96.
    record = demo_checkpoint.with_suffix(".json")
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (demo_checkpoint, record)}
    with pytest.raises(CheckpointError, match=r"trained as HRNet w10_128x96 .*variant "
                                              r"w10_256x192 was asked for; export it with "
                                              r"variant='w10_128x96'"):
        export_model("hrnet", "w10_256x192", tmp_path / "hrnet.onnx",
                     checkpoint=demo_checkpoint)
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in before} == before
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("out, match", [
    # an existing folder: found before loading, not after tracing
    ("folder", r"output .*folder.* is a folder"),
    # a folder that does not exist
    ("missing/hrnet.onnx", r"output folder .* does not exist"),
    # an empty path
    ("", r"output path is empty"),
])
def test_a_bad_output_path_is_refused_before_the_checkpoint_is_read(tmp_path, state_dict,
                                                                    monkeypatch, out, match):
    (tmp_path / "folder").mkdir()
    checkpoint = _save_plain()(tmp_path, state_dict)
    monkeypatch.setattr(families, "read_checkpoint",
                        lambda path: pytest.fail("the checkpoint was read"))
    before = _digests(tmp_path)
    with pytest.raises(InputError, match=match):
        export_model("hrnet", VARIANT, out if out == "" else tmp_path / out,
                     checkpoint=checkpoint)
    assert _digests(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "hrnet.pth"]


# -- write_onnx: the check against PyTorch runs before the file takes its name --

class _TinyHeatmaps(torch.nn.Module):
    """(N,3,64,64) → (N,17,16,16): an HRNet-shaped graph that traces in a second."""

    def __init__(self, bias: float = 0.0) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 17, kernel_size=4, stride=4)
        with torch.no_grad():
            self.conv.bias.fill_(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


TINY_CARD = hrnet_card("w8_64x64", "coco17", {"format": "random-init"})


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_verified_export_declares_the_opset_it_wrote(tmp_path):
    torch.manual_seed(0)
    result = write_onnx(_TinyHeatmaps(), TINY_CARD, tmp_path / "m.onnx", opset=17)
    declared = {o.domain: o.version for o in onnx.load(str(result.path)).opset_import}[""]
    assert result.opset == declared == 17
    assert result.verification and all(np.isfinite(c.max_abs_error)
                                       for c in result.verification)
    assert _leftovers(tmp_path) == ["m.onnx"]


def test_the_check_runs_on_the_temporary_file_and_a_failure_leaves_nothing(tmp_path,
                                                                         monkeypatch):
    out = tmp_path / "m.onnx"
    seen = []

    def failing_check(model, path, **kwargs):
        seen.append((Path(path), out.exists()))
        raise ExportError("ONNX output differs from PyTorch: injected")

    monkeypatch.setattr(onnx_module, "verify_onnx", failing_check)
    with pytest.raises(ExportError, match=r"differs from PyTorch: injected; nothing was "
                                          r"written to .*m\.onnx"):
        write_onnx(_TinyHeatmaps(), TINY_CARD, out)
    (checked, existed), = seen
    assert checked.parent == tmp_path and checked.name.startswith(SCRATCH_PREFIX)
    assert not existed
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("bias, match", [
    # NaN everywhere: max |NaN - NaN| is NaN, and NaN > tolerance is False
    (float("nan"), r"PyTorch output 'heatmaps' holds NaN/inf values at batch 1"),
    # infinity: inf - inf is NaN, the same blind spot
    (float("inf"), r"PyTorch output 'heatmaps' holds NaN/inf values"),
])
def test_non_finite_outputs_fail_the_check(tmp_path, bias, match):
    with pytest.raises(ExportError, match=match):
        write_onnx(_TinyHeatmaps(bias), TINY_CARD, tmp_path / "m.onnx")
    assert _leftovers(tmp_path) == []


def test_an_opset_the_converter_cannot_reach_is_refused_not_relabelled(tmp_path, monkeypatch):
    # Below 18 torch.onnx converts its graph down and, when that fails, keeps 18 quietly;
    # opset 7 fails for Relu. The range is widened here to reach it.
    monkeypatch.setattr(onnx_module, "SUPPORTED_OPSETS", (7, 23))
    with pytest.raises(ExportError, match=r"asked for opset 7, but torch\.onnx could only "
                                          r"write opset 18"):
        write_onnx(_TinyHeatmaps(), TINY_CARD, tmp_path / "m.onnx", opset=7, verify=False)
    assert _leftovers(tmp_path) == []


# -- short training runs --

@pytest.mark.parametrize("steps", [
    1,    # one step: no schedule to speak of
    19,   # under 20 steps torch's one-cycle skipped the warm-up
    20,   # exactly one warm-up step: torch's one-cycle divided by zero
    21,   # the shortest run with a warm-up
    40,   # two warm-up steps
])
def test_short_runs_train_without_dividing_by_zero(steps):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    optimizer, scheduler = adamw_one_cycle(model, 1e-2, 0.0, steps)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert all(np.isfinite(rates)) and max(rates) <= 1e-2 * (1 + 1e-9)
    if steps > 1:
        assert rates[-1] < 1e-2 * 1e-3  # annealed to (near) the floor on the last step
    run = run_steps(model, [(torch.randn(2, 4),)] * 3,
                    lambda batch: model(batch[0]).square().mean(), steps=steps,
                    learning_rate=1e-2, weight_decay=0.0, description="test")
    assert run.steps == steps
