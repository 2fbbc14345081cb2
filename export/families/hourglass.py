"""Stacked Hourglass (Princeton PoseNet or bearpaw hg), exported as its last stack."""

from __future__ import annotations

from pathlib import Path

import torch

from edgepose.card import DecoderSpec, ModelCard, OutputSpec
from export.families.common import (UNIT_SCALE, PreparedModel, random_or_loaded,
                                    refuse_fixed_options, square_input)
from export.models import hourglass


def prepare_hourglass(variant: str, checkpoint: str | Path | None) -> PreparedModel:
    """Stacked Hourglass (Princeton PoseNet or bearpaw hg), exported as its last stack.

    checkpoint: Princeton's checkpoint.pt ({state_dict: model.module.*, optimizer, epoch})
    or bearpaw's model_best.pth.tar ({state_dict: module.*, ...}); both load strictly.
    """
    parsed = hourglass.parse_hourglass_variant(variant)
    torch.manual_seed(0)
    model = hourglass.build_hourglass(parsed)
    layout, source = random_or_loaded(model, checkpoint)
    mean = ((0.0, 0.0, 0.0) if parsed.source == "princeton"
            else tuple(255.0 * m for m in hourglass.BEARPAW_MEAN))
    card = ModelCard(
        family="hourglass", variant=parsed.name, paradigm="top-down", keypoints="mpii16",
        input=square_input(hourglass.INPUT_SIZE, "RGB", mean, UNIT_SCALE),
        outputs=(OutputSpec(name="heatmaps", role="heatmaps", stride=hourglass.STRIDE),),
        # The refinement follows the port the weights come from (decode.hourglass).
        decoder=DecoderSpec(name="hourglass", refine="none", flip_test=False,
                            extra={"source": parsed.source, "integer": False}),
        precision="fp32", source=source)
    return PreparedModel(hourglass.LastStack(model), card, layout)


def prepare(variant: str, checkpoint: str | Path | None, *, keypoints: str | None = None,
            input_size: tuple[int, int] | None = None) -> PreparedModel:
    refuse_fixed_options("hourglass", "mpii16", keypoints, input_size)
    return prepare_hourglass(variant, checkpoint)
