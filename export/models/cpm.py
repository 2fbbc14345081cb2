"""Convolutional Pose Machines (Wei et al., CVPR 2016), layer for layer as CMU's deploy prototxts.

Two released MPII+LSP networks, 14 joints plus a background map, stride 8:

- `centermap` (`model/_trained_MPI/pose_deploy_centerMap.prototxt`): stage 1 is
  conv1-3 (128, 9x9) each followed by a 3x3/2 max-pool, conv4 (32, 5x5), conv5
  (512, 9x9), conv6 (512, 1x1), conv7 (15). Stage 2 runs its own image trunk
  (conv1-3_stage2 + pools, conv4_stage2 (32, 5x5)); stages 3-6 branch a single
  conv1_stageT (32, 5x5) off pool3_stage2. Each stage T >= 2 concatenates
  [image features (32), belief of stage T-1 (15), pooled center map (1)] and runs
  Mconv1-3 (128, 11x11), Mconv4 (128, 1x1), Mconv5 (15).
- `vgg` (`pose_deploy_resize.prototxt`): a VGG-19 trunk to conv4_2, then
  conv4_3-4_7_CPM; stage 1 is conv5_1_CPM (512, 1x1), conv5_2_CPM (15); stages
  2-6 concatenate [belief (15), conv4_7_CPM (128), pooled center map (1)] and run
  Mconv1-5 (128, 7x7), Mconv6 (128, 1x1), Mconv7 (15).

ReLU follows every convolution except each stage's belief layer. Caffe rounds
pooling output sizes up, so every pool here uses ceil mode: 368 -> 184 -> 92 -> 46
(floor mode would give 45). The center map's 9x9/8 average pool then has a last
window that overhangs the input by one pixel; Caffe divides it by the 8 pixels
it covers, and so does this pool (checked against a loop written from Caffe's
pooling code in tests/export/families/test_cpm.py).

Every layer is a direct attribute named as its Caffe layer, so state-dict keys
are the flat Caffe names (`conv1_stage1.weight`, `Mconv5_stage6.bias`), as
export.caffe reads them from a `.caffemodel`.

`width_divisor` divides every hidden width (not the input or the 15 maps), for
small test networks with the same names and topology; the released models use 1.

Shape letters: N batch, H, W input size (multiples of 8), h = H/8, w = W/8.
Input (N, 4, H, W): BGR value/256 - 0.5, then the center map. Output: the last
stage's belief (N, 15, h, w), background last.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edgepose.errors import InputError

STRIDE = 8
INPUT_SIZE = 368              # the released models' boxsize
CENTER_MAP_SIGMA = 21.0       # produceCenterLabelMap's sigma at 368
NUM_MAPS = 15                 # 14 joints + background
NUM_STAGES = 6
VARIANTS = ("centermap", "vgg")
WIDTH_DIVISORS = (1, 2, 4, 8, 16, 32)

_VARIANT_RE = re.compile(r"(centermap|vgg)(?:_d([0-9]+))?")

# VGG-19 to conv4_2, then CMU's CPM convs: (layer, width); None = 2x2/2 max-pool.
_VGG_TRUNK: tuple[tuple[str, int] | None, ...] = (
    ("conv1_1", 64), ("conv1_2", 64), None,
    ("conv2_1", 128), ("conv2_2", 128), None,
    ("conv3_1", 256), ("conv3_2", 256), ("conv3_3", 256), ("conv3_4", 256), None,
    ("conv4_1", 512), ("conv4_2", 512), ("conv4_3_CPM", 256), ("conv4_4_CPM", 256),
    ("conv4_5_CPM", 256), ("conv4_6_CPM", 256), ("conv4_7_CPM", 128),
)


@dataclass(frozen=True)
class CPMVariant:
    """`centermap` or `vgg`, optionally narrowed: `vgg_d8` has every hidden width / 8."""

    name_: str
    width_divisor: int = 1

    def __post_init__(self) -> None:
        if self.name_ not in VARIANTS:
            raise InputError(f"CPM variant {self.name_!r} is unknown; expected one of "
                             f"{', '.join(VARIANTS)}")
        if self.width_divisor not in WIDTH_DIVISORS:
            raise InputError(f"CPM width divisor {self.width_divisor} is not one of "
                             f"{WIDTH_DIVISORS} (every hidden width must stay a whole number)")

    @property
    def name(self) -> str:
        return self.name_ + (f"_d{self.width_divisor}" if self.width_divisor != 1 else "")


def parse_cpm_variant(text: str) -> CPMVariant:
    """'centermap' | 'vgg' | 'centermap_d8' ... -> CPMVariant."""
    match = _VARIANT_RE.fullmatch(text)
    if match is None:
        raise InputError(f"CPM variant {text!r} is malformed; expected centermap or vgg (the "
                         f"released models), optionally with _d{{divisor}} for a narrower test "
                         f"network, e.g. centermap_d8")
    divisor = int(match.group(2)) if match.group(2) is not None else 1
    return CPMVariant(match.group(1), divisor)


def center_map(height: int, width: int, sigma: float = CENTER_MAP_SIGMA) -> np.ndarray:
    """produceCenterLabelMap: exp(-d² / (2 σ²)) around the crop center, (height, width) float32.

    The center is (width/2, height/2) in the 1-based pixel grid of CMU's MATLAB code,
    i.e. 0-based pixel (width/2 - 1, height/2 - 1): for 368 the peak lies on pixel 183.
    """
    ys, xs = np.mgrid[1:height + 1, 1:width + 1].astype(np.float64)
    distance2 = (xs - width / 2) ** 2 + (ys - height / 2) ** 2
    return np.exp(-distance2 / (2.0 * sigma * sigma)).astype(np.float32)


class _CPMBase(nn.Module):
    """Layers registered flat under their Caffe names."""

    belief_output: str

    def __init__(self, width_divisor: int) -> None:
        super().__init__()
        if width_divisor not in WIDTH_DIVISORS:
            raise InputError(f"width_divisor={width_divisor} is not one of {WIDTH_DIVISORS}")
        self.width_divisor = width_divisor
        self.stage_names: list[str] = []

    def _w(self, width: int) -> int:
        return width // self.width_divisor

    def _conv(self, name: str, in_ch: int, out_ch: int, kernel: int) -> int:
        self.add_module(name, nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2))
        return out_ch

    def _chain(self, names: tuple[str, ...], x: torch.Tensor, relu_last: bool) -> torch.Tensor:
        for i, name in enumerate(names):
            x = self._modules[name](x)
            if relu_last or i < len(names) - 1:
                x = F.relu(x)
        return x

    @staticmethod
    def _split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The prototxt's Slice: image channels 0-2, center map channel 3, pooled 9x9/8."""
        if x.dim() != 4 or x.shape[1] != 4:
            raise InputError(f"CPM takes (N, 4, H, W): BGR image and center map; got "
                             f"{tuple(x.shape)}")
        if x.shape[2] % STRIDE or x.shape[3] % STRIDE:
            raise InputError(f"CPM input height and width must be multiples of {STRIDE}; got "
                             f"{x.shape[2]}x{x.shape[3]}")
        # count_include_pad=False states Caffe's divisor (the window's pixels inside the
        # input) in terms every exporter and runtime reads the same way.
        center = F.avg_pool2d(x[:, 3:4], kernel_size=9, stride=8, ceil_mode=True,
                              count_include_pad=False)
        return x[:, :3], center

    def stage_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every stage's belief (N, 15, h, w), in stage order, keyed by its Caffe layer name."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's belief maps."""
        return self.stage_outputs(x)[self.belief_output]


def _max_pool(x: torch.Tensor, kernel: int) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size=kernel, stride=2, ceil_mode=True)


class CPMCenterMap(_CPMBase):
    """pose_deploy_centerMap: six stages, 9x9 and 11x11 convolutions, 3x3/2 pools."""

    belief_output = f"Mconv5_stage{NUM_STAGES}"

    def __init__(self, *, width_divisor: int = 1) -> None:
        super().__init__(width_divisor)
        w128, w512 = self._w(128), self._w(512)
        w32 = self._w(32)
        for stage in (1, 2):
            in_ch = 3
            for i in (1, 2, 3):
                in_ch = self._conv(f"conv{i}_stage{stage}", in_ch, w128, 9)
            self._conv(f"conv4_stage{stage}", w128, w32, 5)
        self._conv("conv5_stage1", w32, w512, 9)
        self._conv("conv6_stage1", w512, w512, 1)
        self._conv("conv7_stage1", w512, NUM_MAPS, 1)
        for stage in range(3, NUM_STAGES + 1):
            self._conv(f"conv1_stage{stage}", w128, w32, 5)
        for stage in range(2, NUM_STAGES + 1):
            in_ch = w32 + NUM_MAPS + 1
            for i in (1, 2, 3):
                in_ch = self._conv(f"Mconv{i}_stage{stage}", in_ch, w128, 11)
            self._conv(f"Mconv4_stage{stage}", w128, w128, 1)
            self._conv(f"Mconv5_stage{stage}", w128, NUM_MAPS, 1)
        self.stage_names = ["conv7_stage1"] + [f"Mconv5_stage{s}"
                                               for s in range(2, NUM_STAGES + 1)]

    def _image_trunk(self, stage: int, image: torch.Tensor) -> torch.Tensor:
        """conv1-3_stage{stage}, each with its ReLU and 3x3/2 pool: pool3_stage{stage}."""
        x = image
        for i in (1, 2, 3):
            x = _max_pool(F.relu(self._modules[f"conv{i}_stage{stage}"](x)), 3)
        return x

    def stage_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        image, center = self._split(x)
        features1 = self._image_trunk(1, image)
        belief = self._chain(("conv4_stage1", "conv5_stage1", "conv6_stage1", "conv7_stage1"),
                             features1, relu_last=False)
        outputs = {"conv7_stage1": belief}
        pool3_stage2 = self._image_trunk(2, image)
        for stage in range(2, NUM_STAGES + 1):
            branch = "conv4_stage2" if stage == 2 else f"conv1_stage{stage}"
            features = F.relu(self._modules[branch](pool3_stage2))
            names = tuple(f"Mconv{i}_stage{stage}" for i in range(1, 6))
            belief = self._chain(names, torch.cat([features, belief, center], dim=1),
                                 relu_last=False)
            outputs[names[-1]] = belief
        return outputs


class CPMVgg(_CPMBase):
    """pose_deploy_resize: VGG-19 trunk, six stages of 7x7 convolutions."""

    belief_output = f"Mconv7_stage{NUM_STAGES}"

    def __init__(self, *, width_divisor: int = 1) -> None:
        super().__init__(width_divisor)
        in_ch = 3
        self._trunk: list[str | None] = []
        for step in _VGG_TRUNK:
            if step is None:
                self._trunk.append(None)
                continue
            name, width = step
            in_ch = self._conv(name, in_ch, self._w(width), 3)
            self._trunk.append(name)
        features = in_ch
        self._conv("conv5_1_CPM", features, self._w(512), 1)
        self._conv("conv5_2_CPM", self._w(512), NUM_MAPS, 1)
        for stage in range(2, NUM_STAGES + 1):
            in_ch = NUM_MAPS + features + 1
            for i in range(1, 6):
                in_ch = self._conv(f"Mconv{i}_stage{stage}", in_ch, self._w(128), 7)
            self._conv(f"Mconv6_stage{stage}", in_ch, self._w(128), 1)
            self._conv(f"Mconv7_stage{stage}", self._w(128), NUM_MAPS, 1)
        self.stage_names = ["conv5_2_CPM"] + [f"Mconv7_stage{s}"
                                              for s in range(2, NUM_STAGES + 1)]

    def stage_outputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        image, center = self._split(x)
        features = image
        for name in self._trunk:
            features = (_max_pool(features, 2) if name is None
                        else F.relu(self._modules[name](features)))
        belief = self._chain(("conv5_1_CPM", "conv5_2_CPM"), features, relu_last=False)
        outputs = {"conv5_2_CPM": belief}
        for stage in range(2, NUM_STAGES + 1):
            names = tuple(f"Mconv{i}_stage{stage}" for i in range(1, 8))
            belief = self._chain(names, torch.cat([belief, features, center], dim=1),
                                 relu_last=False)
            outputs[names[-1]] = belief
        return outputs


def build_cpm(variant: CPMVariant) -> CPMCenterMap | CPMVgg:
    if variant.name_ == "centermap":
        return CPMCenterMap(width_divisor=variant.width_divisor)
    return CPMVgg(width_divisor=variant.width_divisor)


class CenterMapInput(nn.Module):
    """A CPM that takes the 3-channel image and adds the crop-center map itself.

    The top-down pipeline always centers the person in the crop, so the center map
    is the same for every crop: a constant of the graph, not a second input. The
    runtime then treats CPM like any other top-down model (one image tensor), and
    TensorRT folds the map and its pooling away at build time. The map is a
    non-persistent buffer so the state dict stays the checkpoint's.
    """

    def __init__(self, model: _CPMBase, height: int, width: int,
                 sigma: float = CENTER_MAP_SIGMA) -> None:
        super().__init__()
        if height % STRIDE or width % STRIDE or height <= 0 or width <= 0:
            raise InputError(f"CPM input size must be positive multiples of {STRIDE}; "
                             f"got {height}x{width}")
        if not (math.isfinite(sigma) and sigma > 0):
            raise InputError(f"center map sigma must be a positive number; got {sigma!r}")
        self.model = model
        constant = torch.from_numpy(center_map(height, width, sigma))[None, None]
        self.register_buffer("center", constant, persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        center = self.center.expand(image.shape[0], 1, -1, -1)
        return self.model(torch.cat([image, center], dim=1))
