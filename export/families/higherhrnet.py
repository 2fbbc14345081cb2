"""HigherHRNet (official or mmpose 0.x checkpoints), its outputs split by role."""

from __future__ import annotations

from pathlib import Path

import torch

from edgepose.card import OutputSpec
from export.families.ae import ae_card
from export.families.common import (IMAGENET_MEAN, IMAGENET_STD, PreparedModel,
                                    random_or_loaded, refuse_fixed_options)
from export.models import higherhrnet


class _SplitHeads(torch.nn.Module):
    """HigherHRNet as the runtime reads it: (heatmaps, tags) at 1/4, heatmaps_hr at 1/2."""

    def __init__(self, model: higherhrnet.HigherHRNet, joints: int) -> None:
        super().__init__()
        self.model, self.joints = model, joints

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        low, high = self.model(x)
        return low[:, :self.joints], low[:, self.joints:], high


def prepare_higherhrnet(variant: str, checkpoint: str | Path | None) -> PreparedModel:
    """HigherHRNet (official or mmpose 0.x checkpoint), outputs split by role."""
    parsed = higherhrnet.parse_higherhrnet_variant(variant)
    torch.manual_seed(0)
    model = higherhrnet.build_higherhrnet(parsed)
    layout, source = random_or_loaded(model, checkpoint)
    low, high = higherhrnet.STRIDES
    outputs = (OutputSpec(name="heatmaps", role="heatmaps", stride=low),
               OutputSpec(name="tags", role="tags", stride=low),
               OutputSpec(name="heatmaps_hr", role="heatmaps_hr", stride=high))
    card = ae_card("higherhrnet", parsed.name, parsed.input_size, IMAGENET_MEAN, IMAGENET_STD,
                   outputs, "higherhrnet", source)
    return PreparedModel(_SplitHeads(model, higherhrnet.NUM_JOINTS), card, layout)


def prepare(variant: str, checkpoint: str | Path | None, *, keypoints: str | None = None,
            input_size: tuple[int, int] | None = None) -> PreparedModel:
    refuse_fixed_options("higherhrnet", "coco17", keypoints, input_size)
    return prepare_higherhrnet(variant, checkpoint)
