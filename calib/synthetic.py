"""Synthetic people: a COCO keypoints dataset this project can make without downloads.

Every precision decision (FP16, INT8, calibration) is judged by accuracy, and no
public dataset can be fetched here, so this module draws its own: multi-person
images of articulated figures on cluttered backgrounds, with COCO-17 keypoints,
visibility flags, boxes and areas, written as a COCO ``person_keypoints`` file
that pycocotools reads. numpy and OpenCV only; deterministic from a seed.

Shapes: N people, K keypoints (17 for COCO-17, 18 for the OpenPose COCO-18
layout). Keypoints are (x, y) in pixels of the image, pixel centers at integer
coordinates (OpenCV's drawing convention), with a COCO visibility flag v:
2 visible, 1 labelled but covered by another person or an occluder drawn on top,
0 not labelled (outside the image, or a far eye/ear hidden behind the turned
head) and then x = y = 0.

How a figure is built, so that a small top-down network can learn it:

- A 2-D pose model: pelvis, torso (lean, yaw foreshortening), head on a neck,
  arms and legs as hinged chains with joint-angle limits (elbows and knees bend
  one way) and random foreshortening. Every figure faces the camera (head yaw up
  to about 70 degrees), so the person's left is on the image's right.
- Left and right are told apart by colour: the person's left sleeve and trouser
  leg are always a warm hue (red, orange, yellow, magenta), the right ones
  always a cool hue (green, cyan, blue). The torso is a duller colour. Without
  this cue crossed arms or legs make left and right ambiguous.
- The head has hair at the back and a face (eyes, nose, mouth, ears) that moves
  with the head's yaw; a far eye or ear turned behind the head is not drawn and
  not labelled.

Annotations (see `PersonAnnotation`): the box is the tight box around the
person's whole rendered silhouette (including parts later covered by others)
clipped to the image, so it encloses every labelled keypoint; ``area`` is that
silhouette's pixel count. A person with fewer than
``SyntheticConfig.min_visible_keypoints`` visible keypoints or a silhouette
smaller than ``min_area`` is kept with all keypoints zeroed and
``num_keypoints`` 0: COCOeval ignores such people (and does not count a
detection on one as a false positive), and top-down training loaders skip them.
"""

from __future__ import annotations

import argparse
import colorsys
import dataclasses
import functools
import logging
import math
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence

import cv2
import numpy as np

from edgepose.errors import EdgeposeError, InputError
from edgepose.io import write_bytes_atomic, write_json_atomic
from edgepose.keypoints import COCO17, COCO18, KeypointSet

log = logging.getLogger(__name__)

# --- keypoint layouts ---------------------------------------------------------------

# COCO-17 indices used by the pose model below.
NOSE, L_EYE, R_EYE, L_EAR, R_EAR = 0, 1, 2, 3, 4
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 11, 12, 13, 14, 15, 16

