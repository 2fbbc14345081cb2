"""Stacked Hourglass networks (Newell et al., ECCV 2016), as the two released PyTorch ports.

- Princeton (princeton-vl/pytorch_stacked_hourglass, BSD-3; `models/posenet.py`,
  `models/layers.py`): `PoseNet(nstack, inp_dim=256, oup_dim=16)`. Pre-activation
  Residuals (BN-ReLU-conv 1x1, 3x3, 1x1 at half width) whose `skip_layer` 1x1 conv
  is created for every Residual but used only when the width changes; the state
  dict therefore holds skip layers that never run. Checkpoints
  `original_8hg/checkpoint.pt`, `original_2hg/checkpoint.pt` hold
  `{"state_dict", "optimizer", "epoch"}`, keys prefixed `model.module.`.
  The network takes NHWC images, RGB/255, and returns every stack's heatmaps.
- bearpaw (bearpaw/pytorch-pose, GPL-3.0; `pose/models/hourglass.py`, read for
  facts only): `hg(num_stacks, num_blocks, num_classes=16)`, an HourglassNet of
  pre-activation Bottlenecks (expansion 2, 1x1 `downsample` conv only where the
  width changes). Checkpoints `hg_s2_b1`, `hg_s8_b1` (`model_best.pth.tar` =
  `{"epoch", "arch", "state_dict", "best_acc", "optimizer"}`, keys prefixed
  `module.`). Input NCHW RGB in 0-1 minus the MPII mean (no std); returns a list
  of every stack's heatmaps.

Attribute names and container nesting follow the released keys exactly
(`pre.0.conv.weight`, `hgs.0.0.up1.conv1.conv.weight`, `merge_preds.0.conv.conv.weight`;
`conv1.weight`, `hg.0.hg.0.0.0.conv1.weight`, `fc.0.0.weight`, `score_.0.weight`).

Variant names (parse_hourglass_variant):
- `princeton_s8`, `princeton_s2`: Princeton PoseNet with 8 or 2 stacks (the released
  `original_8hg`, `original_2hg`); any stack count `princeton_s{S}` builds.
- `bearpaw_s8_b1`, `bearpaw_s2_b1`: bearpaw `hg` with 8 or 2 stacks and one block per
  position (the released `hg_s8_b1`, `hg_s2_b1`); `bearpaw_s{S}_b{B}` in general.
- A `_d{divisor}` suffix divides every hidden width (not the 3 input channels or the
  16 heatmaps), for small test networks with the same key names: `princeton_s2_d8`.

Export: `LastStack(model)` takes what the exported graph takes, one NCHW float tensor
normalised as the card states (Princeton: RGB/255; bearpaw: RGB/255 minus
BEARPAW_MEAN), and returns the last stack's heatmaps. For Princeton it feeds the NCHW
tensor past PoseNet's own NHWC permute, so the runtime keeps one layout for every
top-down model; the arithmetic is the same as PoseNet.forward on the NHWC image.

Shape letters: N batch, S stacks, K = 16 MPII joints, H, W input size (multiples of
64: a stride-4 stem, then four 2x poolings inside each hourglass), h = H/4, w = W/4.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from edgepose.errors import InputError

STRIDE = 4
INPUT_SIZE = 256
NUM_JOINTS = 16
# The stem halves twice and each of the hourglass's four levels halves again; nearest
# upsampling only lands back on the same grid when every level's size is even.
SIZE_MULTIPLE = 64
HOURGLASS_DEPTH = 4
SOURCES = ("princeton", "bearpaw")
WIDTH_DIVISORS = (1, 2, 4, 8, 16, 32)
# bearpaw's data/mpii/mean.pth.tar "mean" (float32; 0.4404, 0.4440, 0.4327 rounded), RGB
# in 0-1 units. Its color_normalize subtracts the mean only: the "std" stored beside it
# is never divided by.
BEARPAW_MEAN = (0.440442830324173, 0.4440267086029053, 0.4326828420162201)

# Princeton widths: stem conv, stem residual, hourglass features (inp_dim).
_PRINCETON_STEM = 64
_PRINCETON_MID = 128
_PRINCETON_FEATURES = 256
# bearpaw widths: stem (inplanes) and hourglass planes (num_feats); features are 2x planes.
_BEARPAW_STEM = 64
_BEARPAW_PLANES = 128
_BOTTLENECK_EXPANSION = 2

_VARIANT_RE = re.compile(
    r"(?:(princeton)_s([1-9][0-9]*)|(bearpaw)_s([1-9][0-9]*)_b([1-9][0-9]*))(?:_d([0-9]+))?"
)


@dataclass(frozen=True)
class HourglassVariant:
    """Which port, how many stacks (and bearpaw blocks), and an optional width divisor."""

    source: str
    stacks: int
    blocks: int = 1
    width_divisor: int = 1

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise InputError(f"hourglass source {self.source!r} is unknown; expected one of "
                             f"{', '.join(SOURCES)}")
        if self.stacks < 1 or self.blocks < 1:
            raise InputError(f"hourglass stacks and blocks must be at least 1; got "
                             f"{self.stacks} stacks, {self.blocks} blocks")
        if self.source == "princeton" and self.blocks != 1:
            raise InputError("the Princeton PoseNet has one Residual per hourglass position; "
                             f"blocks={self.blocks} exists only in bearpaw's hg")
        if self.width_divisor not in WIDTH_DIVISORS:
            raise InputError(f"hourglass width divisor {self.width_divisor} is not one of "
                             f"{WIDTH_DIVISORS} (every hidden width must stay a whole number)")

    @property
    def name(self) -> str:
        text = f"{self.source}_s{self.stacks}"
        if self.source == "bearpaw":
            text += f"_b{self.blocks}"
        return text + (f"_d{self.width_divisor}" if self.width_divisor != 1 else "")


def parse_hourglass_variant(text: str) -> HourglassVariant:
    """'princeton_s8' | 'princeton_s2' | 'bearpaw_s8_b1' | 'bearpaw_s2_b1' (+ '_d8') -> variant."""
    match = _VARIANT_RE.fullmatch(text)
    if match is None:
        raise InputError(
            f"hourglass variant {text!r} is malformed; expected princeton_s8 or princeton_s2 "
            f"(Princeton's original_8hg / original_2hg), bearpaw_s8_b1 or bearpaw_s2_b1 "
            f"(bearpaw's hg_s8_b1 / hg_s2_b1), optionally with _d{{divisor}} for a narrower "
            f"test network, e.g. princeton_s2_d8"
        )
    divisor = int(match.group(6)) if match.group(6) is not None else 1
    if match.group(1) is not None:
        return HourglassVariant("princeton", int(match.group(2)), 1, divisor)
    return HourglassVariant("bearpaw", int(match.group(4)), int(match.group(5)), divisor)


def _check_size(height: int, width: int, what: str) -> None:
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE or height <= 0 or width <= 0:
        raise InputError(f"{what} height and width must be positive multiples of "
                         f"{SIZE_MULTIPLE}; got {height}x{width} (the released models use "
                         f"{INPUT_SIZE}x{INPUT_SIZE})")


def _upsample2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


# ---------------------------------------------------------------------------
# Princeton PoseNet
# ---------------------------------------------------------------------------

class Conv(nn.Module):
    """Conv (with bias, 'same' padding) and optional BN then ReLU; keys `conv.*`, `bn.*`."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1,
                 bn: bool = False, relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding=(kernel - 1) // 2,
                              bias=True)
        self.bn = nn.BatchNorm2d(out_ch) if bn else None
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class Residual(nn.Module):
    """Pre-activation residual (N, in, h, w) -> (N, out, h, w) at half width inside.

    `skip_layer` exists even when in == out, because the released checkpoints hold it;
    it runs only when the width changes, as in the original.
    """

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        mid = out_ch // 2
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = Conv(in_ch, mid, 1, relu=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv2 = Conv(mid, mid, 3, relu=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv3 = Conv(mid, out_ch, 1, relu=False)
        self.skip_layer = Conv(in_ch, out_ch, 1, relu=False)
        self.need_skip = in_ch != out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.skip_layer(x) if self.need_skip else x
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        return out + residual


class Hourglass(nn.Module):
    """One hourglass level n (recursing to 1): (N, f, h, w) -> (N, f, h, w).

    `increase` widens the lower branch of this level only: the original passes it to
    the outermost level and builds the inner levels with increase 0.
    """

    def __init__(self, n: int, f: int, increase: int = 0) -> None:
        super().__init__()
        nf = f + increase
        self.up1 = Residual(f, f)
        self.low1 = Residual(f, nf)
        self.n = n
        self.low2: nn.Module = Hourglass(n - 1, nf) if n > 1 else Residual(nf, nf)
        self.low3 = Residual(nf, f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up1 = self.up1(x)
        low = self.low3(self.low2(self.low1(F.max_pool2d(x, 2, 2))))
        return up1 + _upsample2(low)


class Merge(nn.Module):
    """1x1 conv, no BN or ReLU; keys `conv.conv.*` as in the original."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = Conv(in_ch, out_ch, 1, relu=False, bn=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class PoseNet(nn.Module):
    """Princeton's PoseNet; `forward` takes (N, H, W, 3) RGB/255 and returns (N, S, K, h, w).

    bn: accepted for the original signature; the original ignores it, so only False
    (the released value) is allowed here rather than pretending it does something.
    width_divisor divides every hidden width (64, 128, inp_dim, increase) for small
    test networks; the released models use 1.
    """

    def __init__(self, nstack: int, inp_dim: int = _PRINCETON_FEATURES,
                 oup_dim: int = NUM_JOINTS, bn: bool = False, increase: int = 0, *,
                 width_divisor: int = 1) -> None:
        super().__init__()
        if bn:
            raise InputError("PoseNet's bn flag has no effect in the released code (every "
                             "layer's BatchNorm is fixed by the architecture); pass bn=False")
        if nstack < 1:
            raise InputError(f"PoseNet needs at least one stack; got nstack={nstack}")
        if width_divisor not in WIDTH_DIVISORS:
            raise InputError(f"width_divisor={width_divisor} is not one of {WIDTH_DIVISORS}")
        widths = (_PRINCETON_STEM, _PRINCETON_MID, inp_dim, increase)
        if any(w % width_divisor for w in widths):
            raise InputError(f"width_divisor={width_divisor} does not divide the widths "
                             f"{widths} (stem, residual, inp_dim, increase)")
        stem, mid, feats, inc = (w // width_divisor for w in widths)
        self.nstack = nstack
        self.pre = nn.Sequential(
            Conv(3, stem, 7, 2, bn=True, relu=True),
            Residual(stem, mid),
            nn.MaxPool2d(2, 2),
            Residual(mid, mid),
            Residual(mid, feats),
        )
        self.hgs = nn.ModuleList(
            nn.Sequential(Hourglass(HOURGLASS_DEPTH, feats, inc)) for _ in range(nstack))
        self.features = nn.ModuleList(
            nn.Sequential(Residual(feats, feats), Conv(feats, feats, 1, bn=True, relu=True))
            for _ in range(nstack))
        self.outs = nn.ModuleList(
            Conv(feats, oup_dim, 1, relu=False, bn=False) for _ in range(nstack))
        self.merge_features = nn.ModuleList(Merge(feats, feats) for _ in range(nstack - 1))
        self.merge_preds = nn.ModuleList(Merge(oup_dim, feats) for _ in range(nstack - 1))

    def stacks(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) NCHW RGB/255 -> every stack's heatmaps, S x (N, K, h, w)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise InputError(f"PoseNet.stacks takes (N, 3, H, W) RGB/255; got {tuple(x.shape)}")
        _check_size(int(x.shape[2]), int(x.shape[3]), "PoseNet input")
        x = self.pre(x)
        outputs = []
        for i in range(self.nstack):
            feature = self.features[i](self.hgs[i](x))
            preds = self.outs[i](feature)
            outputs.append(preds)
            if i < self.nstack - 1:
                x = x + self.merge_preds[i](preds) + self.merge_features[i](feature)
        return outputs

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) RGB/255, as the original takes it -> (N, S, K, h, w)."""
        if imgs.dim() != 4 or imgs.shape[3] != 3:
            raise InputError(f"PoseNet takes NHWC images (N, H, W, 3) RGB/255 as the original "
                             f"does; got {tuple(imgs.shape)} (use LastStack for NCHW)")
        return torch.stack(self.stacks(imgs.permute(0, 3, 1, 2)), dim=1)


# ---------------------------------------------------------------------------
# bearpaw HourglassNet
# ---------------------------------------------------------------------------

class Bottleneck(nn.Module):
    """Pre-activation bottleneck (N, in, h, w) -> (N, 2·planes, h, w); `downsample` is the
    1x1 conv shortcut, present only where the width changes (keys `downsample.0.*`)."""

    expansion = _BOTTLENECK_EXPANSION

    def __init__(self, in_ch: int, planes: int) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = nn.Conv2d(in_ch, planes, kernel_size=1, bias=True)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1, bias=True)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_ch, kernel_size=1, bias=True)
        self.downsample: nn.Module | None = (
            nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=True))
            if in_ch != out_ch else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        residual = self.downsample(x) if self.downsample is not None else x
        return out + residual


