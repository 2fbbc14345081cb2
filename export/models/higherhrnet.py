"""HigherHRNet (bottom-up, HRNet + associative embedding), as the official release.

The official `PoseHigherResolutionNet` (HRNet/HigherHRNet-Human-Pose-Estimation,
`lib/models/pose_higher_hrnet.py`, `experiments/coco/higher_hrnet/*.yaml`) is the
HRNet backbone of export.models.hrnet without its top-down head, plus:

- `final_layers.0`: 1x1 conv on the stage-4 features to 2K maps, K heatmaps then
  K tag maps (TAG_PER_JOINT, WITH_AE_LOSS [True, False]);
- `deconv_layers.0`: on concat[features, final_layers.0 output] (features first),
  a ConvTranspose k4 s2 p1 without bias + BN + ReLU (`deconv_layers.0.0.{0,1}`),
  then four BasicBlocks, each wrapped alone in a Sequential
  (`deconv_layers.0.{1..4}.0.conv1.weight` and so on);
- `final_layers.1`: 1x1 conv on the deconv output to K heatmaps at twice the size.

The deconv branch has the backbone width (NUM_CHANNELS [32] for W32, [48] for W48).
Key names equal the official state-dict keys; mmpose 0.x checkpoints
(`backbone.*`, `keypoint_head.final_layers.*`, `keypoint_head.deconv_layers.*`)
hold the same names under those prefixes, which export.checkpoints.remap_to_model
strips (its "mmpose-0.x" layout).

Shape letters: N batch, K keypoints (17 for COCO), H, W input size.
Input (N, 3, H, W): RGB, 0-1, ImageNet mean/std. The network needs H, W multiples
of 32; the official inference resizes the long side up to a multiple of 64, so
variants are sized in multiples of 64. Outputs, in this order (OUTPUT_NAMES):

- `heatmaps_tags` (N, 2K, H/4, W/4): channels 0..K-1 heatmaps, K..2K-1 tags;
- `heatmaps_hr` (N, K, H/2, W/2): heatmaps only.

Combining them (upsample, average heatmaps, flip) is the decoder's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from edgepose.errors import InputError
from export.models.hrnet import BN_EPS, BN_MOMENTUM, BasicBlock, HRNet

OUTPUT_NAMES = ("heatmaps_tags", "heatmaps_hr")
NUM_JOINTS = 17
# Strides of the two outputs relative to the input.
STRIDES = (4, 2)

# DECONV in every official yaml: one deconv (kernel 4, stride 2) followed by
# four BasicBlocks, fed with the first output concatenated (CAT_OUTPUT True).
_DECONV_KERNEL = 4
_DECONV_PADDING = 1
_DECONV_BLOCKS = 4
# Coarsest branch at 1/32: below that the fuse upsampling cannot land on the grids.
_NETWORK_MULTIPLE = 32
# get_multi_scale_size rounds to 64, and every released input size is one.
_SIZE_MULTIPLE = 64


class HigherHRNet(HRNet):
    """PoseHigherResolutionNet for a width and joint count.

    forward: (N, 3, H, W) -> (heatmaps_tags (N, 2K, H/4, W/4), heatmaps_hr (N, K, H/2, W/2)).
    init_weights (inherited) is the official from-scratch init, ConvTranspose included.
    """

    def __init__(self, width: int = 32, num_joints: int = NUM_JOINTS) -> None:
        super().__init__(width=width, num_joints=num_joints)
        # HRNet.forward ends in final_layer; as an Identity (no keys) it hands back
        # the stage-4 branch-0 features, so the backbone code is not repeated here.
        self.final_layer = nn.Identity()
        maps_and_tags = 2 * num_joints
        self.final_layers = nn.ModuleList(
            [
                nn.Conv2d(width, maps_and_tags, kernel_size=1),
                nn.Conv2d(width, num_joints, kernel_size=1),
            ]
        )
        upsample = nn.Sequential(
            nn.ConvTranspose2d(
                width + maps_and_tags,
                width,
                kernel_size=_DECONV_KERNEL,
                stride=2,
                padding=_DECONV_PADDING,
                bias=False,
            ),
            nn.BatchNorm2d(width, eps=BN_EPS, momentum=BN_MOMENTUM),
            nn.ReLU(),
        )
        self.deconv_layers = nn.ModuleList(
            [
                nn.Sequential(
                    upsample,
                    *(nn.Sequential(BasicBlock(width)) for _ in range(_DECONV_BLOCKS)),
                )
            ]
        )

    def forward(  # type: ignore[override]
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _check_input(x)
        features = super().forward(x)
        heatmaps_tags = self.final_layers[0](features)
        upsampled = self.deconv_layers[0](torch.cat([features, heatmaps_tags], dim=1))
        return heatmaps_tags, self.final_layers[1](upsampled)


def _check_input(x: torch.Tensor) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise InputError(f"HigherHRNet takes (N, 3, H, W) RGB images; got {tuple(x.shape)}")
    if x.shape[2] % _NETWORK_MULTIPLE or x.shape[3] % _NETWORK_MULTIPLE:
        raise InputError(
            f"HigherHRNet input height and width must be multiples of {_NETWORK_MULTIPLE} "
            f"(the official inference uses multiples of {_SIZE_MULTIPLE}); got "
            f"{x.shape[2]}x{x.shape[3]}"
        )


@dataclass(frozen=True)
class HigherHRNetVariant:
    """A width and square input size, named like the official files: `w32_512`."""

    width: int
    input_size: int

    def __post_init__(self) -> None:
        if self.width < 1:
            raise InputError(f"HigherHRNet width must be >= 1; got {self.width}")
        if self.input_size < _SIZE_MULTIPLE or self.input_size % _SIZE_MULTIPLE:
            raise InputError(
                f"HigherHRNet input size must be a positive multiple of {_SIZE_MULTIPLE}; "
                f"got {self.input_size} (released: 512, 640)"
            )

    @property
    def name(self) -> str:
        return f"w{self.width}_{self.input_size}"


_VARIANT_RE = re.compile(r"w(\d+)_(\d+)")


def parse_higherhrnet_variant(text: str) -> HigherHRNetVariant:
    """Parse `w{width}_{size}`: `w32_512`, `w32_640`, `w48_640`, or `w8_128` for tests."""
    match = _VARIANT_RE.fullmatch(text)
    if match is None:
        raise InputError(
            f"HigherHRNet variant must look like 'w32_512' (w<width>_<input size>); got {text!r}"
        )
    width, size = (int(g) for g in match.groups())
    return HigherHRNetVariant(width=width, input_size=size)


def build_higherhrnet(variant: HigherHRNetVariant, num_joints: int = NUM_JOINTS) -> HigherHRNet:
    """A HigherHRNet for `variant`; the input size only matters for export."""
    return HigherHRNet(width=variant.width, num_joints=num_joints)
