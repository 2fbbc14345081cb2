"""Model + card for each supported family, and the one-call export behind the CLI.

A card is built here from facts about the official model (normalisation, output
stride, decoder), never from defaults in the runtime.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from edgepose.card import DecoderSpec, InputSpec, ModelCard, OutputSpec
from edgepose.errors import CheckpointError, InputError
from edgepose.keypoints import KEYPOINT_SETS
from export.checkpoints import load_strict, read_checkpoint, remap_to_model, sha256_of_file
from export.models.hrnet import build_hrnet, parse_hrnet_variant
from export.onnx import DEFAULT_OPSET, VerificationResult, export_onnx, verify_onnx

log = logging.getLogger(__name__)

FAMILIES = ("hrnet",)
# ImageNet statistics in 0-255 units, RGB order: HRNet's 0-1 normalisation × 255.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
HRNET_STRIDE = 4


@dataclass(frozen=True)
class PreparedModel:
    model: torch.nn.Module
    card: ModelCard
    layout: str  # the checkpoint layout detected, or "random-init"


@dataclass(frozen=True)
class ExportResult:
    path: Path
    card: ModelCard
    layout: str
    verification: tuple[VerificationResult, ...]


def _keypoints_for(joints: int, requested: str | None) -> str:
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


def _final_layer_joints(state_dict: dict[str, torch.Tensor]) -> int | None:
    for key, tensor in state_dict.items():
        if key.endswith("final_layer.weight") and tensor.ndim == 4:
            return int(tensor.shape[0])
    return None


def hrnet_card(variant: str, keypoints: str, source: dict) -> ModelCard:
    parsed = parse_hrnet_variant(variant)
    return ModelCard(
        family="hrnet",
        variant=parsed.name,
        paradigm="top-down",
        keypoints=keypoints,
        input=InputSpec(name="input", height=parsed.input_height, width=parsed.input_width,
                        layout="NCHW", color="RGB", mean=IMAGENET_MEAN, std=IMAGENET_STD,
                        pad_value=0.0),
        outputs=(OutputSpec(name="heatmaps", role="heatmaps", stride=HRNET_STRIDE),),
        decoder=DecoderSpec(name="topdown", refine="shift", flip_test=False),
        precision="fp32",
        source=source,
    )


def prepare_hrnet(variant: str, checkpoint: str | Path | None, *,
                  keypoints: str | None = None) -> PreparedModel:
    """HRNet with the checkpoint's weights (strict), or random weights when checkpoint is None."""
    parsed = parse_hrnet_variant(variant)
    if checkpoint is None:
        name = keypoints or "coco17"
        if name not in KEYPOINT_SETS:
            raise InputError(f"unknown keypoint set {name!r}; known: {sorted(KEYPOINT_SETS)}")
        torch.manual_seed(0)
        model = build_hrnet(parsed, KEYPOINT_SETS[name].num_keypoints)
        card = hrnet_card(parsed.name, name, {"format": "random-init"})
        return PreparedModel(model, card, "random-init")
    raw = read_checkpoint(checkpoint)
    joints = _final_layer_joints(raw)
    if joints is None:
        raise CheckpointError(f"{checkpoint} has no 'final_layer.weight' tensor: it is not an "
                              "HRNet checkpoint (official or mmpose layout)")
    name = _keypoints_for(joints, keypoints)
    model = build_hrnet(parsed, joints)
    state_dict, layout = remap_to_model(raw, set(model.state_dict()))
    load_strict(model, state_dict, source=f"{checkpoint} ({layout} layout)")
    card = hrnet_card(parsed.name, name, {
        "format": layout,
        "checkpoint": Path(checkpoint).name,
        "checkpoint_sha256": sha256_of_file(checkpoint),
    })
    return PreparedModel(model, card, layout)


def prepare_model(family: str, variant: str, checkpoint: str | Path | None, *,
                  keypoints: str | None = None) -> PreparedModel:
    if family == "hrnet":
        return prepare_hrnet(variant, checkpoint, keypoints=keypoints)
    raise InputError(f"unknown model family {family!r}; supported: {', '.join(FAMILIES)}")


def export_model(family: str, variant: str, out: str | Path, *,
                 checkpoint: str | Path | None = None, random_init: bool = False,
                 keypoints: str | None = None, opset: int = DEFAULT_OPSET,
                 verify: bool = True) -> ExportResult:
    """Checkpoint → verified ONNX with its card; the function behind `edgepose export`."""
    if checkpoint is None and not random_init:
        raise InputError("no --checkpoint given; pass one, or --random-init to export "
                         "untrained weights (only useful for testing the toolchain)")
    if checkpoint is not None and random_init:
        raise InputError("--checkpoint and --random-init exclude each other")
    if checkpoint is None:
        log.warning("exporting RANDOM weights: the model predicts noise, not poses")
    prepared = prepare_model(family, variant, checkpoint, keypoints=keypoints)
    log.info("tracing %s %s to ONNX opset %d (torch.export; tens of seconds on a CPU)",
             family, prepared.card.variant, opset)
    path = export_onnx(prepared.model, prepared.card, out, opset=opset)
    if verify:
        log.info("checking %s against PyTorch with ONNX Runtime", path)
    checks = tuple(verify_onnx(prepared.model, path)) if verify else ()
    return ExportResult(path, prepared.card, prepared.layout, checks)
