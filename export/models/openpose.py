"""OpenPose body models (CMU), layer for layer as in CMU's deploy prototxts.

Two networks, both a VGG trunk at stride 8 followed by refinement stages:

- COCO-18 (`pose/coco/pose_deploy_linevec.prototxt`): stage 1 has two branches,
  L1 (part affinity fields) and L2 (heatmaps); stages 2-6 run both branches
  again on concat[L1, L2, features]. ReLU after every conv except the last of
  each branch.
- BODY_25 (`pose/body_25/pose_deploy.prototxt`): PReLU from conv4_2 on; four
  PAF stages (`stage0..3_L2`) then two heatmap stages (`stage0..1_L1`); each
  `Mconv{i}` block is three chained 3x3 convs whose outputs are concatenated.
  Note the branch letters swap meaning: here L2 is the PAF branch.

Every layer is a direct attribute named as its Caffe layer, so the state-dict
keys are the flat Caffe names (`conv1_1.weight`, `Mconv7_stage6_L2.bias`,
`prelu4_2.weight`) used by the converted `.pth` files and by export.caffe.

`width_divisor` divides every hidden width (not the input or output channels),
for small trainable or test networks with the same layer names and topology;
the released models use 1.

Shape letters: N batch, H, W input size (multiples of 8), h = H/8, w = W/8.
Input (N, 3, H, W), BGR, value/256 - 0.5. Output (pafs, heatmaps):
COCO-18 (N, 38, h, w), (N, 19, h, w); BODY_25 (N, 52, h, w), (N, 26, h, w).
The heatmaps end with the background channel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from edgepose.errors import InputError

STRIDE = 8
VARIANTS = ("coco18", "body25")
# Every hidden width of both networks (64 ... 512, and BODY_25's 96) divides by these.
WIDTH_DIVISORS = (1, 2, 4, 8, 16, 32)

# name -> (PAF channels, heatmap channels incl. background)
OUTPUT_CHANNELS = {"coco18": (38, 19), "body25": (52, 26)}

# VGG-19 up to conv4_2, then CMU's two CPM convs: (layer, width); None = 2x2 max-pool.
_TRUNK: tuple[tuple[str, int] | None, ...] = (
    ("conv1_1", 64), ("conv1_2", 64), None,
    ("conv2_1", 128), ("conv2_2", 128), None,
    ("conv3_1", 256), ("conv3_2", 256), ("conv3_3", 256), ("conv3_4", 256), None,
    ("conv4_1", 512), ("conv4_2", 512), ("conv4_3_CPM", 256), ("conv4_4_CPM", 128),
)
# BODY_25 replaces ReLU by PReLU from this trunk layer on.
_BODY25_FIRST_PRELU = "conv4_2"

_VARIANT_RE = re.compile(r"(coco18|body25)(?:_d([0-9]+))?")


@dataclass(frozen=True)
class OpenPoseVariant:
    """`coco18` or `body25`, optionally narrowed: `coco18_d8` has every hidden width / 8."""

    keypoints: str
    width_divisor: int = 1

    def __post_init__(self) -> None:
        if self.keypoints not in VARIANTS:
            raise InputError(f"OpenPose variant {self.keypoints!r} is unknown; expected one of "
                             f"{', '.join(VARIANTS)}")
        if self.width_divisor not in WIDTH_DIVISORS:
            raise InputError(f"OpenPose width divisor {self.width_divisor} is not one of "
                             f"{WIDTH_DIVISORS} (every hidden width must stay a whole number)")

    @property
    def name(self) -> str:
        return self.keypoints + (f"_d{self.width_divisor}" if self.width_divisor != 1 else "")


def parse_openpose_variant(text: str) -> OpenPoseVariant:
    """'coco18' | 'body25' | 'coco18_d8' ... -> OpenPoseVariant."""
    match = _VARIANT_RE.fullmatch(text)
    if match is None:
        raise InputError(f"OpenPose variant {text!r} is malformed; expected coco18 or body25 "
                         f"(the released models), optionally with _d{{divisor}} for a narrower "
                         f"test network, e.g. coco18_d8")
    divisor = int(match.group(2)) if match.group(2) is not None else 1
    return OpenPoseVariant(match.group(1), divisor)


def build_openpose(variant: OpenPoseVariant, *,
                   relu_on_final_heatmaps: bool = False) -> "OpenPoseCOCO18 | OpenPoseBody25":
    if variant.keypoints == "coco18":
        return OpenPoseCOCO18(relu_on_final_heatmaps=relu_on_final_heatmaps,
                              width_divisor=variant.width_divisor)
    if relu_on_final_heatmaps:
        raise InputError("relu_on_final_heatmaps reproduces a quirk of the COCO-18 Python "
                         "port; BODY_25 has no such port")
    return OpenPoseBody25(width_divisor=variant.width_divisor)


def _prelu_name(conv: str) -> str:
    """Caffe's name for the PReLU after `conv`: conv4_2 -> prelu4_2, Mconv1_… -> Mprelu1_…."""
    if conv.startswith("Mconv"):
        return "Mprelu" + conv[len("Mconv"):]
    return "prelu" + conv[len("conv"):]


