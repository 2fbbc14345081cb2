"""What the family modules share: the prepared model, normalisation facts used by more
than one family, keypoint-set matching and strict checkpoint loading."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from edgepose.card import InputSpec, ModelCard
from edgepose.errors import CheckpointError, InputError
from edgepose.keypoints import KEYPOINT_SETS
from export.caffe import read_caffemodel
from export.checkpoints import load_strict, read_checkpoint, remap_to_model, sha256_of_file

# ImageNet statistics in 0-255 units, RGB order: HRNet's 0-1 normalisation × 255.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
# OpenPose: BGR, value/256 - 0.5, padded bottom/right with 128 (CMU and the Python port).
# CPM, from the same lab, normalises the same way.
OPENPOSE_MEAN = (128.0, 128.0, 128.0)
OPENPOSE_STD = (256.0, 256.0, 256.0)
OPENPOSE_PAD_VALUE = 128.0
# RGB/255: Princeton's hourglass and pose-ae-train feed images scaled to 0-1, no mean.
UNIT_SCALE = (255.0, 255.0, 255.0)


@dataclass(frozen=True)
class PreparedModel:
    model: torch.nn.Module
    card: ModelCard
    layout: str  # the checkpoint layout detected, or "random-init"


def parse_input_size(text: str) -> tuple[int, int]:
    """'368x656' -> (368, 656): height first, as in HRNet variant names."""
    match = re.fullmatch(r"([0-9]+)x([0-9]+)", text)
    if match is None:
        raise InputError(f"input size {text!r} is malformed; expected HEIGHTxWIDTH in pixels, "
                         f"e.g. 368x656")
    return int(match.group(1)), int(match.group(2))


def keypoints_for(joints: int, requested: str | None) -> str:
    """The keypoint set of a checkpoint predicting `joints` keypoints: `requested` when it
    fits, else the one set of that size."""
    if requested is not None:
        if requested not in KEYPOINT_SETS:
            raise InputError(f"unknown keypoint set {requested!r}; known: {sorted(KEYPOINT_SETS)}")
        expected = KEYPOINT_SETS[requested].num_keypoints
        if expected != joints:
            raise CheckpointError(f"the checkpoint predicts {joints} keypoints but "
                                  f"--keypoints {requested} has {expected}")
        return requested
    matching = [s.name for s in KEYPOINT_SETS.values() if s.num_keypoints == joints]
    if len(matching) != 1:
        raise CheckpointError(f"the checkpoint predicts {joints} keypoints; name the keypoint "
                              f"set with --keypoints (candidates: {matching or 'none'})")
    return matching[0]


def refuse_fixed_options(family: str, expected_keypoints: str, keypoints: str | None,
                         input_size: tuple[int, int] | None) -> None:
    """InputError for the options a family whose variant fixes size and keypoints ignores."""
    if input_size is not None:
        raise InputError(f"{family} takes its input size from --variant; leave out "
                         "--input-size")
    if keypoints not in (None, expected_keypoints):
        raise InputError(f"{family} predicts the {expected_keypoints} keypoint set; --keypoints "
                         f"{keypoints} does not match (leave it out)")


def variant_hint(keys: set[str], signatures: dict[str, str], variant: str) -> str:
    """A hint naming another variant when the key only it has (`signatures`) is in `keys`."""
    other = [name for name, key in signatures.items() if key in keys and name != variant]
    return f"; it looks like a {other[0]} checkpoint: use --variant {other[0]}" if other else ""


def checkpoint_source(path: str | Path, layout: str) -> dict:
    """The card's record of where the weights came from."""
    return {"format": layout, "checkpoint": Path(path).name,
            "checkpoint_sha256": sha256_of_file(path)}


def caffe_named_weights(model: torch.nn.Module, path: Path
                        ) -> tuple[dict[str, torch.Tensor], str, str]:
    """Weights for a Caffe-named model from CMU's .caffemodel (read without Caffe) or a
    converted .pth: (state dict, layout, where, for error messages)."""
    if path.suffix.lower() == ".caffemodel":
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        return read_caffemodel(path, expected_shapes=expected), "caffemodel", f"caffemodel {path}"
    state_dict, layout = remap_to_model(read_checkpoint(path), set(model.state_dict()))
    return state_dict, layout, f"{path} ({layout} layout)"


def load_caffe_named(model: torch.nn.Module, checkpoint: str | Path,
                     signatures: dict[str, str], variant: str) -> tuple[str, dict]:
    """Strict load of CMU-named weights (caffe_named_weights); a mismatch names the other
    variant whose signature key (`signatures`, as for variant_hint) the checkpoint holds.
    Returns (layout, card source)."""
    path = Path(checkpoint)
    state_dict, layout, where = caffe_named_weights(model, path)
    try:
        load_strict(model, state_dict, source=where)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}{variant_hint(set(state_dict), signatures, variant)}"
                              ) from None
    return layout, checkpoint_source(path, layout)


def load_strictly(model: torch.nn.Module, checkpoint: str | Path,
                  raw: dict[str, torch.Tensor] | None = None) -> str:
    """Strict load of a .pth checkpoint (any recognised layout; `raw`: its tensors when
    already read); returns the layout."""
    raw = read_checkpoint(checkpoint) if raw is None else raw
    state_dict, layout = remap_to_model(raw, set(model.state_dict()))
    load_strict(model, state_dict, source=f"{checkpoint} ({layout} layout)")
    return layout


def random_or_loaded(model: torch.nn.Module, checkpoint: str | Path | None) -> tuple[str, dict]:
    """(layout, card source) of the checkpoint loaded strictly, or of random weights."""
    if checkpoint is None:
        return "random-init", {"format": "random-init"}
    layout = load_strictly(model, checkpoint)
    return layout, checkpoint_source(checkpoint, layout)


def square_input(size: int, color: str, mean: tuple[float, float, float],
                 std: tuple[float, float, float]) -> InputSpec:
    return InputSpec(name="input", height=size, width=size, layout="NCHW", color=color,
                     mean=mean, std=std, pad_value=0.0)
