"""Draws the demo image: two stick figures on a textured background.

A stand-in until the synthetic-people generator lands; deterministic, so the
committed PNG can be rebuilt with `python assets/demo/make_image.py`.
"""

from pathlib import Path

import cv2
import numpy as np

rng = np.random.default_rng(7)
noise = rng.integers(0, 60, size=(380, 440, 3), dtype=np.uint8)
image = cv2.GaussianBlur(noise, (0, 0), 3) + np.array([120, 140, 110], np.uint8)

# COCO-17 order, in box-relative units (0..1) of a 150x330 box.
figure = np.array([
    (0.50, 0.08), (0.55, 0.06), (0.45, 0.06), (0.60, 0.08), (0.40, 0.08),
    (0.70, 0.22), (0.30, 0.22), (0.80, 0.38), (0.20, 0.38), (0.85, 0.52), (0.15, 0.52),
    (0.62, 0.55), (0.38, 0.55), (0.65, 0.75), (0.35, 0.75), (0.66, 0.95), (0.34, 0.95),
])
limbs = [(15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
         (5, 7), (6, 8), (7, 9), (8, 10)]
for x0, y0, w, h, color in ((40, 20, 150, 330, (40, 40, 200)), (250, 30, 150, 320, (200, 60, 30))):
    points = (figure * [w, h] + [x0, y0]).astype(int)
    for i, j in limbs:
        cv2.line(image, tuple(points[i]), tuple(points[j]), color, 12, cv2.LINE_AA)
    cv2.circle(image, tuple(points[0]), 22, (150, 180, 230), -1, cv2.LINE_AA)

cv2.imwrite(str(Path(__file__).with_name("two_people.png")), image)
