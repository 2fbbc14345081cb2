"""A small anchor-free person detector in the YOLOv8 style (edgepose's demo detector).

No public detector weights can be downloaded here, so the top-down pipelines' person
boxes need a detector made in this project: this one is trained on synthetic people by
`export/training/detector.py`. Its exported output is Ultralytics' raw detect layout, so
anything that reads a YOLOv8/YOLO11 ONNX file reads this one:

- input `images`: (B, 3, H, W) RGB in [0, 1] (pixel / 255), H and W multiples of 32;
- output `output0`: (B, 4 + 1, A) rows cx, cy, w, h in input pixels and the person score
  (sigmoid applied, no objectness), A = sum over strides s of (H/s)(W/s), stride 8's cells
  first, each stride's cells row-major (y outer, x inner).

Boxes are decoded inside the network as YOLOv8 does, by distances from the cell centre
(left, top, right, bottom), but each distance is softplus(raw) × stride instead of a DFL
distribution: one regression per side keeps the head tiny and the export a handful of
elementwise ops. Cell (x, y) of stride s is centred on input pixel ((x + 0.5) s, (y + 0.5) s),
Ultralytics' anchor points.

Shape letters: B batch, A anchors (cells over all strides), C channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

STRIDES = (8, 16, 32)
# The classifier's starting probability: RetinaNet's prior, so the ~1,700 background
# cells of an image do not swamp the first steps' loss with confident false positives.
PRIOR_PROBABILITY = 0.01


@dataclass(frozen=True)
class DetectorConfig:
    """Widths of the stem and the four strided stages (strides 2, 4, 8, 16, 32), residual
    blocks after stages 4..32, and the neck/head width shared by the three output strides."""

    widths: tuple[int, ...] = (16, 32, 64, 96, 128)
    depths: tuple[int, ...] = (1, 2, 2, 1)
    neck: int = 64

    def __post_init__(self) -> None:
        if len(self.widths) != 5 or len(self.depths) != 4:
            raise ValueError(f"widths needs 5 entries and depths 4, got {self.widths!r}, "
                             f"{self.depths!r}")
        if min(self.widths) < 2 or min(self.depths) < 0 or self.neck < 1:
            raise ValueError(f"widths must be >= 2, depths >= 0, neck >= 1; got {self!r}")


class ConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.SiLU(inplace=True))


class Bottleneck(nn.Module):
    """Darknet's residual block: a 1x1 halving the channels, then a 3x3 restoring them.
    A third of a plain 3x3 pair's weights and multiplies at the same receptive-field gain."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.reduce = ConvBN(channels, channels // 2, 1)
        self.expand = ConvBN(channels // 2, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.expand(self.reduce(x))


def anchor_points(height: int, width: int, strides: tuple[int, ...] = STRIDES,
                  device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell centres (A, 2) as x, y in input pixels and each cell's stride (A,), in the
    output's order: stride by stride, each row-major."""
    centers, cell_strides = [], []
    for stride in strides:
        ys = (torch.arange(height // stride, dtype=torch.float32, device=device) + 0.5) * stride
        xs = (torch.arange(width // stride, dtype=torch.float32, device=device) + 0.5) * stride
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        centers.append(torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=1))
        cell_strides.append(torch.full((grid_x.numel(),), float(stride), device=device))
    return torch.cat(centers), torch.cat(cell_strides)


def anchor_count(height: int, width: int, strides: tuple[int, ...] = STRIDES) -> int:
    return sum((height // s) * (width // s) for s in strides)


class PersonDetector(nn.Module):
    """Backbone (strided conv-BN-SiLU stages with Darknet residual blocks), a top-down
    feature pyramid at strides 8, 16, 32, and one small head per stride."""

    def __init__(self, config: DetectorConfig = DetectorConfig()) -> None:
        super().__init__()
        self.config = config
        self.strides = STRIDES
        w, d = config.widths, config.depths
        self.stem = ConvBN(3, w[0], 3, 2)

        def stage(cin: int, cout: int, depth: int) -> nn.Sequential:
            return nn.Sequential(ConvBN(cin, cout, 3, 2), *[Bottleneck(cout) for _ in range(depth)])

        self.stage4 = stage(w[0], w[1], d[0])
        self.stage8 = stage(w[1], w[2], d[1])
        self.stage16 = stage(w[2], w[3], d[2])
        self.stage32 = stage(w[3], w[4], d[3])
        n = config.neck
        self.lateral = nn.ModuleList(ConvBN(c, n, 1) for c in (w[2], w[3], w[4]))
        # The sum of a lateral and an upsampled coarser map is smoothed once, so the
        # nearest-neighbour upsampling's blocks do not reach the heads.
        self.smooth = nn.ModuleList(ConvBN(n, n, 3) for _ in self.strides)
        self.heads = nn.ModuleList(nn.Sequential(ConvBN(n, n, 3), nn.Conv2d(n, 5, 1))
                                   for _ in self.strides)
        self._anchors: dict[tuple[int, int, str], tuple[torch.Tensor, torch.Tensor]] = {}
        self.reset_head()

    def reset_head(self) -> None:
        for head in self.heads:
            final = head[-1]
            nn.init.normal_(final.weight, std=0.01)
            nn.init.zeros_(final.bias)
            with torch.no_grad():
                final.bias[4] = -math.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY)

    def anchors(self, height: int, width: int,
                     device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (height, width, str(device))
        if key not in self._anchors:
            self._anchors[key] = anchor_points(height, width, self.strides, device)
        return self._anchors[key]

    def raw(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoded boxes (B, A, 4) as x1, y1, x2, y2 in input pixels, and the person logits
        (B, A): what the training loss needs (logits, not probabilities, for a stable BCE)."""
        height, width = int(images.shape[-2]), int(images.shape[-1])
        if height % 32 or width % 32:
            raise ValueError(f"input height and width must be multiples of 32, got "
                             f"{height}x{width}")
        c8 = self.stage8(self.stage4(self.stem(images)))
        c16 = self.stage16(c8)
        c32 = self.stage32(c16)
        p32 = self.lateral[2](c32)
        p16 = self.lateral[1](c16) + F.interpolate(p32, scale_factor=2.0, mode="nearest")
        p8 = self.lateral[0](c8) + F.interpolate(p16, scale_factor=2.0, mode="nearest")
        outputs = [head(smooth(p)).flatten(2) for p, smooth, head in
                   zip((p8, p16, p32), self.smooth, self.heads)]
        # Decoded in float32 even under bfloat16 autocast: bfloat16 has 8 significant
        # bits, 2-pixel steps at 300 px.
        out = torch.cat(outputs, dim=2).float()  # (B, 5, A)
        centers, strides = self.anchors(height, width, out.device)
        distances = F.softplus(out[:, :4]).transpose(1, 2) * strides[None, :, None]  # (B, A, 4)
        top_left = centers[None] - distances[..., :2]
        bottom_right = centers[None] + distances[..., 2:]
        return torch.cat([top_left, bottom_right], dim=2), out[:, 4]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 5, A): cx, cy, w, h in input pixels and the person score, Ultralytics' raw
        detect output."""
        boxes, logits = self.raw(images)
        center = (boxes[..., :2] + boxes[..., 2:]) / 2
        size = boxes[..., 2:] - boxes[..., :2]
        return torch.cat([center, size, torch.sigmoid(logits)[..., None]], dim=2).transpose(1, 2)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
