"""Associative Embedding (pose-ae-train's 4-stack hourglass) and the card shared with
HigherHRNet, the other AE-grouped family."""

from __future__ import annotations

from pathlib import Path

import torch

from edgepose.card import DecoderSpec, ModelCard, OutputSpec
from export.families.common import (UNIT_SCALE, PreparedModel, random_or_loaded,
                                    refuse_fixed_options, square_input)
from export.models import ae_hourglass


def ae_card(family: str, variant: str, size: int, mean, std, outputs, preset: str,
            source: dict) -> ModelCard:
    return ModelCard(
        family=family, variant=variant, paradigm="bottom-up", keypoints="coco17",
        input=square_input(size, "RGB", mean, std), outputs=outputs,
        decoder=DecoderSpec(name="ae", refine="none", flip_test=False,
                            extra={"preset": preset}),
        precision="fp32", source=source)


def prepare_ae(variant: str, checkpoint: str | Path | None) -> PreparedModel:
    """pose-ae-train's 4-stack Associative Embedding hourglass, last stack's heatmaps and tags."""
    parsed = ae_hourglass.parse_ae_variant(variant)
    torch.manual_seed(0)
    model = ae_hourglass.build_ae_hourglass(parsed)
    layout, source = random_or_loaded(model, checkpoint)
    stride = ae_hourglass.STRIDE
    outputs = (OutputSpec(name="heatmaps", role="heatmaps", stride=stride),
               OutputSpec(name="tags", role="tags", stride=stride))
    card = ae_card("ae", parsed.name, parsed.input_size, (0.0, 0.0, 0.0), UNIT_SCALE, outputs,
                   "pose-ae-train", source)
    return PreparedModel(ae_hourglass.AEHourglassExport(model), card, layout)


def prepare(variant: str, checkpoint: str | Path | None, *, keypoints: str | None = None,
            input_size: tuple[int, int] | None = None) -> PreparedModel:
    refuse_fixed_options("ae", "coco17", keypoints, input_size)
    return prepare_ae(variant, checkpoint)
