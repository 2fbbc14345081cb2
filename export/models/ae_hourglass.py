"""Associative Embedding stacked hourglass (Newell et al., NIPS 2017), as the official release.

Rebuilt from princeton-vl/pose-ae-train (`models/posenet.py`, `models/layers.py`,
`task/pose.py`) so that `exp/pretrained/checkpoint.pth.tar` loads strictly. That file
is {state_dict, optimizer, epoch} with keys prefixed `model.module.` (Trainer around
DataParallel); export.checkpoints.remap_to_model strips the prefix, and what is left
are the names used here:

- `pre`: Conv 7x7/2 (64), Conv 3x3 (128), 2x2 max-pool (`pre.2`, no keys),
  Conv 3x3 (128), Conv 3x3 (inp_dim);
- per stack s: `features.s.0` a 4-level hourglass (`up1`, `low1`, `low2` nested,
  `low3`; each level adds `increase` channels: 256, 384, 512, 640, 768), then
  `features.s.1`, `features.s.2` Conv 3x3; `outs.s` Conv 1x1 to oup_dim, no ReLU;
- between stacks: x += merge_preds.s(pred) + merge_features.s(feature), both 1x1
  convs without ReLU (`merge_*.s.conv.conv`).

Every Conv has a bias and a ReLU unless stated; the released model has no
BatchNorm (bn=False), so none exists here. The official recursion does not pass
`increase` to inner levels (they fall back to its default, 128); identical for the
released increase=128, and passing it on lets narrow variants shrink every level.

`width_divisor` divides inp_dim and increase, for small test networks with the same
names and topology; the released model uses 1 (nstack 4, inp_dim 256, oup_dim 68,
increase 128; 138,893,840 parameters).

Shape letters: N batch, S stacks, K keypoints (17), H, W input size (multiples of 64:
stride 4 in `pre`, then four 2x2 pools), h = H/4, w = W/4.
AEHourglass input (N, H, W, 3), NHWC as in the original: RGB value/255; output
(N, S, oup_dim, h, w), channels 0..K-1 heatmaps, K..2K-1 tags, the rest untrained.
AEHourglassExport input (N, 3, H, W) RGB value/255; outputs (OUTPUT_NAMES) the last
stack's `heatmaps` (N, K, h, w) and `tags` (N, K, h, w).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn

from edgepose.errors import InputError

OUTPUT_NAMES = ("heatmaps", "tags")
NUM_JOINTS = 17
STRIDE = 4
NUM_STACKS = 4
INP_DIM = 256
OUP_DIM = 68  # 17 heatmaps + 17 tags + 34 channels the loss never sees
INCREASE = 128
INPUT_SIZE = 512
HOURGLASS_DEPTH = 4
WIDTH_DIVISORS = (1, 2, 4, 8, 16, 32)
# stride 4 in `pre` times 2**HOURGLASS_DEPTH pools: every level must halve exactly
# for the nearest upsampling to land back on the skip branch.
_SIZE_MULTIPLE = STRIDE * 2**HOURGLASS_DEPTH


class Conv(nn.Module):
    """The official `Conv` without BatchNorm: conv (with bias, 'same' padding), then ReLU.

    (N, in_ch, h, w) -> (N, out_ch, h / stride, w / stride).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1,
                 relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding=(kernel - 1) // 2)
        self.relu: nn.Module = nn.ReLU() if relu else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))