# OpenPose's COCO-18 layout (Nose, Neck, RSho, RElb, RWri, LSho, LElb, LWri, RHip,
# RKnee, RAnk, LHip, LKnee, LAnk, REye, LEye, REar, LEar). Kept here until the
# OpenPose issue moves it into edgepose.keypoints.
# COCO-18 keypoint k comes from COCO-17 keypoint COCO18_FROM_COCO17[k]; -1 is the neck,
# the midpoint of the two shoulders.
COCO18_FROM_COCO17 = (0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
LAYOUTS: dict[str, KeypointSet] = {"coco17": COCO17, "coco18": COCO18}
IMAGE_FORMATS = ("jpg", "png")
JPEG_QUALITY = 95
ANNOTATION_FILE = "person_keypoints.json"

# --- configuration and results ------------------------------------------------------


@dataclass(frozen=True)
class SyntheticConfig:
    """What the generated images look like. Every range is (low, high), inclusive.

    image_size: (width, height) of every image in pixels.
    people: how many figures an image holds.
    seed: with the image index, determines an image completely.
    min_person_height: standing height of the smallest figure in pixels; the
        largest is the image height. Heights are drawn half log-uniform, half uniform
        in between.
    truncation: probability that a figure is placed across the image border.
    occluders: how many random objects are drawn over the people.
    clutter: how many random shapes and lines the background holds.
    blur: probability that an image is blurred (Gaussian or motion).
    noise: largest standard deviation of the additive pixel noise (0 for none).
    lighting: whether brightness, contrast, colour cast and an illumination
        gradient vary from image to image.
    min_visible_keypoints, min_area: a figure with fewer visible (v=2) keypoints or
        a smaller silhouette (pixels) is annotated with num_keypoints 0 (ignored). The
        default area is COCO's small/medium boundary, 32**2: below it (figures under
        about 60 px) a face is a few pixels wide and its keypoints are guesses.
    """

    image_size: tuple[int, int] = (320, 256)
    people: tuple[int, int] = (1, 4)
    seed: int = 0
    min_person_height: float = 40.0
    truncation: float = 0.25
    occluders: tuple[int, int] = (0, 2)
    clutter: tuple[int, int] = (4, 24)
    blur: float = 0.3
    noise: float = 8.0
    lighting: bool = True
    min_visible_keypoints: int = 4
    min_area: float = 1024.0

    def __post_init__(self) -> None:
        width, height = _int_pair("image_size", self.image_size, "(width, height)")
        if width < 32 or height < 32:
            raise InputError(f"image_size must be at least (32, 32) pixels, "
                             f"got {self.image_size!r}")
        for name in ("people", "occluders", "clutter"):
            low, high = _int_pair(name, getattr(self, name), "(low, high)")
            if low < 0 or high < low or (name == "people" and low < 1):
                least = 1 if name == "people" else 0
                raise InputError(f"{name} must be a range (low, high) with {least} <= low <= high, "
                                 f"got {getattr(self, name)!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not 8 <= self.min_person_height <= height:
            raise InputError(f"min_person_height must be between 8 and the image height "
                             f"({height}) pixels, got {self.min_person_height!r}")
        for name in ("truncation", "blur"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} is a probability in [0, 1], got {getattr(self, name)!r}")
        if not 0.0 <= self.noise <= 64.0:
            raise InputError(f"noise is a pixel standard deviation in [0, 64], got {self.noise!r}")
        if not 0 <= self.min_visible_keypoints <= 17:
            raise InputError(f"min_visible_keypoints must be in [0, 17], "
                             f"got {self.min_visible_keypoints!r}")
        if self.min_area < 0:
            raise InputError(f"min_area must be >= 0 pixels, got {self.min_area!r}")

    @property
    def width(self) -> int:
        return int(self.image_size[0])

    @property
    def height(self) -> int:
        return int(self.image_size[1])


def _int_pair(name: str, value: object, meaning: str) -> tuple[int, int]:
    integers = isinstance(value, (tuple, list)) and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    if not integers or len(value) != 2:  # type: ignore[arg-type]
        raise InputError(f"{name} must be two integers {meaning}, got {value!r}")
    return int(value[0]), int(value[1])


@dataclass(frozen=True)
class PersonAnnotation:
    """One figure's COCO-17 annotation.

    keypoints: (17, 3) float64 rows (x, y, v); v=0 rows are (0, 0, 0).
    bbox: (x, y, w, h) tight box around the figure's rendered silhouette clipped to
        the image; encloses every labelled keypoint.
    area: pixel count of that silhouette (> 0).
    truncated: part of the figure lies outside the image.
    """

    keypoints: np.ndarray
    bbox: tuple[float, float, float, float]
    area: float
    truncated: bool

    def __post_init__(self) -> None:
        if self.keypoints.shape != (17, 3):
            raise ValueError(f"keypoints must have shape (17, 3), got {self.keypoints.shape}")
        if len(self.bbox) != 4:
            raise ValueError(f"bbox must be (x, y, w, h), got {self.bbox!r}")

    @property
    def num_keypoints(self) -> int:
        return int(np.count_nonzero(self.keypoints[:, 2] > 0))


def to_coco18(keypoints: np.ndarray) -> np.ndarray:
    """COCO-17 (..., 17, 3) rows (x, y, v) → OpenPose COCO-18 (..., 18, 3).

    The neck is the midpoint of the shoulders with the smaller of their two flags,
    and is unlabelled (0, 0, 0) unless both shoulders are labelled.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.shape[-2:] != (17, 3):
        raise InputError(f"COCO-17 keypoints must have shape (..., 17, 3), got {keypoints.shape}")
    order = np.array([max(k, 0) for k in COCO18_FROM_COCO17])
    out = keypoints[..., order, :].copy()
    left, right = keypoints[..., L_SHOULDER, :], keypoints[..., R_SHOULDER, :]
    flag = np.minimum(left[..., 2], right[..., 2])
    neck = np.concatenate([(left[..., :2] + right[..., :2]) / 2, flag[..., None]], axis=-1)
    out[..., 1, :] = np.where(flag[..., None] > 0, neck, 0.0)
    return out


# --- the pose model -----------------------------------------------------------------

# Body proportions as fractions of the standing height (head top to heel).
_HEAD_RADIUS = 0.066
_NECK = 0.115          # shoulder center to head center
_TORSO = 0.29          # hip center to shoulder center
_SHOULDER_WIDTH = 0.21
_HIP_WIDTH = 0.12
_UPPER_ARM, _FOREARM = 0.17, 0.145
_THIGH, _SHIN = 0.245, 0.235
# Segment widths (proximal, distal), same units.
_UPPER_ARM_W, _FOREARM_W = (0.062, 0.05), (0.05, 0.038)
_THIGH_W, _SHIN_W = (0.1, 0.068), (0.068, 0.046)
# Face points on the head sphere: azimuth, elevation (radians), radius (head radii) and
# the depth toward the camera (head radii) above which the point is drawn and labelled.
# +azimuth is the person's left, which faces the image's right. An ear stays visible a
# little past the profile (it sticks out of the head's outline), an eye does not.
_FACE = {NOSE: (0.0, -0.12, 0.92, -1.0), L_EYE: (0.42, 0.2, 0.9, 0.1),
         R_EYE: (-0.42, 0.2, 0.9, 0.1), L_EAR: (1.5, 0.05, 1.0, -0.3),
         R_EAR: (-1.5, 0.05, 1.0, -0.3)}


@dataclass(frozen=True)
class _Figure:
    """A posed figure in image pixels: keypoints (17, 2), what is drawn, and colours."""

    keypoints: np.ndarray
    hidden: np.ndarray          # (17,) bool: face points turned behind the head
    head_center: np.ndarray
    head_radius: float
    yaw: float
    roll: float
    hands: tuple[np.ndarray, np.ndarray]   # hand centers, left and right
    feet: tuple[np.ndarray, np.ndarray]    # toe tips, left and right
    widths: dict[str, tuple[float, float]]
    colors: dict[str, tuple[int, int, int]]
    height: float

    def translated(self, offset: np.ndarray) -> "_Figure":
        return _Figure(self.keypoints + offset, self.hidden, self.head_center + offset,
                       self.head_radius, self.yaw, self.roll,
                       (self.hands[0] + offset, self.hands[1] + offset),
                       (self.feet[0] + offset, self.feet[1] + offset),
                       self.widths, self.colors, self.height)

    def extent(self) -> tuple[np.ndarray, np.ndarray]:
        """Rough (min xy, max xy) of everything drawn, for placement."""
        points = np.vstack([self.keypoints, self.head_center[None] - self.head_radius * 1.1,
                            self.head_center[None] + self.head_radius * 1.1,
                            *[p[None] for p in self.hands + self.feet]])
        return points.min(axis=0), points.max(axis=0)


def _direction(angle: float) -> np.ndarray:
    """Unit vector; angle 0 points down the image, positive angles turn toward +x."""
    return np.array([math.sin(angle), math.cos(angle)])


def _in_frame(angle_out: float, side: int, frame: float) -> np.ndarray:
    """Direction of a limb at `angle_out` radians away from straight down, outward on
    `side` (+1 person's left = image right, -1 person's right), in a body frame rotated
    by `frame`."""
    return _direction(frame + side * angle_out)


def _bgr(hue_deg: float, saturation: float, value: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb((hue_deg % 360.0) / 360.0, saturation, value)
    return int(round(b * 255)), int(round(g * 255)), int(round(r * 255))


_SKIN = ((60, 80, 120), (90, 125, 175), (120, 160, 210), (150, 190, 235), (45, 60, 85),
         (110, 150, 200))
_HAIR = ((20, 20, 25), (30, 45, 70), (40, 80, 130), (120, 170, 200), (150, 150, 150), (20, 30, 90))


def _colors(rng: np.random.Generator) -> dict[str, tuple[int, int, int]]:
    """Left limbs warm, right limbs cool, torso dull: the left/right cue."""
    def warm() -> tuple[int, int, int]:
        return _bgr(rng.uniform(-40.0, 55.0), rng.uniform(0.55, 1.0), rng.uniform(0.55, 1.0))

    def cool() -> tuple[int, int, int]:
        return _bgr(rng.uniform(105.0, 250.0), rng.uniform(0.55, 1.0), rng.uniform(0.45, 1.0))

    sleeve_left, leg_left, sleeve_right, leg_right = warm(), warm(), cool(), cool()
    torso = _bgr(rng.uniform(0, 360), rng.uniform(0.0, 0.35), rng.uniform(0.2, 0.95))
    skin = _SKIN[rng.integers(len(_SKIN))]
    skin = tuple(int(np.clip(c + rng.integers(-12, 13), 0, 255)) for c in skin)
    shoes = _bgr(rng.uniform(0, 360), rng.uniform(0.0, 0.4), rng.uniform(0.05, 0.35))
    return {"sleeve_left": sleeve_left, "sleeve_right": sleeve_right, "leg_left": leg_left,
            "leg_right": leg_right, "torso": torso, "skin": skin, "shoes": shoes,
            "hair": _HAIR[rng.integers(len(_HAIR))]}


def _arm_angles(rng: np.random.Generator) -> tuple[float, float]:
    """(upper arm angle from straight down, outward; elbow bend) in degrees."""
    mode = rng.random()
    if mode < 0.55:
        upper, bend = rng.uniform(-30.0, 45.0), rng.uniform(0.0, 110.0)
    elif mode < 0.85:
        upper, bend = rng.uniform(40.0, 120.0), rng.uniform(0.0, 150.0)
    else:
        upper, bend = rng.uniform(110.0, 175.0), rng.uniform(0.0, 70.0)
    return upper, bend


def _leg_angles(rng: np.random.Generator) -> tuple[float, float]:
    """(thigh angle from straight down, outward; knee bend) in degrees. The shin turns
    back toward the body's midline by the bend, at most 35 degrees past vertical."""
    mode = rng.random()
    if mode < 0.7:
        thigh = rng.uniform(-12.0, 25.0)
    elif mode < 0.9:
        thigh = rng.uniform(15.0, 50.0)
    else:
        thigh = rng.uniform(40.0, 95.0)
    bend = rng.uniform(0.0, max(0.0, min(100.0, thigh + 35.0))) if rng.random() < 0.6 else 0.0
    return thigh, bend


def _foreshortening(rng: np.random.Generator) -> float:
    return 1.0 if rng.random() < 0.6 else float(rng.uniform(0.55, 1.0))


def _sample_figure(rng: np.random.Generator, height: float) -> _Figure:
    """A random figure of standing `height` pixels with its pelvis at the origin."""
    def jitter() -> float:
        return float(rng.uniform(0.92, 1.08))

    build = float(rng.uniform(0.8, 1.25))
    roll = math.radians(float(np.clip(rng.normal(0.0, 5.0), -15.0, 15.0)))
    pelvis_frame = roll
    torso_frame = roll + math.radians(float(np.clip(rng.normal(0.0, 7.0), -20.0, 20.0)))
    body_yaw = rng.uniform(-0.75, 0.75)
    width_scale = math.cos(body_yaw)

    def lateral(frame: float) -> np.ndarray:    # toward the person's left (image right)
        return np.array([math.cos(frame), -math.sin(frame)])

    up_torso = -_direction(torso_frame)
    keypoints = np.zeros((17, 2))
    hip_half = 0.5 * _HIP_WIDTH * height * jitter() * width_scale
    keypoints[L_HIP] = lateral(pelvis_frame) * hip_half
    keypoints[R_HIP] = -keypoints[L_HIP]
    shoulder_center = up_torso * _TORSO * height * jitter() * float(rng.uniform(0.85, 1.0))
    shoulder_half = 0.5 * _SHOULDER_WIDTH * height * jitter() * (0.35 + 0.65 * width_scale)
    keypoints[L_SHOULDER] = shoulder_center + lateral(torso_frame) * shoulder_half
    keypoints[R_SHOULDER] = shoulder_center - lateral(torso_frame) * shoulder_half

    hands, feet = [], []
    for side, shoulder, elbow, wrist in ((1, L_SHOULDER, L_ELBOW, L_WRIST),
                                         (-1, R_SHOULDER, R_ELBOW, R_WRIST)):
        upper, bend = (math.radians(a) for a in _arm_angles(rng))
        d1 = _in_frame(upper, side, torso_frame)
        d2 = _in_frame(upper + bend, side, torso_frame)
        upper_length = _UPPER_ARM * height * jitter() * _foreshortening(rng)
        keypoints[elbow] = keypoints[shoulder] + d1 * upper_length
        forearm_length = _FOREARM * height * jitter() * _foreshortening(rng)
        keypoints[wrist] = keypoints[elbow] + d2 * forearm_length
        hands.append(keypoints[wrist] + d2 * 0.035 * height)
    for side, hip, knee, ankle in ((1, L_HIP, L_KNEE, L_ANKLE), (-1, R_HIP, R_KNEE, R_ANKLE)):
        thigh, bend = (math.radians(a) for a in _leg_angles(rng))
        d1 = _in_frame(thigh, side, pelvis_frame)
        d2 = _in_frame(thigh - bend, side, pelvis_frame)
        keypoints[knee] = keypoints[hip] + d1 * _THIGH * height * jitter() * _foreshortening(rng)
        keypoints[ankle] = keypoints[knee] + d2 * _SHIN * height * jitter() * _foreshortening(rng)
        # The foot points toward the camera and outward: down and to its side in the image.
        foot_angle = math.radians(rng.uniform(30.0, 80.0)) + 0.3 * (thigh - bend)
        feet.append(keypoints[ankle] + _in_frame(foot_angle, side, pelvis_frame) * 0.065 * height)

    head_roll = torso_frame + math.radians(float(np.clip(rng.normal(0.0, 8.0), -25.0, 25.0)))
    head_radius = _HEAD_RADIUS * height * jitter()
    head_center = shoulder_center - _direction(head_roll) * (_NECK * height * jitter())
    yaw = float(np.clip(body_yaw + rng.normal(0.0, 0.45), -1.25, 1.25))
    pitch = float(rng.normal(0.0, 0.12))
    hidden = np.zeros(17, dtype=bool)
    for index, (azimuth, elevation, radius, depth_limit) in _FACE.items():
        x, y, depth = _sphere_point(azimuth, elevation + pitch, radius, yaw)
        keypoints[index] = head_center + _rotate(np.array([x, y]) * head_radius, head_roll)
        hidden[index] = depth < depth_limit

    widths = {name: (w[0] * height * build, w[1] * height * build)
              for name, w in (("upper_arm", _UPPER_ARM_W), ("forearm", _FOREARM_W),
                              ("thigh", _THIGH_W), ("shin", _SHIN_W))}
    return _Figure(keypoints, hidden, head_center, head_radius, yaw, head_roll,
                   (hands[0], hands[1]), (feet[0], feet[1]), widths, _colors(rng), height)


def _sphere_point(azimuth: float, elevation: float, radius: float,
                  yaw: float) -> tuple[float, float, float]:
    """(x, y, depth toward the camera) in head radii of a point on the head sphere."""
    x = radius * math.cos(elevation) * math.sin(azimuth + yaw)
    y = -radius * math.sin(elevation)
    depth = radius * math.cos(elevation) * math.cos(azimuth + yaw)
    return x, y, depth


def _rotate(vector: np.ndarray, angle: float) -> np.ndarray:
    """Rotate an image-space vector so that 'down' turns by `angle` toward +x."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([c * vector[0] + s * vector[1], -s * vector[0] + c * vector[1]])


# --- drawing ------------------------------------------------------------------------

_SHIFT = 4                      # OpenCV sub-pixel bits
_ONE = 1 << _SHIFT


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points) * _ONE).astype(np.int32)


class _Canvas:
    """The image and one figure's silhouette mask, drawn together."""

    def __init__(self, image: np.ndarray, mask: np.ndarray, outline: int) -> None:
        self.image, self.mask, self.outline = image, mask, outline

    def capsule(self, p0: np.ndarray, p1: np.ndarray, w0: float, w1: float,
                color: tuple[int, int, int], dark: tuple[int, int, int]) -> None:
        """A tapered segment with round ends, a dark outline and `color` fill."""
        # The mask and the outline take the full width, the fill sits inside the outline.
        inset = self.outline
        for target, value, shrink, line in ((self.mask, 255, 0, cv2.LINE_8),
                                            (self.image, dark, 0, cv2.LINE_AA),
                                            (self.image, color, inset, cv2.LINE_AA)):
            _capsule(target, p0, p1, 0.5 * w0 - shrink, 0.5 * w1 - shrink, value, line)

    def polygon(self, points: np.ndarray, color: tuple[int, int, int],
                dark: tuple[int, int, int]) -> None:
        fixed = _fixed(points)[None]
        cv2.fillPoly(self.mask, fixed, 255, cv2.LINE_8, _SHIFT)
        cv2.fillPoly(self.image, fixed, color, cv2.LINE_AA, _SHIFT)
        cv2.polylines(self.image, fixed, True, dark, self.outline, cv2.LINE_AA, _SHIFT)

    def ellipse(self, center: np.ndarray, axes: tuple[float, float], angle_deg: float,
                color: tuple[int, int, int], dark: tuple[int, int, int] | None,
                in_mask: bool = True) -> None:
        c = tuple(int(v) for v in _fixed(center))
        a = tuple(max(1, int(v)) for v in _fixed(axes))
        if in_mask:
            cv2.ellipse(self.mask, c, a, angle_deg, 0, 360, 255, -1, cv2.LINE_8, _SHIFT)
        cv2.ellipse(self.image, c, a, angle_deg, 0, 360, color, -1, cv2.LINE_AA, _SHIFT)
        if dark is not None:
            cv2.ellipse(self.image, c, a, angle_deg, 0, 360, dark, self.outline, cv2.LINE_AA,
                        _SHIFT)


def _capsule(target: np.ndarray, p0: np.ndarray, p1: np.ndarray, r0: float, r1: float,
             value: Any, line: int) -> None:
    r0, r1 = max(r0, 0.5), max(r1, 0.5)
    axis = p1 - p0
    length = float(np.hypot(*axis))
    normal = np.array([-axis[1], axis[0]]) / length if length > 1e-6 else np.array([1.0, 0.0])
    quad = np.array([p0 + normal * r0, p1 + normal * r1, p1 - normal * r1, p0 - normal * r0])
    cv2.fillPoly(target, _fixed(quad)[None], value, line, _SHIFT)
    for center, radius in ((p0, r0), (p1, r1)):
        cv2.circle(target, tuple(int(v) for v in _fixed(center)), int(round(radius * _ONE)),
                   value, -1, line, _SHIFT)


def _darker(color: tuple[int, int, int], factor: float = 0.45) -> tuple[int, int, int]:
    return tuple(int(c * factor) for c in color)  # type: ignore[return-value]


def _draw_figure(canvas: _Canvas, figure: _Figure) -> None:
    """Back to front: legs and feet, torso, neck, head and face, arms and hands."""
    k, c, w = figure.keypoints, figure.colors, figure.widths
    for side, hip, knee, ankle, foot in (("left", L_HIP, L_KNEE, L_ANKLE, figure.feet[0]),
                                         ("right", R_HIP, R_KNEE, R_ANKLE, figure.feet[1])):
        leg = c[f"leg_{side}"]
        canvas.capsule(k[ankle], foot, w["shin"][1] * 0.9, w["shin"][1] * 0.7, c["shoes"],
                       _darker(c["shoes"], 0.3))
        canvas.capsule(k[knee], k[ankle], w["shin"][0], w["shin"][1], leg, _darker(leg))
        canvas.capsule(k[hip], k[knee], w["thigh"][0], w["thigh"][1], leg, _darker(leg))

    # Torso: a trapezoid from just outside the shoulders to just outside the hips.
    shoulder_axis = k[L_SHOULDER] - k[R_SHOULDER]
    hip_axis = k[L_HIP] - k[R_HIP]
    shoulder_unit = shoulder_axis / max(np.hypot(*shoulder_axis), 1e-6)
    hip_unit = hip_axis / max(np.hypot(*hip_axis), 1e-6)
    up = (k[L_SHOULDER] + k[R_SHOULDER] - k[L_HIP] - k[R_HIP]) / 2
    up_unit = up / max(np.hypot(*up), 1e-6)
    arm_w, thigh_w = w["upper_arm"][0], w["thigh"][0]
    torso = np.array([
        k[L_SHOULDER] + shoulder_unit * 0.35 * arm_w + up_unit * 0.45 * arm_w,
        k[L_HIP] + hip_unit * 0.45 * thigh_w - up_unit * 0.25 * thigh_w,
        k[R_HIP] - hip_unit * 0.45 * thigh_w - up_unit * 0.25 * thigh_w,
        k[R_SHOULDER] - shoulder_unit * 0.35 * arm_w + up_unit * 0.45 * arm_w,
    ])
    canvas.polygon(torso, c["torso"], _darker(c["torso"]))
    neck_base = (k[L_SHOULDER] + k[R_SHOULDER]) / 2 + up_unit * 0.3 * arm_w
    canvas.capsule(neck_base, figure.head_center, figure.head_radius * 0.7,
                   figure.head_radius * 0.6, c["skin"], _darker(c["skin"], 0.6))
    _draw_head(canvas, figure)

    for side, shoulder, elbow, wrist, hand in (
            ("left", L_SHOULDER, L_ELBOW, L_WRIST, figure.hands[0]),
            ("right", R_SHOULDER, R_ELBOW, R_WRIST, figure.hands[1])):
        sleeve = c[f"sleeve_{side}"]
        canvas.capsule(k[wrist], hand, w["forearm"][1] * 0.95, w["forearm"][1] * 1.05, c["skin"],
                       _darker(c["skin"], 0.6))
        canvas.capsule(k[elbow], k[wrist], w["forearm"][0], w["forearm"][1], sleeve,
                       _darker(sleeve))
        canvas.capsule(k[shoulder], k[elbow], w["upper_arm"][0], w["upper_arm"][1], sleeve,
                       _darker(sleeve))


def _draw_head(canvas: _Canvas, figure: _Figure) -> None:
    """Hair, face, ears, and (above 4 px head radius) eyes, nose and mouth."""
    k, c, r = figure.keypoints, figure.colors, figure.head_radius
    center, yaw, roll = figure.head_center, figure.yaw, figure.roll
    angle = -math.degrees(roll)
    # Hair all round, the face toward the camera (its offset shows where the head
    # turns), then the visible ears on top so that they read at any hair colour.
    canvas.ellipse(center, (r, r * 1.08), angle, c["hair"], _darker(c["hair"], 0.5))
    face_center = center + _rotate(np.array([0.32 * r * math.sin(yaw), 0.16 * r]), roll)
    canvas.ellipse(face_center, (0.8 * r * (0.55 + 0.45 * math.cos(yaw)), 0.86 * r), angle,
                   c["skin"], None, in_mask=False)
    for ear in (L_EAR, R_EAR):
        if not figure.hidden[ear]:
            canvas.ellipse(k[ear], (0.17 * r, 0.27 * r), angle, c["skin"], _darker(c["skin"], 0.6))
    if r >= 4.0:
        eye_r = max(0.5, 0.11 * r)
        for eye in (L_EYE, R_EYE):
            if not figure.hidden[eye]:
                canvas.ellipse(k[eye], (eye_r * 1.4, eye_r), angle, (245, 245, 245), None, False)
                canvas.ellipse(k[eye], (eye_r * 0.8, eye_r * 0.8), angle, (40, 25, 20), None, False)
        canvas.ellipse(k[NOSE], (0.12 * r, 0.16 * r), angle, _darker(c["skin"], 0.7), None, False)
        mouth = k[NOSE] + _rotate(np.array([0.0, 0.3 * r]), roll)
        canvas.ellipse(mouth, (0.22 * r * (0.5 + 0.5 * math.cos(yaw)), 0.06 * r), angle,
                       (60, 50, 140), None, False)


def _random_color(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, size=3))  # type: ignore[return-value]


def _background(rng: np.random.Generator, width: int, height: int,
                clutter: tuple[int, int]) -> np.ndarray:
    """A gradient, low-frequency blotches, an optional texture and random shapes."""
    xx = np.arange(width, dtype=np.float32)[None, :]
    yy = np.arange(height, dtype=np.float32)[:, None]
    angle = rng.uniform(0, 2 * math.pi)
    ramp = xx * np.float32(math.cos(angle)) + yy * np.float32(math.sin(angle))
    ramp = (ramp - ramp.min()) / np.float32(max(float(np.ptp(ramp)), 1.0))
    a, b = (rng.uniform(20, 235, size=3).astype(np.float32) for _ in range(2))
    image = a + (b - a) * ramp[..., None]
    blotches = (int(rng.integers(3, 9)), int(rng.integers(3, 9)), 3)
    coarse = rng.normal(0.0, rng.uniform(8.0, 35.0), size=blotches)
    image += cv2.resize(coarse.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    texture = rng.integers(4)
    if texture == 1:        # stripes
        period = rng.uniform(4.0, 30.0)
        phase = rng.uniform(0, 2 * math.pi)
        theta = rng.uniform(0, math.pi)
        k = 2 * math.pi / period
        stripes = np.sin(xx * np.float32(k * math.cos(theta)) + yy * np.float32(k * math.sin(theta))
                         + np.float32(phase))
        image += (stripes * np.float32(rng.uniform(5.0, 25.0)))[..., None]
    elif texture == 2:      # fine grain
        grain = rng.normal(0.0, rng.uniform(4.0, 16.0), size=(height // 2 + 1, width // 2 + 1))
        image += cv2.resize(grain.astype(np.float32), (width, height),
                            interpolation=cv2.INTER_LINEAR)[..., None]
    elif texture == 3:      # checker / tiles
        tile = int(rng.integers(6, 40))
        checker = (((xx // tile) + (yy // tile)) % 2) * 2 - 1
        image += (checker * np.float32(rng.uniform(4.0, 20.0)))[..., None]
    image = np.clip(image, 0, 255).astype(np.uint8)
    scale = max(width, height)
    for _ in range(int(rng.integers(clutter[0], clutter[1] + 1))):
        color = _random_color(rng)
        kind = rng.integers(5)
        p = rng.uniform([-0.1 * width, -0.1 * height], [1.1 * width, 1.1 * height])
        size = scale * rng.uniform(0.02, 0.3)
        thickness = -1 if rng.random() < 0.6 else int(rng.integers(1, 4))     # filled or not
        if kind == 0:
            q = p + rng.uniform(-size, size, 2)
            cv2.rectangle(image, _ipt(p), _ipt(q), color, thickness)
        elif kind == 1:
            cv2.circle(image, _ipt(p), int(size / 2), color, thickness, cv2.LINE_AA)
        elif kind == 2:
            q = p + rng.uniform(-2 * size, 2 * size, 2)
            cv2.line(image, _ipt(p), _ipt(q), color, int(rng.integers(1, 6)), cv2.LINE_AA)
        elif kind == 3:
            points = p + rng.uniform(-size, size, size=(int(rng.integers(3, 7)), 2))
            cv2.fillPoly(image, [points.astype(np.int32)], color, cv2.LINE_AA)
        else:
            cv2.ellipse(image, _ipt(p), (int(size / 2) + 1, int(size / 4) + 1),
                        float(rng.uniform(0, 180)), 0, 360, color, -1, cv2.LINE_AA)
    return image


def _ipt(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]))), int(round(float(p[1])))


def _draw_occluder(rng: np.random.Generator, image: np.ndarray, owner: np.ndarray,
                   box: np.ndarray) -> None:
    """A random object over part of `box` (x0, y0, x1, y1); its pixels get owner -1."""
    x0, y0, x1, y1 = box
    bw, bh = max(x1 - x0, 4.0), max(y1 - y0, 4.0)
    center = np.array([rng.uniform(x0, x1), rng.uniform(y0 + 0.2 * bh, y1)])
    half = np.array([bw * rng.uniform(0.15, 0.5), bh * rng.uniform(0.08, 0.25)])
    if rng.random() < 0.4:
        half = half[::-1] * np.array([0.6, 1.6])   # a tall post instead of a low box
    mask = np.zeros(owner.shape, np.uint8)
    kind = rng.integers(3)
    if kind == 0:
        angle = rng.uniform(-0.3, 0.3)
        c, s = math.cos(angle), math.sin(angle)
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
        corners = corners @ np.array([[c, s], [-s, c]]) + center
        cv2.fillPoly(mask, _fixed(corners)[None], 255, cv2.LINE_8, _SHIFT)
    elif kind == 1:
        cv2.ellipse(mask, _ipt(center), (max(1, int(half[0])), max(1, int(half[1]))),
                    float(rng.uniform(-20, 20)), 0, 360, 255, -1, cv2.LINE_8)
    else:
        angles = np.sort(rng.uniform(0, 2 * math.pi, int(rng.integers(5, 9))))
        radii = rng.uniform(0.6, 1.0, angles.size)[:, None]
        points = center + radii * np.stack([np.cos(angles), np.sin(angles)], 1) * half
        cv2.fillPoly(mask, _fixed(points)[None], 255, cv2.LINE_8, _SHIFT)
    covered = mask > 0
    color = np.array(_random_color(rng), np.float32)
    if rng.random() < 0.5:      # a shaded object rather than a flat one
        yy = np.linspace(0.7, 1.2, owner.shape[0], dtype=np.float32)[:, None, None]
        fill = np.clip(color[None, None] * yy, 0, 255).astype(np.uint8)
        image[covered] = np.broadcast_to(fill, image.shape)[covered]
    else:
        image[covered] = color.astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(image, contours, -1, _darker(tuple(int(v) for v in color)), 1, cv2.LINE_AA)
    owner[covered] = -1


def _photometric(rng: np.random.Generator, image: np.ndarray,
                 config: SyntheticConfig) -> np.ndarray:
    """Lighting (gain, offset, colour cast, illumination gradient), blur and noise."""
    height, width = image.shape[:2]
    out = image.astype(np.float32)
    if config.lighting:
        gain = (rng.uniform(0.65, 1.3) * rng.uniform(0.9, 1.1, size=3)).astype(np.float32)
        out = out * gain + np.float32(rng.uniform(-30, 30))
        if rng.random() < 0.6:
            angle = rng.uniform(0, 2 * math.pi)
            xs = (np.arange(width, dtype=np.float32) - width / 2) * math.cos(angle)
            ys = (np.arange(height, dtype=np.float32) - height / 2) * math.sin(angle)
            ramp = (ys[:, None] + xs[None, :]) / max(width, height)
            out *= (1.0 + np.float32(rng.uniform(0.2, 0.7)) * ramp)[..., None]
    if rng.random() < config.blur:
        if rng.random() < 0.7:
            out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.6))
        else:
            size = int(rng.integers(3, 8))
            kernel = np.zeros((size, size), np.float32)
            kernel[size // 2, :] = 1.0 / size
            middle = (size - 1) / 2
            rotation = cv2.getRotationMatrix2D((middle, middle), rng.uniform(0, 180), 1.0)
            kernel = cv2.warpAffine(kernel, rotation, (size, size))
            out = cv2.filter2D(out, -1, kernel / max(float(kernel.sum()), 1e-6))
    if config.noise > 0:
        sigma = np.float32(rng.uniform(0.0, config.noise))
        out += rng.standard_normal(size=out.shape, dtype=np.float32) * sigma
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


# --- one image ----------------------------------------------------------------------


def _image_rng(config: SyntheticConfig, index: int) -> np.random.Generator:
    """Image `index`'s generator: depends on (seed, index) only, never on the count."""
    return np.random.default_rng([config.seed, index])


def _place(rng: np.random.Generator, figure: _Figure, config: SyntheticConfig,
           centers: list[np.ndarray]) -> _Figure:
    """Move a figure into the image: inside it, across a border, or beside another."""
    width, height = config.width, config.height
    low, high = figure.extent()
    size = high - low
    if centers and rng.random() < 0.35:
        anchor = centers[int(rng.integers(len(centers)))]
        target = anchor + np.array([rng.choice([-1, 1]) * rng.uniform(0.2, 0.8) * size[0],
                                    rng.uniform(-0.2, 0.2) * size[1]])
    elif rng.random() < config.truncation:
        # Over one border by 15-50 % of the figure's size.
        target = rng.uniform([0.0, 0.0], [width, height])
        side = int(rng.integers(4))
        out = rng.uniform(0.15, 0.5)
        axis = side % 2
        limit = (width, height)[axis]
        target[axis] = (0.5 - out) * size[axis] if side < 2 else limit + (out - 0.5) * size[axis]
    else:
        margin_low = np.minimum(size / 2, [width / 2, height / 2])
        target = rng.uniform(margin_low, np.array([width, height]) - margin_low)
    # The figure's center stays in the image, so some of it is always drawn.
    target = np.clip(target, 0.0, [width - 1.0, height - 1.0])
    return figure.translated(target - (low + high) / 2)


def _annotate(figure: _Figure, mask: np.ndarray, owner: np.ndarray, index: int,
              config: SyntheticConfig) -> PersonAnnotation | None:
    """COCO-17 rows, box and area for figure `index` once everything is drawn."""
    width, height = config.width, config.height
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    points = figure.keypoints
    inside = ((points[:, 0] >= 0) & (points[:, 0] <= width - 1)
              & (points[:, 1] >= 0) & (points[:, 1] <= height - 1))
    labelled = inside & ~figure.hidden
    columns = np.clip(np.round(points[:, 0]).astype(int), 0, width - 1)
    rows = np.clip(np.round(points[:, 1]).astype(int), 0, height - 1)
    seen = owner[rows, columns] == index
    flags = np.where(labelled, np.where(seen, 2, 1), 0)
    keypoints = np.zeros((17, 3))
    keypoints[labelled, :2] = points[labelled]
    keypoints[:, 2] = flags
    x0, y0 = float(xs.min()), float(ys.min())
    x1, y1 = float(xs.max() + 1), float(ys.max() + 1)
    if labelled.any():      # keypoints sit inside the silhouette; this is a safety net
        first, last = points[labelled].min(axis=0), points[labelled].max(axis=0)
        x0, y0 = min(x0, float(first[0])), min(y0, float(first[1]))
        x1, y1 = max(x1, float(last[0])), max(y1, float(last[1]))
    x0, y0, x1, y1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height))
    area = float(xs.size)
    low, high = figure.extent()
    truncated = bool((~inside).any() or low[0] < 0 or low[1] < 0
                     or high[0] > width - 1 or high[1] > height - 1)
    if np.count_nonzero(flags == 2) < config.min_visible_keypoints or area < config.min_area:
        keypoints[:] = 0.0      # ignored by COCOeval and skipped by training loaders
    return PersonAnnotation(keypoints, (x0, y0, x1 - x0, y1 - y0), area, truncated)


def render_image(config: SyntheticConfig, index: int) -> tuple[np.ndarray, list[PersonAnnotation]]:
    """Image `index` of the dataset `config` describes: (BGR uint8 (H, W, 3), N people).

    The same (config, index) always gives the same image and annotations.
    """
    if not isinstance(index, (int, np.integer)) or index < 0:
        raise InputError(f"image index must be a non-negative integer, got {index!r}")
    rng = _image_rng(config, int(index))
    width, height = config.width, config.height
    image = _background(rng, width, height, config.clutter)
    count = int(rng.integers(config.people[0], config.people[1] + 1))
    # Half log-uniform, half uniform: many mid-sized people, some small and some large.
    low = config.min_person_height
    heights = np.where(rng.random(count) < 0.5,
                       np.exp(rng.uniform(math.log(low), math.log(height), count)),
                       rng.uniform(low, height, count))
    figures: list[_Figure] = []
    for person_height in np.sort(heights):       # far (small) figures first
        figure = _sample_figure(rng, float(person_height))
        figures.append(_place(rng, figure, config, [(f.extent()[0] + f.extent()[1]) / 2
                                                    for f in figures]))
    owner = np.full((height, width), -2, np.int8)
    masks = []
    for number, figure in enumerate(figures):
        mask = np.zeros((height, width), np.uint8)
        outline = max(1, int(round(figure.height / 110)))
        _draw_figure(_Canvas(image, mask, outline), figure)
        owner[mask > 0] = number
        masks.append(mask)
    for _ in range(int(rng.integers(config.occluders[0], config.occluders[1] + 1))):
        target = figures[int(rng.integers(len(figures)))]
        low, high = target.extent()
        _draw_occluder(rng, image, owner, np.concatenate([low, high]))
    image = _photometric(rng, image, config)
    people = []
    for number, (figure, mask) in enumerate(zip(figures, masks)):
        annotation = _annotate(figure, mask, owner, number, config)
        if annotation is not None:
            people.append(annotation)
    return image, people


# --- the dataset --------------------------------------------------------------------


def _file_name(index: int, image_format: str) -> str:
    return f"{index:06d}.{image_format}"


def _render_task(index: int, config: SyntheticConfig, image_dir: str,
                 image_format: str) -> list[PersonAnnotation]:
    image, people = render_image(config, index)
    if image_format == "jpg":
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    else:
        ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise InputError(f"OpenCV could not encode image {index} as {image_format}")
    write_bytes_atomic(Path(image_dir) / _file_name(index, image_format), encoded.tobytes())
    return people


def _worker_init() -> None:
    cv2.setNumThreads(1)        # one process per core; OpenCV's own threads would oversubscribe


def _coco_row(person: PersonAnnotation, layout: str) -> tuple[list[float], int]:
    keypoints = person.keypoints if layout == "coco17" else to_coco18(person.keypoints)
    flat = [round(float(v), 2) for v in keypoints.reshape(-1)]
    return flat, int(np.count_nonzero(keypoints[:, 2] > 0))


def coco_category(layout: str = "coco17") -> dict[str, Any]:
    """The COCO `categories` entry: person, keypoint names and the 1-based skeleton."""
    keypoint_set = _layout(layout)
    return {"id": 1, "name": "person", "supercategory": "person",
            "keypoints": list(keypoint_set.names),
            "skeleton": [[i + 1, j + 1] for i, j in keypoint_set.skeleton]}


def _layout(layout: str) -> KeypointSet:
    if layout not in LAYOUTS:
        raise InputError(f"unknown keypoint layout {layout!r}; expected one of "
                         f"{', '.join(LAYOUTS)}")
    return LAYOUTS[layout]


def write_coco_dataset(out_dir: str | Path, count: int, config: SyntheticConfig | None = None, *,
                       layout: Literal["coco17", "coco18"] = "coco17",
                       image_format: Literal["jpg", "png"] = "jpg",
                       workers: int | None = None, progress: bool = True) -> Path:
    """Write images 0 .. count-1 and their COCO keypoints file; return the file's path.

    out_dir/images/000000.jpg … and out_dir/person_keypoints.json (written last,
    atomically, so it never refers to images that are not there). Image ids are
    index + 1, annotation ids count from 1 in image order. `workers` processes render
    in parallel (default: os.cpu_count()); the output does not depend on it.
    JPEG is written at quality 95 (about 4x smaller than PNG on these textures).
    Images already in out_dir/images beyond `count` are left alone.
    """
    config = SyntheticConfig() if config is None else config
    if not isinstance(config, SyntheticConfig):
        raise InputError(f"config must be a SyntheticConfig, got {type(config).__name__}")
    if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 1:
        raise InputError(f"count must be a positive number of images, got {count!r}")
    keypoint_set = _layout(layout)
    if image_format not in IMAGE_FORMATS:
        raise InputError(f"unknown image format {image_format!r}; expected one of "
                         f"{', '.join(IMAGE_FORMATS)}")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a positive number of processes, got {workers!r}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output {str(out_dir)!r} exists and is not a folder")
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)

    task = functools.partial(_render_task, config=config, image_dir=str(image_dir),
                             image_format=image_format)
    started = time.perf_counter()
    results: list[list[PersonAnnotation]] = []
    bar = None
    try:
        for people in _render_all(task, count, workers):
            if bar is None:         # made once the workers are forked: tqdm starts a thread
                bar = _progress_bar(count, progress)
            results.append(people)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()

    images, annotations = [], []
    for index, people in enumerate(results):
        images.append({"id": index + 1, "file_name": _file_name(index, image_format),
                       "width": config.width, "height": config.height})
        for person in people:
            flat, labelled = _coco_row(person, layout)
            annotations.append({
                "id": len(annotations) + 1, "image_id": index + 1, "category_id": 1,
                "bbox": [round(v, 2) for v in person.bbox], "area": person.area,
                "iscrowd": 0, "keypoints": flat, "num_keypoints": labelled,
            })
    payload = {
        "info": {"description": "edgepose synthetic people", "version": "1",
                 "generator": "calib.synthetic", "layout": keypoint_set.name,
                 "config": dataclasses.asdict(config)},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [coco_category(layout)],
    }
    path = write_json_atomic(out_dir / ANNOTATION_FILE, payload)
    elapsed = time.perf_counter() - started
    log.info("wrote %d images, %d people (%d annotated) to %s in %.1f s (%.0f images/s)",
             count, len(annotations), sum(a["num_keypoints"] > 0 for a in annotations),
             out_dir, elapsed, count / max(elapsed, 1e-9))
    return path


