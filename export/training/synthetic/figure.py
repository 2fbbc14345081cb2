"""The pose model: an articulated, coloured figure sampled in image pixels."""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from export.training.synthetic.config import (L_ANKLE, L_EAR, L_ELBOW, L_EYE, L_HIP, L_KNEE,
                                              L_SHOULDER, L_WRIST, NOSE, R_ANKLE, R_EAR, R_ELBOW,
                                              R_EYE, R_HIP, R_KNEE, R_SHOULDER, R_WRIST)


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
class Figure:
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

    def translated(self, offset: np.ndarray) -> "Figure":
        return Figure(self.keypoints + offset, self.hidden, self.head_center + offset,
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


def sample_figure(rng: np.random.Generator, height: float) -> Figure:
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
        keypoints[index] = head_center + rotate(np.array([x, y]) * head_radius, head_roll)
        hidden[index] = depth < depth_limit

    widths = {name: (w[0] * height * build, w[1] * height * build)
              for name, w in (("upper_arm", _UPPER_ARM_W), ("forearm", _FOREARM_W),
                              ("thigh", _THIGH_W), ("shin", _SHIN_W))}
    return Figure(keypoints, hidden, head_center, head_radius, yaw, head_roll,
                   (hands[0], hands[1]), (feet[0], feet[1]), widths, _colors(rng), height)


def _sphere_point(azimuth: float, elevation: float, radius: float,
                  yaw: float) -> tuple[float, float, float]:
    """(x, y, depth toward the camera) in head radii of a point on the head sphere."""
    x = radius * math.cos(elevation) * math.sin(azimuth + yaw)
    y = -radius * math.sin(elevation)
    depth = radius * math.cos(elevation) * math.cos(azimuth + yaw)
    return x, y, depth


def rotate(vector: np.ndarray, angle: float) -> np.ndarray:
    """Rotate an image-space vector so that 'down' turns by `angle` toward +x."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([c * vector[0] + s * vector[1], -s * vector[0] + c * vector[1]])


