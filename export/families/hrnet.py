"""HRNet (official or mmpose checkpoints, or ones `python -m export.training.hrnet` wrote): the
model with its card, and the training record beside a checkpoint."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from edgepose.card import DecoderSpec, InputSpec, ModelCard, OutputSpec
from edgepose.decode.dark import check_dark_kernel, dark_kernel_for_sigma
from edgepose.errors import CheckpointError, InputError
from edgepose.keypoints import KEYPOINT_SETS
from export.checkpoints import read_checkpoint
from export.families.common import (IMAGENET_MEAN, IMAGENET_STD, PreparedModel,
                                    checkpoint_source, keypoints_for, load_strictly)
from export.models.hrnet import build_hrnet, parse_hrnet_variant

log = logging.getLogger(__name__)

HRNET_STRIDE = 4


def _final_layer_joints(state_dict: dict[str, torch.Tensor]) -> int | None:
    for key, tensor in state_dict.items():
        if key.endswith("final_layer.weight") and tensor.ndim == 4:
            return int(tensor.shape[0])
    return None


def official_hrnet_sigma(heatmap_height: int) -> float:
    """The training Gaussian of the official HRNet configs, in heatmap pixels: SIGMA 2 for
    64-row maps (256x192, 256x256), 3 for 96-row maps (384x288)."""
    return heatmap_height / 32


def hrnet_card(variant: str, keypoints: str, source: dict,
               decoder: DecoderSpec | None = None) -> ModelCard:
    """decoder: None gives the official one, the quarter-pixel shift, naming the DARK
    blur (which --refine dark uses) of the official training sigma."""
    parsed = parse_hrnet_variant(variant)
    if decoder is None:
        sigma = official_hrnet_sigma(parsed.input_height // HRNET_STRIDE)
        decoder = DecoderSpec(name="topdown", refine="shift", flip_test=False,
                              extra={"dark_kernel": dark_kernel_for_sigma(sigma)})
    return ModelCard(
        family="hrnet",
        variant=parsed.name,
        paradigm="top-down",
        keypoints=keypoints,
        input=InputSpec(name="input", height=parsed.input_height, width=parsed.input_width,
                        layout="NCHW", color="RGB", mean=IMAGENET_MEAN, std=IMAGENET_STD,
                        pad_value=0.0),
        outputs=(OutputSpec(name="heatmaps", role="heatmaps", stride=HRNET_STRIDE),),
        decoder=decoder,
        precision="fp32",
        source=source,
    )


def _training_record(checkpoint: str | Path) -> tuple[dict, Path] | None:
    """The training record beside a checkpoint (`<checkpoint stem>.json`, as `python -m
    export.training.hrnet` writes it) and its path; None when there is none."""
    record_path = Path(checkpoint).with_suffix(".json")
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{record_path}, the record beside the checkpoint, is not "
                              f"readable JSON ({exc}); fix or remove it") from None
    return (record, record_path) if isinstance(record, dict) else None


def check_trained_variant(checkpoint: str | Path, variant: str) -> None:
    """CheckpointError when the training record beside `checkpoint` names another HRNet
    variant than `variant`.

    HRNet is fully convolutional: weights trained at 128x96 load into a 256x192 model
    without a shape error, and the export then runs at a size the weights never saw.
    """
    found = _training_record(checkpoint)
    config = found[0].get("config") if found is not None else None
    if not isinstance(config, dict) or "variant" not in config:
        return
    record_path = found[1]
    try:
        trained = parse_hrnet_variant(config["variant"]).name
    except (InputError, TypeError, ValueError):
        raise CheckpointError(f"{record_path}: config.variant is {config['variant']!r}; "
                              "expected an HRNet variant name such as w10_128x96; fix or "
                              "remove the record") from None
    asked = parse_hrnet_variant(variant).name
    if trained != asked:
        raise CheckpointError(f"{checkpoint} was trained as HRNet {trained} (its training "
                              f"record {record_path.name} says so), but variant {asked} was "
                              f"asked for; export it with variant={trained!r}")


def trained_decoder(checkpoint: str | Path) -> tuple[DecoderSpec, Path] | None:
    """The decoder the training record beside a checkpoint names (`<checkpoint>.json`
    with a "decoder" block, as `python -m export.training.hrnet` writes it), and the record's
    path; None when there is no such record."""
    found = _training_record(checkpoint)
    if found is None or "decoder" not in found[0]:
        return None
    record, record_path = found
    block = record["decoder"]
    expected = ('{"refine": "shift" | "dark" | "none", "dark_kernel": a positive odd '
                'integer}')
    if not (isinstance(block, dict) and set(block) == {"refine", "dark_kernel"}
            and block["refine"] in ("shift", "dark", "none")):
        raise CheckpointError(f"{record_path}: its \"decoder\" block is {block!r}; "
                              f"expected {expected}")
    try:
        kernel = check_dark_kernel(block["dark_kernel"])
    except InputError as exc:
        raise CheckpointError(f"{record_path}: decoder.dark_kernel: {exc}") from None
    return (DecoderSpec(name="topdown", refine=block["refine"], flip_test=False,
                        extra={"dark_kernel": kernel}), record_path)


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
    check_trained_variant(checkpoint, parsed.name)
    raw = read_checkpoint(checkpoint)
    joints = _final_layer_joints(raw)
    if joints is None:
        raise CheckpointError(f"{checkpoint} has no 'final_layer.weight' tensor: it is not an "
                              "HRNet checkpoint (official or mmpose layout)")
    name = keypoints_for(joints, keypoints)
    model = build_hrnet(parsed, joints)
    layout = load_strictly(model, checkpoint, raw)
    source = checkpoint_source(checkpoint, layout)
    trained = trained_decoder(checkpoint)
    decoder = None
    if trained is not None:
        decoder, record_path = trained
        source["decoder_from"] = record_path.name
        log.info("decoder from the training record %s: %s", record_path, decoder.refine)
    card = hrnet_card(parsed.name, name, source, decoder)
    return PreparedModel(model, card, layout)


def prepare(variant: str, checkpoint: str | Path | None, *, keypoints: str | None = None,
            input_size: tuple[int, int] | None = None) -> PreparedModel:
    if input_size is not None:
        raise InputError("HRNet takes its input size from --variant (e.g. w32_256x192); "
                         "leave out --input-size")
    return prepare_hrnet(variant, checkpoint, keypoints=keypoints)
