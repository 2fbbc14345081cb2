"""HRNet (top-down), module for module compatible with the official release.

The official `PoseHighResolutionNet` (leoxiaobin/deep-high-resolution-net.pytorch)
is rebuilt here from its published structure so that the released checkpoints
(`pose_hrnet_w32_256x192.pth` and friends) load with strict=True. Attribute
names and container nesting therefore follow the official state-dict keys
exactly; where a slot holds no layer, an `nn.Identity` keeps the index without
adding keys.

Shape letters: N batch, C channels, K keypoints (joints), H, W input size,
h, w the size of a feature map inside the net.
Input (N, 3, H, W) with H, W multiples of 32; output heatmaps (N, K, H/4, W/4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from edgepose.errors import InputError

# The official code sets momentum 0.1 explicitly in the stem and blocks and
# relies on the default (also 0.1) in transitions and fuse layers.
BN_MOMENTUM = 0.1
BN_EPS = 1e-5

# Every official variant shares these depths; only the width changes.
_LAYER1_BLOCKS = 4
_BLOCKS_PER_BRANCH = 4
_STEM_CHANNELS = 64
# The coarsest branch runs at 1/32; nearest upsampling only lands back on the
# finer grids when every branch size divides exactly.
_SIZE_MULTIPLE = 32


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def _conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs with identity shortcut; (N, C, h, w) -> (N, C, h, w)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = _conv3x3(channels, channels)
        self.bn1 = _bn(channels)
        self.conv2 = _conv3x3(channels, channels)
        self.bn2 = _bn(channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


class Bottleneck(nn.Module):
    """1x1-3x3-1x1 block with 4x expansion; (N, C_in, h, w) -> (N, 4*planes, h, w)."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.conv1 = nn.Conv2d(in_ch, planes, kernel_size=1, bias=False)
        self.bn1 = _bn(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = _bn(planes)
        self.conv3 = nn.Conv2d(planes, out_ch, kernel_size=1, bias=False)
        self.bn3 = _bn(out_ch)
        self.relu = nn.ReLU()
        # Only the first block of layer1 changes width; the official key is
        # `downsample` even though the stride stays 1.
        self.downsample: nn.Module = (
            nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=False), _bn(out_ch))
            if in_ch != out_ch
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.downsample(x))


def _downsample_path(in_ch: int, out_ch: int, steps: int) -> nn.Sequential:
    """Fuse path from a finer branch: `steps` stride-2 3x3 convs, ReLU on all but the last.

    Intermediate convs keep the input width, the last one switches to `out_ch`.
    """
    layers: list[nn.Module] = []
    for k in range(steps):
        if k == steps - 1:
            layers.append(nn.Sequential(_conv3x3(in_ch, out_ch, stride=2), _bn(out_ch)))
        else:
            layers.append(
                nn.Sequential(_conv3x3(in_ch, in_ch, stride=2), _bn(in_ch), nn.ReLU())
            )
    return nn.Sequential(*layers)


