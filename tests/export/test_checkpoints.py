"""Checkpoint reading, layout detection and strict loading.

Checkpoints are built here from random HRNet weights and saved in each layout
the released files use (reference/models.md §1, §4): official plain state
dict, training wrappers, DataParallel prefixes, mmpose 0.x and 1.x names.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from edgepose.errors import CheckpointError
from export import checkpoints
from export.checkpoints import (
    load_checkpoint_into,
    load_strict,
    read_checkpoint,
    remap_to_model,
    sha256_of_file,
)
from export.models.hrnet import HRNet

StateDict = dict[str, torch.Tensor]


def _randomised(width: int, joints: int = 17, seed: int = 0) -> StateDict:
    """A state dict whose every entry (BN statistics and counters too) is distinctive."""
    torch.manual_seed(seed)
    state = HRNet(width=width, num_joints=joints).state_dict()
    for key, value in state.items():
        if value.dtype.is_floating_point:
            value.copy_(torch.rand_like(value) + 0.5)
        else:
            value.fill_(1000 + seed)
    return {k: v.clone() for k, v in state.items()}


_CACHE: dict[int, StateDict] = {}


def _weights(width: int) -> StateDict:
    """Module-wide random weights per width; W32 files are ~110 MB, so built once."""
    if width not in _CACHE:
        _CACHE[width] = _randomised(width)
    return _CACHE[width]


def _prefixed(state: StateDict, prefix: str) -> StateDict:
    return {prefix + k: v for k, v in state.items()}


def _mmpose(state: StateDict, head: str) -> StateDict:
    return {
        (f"{head}.{k}" if k.startswith("final_layer.") else f"backbone.{k}"): v
        for k, v in state.items()
    }


class Custom:
    """A class a weights_only load must refuse."""


# (id, width, build the saved object from the official state dict, detected layout).
# The layouts of released HRNet files run on W32; the rest on W8 to keep the run short.
LAYOUT_CASES: list[tuple[str, int, Callable[[StateDict], object], str]] = [
    ("plain", 32, lambda s: s, "official"),  # as released by the HRNet authors
    ("state_dict", 8, lambda s: {"state_dict": s, "epoch": 140}, "official"),  # training wrapper
    ("model", 8, lambda s: {"model": s}, "official"),  # another common wrapper key
    ("model_state_dict", 8, lambda s: {"model_state_dict": s, "optimizer": {}}, "official"),
    ("nested", 8, lambda s: {"model": {"state_dict": s}}, "official"),  # wrapper in a wrapper
    ("module", 8, lambda s: _prefixed(s, "module."), "official+module."),  # DataParallel save
    (
        "state_dict+module",
        32,
        lambda s: {"state_dict": _prefixed(s, "module."), "best_acc": 0.7},
        "official+module.",
    ),  # bearpaw-style checkpoint
    (
        "model.module",
        8,
        lambda s: {"state_dict": _prefixed(s, "model.module."), "epoch": 3},
        "official+model.module.",
    ),  # Princeton-style trainer wrapping a DataParallel model
    (
        "mmpose-0.x",
        32,
        lambda s: {"meta": {"mmcv_version": "1.3.8"}, "state_dict": _mmpose(s, "keypoint_head")},
        "mmpose-0.x",
    ),  # mmpose 0.x model zoo file
    (
        "mmpose-1.x",
        32,
        lambda s: {"meta": {"epoch": 210}, "state_dict": _mmpose(s, "head")},
        "mmpose-1.x",
    ),  # mmpose 1.x model zoo file
    (
        "mmpose-0.x+module",
        8,
        lambda s: _prefixed(_mmpose(s, "keypoint_head"), "module."),
        "mmpose-0.x+module.",
    ),  # mmpose saved from a DataParallel wrapper
]


@pytest.mark.parametrize(
    ("width", "build", "layout"), [c[1:] for c in LAYOUT_CASES], ids=[c[0] for c in LAYOUT_CASES]
)
def test_layouts_load_strictly_with_identical_weights(
    tmp_path: Path, width: int, build: Callable[[StateDict], object], layout: str
) -> None:
    weights = _weights(width)
    path = tmp_path / "ckpt.pth"
    torch.save(build(weights), path)
    model = HRNet(width=width, num_joints=17)

    assert load_checkpoint_into(model, path) == layout

    loaded = model.state_dict()
    assert loaded.keys() == weights.keys()
    assert all(torch.equal(loaded[k], weights[k]) for k in weights)


def test_legacy_serialization_loads(tmp_path: Path) -> None:
    # The released HRNet files predate PyTorch's zip format.
    weights = _randomised(8, seed=1)
    path = tmp_path / "legacy.pth"
    torch.save(weights, path, _use_new_zipfile_serialization=False)
    model = HRNet(width=8)
    assert load_checkpoint_into(model, path) == "official"
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in weights.items())


def test_missing_num_batches_tracked_is_tolerated(tmp_path: Path) -> None:
    # Saved before PyTorch 0.4.1: no BN counters. PyTorch fills them with 0.
    weights = {k: v for k, v in _randomised(8, seed=2).items() if "num_batches_tracked" not in k}
    path = tmp_path / "old.pth"
    torch.save(weights, path)
    model = HRNet(width=8)
    load_checkpoint_into(model, path)
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in weights.items())
    counters = [v for k, v in state.items() if k.endswith("num_batches_tracked")]
    assert counters and all(int(c) == 0 for c in counters)


def test_read_checkpoint_always_uses_weights_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict] = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(checkpoints.torch, "load", spy)
    path = tmp_path / "ok.pth"
    torch.save({"a": torch.ones(1)}, path)
    read_checkpoint(path)
    assert calls and all(c.get("weights_only") is True for c in calls)
    assert all(c.get("map_location") == "cpu" for c in calls)


def _drop_first(state: StateDict, n: int) -> StateDict:
    keys = [k for k in state if not k.endswith("num_batches_tracked")][:n]
    return {k: v for k, v in state.items() if k not in keys}


# (id, checkpoint built from W8 weights, fragments the one-line message must hold)
FAILURE_CASES: list[tuple[str, Callable[[StateDict], object], list[str]]] = [
    (
        "w16-into-w8",
        lambda s: HRNet(width=16).state_dict(),
        [
            "shape mismatch in",
            # first mismatch in model order: stem and layer1 do not depend on the width
            "transition1.0.0.weight: checkpoint (16, 256, 3, 3) vs model (8, 256, 3, 3)",
            "--variant",
            "layout official",
        ],
    ),
    (
        "mpii-into-coco",
        lambda s: {**s, "final_layer.weight": torch.zeros(16, 8, 1, 1),
                   "final_layer.bias": torch.zeros(16)},
        [
            "shape mismatch in 2 tensors",
            "final_layer.weight: checkpoint (16, 8, 1, 1) vs model (17, 8, 1, 1)",
            "final_layer.bias: checkpoint (16,) vs model (17,)",
        ],
    ),
    (
        "keys-removed",
        lambda s: _drop_first(s, 12),
        ["missing 12 keys: conv1.weight, bn1.weight, bn1.bias, bn1.running_mean, "
         "bn1.running_var, …"],
    ),
    (
        "extra-keys",
        lambda s: {**s, "extra.a": torch.zeros(1), "extra.b": torch.zeros(2)},
        ["unexpected 2 keys: extra.a, extra.b"],
    ),
    (
        "mmpose-with-extra-head-key",
        lambda s: {"state_dict": {**_mmpose(s, "head"), "data_preprocessor.mean": torch.zeros(3)}},
        ["layout mmpose-1.x", "unexpected 1 keys: data_preprocessor.mean"],
    ),
    (
        "other-model",
        lambda s: nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).state_dict(),
        ["layout unknown", "missing 1462 keys", "unexpected 7 keys: 0.weight", "model family"],
    ),
]


@pytest.mark.parametrize(
    ("build", "fragments"), [c[1:] for c in FAILURE_CASES], ids=[c[0] for c in FAILURE_CASES]
)
def test_mismatches_are_reported(
    tmp_path: Path, build: Callable[[StateDict], object], fragments: list[str]
) -> None:
    path = tmp_path / "bad.pth"
    torch.save(build(dict(_weights(8))), path)
    model = HRNet(width=8, num_joints=17)
    before = {k: v.clone() for k, v in model.state_dict().items()}

    with pytest.raises(CheckpointError) as info:
        load_checkpoint_into(model, path)

    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    # Refused means untouched: no half-loaded model.
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())


def test_w48_weights_into_w32_list_shape_mismatches() -> None:
    # In memory: a W48 file would be ~250 MB. Shapes from models.md §1 scaled by width.
    with pytest.raises(CheckpointError) as info:
        load_strict(HRNet(width=32), HRNet(width=48).state_dict(), source="w48.pth")
    message = str(info.value)
    assert message.startswith("w48.pth does not fit HRNet: shape mismatch in ")
    assert "transition1.0.0.weight: checkpoint (48, 256, 3, 3) vs model (32, 256, 3, 3)" in message
    assert "missing" not in message and "unexpected" not in message
    assert "--variant" in message


def test_message_lists_five_and_counts_all() -> None:
    model = nn.Linear(2, 2)
    state = {**model.state_dict(), **{f"x{i}": torch.zeros(1) for i in range(7)}}
    with pytest.raises(CheckpointError) as info:
        load_strict(model, state, source="test.pth")
    assert "unexpected 7 keys: x0, x1, x2, x3, x4, …" in str(info.value)
    assert "x5" not in str(info.value)


def _write(data: bytes) -> Callable[[Path], None]:
    return lambda p: p.write_bytes(data)


def _save(obj: object, **kwargs) -> Callable[[Path], None]:
    return lambda p: torch.save(obj, p, **kwargs)


def _truncated(path: Path) -> None:
    torch.save(HRNet(width=8).state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# (id, write the file, fragment of the message)
UNREADABLE_CASES: list[tuple[str, Callable[[Path], None], str]] = [
    ("garbage", _write(bytes(range(256)) * 8), "cannot read"),  # not a torch file at all
    ("empty", _write(b""), "cannot read"),  # zero-byte download
    ("text", _write(b"<html>404 Not Found</html>"), "cannot read"),  # saved error page
    ("truncated-zip", _truncated, "cannot read"),  # interrupted download
    ("custom-object", _save({"state_dict": {"a": torch.ones(1)}, "obj": Custom()}),
     "tensor-only"),  # pickled class: weights_only refuses it
    ("namespace", _save({"state_dict": {"a": torch.ones(1)}, "args": argparse.Namespace(lr=1)}),
     "argparse.Namespace"),  # common in old training checkpoints; the class is named
    ("whole-module", _save(nn.Linear(2, 2)), "tensor-only"),  # torch.save(model)
    ("tensor", _save(torch.zeros(3)), "expected a state dict"),  # a bare tensor
    ("list", _save([torch.zeros(3)]), "expected a state dict"),  # a list of tensors
    ("no-wrapper-key", _save({"epoch": 3, "weights": [torch.zeros(1)]}),
     "its keys: epoch, weights"),  # dict without a known wrapper key
    ("empty-dict", _save({}), "its keys: (none)"),  # nothing inside
]


@pytest.mark.parametrize(
    ("write", "fragment"), [c[1:] for c in UNREADABLE_CASES], ids=[c[0] for c in UNREADABLE_CASES]
)
def test_unreadable_files_raise_checkpoint_error(
    tmp_path: Path, write: Callable[[Path], None], fragment: str
) -> None:
    path = tmp_path / "ckpt.pth"
    write(path)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    message = str(info.value)
    assert fragment in message
    assert str(path) in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "absent.pth")


# (id, checkpoint keys, model keys, expected layout, expected keys after)
REMAP_CASES = [
    ("identity", {"a.w", "b.w"}, {"a.w", "b.w"}, "official", {"a.w", "b.w"}),
    ("nothing-fits", {"x", "y"}, {"a.w"}, "unknown", {"x", "y"}),  # returned unchanged
    ("partial-official-wins", {"a.w", "stray"}, {"a.w", "b.w"}, "official", {"a.w", "stray"}),
    ("mmpose-0.x", {"backbone.a.w", "keypoint_head.final_layer.w"}, {"a.w", "final_layer.w"},
     "mmpose-0.x", {"a.w", "final_layer.w"}),
    ("mmpose-1.x", {"backbone.a.w", "head.final_layer.w"}, {"a.w", "final_layer.w"},
     "mmpose-1.x", {"a.w", "final_layer.w"}),
    # HigherHRNet's mmpose head (models.md §6) maps by the same rule.
    ("higherhrnet-0.x", {"backbone.a.w", "keypoint_head.deconv_layers.0.0.0.weight"},
     {"a.w", "deconv_layers.0.0.0.weight"}, "mmpose-0.x", {"a.w", "deconv_layers.0.0.0.weight"}),
    ("model.module", {"model.module.a.w"}, {"a.w"}, "official+model.module.", {"a.w"}),
    # Stripping `backbone.` would fit more keys but merge two into one: never chosen.
    ("collision", {"backbone.a.w", "a.w", "backbone.b.w"}, {"a.w", "b.w"}, "official",
     {"backbone.a.w", "a.w", "backbone.b.w"}),
]


@pytest.mark.parametrize(
    ("given", "expected_keys", "layout", "after"),
    [c[1:] for c in REMAP_CASES],
    ids=[c[0] for c in REMAP_CASES],
)
def test_remap_to_model(
    given: set[str], expected_keys: set[str], layout: str, after: set[str]
) -> None:
    state = {k: torch.zeros(1) for k in sorted(given)}
    renamed, name = remap_to_model(state, expected_keys)
    assert name == layout
    assert set(renamed) == after


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"abc", "FIPS 180-2 test vector"),
        (bytes(range(256)) * 10_000, "2.4 MiB: crosses the 1 MiB chunk boundary"),
    ],
)
def test_sha256_of_file(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_of_file(path) == hashlib.sha256(data).hexdigest()


def test_sha256_known_vector(tmp_path: Path) -> None:
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    assert sha256_of_file(path) == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_sha256_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="absent"):
        sha256_of_file(tmp_path / "absent")