class Merge(nn.Module):
    """1x1 conv without ReLU; the extra `conv` level keeps the keys `merge_*.s.conv.conv.*`."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = Conv(in_ch, out_ch, kernel=1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Hourglass(nn.Module):
    """One level: up1(x) + upsample(low3(low2(low1(pool(x))))); (N, f, h, w) -> same.

    low2 is the next level down, or a plain Conv at the bottom (depth 1).
    """

    def __init__(self, depth: int, channels: int, increase: int) -> None:
        super().__init__()
        inner = channels + increase
        self.up1 = Conv(channels, channels)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.low1 = Conv(channels, inner)
        self.low2: nn.Module = (Hourglass(depth - 1, inner, increase) if depth > 1
                                else Conv(inner, inner))
        self.low3 = Conv(inner, channels)
        self.up2 = nn.Upsample(scale_factor=2.0, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.low3(self.low2(self.low1(self.pool1(x))))
        return self.up1(x) + self.up2(low)


class AEHourglass(nn.Module):
    """The official PoseNet: `nstack` hourglasses with intermediate supervision.

    forward: (N, H, W, 3) NHWC RGB/255 -> (N, S, oup_dim, H/4, W/4), every stack's output.
    """

    def __init__(self, nstack: int = NUM_STACKS, inp_dim: int = INP_DIM,
                 oup_dim: int = OUP_DIM, increase: int = INCREASE) -> None:
        super().__init__()
        if min(nstack, inp_dim, oup_dim, increase) < 1:
            raise InputError(
                f"AE hourglass needs nstack, inp_dim, oup_dim, increase >= 1; got nstack="
                f"{nstack}, inp_dim={inp_dim}, oup_dim={oup_dim}, increase={increase}"
            )
        self.nstack = nstack
        self.oup_dim = oup_dim
        self.pre = nn.Sequential(
            Conv(3, 64, kernel=7, stride=2),
            Conv(64, 128),
            nn.MaxPool2d(2, 2),
            Conv(128, 128),
            Conv(128, inp_dim),
        )
        self.features = nn.ModuleList(
            nn.Sequential(
                Hourglass(HOURGLASS_DEPTH, inp_dim, increase),
                Conv(inp_dim, inp_dim),
                Conv(inp_dim, inp_dim),
            )
            for _ in range(nstack)
        )
        self.outs = nn.ModuleList(Conv(inp_dim, oup_dim, kernel=1, relu=False)
                                  for _ in range(nstack))
        self.merge_features = nn.ModuleList(Merge(inp_dim, inp_dim) for _ in range(nstack - 1))
        self.merge_preds = nn.ModuleList(Merge(oup_dim, inp_dim) for _ in range(nstack - 1))

    def stack_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) NCHW -> one (N, oup_dim, H/4, W/4) tensor per stack."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise InputError(f"AE hourglass takes (N, 3, H, W) RGB/255 here; got {tuple(x.shape)}")
        if x.shape[2] % _SIZE_MULTIPLE or x.shape[3] % _SIZE_MULTIPLE:
            raise InputError(
                f"AE hourglass input height and width must be multiples of {_SIZE_MULTIPLE}; "
                f"got {x.shape[2]}x{x.shape[3]} (released: {INPUT_SIZE}x{INPUT_SIZE})"
            )
        x = self.pre(x)
        preds = []
        for s in range(self.nstack):
            feature = self.features[s](x)
            preds.append(self.outs[s](feature))
            if s < self.nstack - 1:
                # Summation order as the official code, for matching float results.
                x = x + self.merge_preds[s](preds[-1]) + self.merge_features[s](feature)
        return preds

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        if imgs.dim() != 4 or imgs.shape[3] != 3:
            raise InputError(
                f"AE hourglass forward takes NHWC (N, H, W, 3) RGB/255 like the original; got "
                f"{tuple(imgs.shape)}; use AEHourglassExport for NCHW"
            )
        return torch.stack(self.stack_outputs(imgs.permute(0, 3, 1, 2)), dim=1)


class AEHourglassExport(nn.Module):
    """Export form: (N, 3, H, W) RGB/255 -> (heatmaps, tags), each (N, K, H/4, W/4), last stack.

    Taking NCHW saves the graph the transpose of the original's NHWC input; dropping
    the earlier stacks and the untrained channels leaves only what decoding reads.
    The state dict is the model's under `model.`.
    """

    def __init__(self, model: AEHourglass, num_joints: int = NUM_JOINTS) -> None:
        super().__init__()
        if 2 * num_joints > model.oup_dim:
            raise InputError(
                f"AE hourglass with oup_dim={model.oup_dim} cannot hold {num_joints} heatmaps "
                f"and {num_joints} tags; expected oup_dim >= {2 * num_joints}"
            )
        self.model = model
        self.num_joints = num_joints

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        last = self.model.stack_outputs(x)[-1]
        k = self.num_joints
        return last[:, :k], last[:, k:2 * k]


@dataclass(frozen=True)
class AEHourglassVariant:
    """Stacks, square input size and width divisor: `hg4_512` (released), `hg4_64_d16`."""

    nstack: int = NUM_STACKS
    input_size: int = INPUT_SIZE
    width_divisor: int = 1

    def __post_init__(self) -> None:
        if self.nstack < 1:
            raise InputError(f"AE hourglass needs at least one stack; got {self.nstack}")
        if self.input_size < _SIZE_MULTIPLE or self.input_size % _SIZE_MULTIPLE:
            raise InputError(
                f"AE hourglass input size must be a positive multiple of {_SIZE_MULTIPLE}; "
                f"got {self.input_size} (released: {INPUT_SIZE})"
            )
        if self.width_divisor not in WIDTH_DIVISORS:
            raise InputError(
                f"AE hourglass width divisor {self.width_divisor} is not one of "
                f"{WIDTH_DIVISORS} (inp_dim and increase must stay whole numbers)"
            )

    @property
    def name(self) -> str:
        suffix = f"_d{self.width_divisor}" if self.width_divisor != 1 else ""
        return f"hg{self.nstack}_{self.input_size}{suffix}"


_VARIANT_RE = re.compile(r"hg(\d+)_(\d+)(?:_d(\d+))?")


def parse_ae_variant(text: str) -> AEHourglassVariant:
    """'hg4_512' (the release) | 'hg4_64_d16' (narrow) -> AEHourglassVariant."""
    match = _VARIANT_RE.fullmatch(text)
    if match is None:
        raise InputError(
            f"AE hourglass variant {text!r} is malformed; expected hg<stacks>_<input size>, "
            f"optionally with _d<divisor> for a narrower test network, e.g. hg4_512 or hg4_64_d16"
        )
    divisor = int(match.group(3)) if match.group(3) is not None else 1
    return AEHourglassVariant(int(match.group(1)), int(match.group(2)), divisor)


def build_ae_hourglass(variant: AEHourglassVariant) -> AEHourglass:
    """The PoseNet of `variant`; oup_dim stays 68 so narrow checkpoints keep the layout."""
    return AEHourglass(
        nstack=variant.nstack,
        inp_dim=INP_DIM // variant.width_divisor,
        oup_dim=OUP_DIM,
        increase=INCREASE // variant.width_divisor,
    )
