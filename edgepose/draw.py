"""Drawing Poses on a frame for people to look at."""

from __future__ import annotations

import cv2
import numpy as np

from edgepose.keypoints import get_keypoint_set
from edgepose.poses import Poses

# Keypoints below this score are hidden: at the heatmap floor their position is noise.
DEFAULT_SCORE_THRESHOLD = 0.3
_BOX_COLOR = (80, 200, 80)
_WARNING_COLOR = (0, 0, 255)


def _limb_colors(count: int) -> list[tuple[int, int, int]]:
    hues = np.linspace(0, 179, num=max(count, 1), endpoint=False).astype(np.uint8)
    hsv = np.stack([hues, np.full_like(hues, 220), np.full_like(hues, 255)], axis=1)[None]
    bgr = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0]
    return [tuple(int(c) for c in color) for color in bgr]


def draw_poses(image: np.ndarray, poses: Poses, *,
               score_threshold: float = DEFAULT_SCORE_THRESHOLD,
               banner: str | None = None) -> np.ndarray:
    """A copy of the BGR `image` with boxes, limbs and keypoints drawn; `banner` on top."""
    canvas = image.copy()
    keypoint_set = get_keypoint_set(poses.keypoint_set)
    colors = _limb_colors(len(keypoint_set.skeleton))
    thickness = max(1, round(max(canvas.shape[:2]) / 300))
    for person in range(len(poses)):
        if poses.boxes is not None:
            x, y, w, h = (int(round(v)) for v in poses.boxes[person])
            cv2.rectangle(canvas, (x, y), (x + w, y + h), _BOX_COLOR, 1)
        points = np.round(poses.xy[person]).astype(int)
        visible = poses.scores[person] >= score_threshold
        for color, (i, j) in zip(colors, keypoint_set.skeleton):
            if visible[i] and visible[j]:
                cv2.line(canvas, tuple(points[i]), tuple(points[j]), color, thickness,
                         cv2.LINE_AA)
        for k in np.flatnonzero(visible):
            cv2.circle(canvas, tuple(points[k]), thickness + 1, (255, 255, 255), -1, cv2.LINE_AA)
    if banner:
        scale = max(0.4, canvas.shape[1] / 900)
        (text_w, text_h), base = cv2.getTextSize(banner, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        cv2.rectangle(canvas, (0, 0), (text_w + 8, text_h + base + 8), (255, 255, 255), -1)
        cv2.putText(canvas, banner, (4, text_h + 4), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    _WARNING_COLOR, 1, cv2.LINE_AA)
    return canvas
