"""A frame to a detector's input and the detector's boxes back to the frame.

Each exporter's own preprocessing, reproduced because a detector only finds what it
was trained to see:
- Ultralytics (YOLOv8, YOLO11, YOLO26, YOLOv10): scale by min(H/h, W/w), resize to
  round(w·r) × round(h·r), pad equally on both sides (the odd pixel split with
  round(d − 0.1) / round(d + 0.1)) with 114;
- YOLOX and mmdet: the same scale, resized to int(w·r) × int(h·r), padded at the
  bottom and right with 114;
- stretch: resize to the input size, aspect ratio lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from edgepose.errors import InputError

RESIZES = ("letterbox", "stretch")
PADS = ("center", "corner")


@dataclass(frozen=True)
class Letterbox:
    """frame (x, y) → input (x · scale_x + left, y · scale_y + top)."""

    scale_x: float
    scale_y: float
    left: int
    top: int
    resized: tuple[int, int]        # (width, height) of the frame after resizing

    def to_frame(self, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
        """xyxy boxes in input pixels → frame pixels, clipped to the frame."""
        out = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
        out[:, 0::2] = (out[:, 0::2] - self.left) / self.scale_x
        out[:, 1::2] = (out[:, 1::2] - self.top) / self.scale_y
        np.clip(out[:, 0::2], 0, width, out=out[:, 0::2])
        np.clip(out[:, 1::2], 0, height, out=out[:, 1::2])
        return out


def plan_letterbox(frame_size: tuple[int, int], input_size: tuple[int, int],
                   resize: Literal["letterbox", "stretch"] = "letterbox",
                   pad: Literal["center", "corner"] = "center") -> Letterbox:
    """The transform for a (width, height) frame into a (width, height) input."""
    (w, h), (in_w, in_h) = frame_size, input_size
    if min(w, h, in_w, in_h) <= 0:
        raise InputError(f"frame {w}x{h} and input {in_w}x{in_h} must both be non-empty")
    if resize not in RESIZES:
        raise InputError(f"resize must be one of {RESIZES}, got {resize!r}")
    if pad not in PADS:
        raise InputError(f"pad must be one of {PADS}, got {pad!r}")
    if resize == "stretch":
        return Letterbox(in_w / w, in_h / h, 0, 0, (in_w, in_h))
    ratio = min(in_h / h, in_w / w)
    if pad == "center":
        new_w, new_h = int(round(w * ratio)), int(round(h * ratio))
        left = int(round((in_w - new_w) / 2 - 0.1))
        top = int(round((in_h - new_h) / 2 - 0.1))
    else:
        new_w, new_h = int(w * ratio), int(h * ratio)
        left = top = 0
    # The boxes come back through the ratio itself, as the exporters' own code does.
    return Letterbox(ratio, ratio, left, top, (new_w, new_h))


def letterbox_image(frame: np.ndarray, plan: Letterbox, input_size: tuple[int, int],
                    pad_value: float = 114.0) -> np.ndarray:
    """(in_h, in_w, 3) uint8: `frame` resized (bilinear) and placed as `plan` says."""
    in_w, in_h = input_size
    new_w, new_h = plan.resized
    height, width = frame.shape[:2]
    resized = frame if (new_w, new_h) == (width, height) else cv2.resize(
        frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((in_h, in_w, 3), np.uint8(np.clip(round(pad_value), 0, 255)), np.uint8)
    canvas[plan.top:plan.top + new_h, plan.left:plan.left + new_w] = resized
    return canvas