class _OpenPoseBase(nn.Module):
    """Layers registered flat under their Caffe names; the graph is described by name lists."""

    def __init__(self, width_divisor: int) -> None:
        super().__init__()
        if width_divisor not in WIDTH_DIVISORS:
            raise InputError(f"width_divisor={width_divisor} is not one of {WIDTH_DIVISORS}")
        self.width_divisor = width_divisor

    def _w(self, width: int) -> int:
        return width // self.width_divisor

    def _conv(self, name: str, in_ch: int, out_ch: int, kernel: int, prelu: bool = False) -> int:
        self.add_module(name, nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2))
        if prelu:
            self.add_module(_prelu_name(name), nn.PReLU(out_ch))
        return out_ch

    def _add_trunk(self, prelu_from: str | None) -> list[str | None]:
        in_ch, prelu, order = 3, False, []
        for step in _TRUNK:
            if step is None:
                order.append(None)
                continue
            name, width = step
            prelu = prelu or name == prelu_from
            in_ch = self._conv(name, in_ch, self._w(width), 3, prelu)
            order.append(name)
        return order

    def _act(self, name: str, x: torch.Tensor) -> torch.Tensor:
        prelu = _prelu_name(name)
        if prelu in self._modules:
            return self._modules[prelu](x)
        return F.relu(x)

    def _run(self, names: tuple[str, ...], x: torch.Tensor) -> torch.Tensor:
        """Chain of convs, activation after each but the last."""
        for i, name in enumerate(names):
            x = self._modules[name](x)
            if i < len(names) - 1:
                x = self._act(name, x)
        return x

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise InputError(f"OpenPose takes (N, 3, H, W) BGR images; got {tuple(x.shape)}")
        if x.shape[2] % STRIDE or x.shape[3] % STRIDE:
            raise InputError(f"OpenPose input height and width must be multiples of {STRIDE}; "
                             f"got {x.shape[2]}x{x.shape[3]} (pad bottom/right with 128)")
        for name in self._trunk:
            if name is None:
                x = F.max_pool2d(x, kernel_size=2, stride=2, ceil_mode=True)
            else:
                x = self._act(name, self._modules[name](x))
        return x

    def stage_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every stage's output, in the order computed, keyed by its Caffe layer name."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pafs, heatmaps) of the last stages."""
        outputs = self.stage_outputs(x)
        return outputs[self.paf_output], outputs[self.heatmap_output]


class OpenPoseCOCO18(_OpenPoseBase):
    """CMU's COCO body model: 6 stages, PAFs (N, 38, h, w) and heatmaps (N, 19, h, w).

    relu_on_final_heatmaps reproduces the Hzzone port, whose no-ReLU list misses
    Mconv7_stage6_L2; CMU's prototxt has no ReLU there (the default).
    """

    num_stages = 6
    paf_output = "Mconv7_stage6_L1"
    heatmap_output = "Mconv7_stage6_L2"

    def __init__(self, *, relu_on_final_heatmaps: bool = False, width_divisor: int = 1) -> None:
        super().__init__(width_divisor)
        self.relu_on_final_heatmaps = relu_on_final_heatmaps
        self._trunk = self._add_trunk(prelu_from=None)
        features = self._w(128)
        paf_ch, heat_ch = OUTPUT_CHANNELS["coco18"]
        # per stage: ((L1 convs), (L2 convs)); the output is the last conv of each.
        self._stages: list[tuple[tuple[str, ...], ...]] = []
        branches = []
        for branch, out in (("L1", paf_ch), ("L2", heat_ch)):
            in_ch, names = features, []
            for i, (width, kernel) in enumerate(((128, 3), (128, 3), (128, 3), (512, 1)), 1):
                name = f"conv5_{i}_CPM_{branch}"
                in_ch = self._conv(name, in_ch, self._w(width), kernel)
                names.append(name)
            self._conv(f"conv5_5_CPM_{branch}", in_ch, out, 1)
            branches.append((*names, f"conv5_5_CPM_{branch}"))
        self._stages.append(tuple(branches))
        for stage in range(2, self.num_stages + 1):
            branches = []
            for branch, out in (("L1", paf_ch), ("L2", heat_ch)):
                in_ch, names = paf_ch + heat_ch + features, []
                for i in range(1, 6):
                    name = f"Mconv{i}_stage{stage}_{branch}"
                    in_ch = self._conv(name, in_ch, self._w(128), 7)
                    names.append(name)
                in_ch = self._conv(f"Mconv6_stage{stage}_{branch}", in_ch, self._w(128), 1)
                self._conv(f"Mconv7_stage{stage}_{branch}", in_ch, out, 1)
                branches.append((*names, f"Mconv6_stage{stage}_{branch}",
                                 f"Mconv7_stage{stage}_{branch}"))
            self._stages.append(tuple(branches))

    def stage_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self._features(x)
        outputs: dict[str, torch.Tensor] = {}
        stage_in = features
        for l1, l2 in self._stages:
            pafs, heatmaps = self._run(l1, stage_in), self._run(l2, stage_in)
            outputs[l1[-1]], outputs[l2[-1]] = pafs, heatmaps
            stage_in = torch.cat([pafs, heatmaps, features], dim=1)
        if self.relu_on_final_heatmaps:
            outputs[self.heatmap_output] = F.relu(outputs[self.heatmap_output])
        return outputs