def _upsample_path(in_ch: int, out_ch: int, factor: int) -> nn.Sequential:
    """Fuse path from a coarser branch: 1x1 conv + BN, then nearest upsampling."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=False),
        _bn(out_ch),
        nn.Upsample(scale_factor=float(factor), mode="nearest"),
    )


class HighResolutionModule(nn.Module):
    """Parallel branches of BasicBlocks followed by all-to-all fusion.

    Takes one tensor per branch, (N, C_b, H_b, W_b) with C_b = width * 2**b and
    each branch at half the resolution of the previous; returns one tensor per
    output branch (all branches, or only branch 0 when multi_scale_output is
    False, as in the last module of stage 4).
    """

    def __init__(self, channels: list[int], num_blocks: int, multi_scale_output: bool) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*(BasicBlock(c) for _ in range(num_blocks))) for c in channels
        )
        num_outputs = len(channels) if multi_scale_output else 1
        self.fuse_layers = nn.ModuleList()
        for i in range(num_outputs):
            row = nn.ModuleList()
            for j, c_j in enumerate(channels):
                if j > i:
                    row.append(_upsample_path(c_j, channels[i], 2 ** (j - i)))
                elif j == i:
                    row.append(nn.Identity())
                else:
                    row.append(_downsample_path(c_j, channels[i], i - j))
            self.fuse_layers.append(row)
        self.relu = nn.ReLU()

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        outputs = []
        for row in self.fuse_layers:
            # Summation order matches the official code (branch 0 first), so
            # floating-point results agree with it bit for bit on the same device.
            y = row[0](xs[0])
            for j in range(1, len(xs)):
                y = y + row[j](xs[j])
            outputs.append(self.relu(y))
        return outputs


def _transition(prev: list[int], cur: list[int]) -> nn.ModuleList:
    """Adapt the branches of one stage to the next.

    Existing branches pass through (Identity) when the width is unchanged; each
    new branch is derived from the coarsest previous branch by stride-2 3x3
    convs. The official code wraps even a single conv in two Sequentials, which
    is where keys like `transition1.1.0.0.weight` come from.
    """
    layers = nn.ModuleList()
    for i, c_out in enumerate(cur):
        if i < len(prev):
            if prev[i] == c_out:
                layers.append(nn.Identity())
            else:
                layers.append(
                    nn.Sequential(_conv3x3(prev[i], c_out), _bn(c_out), nn.ReLU())
                )
        else:
            c_in = prev[-1]
            steps = i + 1 - len(prev)
            convs = [
                nn.Sequential(
                    _conv3x3(c_in, c_out if k == steps - 1 else c_in, stride=2),
                    _bn(c_out if k == steps - 1 else c_in),
                    nn.ReLU(),
                )
                for k in range(steps)
            ]
            layers.append(nn.Sequential(*convs))
    return layers


def _stage(channels: list[int], num_modules: int, last_single_output: bool) -> nn.Sequential:
    """`num_modules` HighResolutionModules; nn.Sequential hands each the branch list."""
    return nn.Sequential(
        *(
            HighResolutionModule(
                channels,
                _BLOCKS_PER_BRANCH,
                multi_scale_output=not (last_single_output and m == num_modules - 1),
            )
            for m in range(num_modules)
        )
    )


class HRNet(nn.Module):
    """The official PoseHighResolutionNet for a given width and joint count.

    forward: (N, 3, H, W) float -> (N, K, H/4, W/4) heatmaps, K = num_joints,
    for H and W multiples of 32.
    """

    def __init__(self, width: int = 32, num_joints: int = 17) -> None:
        super().__init__()
        if width < 1 or num_joints < 1:
            raise InputError(
                f"HRNet needs width >= 1 and num_joints >= 1; got width={width}, "
                f"num_joints={num_joints}"
            )
        self.width = width
        self.num_joints = num_joints

        self.conv1 = nn.Conv2d(3, _STEM_CHANNELS, 3, stride=2, padding=1, bias=False)
        self.bn1 = _bn(_STEM_CHANNELS)
        self.conv2 = nn.Conv2d(_STEM_CHANNELS, _STEM_CHANNELS, 3, stride=2, padding=1, bias=False)
        self.bn2 = _bn(_STEM_CHANNELS)
        self.relu = nn.ReLU()

        layer1_out = _STEM_CHANNELS * Bottleneck.expansion
        self.layer1 = nn.Sequential(
            Bottleneck(_STEM_CHANNELS, _STEM_CHANNELS),
            *(Bottleneck(layer1_out, _STEM_CHANNELS) for _ in range(_LAYER1_BLOCKS - 1)),
        )

        w2, w3, w4 = ([width * 2**b for b in range(n)] for n in (2, 3, 4))
        self.transition1 = _transition([layer1_out], w2)
        self.stage2 = _stage(w2, num_modules=1, last_single_output=False)
        self.transition2 = _transition(w2, w3)
        self.stage3 = _stage(w3, num_modules=4, last_single_output=False)
        self.transition3 = _transition(w3, w4)
        # Only branch 0 feeds the head, so the official net drops the other
        # outputs of the very last module (fuse_layers.0 only).
        self.stage4 = _stage(w4, num_modules=3, last_single_output=True)

        self.final_layer = nn.Conv2d(width, num_joints, kernel_size=1, stride=1, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.layer1(x)

        xs = [t(x) for t in self.transition1]
        xs = _apply_transition(self.transition2, self.stage2(xs))
        xs = _apply_transition(self.transition3, self.stage3(xs))
        return self.final_layer(self.stage4(xs)[0])

    def init_weights(self) -> None:
        """The official from-scratch initialisation (convolutions N(0, 0.001), BN identity).

        Training needs it: PyTorch's default init makes the untrained head emit
        heatmaps in the hundreds, and the first steps then drive every output to zero,
        where MSE on small Gaussians sits for a long time. Not applied by the
        constructor, because random-weight export tests want outputs of ordinary size.
        """
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(module.weight, std=0.001)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


def _apply_transition(transition: nn.ModuleList, ys: list[torch.Tensor]) -> list[torch.Tensor]:
    """Existing branches come from themselves, new ones from the coarsest branch."""
    return [t(ys[i] if i < len(ys) else ys[-1]) for i, t in enumerate(transition)]


@dataclass(frozen=True)
class HRNetVariant:
    """An HRNet width and input size, named like the official files: `w32_256x192`."""

    width: int
    input_height: int
    input_width: int

    def __post_init__(self) -> None:
        if self.width < 1:
            raise InputError(f"HRNet width must be >= 1; got {self.width}")
        for label, size in (("height", self.input_height), ("width", self.input_width)):
            if size < _SIZE_MULTIPLE or size % _SIZE_MULTIPLE:
                raise InputError(
                    f"HRNet input {label} must be a positive multiple of {_SIZE_MULTIPLE}; "
                    f"got {size} (e.g. 256x192, 384x288)"
                )

    @property
    def name(self) -> str:
        return f"w{self.width}_{self.input_height}x{self.input_width}"


_VARIANT_RE = re.compile(r"w(\d+)_(\d+)x(\d+)")


def parse_hrnet_variant(text: str) -> HRNetVariant:
    """Parse `w{width}_{H}x{W}`, e.g. `w32_256x192` or `w48_384x288`."""
    match = _VARIANT_RE.fullmatch(text)
    if match is None:
        raise InputError(
            f"HRNet variant must look like 'w32_256x192' (w<width>_<height>x<width>); "
            f"got {text!r}"
        )
    width, height, input_width = (int(g) for g in match.groups())
    return HRNetVariant(width=width, input_height=height, input_width=input_width)


def build_hrnet(variant: HRNetVariant, num_joints: int) -> HRNet:
    """An HRNet for `variant` with `num_joints` heatmaps (17 COCO, 16 MPII).

    The input size does not change the weights; it is carried by the variant
    for export.
    """
    return HRNet(width=variant.width, num_joints=num_joints)
