"""Model + card for each supported family, and the one-call export behind the CLI.

One module per family builds its model and card from facts about the official model
(normalisation, output stride, decoder), never from defaults in the runtime; FAMILIES
maps each family name to that module's functions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edgepose.card import ModelCard
from edgepose.errors import InputError
from edgepose.io import check_output_path
from export.families import ae, cpm, higherhrnet, hourglass, hrnet, openpose
from export.families.ae import prepare_ae
from export.families.common import (IMAGENET_MEAN, IMAGENET_STD, OPENPOSE_MEAN,
                                    OPENPOSE_PAD_VALUE, OPENPOSE_STD, UNIT_SCALE,
                                    PreparedModel, parse_input_size)
from export.families.cpm import CPM_BOX_PADDING, cpm_card, prepare_cpm
from export.families.higherhrnet import prepare_higherhrnet
from export.families.hourglass import prepare_hourglass
from export.families.hrnet import (HRNET_STRIDE, check_trained_variant, hrnet_card,
                                   official_hrnet_sigma, prepare_hrnet, trained_decoder)
from export.families.openpose import OPENPOSE_INPUT_SIZE, openpose_card, prepare_openpose
from export.onnx import DEFAULT_OPSET, VerificationResult, check_opset, write_onnx

__all__ = [
    "CPM_BOX_PADDING", "FAMILIES", "HRNET_STRIDE", "IMAGENET_MEAN", "IMAGENET_STD",
    "OPENPOSE_INPUT_SIZE", "OPENPOSE_MEAN", "OPENPOSE_PAD_VALUE", "OPENPOSE_STD", "UNIT_SCALE",
    "ExportResult", "Family", "PreparedModel", "check_trained_variant", "cpm_card",
    "export_model", "hrnet_card", "official_hrnet_sigma", "openpose_card", "parse_input_size",
    "prepare_ae", "prepare_cpm", "prepare_higherhrnet", "prepare_hourglass", "prepare_hrnet",
    "prepare_model", "prepare_openpose", "trained_decoder",
]

log = logging.getLogger(__name__)


class Prepare(Protocol):
    """A family's model and card; refuses the options the family does not take."""

    def __call__(self, variant: str, checkpoint: str | Path | None, *,
                 keypoints: str | None = None,
                 input_size: tuple[int, int] | None = None) -> PreparedModel: ...


@dataclass(frozen=True)
class Family:
    name: str
    prepare: Prepare


FAMILIES: dict[str, Family] = {
    "hrnet": Family("hrnet", hrnet.prepare),
    "openpose": Family("openpose", openpose.prepare),
    "cpm": Family("cpm", cpm.prepare),
    "hourglass": Family("hourglass", hourglass.prepare),
    "ae": Family("ae", ae.prepare),
    "higherhrnet": Family("higherhrnet", higherhrnet.prepare),
}


@dataclass(frozen=True)
class ExportResult:
    path: Path
    card: ModelCard
    layout: str
    verification: tuple[VerificationResult, ...]
    opset: int | None = None  # as the written file declares it


def prepare_model(family: str, variant: str, checkpoint: str | Path | None, *,
                  keypoints: str | None = None,
                  input_size: tuple[int, int] | None = None) -> PreparedModel:
    """input_size (height, width) is for families whose variant does not fix it (openpose)."""
    if family not in FAMILIES:
        raise InputError(f"unknown model family {family!r}; supported: {', '.join(FAMILIES)}")
    return FAMILIES[family].prepare(variant, checkpoint, keypoints=keypoints,
                                    input_size=input_size)


def export_model(family: str, variant: str, out: str | Path, *,
                 checkpoint: str | Path | None = None, random_init: bool = False,
                 keypoints: str | None = None, input_size: tuple[int, int] | None = None,
                 opset: int = DEFAULT_OPSET, verify: bool = True) -> ExportResult:
    """Checkpoint → verified ONNX with its card; the function behind `edgepose export`."""
    if checkpoint is None and not random_init:
        raise InputError("no --checkpoint given; pass one, or --random-init to export "
                         "untrained weights (only useful for testing the toolchain)")
    if checkpoint is not None and random_init:
        raise InputError("--checkpoint and --random-init exclude each other")
    # Both are found here, before tens of seconds of loading and tracing.
    out = check_output_path(out, "output")
    check_opset(opset)
    if checkpoint is None:
        log.warning("exporting RANDOM weights: the model predicts noise, not poses")
    prepared = prepare_model(family, variant, checkpoint, keypoints=keypoints,
                             input_size=input_size)
    log.info("tracing %s %s to ONNX opset %d (torch.export; tens of seconds on a CPU)",
             family, prepared.card.variant, opset)
    written = write_onnx(prepared.model, prepared.card, out, opset=opset, verify=verify)
    return ExportResult(written.path, prepared.card, prepared.layout, written.verification,
                        written.opset)