def _render_all(task: Callable[[int], list[PersonAnnotation]], count: int,
                workers: int) -> Iterator[list[PersonAnnotation]]:
    """task(0) .. task(count - 1) in order, in `workers` processes when more than one."""
    if workers == 1 or count == 1:
        yield from map(task, range(count))
        return
    chunk = max(1, min(32, count // (workers * 8)))
    # Spawned, not forked: a caller that already ran torch or OpenCV threads (the demo
    # exports first) can deadlock a forked child on a lock held by one of those threads.
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(workers, count), initializer=_worker_init) as pool:
        yield from pool.imap(task, range(count), chunksize=chunk)


def _progress_bar(count: int, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=count, unit="img", desc="synthetic people")


# --- command line -------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m calib.synthetic",
        description="Write a synthetic COCO keypoints dataset: images of articulated people "
                    "(left limbs warm-coloured, right limbs cool) on cluttered backgrounds, "
                    "with overlap, occluders, truncation, lighting and blur, and "
                    "DIR/person_keypoints.json with boxes, areas and visibility flags. "
                    "The same seed always writes the same files.")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output folder; images go to DIR/images/, annotations to "
                             "DIR/person_keypoints.json")
    parser.add_argument("--count", type=int, required=True, metavar="N",
                        help="number of images (000000.jpg .. N-1)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="random seed; image i depends only on (seed, i) (default 0)")
    parser.add_argument("--layout", choices=list(LAYOUTS), default="coco17",
                        help="keypoint layout of the annotations: coco17 (COCO order) or "
                             "coco18 (OpenPose order with a neck) (default coco17)")
    defaults = SyntheticConfig()
    parser.add_argument("--width", type=int, default=defaults.width, metavar="W",
                        help="image width in pixels (default 320)")
    parser.add_argument("--height", type=int, default=defaults.height, metavar="H",
                        help="image height in pixels; also the tallest person (default 256)")
    parser.add_argument("--min-person-height", type=float, default=defaults.min_person_height,
                        metavar="PX", help="standing height of the smallest person in pixels "
                                           "(default 40)")
    parser.add_argument("--people", type=int, nargs=2, metavar=("MIN", "MAX"), default=[1, 4],
                        help="people per image, a range (default 1 4)")
    parser.add_argument("--format", choices=list(IMAGE_FORMATS), default="jpg",
                        help="image files: jpg (quality 95, small) or png (lossless, ~4x "
                             "larger) (default jpg)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="processes rendering in parallel (default: all CPU cores); "
                             "the output does not depend on it")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar and no summary line")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m calib.synthetic`; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(message)s")
    try:
        config = SyntheticConfig(image_size=(args.width, args.height), seed=args.seed,
                                 people=tuple(args.people),
                                 min_person_height=args.min_person_height)
        path = write_coco_dataset(args.out, args.count, config, layout=args.layout,
                                  image_format=args.format, workers=args.workers,
                                  progress=not args.quiet)
    except EdgeposeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