class OpenPoseBody25(_OpenPoseBase):
    """CMU's BODY_25 model: PAFs (N, 52, h, w) from 4 stages, heatmaps (N, 26, h, w) from 2.

    Stage inputs, as pose_deploy.prototxt concatenates them:
    stage0_L2: features; stage{1,2,3}_L2: [features, previous PAFs];
    stage0_L1: [features, final PAFs]; stage1_L1: [features, stage0 heatmaps, final PAFs].
    """

    paf_output = "Mconv7_stage3_L2"
    heatmap_output = "Mconv7_stage1_L1"
    # (stage name, Mconv1-5 width, Mconv6 width); the first stage of each kind is narrower.
    _STAGES = (("stage0_L2", 96, 256), ("stage1_L2", 128, 512), ("stage2_L2", 128, 512),
               ("stage3_L2", 128, 512), ("stage0_L1", 96, 256), ("stage1_L1", 128, 512))

    def __init__(self, *, width_divisor: int = 1) -> None:
        super().__init__(width_divisor)
        self._trunk = self._add_trunk(prelu_from=_BODY25_FIRST_PRELU)
        features = self._w(128)
        paf_ch, heat_ch = OUTPUT_CHANNELS["body25"]
        inputs = {"stage0_L2": features, "stage0_L1": features + paf_ch,
                  "stage1_L1": features + heat_ch + paf_ch}
        # per stage: (Mconv1-5 blocks as three conv names each, Mconv6, Mconv7)
        self._stages: dict[str, tuple[tuple[tuple[str, ...], ...], str, str]] = {}
        for stage, width, m6 in self._STAGES:
            in_ch, blocks = inputs.get(stage, features + paf_ch), []
            for i in range(1, 6):
                block = tuple(f"Mconv{i}_{stage}_{j}" for j in range(3))
                chain_in = in_ch
                for name in block:
                    chain_in = self._conv(name, chain_in, self._w(width), 3, prelu=True)
                in_ch = 3 * self._w(width)
                blocks.append(block)
            in_ch = self._conv(f"Mconv6_{stage}", in_ch, self._w(m6), 1, prelu=True)
            out = paf_ch if stage.endswith("L2") else heat_ch
            self._conv(f"Mconv7_{stage}", in_ch, out, 1)
            self._stages[stage] = (tuple(blocks), f"Mconv6_{stage}", f"Mconv7_{stage}")

    def _stage(self, stage: str, x: torch.Tensor) -> torch.Tensor:
        blocks, m6, m7 = self._stages[stage]
        for block in blocks:
            parts = []
            for name in block:
                x = self._act(name, self._modules[name](x))
                parts.append(x)
            x = torch.cat(parts, dim=1)
        return self._modules[m7](self._act(m6, self._modules[m6](x)))

    def stage_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self._features(x)
        outputs: dict[str, torch.Tensor] = {}
        pafs = self._stage("stage0_L2", features)
        outputs["Mconv7_stage0_L2"] = pafs
        for stage in ("stage1_L2", "stage2_L2", "stage3_L2"):
            pafs = self._stage(stage, torch.cat([features, pafs], dim=1))
            outputs[f"Mconv7_{stage}"] = pafs
        heatmaps = self._stage("stage0_L1", torch.cat([features, pafs], dim=1))
        outputs["Mconv7_stage0_L1"] = heatmaps
        outputs["Mconv7_stage1_L1"] = self._stage(
            "stage1_L1", torch.cat([features, heatmaps, pafs], dim=1))
        return outputs