def _bottlenecks(in_ch: int, planes: int, blocks: int) -> nn.Sequential:
    """`blocks` Bottlenecks; only the first may change the width."""
    layers = [Bottleneck(in_ch, planes)]
    layers += [Bottleneck(planes * Bottleneck.expansion, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class BearpawHourglass(nn.Module):
    """bearpaw's Hourglass: `hg[level][j]` residual groups, level 0 the innermost.

    Each level has up (j=0), low1 (j=1) and low3 (j=2); level 0 adds the bottom (j=3).
    (N, 2·planes, h, w) -> same.
    """

    def __init__(self, planes: int, blocks: int, depth: int = HOURGLASS_DEPTH) -> None:
        super().__init__()
        self.depth = depth
        ch = planes * Bottleneck.expansion
        self.hg = nn.ModuleList(
            nn.ModuleList(_bottlenecks(ch, planes, blocks) for _ in range(4 if level == 0 else 3))
            for level in range(depth))

    def _level(self, n: int, x: torch.Tensor) -> torch.Tensor:
        groups = self.hg[n - 1]
        up1 = groups[0](x)
        low1 = groups[1](F.max_pool2d(x, 2, stride=2))
        low2 = self._level(n - 1, low1) if n > 1 else groups[3](low1)
        return up1 + _upsample2(groups[2](low2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._level(self.depth, x)


class HourglassNet(nn.Module):
    """bearpaw's HourglassNet of Bottlenecks; `forward` takes (N, 3, H, W) RGB 0-1 minus
    BEARPAW_MEAN and returns every stack's heatmaps, S x (N, K, h, w), as a list.

    width_divisor divides the stem (64) and hourglass (128 planes) widths for small
    test networks; the released models use 1.
    """

    def __init__(self, num_stacks: int = 2, num_blocks: int = 1,
                 num_classes: int = NUM_JOINTS, *, width_divisor: int = 1) -> None:
        super().__init__()
        if num_stacks < 1 or num_blocks < 1:
            raise InputError(f"HourglassNet needs at least one stack and one block; got "
                             f"num_stacks={num_stacks}, num_blocks={num_blocks}")
        if width_divisor not in WIDTH_DIVISORS:
            raise InputError(f"width_divisor={width_divisor} is not one of {WIDTH_DIVISORS}")
        stem, planes = _BEARPAW_STEM // width_divisor, _BEARPAW_PLANES // width_divisor
        expansion = Bottleneck.expansion
        ch = planes * expansion
        self.num_stacks = num_stacks
        self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=True)
        self.bn1 = nn.BatchNorm2d(stem)
        # The original threads a running `inplanes` through _make_residual and passes it
        # as layer2's planes: layer1 64 -> 128, layer2 128 -> 256 (both with a 1x1
        # shortcut), layer3 256 -> 256 at the hourglass's 128 planes.
        self.layer1 = _bottlenecks(stem, stem, 1)
        self.layer2 = _bottlenecks(stem * expansion, stem * expansion, 1)
        self.layer3 = _bottlenecks(stem * expansion ** 2, planes, 1)
        self.hg = nn.ModuleList(BearpawHourglass(planes, num_blocks) for _ in range(num_stacks))
        self.res = nn.ModuleList(_bottlenecks(ch, planes, num_blocks) for _ in range(num_stacks))
        self.fc = nn.ModuleList(
            nn.Sequential(nn.Conv2d(ch, ch, kernel_size=1, bias=True), nn.BatchNorm2d(ch),
                          nn.ReLU())
            for _ in range(num_stacks))
        self.score = nn.ModuleList(
            nn.Conv2d(ch, num_classes, kernel_size=1, bias=True) for _ in range(num_stacks))
        self.fc_ = nn.ModuleList(
            nn.Conv2d(ch, ch, kernel_size=1, bias=True) for _ in range(num_stacks - 1))
        self.score_ = nn.ModuleList(
            nn.Conv2d(num_classes, ch, kernel_size=1, bias=True) for _ in range(num_stacks - 1))

    def stacks(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) -> S x (N, K, h, w)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise InputError(f"HourglassNet takes (N, 3, H, W) RGB 0-1 minus the MPII mean; "
                             f"got {tuple(x.shape)}")
        _check_size(int(x.shape[2]), int(x.shape[3]), "HourglassNet input")
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(self.layer1(x), 2, stride=2)
        x = self.layer3(self.layer2(x))
        outputs = []
        for i in range(self.num_stacks):
            y = self.fc[i](self.res[i](self.hg[i](x)))
            score = self.score[i](y)
            outputs.append(score)
            if i < self.num_stacks - 1:
                x = x + self.fc_[i](y) + self.score_[i](score)
        return outputs

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.stacks(x)


def hg(num_stacks: int, num_blocks: int = 1, num_classes: int = NUM_JOINTS, *,
       width_divisor: int = 1) -> HourglassNet:
    """bearpaw's `hg(num_stacks=, num_blocks=, num_classes=)` factory."""
    return HourglassNet(num_stacks, num_blocks, num_classes, width_divisor=width_divisor)


# ---------------------------------------------------------------------------
# Building and exporting
# ---------------------------------------------------------------------------

def build_hourglass(variant: HourglassVariant | str) -> PoseNet | HourglassNet:
    """The bare network of a variant, with the released key layout (random weights)."""
    if isinstance(variant, str):
        variant = parse_hourglass_variant(variant)
    if variant.source == "princeton":
        return PoseNet(variant.stacks, width_divisor=variant.width_divisor)
    return hg(variant.stacks, variant.blocks, width_divisor=variant.width_divisor)


class LastStack(nn.Module):
    """The exported graph: (N, 3, H, W) float NCHW, normalised per the card -> the last
    stack's heatmaps (N, K, h, w).

    Princeton: RGB/255 (PoseNet's NHWC permute is skipped by feeding NCHW directly);
    bearpaw: RGB/255 minus BEARPAW_MEAN. The network sits under `model`, so the
    checkpoint loads into `LastStack.model` with the released keys.
    """

    def __init__(self, model: PoseNet | HourglassNet) -> None:
        super().__init__()
        if not isinstance(model, (PoseNet, HourglassNet)):
            raise InputError(f"LastStack wraps a PoseNet or HourglassNet; got "
                             f"{type(model).__name__}")
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.stacks(x)[-1]
