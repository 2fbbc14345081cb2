"""The pose model: an articulated, coloured figure in image pixels, sampled at random
(`sample_figure`) or posed from a `Body` and a `Pose` (`pose_figure`, `walking_pose`)."""

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
#: Hip to ankle, a fraction of the standing height (the video mode sizes steps by it).
LEG_LENGTH = _THIGH + _SHIN
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


@dataclass(frozen=True)
class Limb:
    """One arm or leg's pose, angles in radians (see `_arm_angles`, `_leg_angles`).

    angle: the upper segment's angle from straight down, outward on the limb's side.
    bend: the elbow (added to `angle`) or knee (subtracted) bend; negative bends the
        other way, which the still-image sampler never draws.
    foreshortening: (upper, lower) segment length factors, 1 when in the image plane.
    """

    angle: float
    bend: float
    foreshortening: tuple[float, float] = (1.0, 1.0)


@dataclass(frozen=True)
class Body:
    """What stays the same while a person moves: proportions and colours.

    Each length is a factor around the mean proportion (about 0.92 to 1.08);
    `torso_length` (0.85 to 1) shortens the torso as a slight bow would.
    arms, legs: (upper, lower) segment factors, the person's left first.
    """

    build: float
    hip: float
    torso: float
    torso_length: float
    shoulder: float
    head: float
    neck: float
    arms: tuple[tuple[float, float], tuple[float, float]]
    legs: tuple[tuple[float, float], tuple[float, float]]
    colors: dict[str, tuple[int, int, int]]


@dataclass(frozen=True)
class Pose:
    """What changes while a person moves; angles in radians.

    roll: the pelvis's tilt; lean: the torso's tilt on top of it; body_yaw: the
    body's turn (+ toward the image's right), which narrows the shoulders and hips.
    arms, legs: the person's left first. feet: each foot's angle from straight down,
    outward, to which 0.3 of its shin's angle is added. head_tilt: the head's roll on
    top of the torso's; yaw, pitch: the head's turn and nod.
    """

    roll: float
    lean: float
    body_yaw: float
    arms: tuple[Limb, Limb]
    legs: tuple[Limb, Limb]
    feet: tuple[float, float]
    head_tilt: float
    yaw: float
    pitch: float


def sample_body(rng: np.random.Generator) -> Body:
    """A random person's proportions and colours (the video mode samples one per track)."""
    def jitter() -> float:
        return float(rng.uniform(0.92, 1.08))

    build = float(rng.uniform(0.8, 1.25))
    hip, torso, torso_length = jitter(), jitter(), float(rng.uniform(0.85, 1.0))
    shoulder, head, neck = jitter(), jitter(), jitter()
    arms = ((jitter(), jitter()), (jitter(), jitter()))
    legs = ((jitter(), jitter()), (jitter(), jitter()))
    return Body(build, hip, torso, torso_length, shoulder, head, neck, arms, legs, _colors(rng))


def sample_figure(rng: np.random.Generator, height: float) -> Figure:
    """A random figure of standing `height` pixels with its pelvis at the origin."""
    # The draws keep the order they had before Body and Pose existed, so that every
    # seed still gives the images it always gave.
    def jitter() -> float:
        return float(rng.uniform(0.92, 1.08))

    build = float(rng.uniform(0.8, 1.25))
    roll = math.radians(float(np.clip(rng.normal(0.0, 5.0), -15.0, 15.0)))
    lean = math.radians(float(np.clip(rng.normal(0.0, 7.0), -20.0, 20.0)))
    body_yaw = rng.uniform(-0.75, 0.75)
    hip, torso, torso_length, shoulder = jitter(), jitter(), float(rng.uniform(0.85, 1.0)), jitter()
    arms, arm_lengths = [], []
    for _ in range(2):
        upper, bend = (math.radians(a) for a in _arm_angles(rng))
        first, first_short = jitter(), _foreshortening(rng)
        second, second_short = jitter(), _foreshortening(rng)
        arms.append(Limb(upper, bend, (first_short, second_short)))
        arm_lengths.append((first, second))
    legs, leg_lengths, feet = [], [], []
    for _ in range(2):
        thigh, bend = (math.radians(a) for a in _leg_angles(rng))
        first, first_short = jitter(), _foreshortening(rng)
        second, second_short = jitter(), _foreshortening(rng)
        legs.append(Limb(thigh, bend, (first_short, second_short)))
        leg_lengths.append((first, second))
        feet.append(math.radians(rng.uniform(30.0, 80.0)))
    head_tilt = math.radians(float(np.clip(rng.normal(0.0, 8.0), -25.0, 25.0)))
    head, neck = jitter(), jitter()
    yaw = float(np.clip(body_yaw + rng.normal(0.0, 0.45), -1.25, 1.25))
    pitch = float(rng.normal(0.0, 0.12))
    body = Body(build, hip, torso, torso_length, shoulder, head, neck,
                (arm_lengths[0], arm_lengths[1]), (leg_lengths[0], leg_lengths[1]), _colors(rng))
    pose = Pose(roll, lean, body_yaw, (arms[0], arms[1]), (legs[0], legs[1]),
                (feet[0], feet[1]), head_tilt, yaw, pitch)
    return pose_figure(body, pose, height)


def pose_figure(body: Body, pose: Pose, height: float) -> Figure:
    """`body` in `pose` at standing `height` pixels, pelvis at the origin."""
    pelvis_frame = pose.roll
    torso_frame = pose.roll + pose.lean
    width_scale = math.cos(pose.body_yaw)

    def lateral(frame: float) -> np.ndarray:    # toward the person's left (image right)
        return np.array([math.cos(frame), -math.sin(frame)])

    up_torso = -_direction(torso_frame)
    keypoints = np.zeros((17, 2))
    hip_half = 0.5 * _HIP_WIDTH * height * body.hip * width_scale
    keypoints[L_HIP] = lateral(pelvis_frame) * hip_half
    keypoints[R_HIP] = -keypoints[L_HIP]
    shoulder_center = up_torso * _TORSO * height * body.torso * body.torso_length
    shoulder_half = 0.5 * _SHOULDER_WIDTH * height * body.shoulder * (0.35 + 0.65 * width_scale)
    keypoints[L_SHOULDER] = shoulder_center + lateral(torso_frame) * shoulder_half
    keypoints[R_SHOULDER] = shoulder_center - lateral(torso_frame) * shoulder_half

    hands, feet = [], []
    for side, shoulder, elbow, wrist, arm, lengths in (
            (1, L_SHOULDER, L_ELBOW, L_WRIST, pose.arms[0], body.arms[0]),
            (-1, R_SHOULDER, R_ELBOW, R_WRIST, pose.arms[1], body.arms[1])):
        d1 = _in_frame(arm.angle, side, torso_frame)
        d2 = _in_frame(arm.angle + arm.bend, side, torso_frame)
        upper_length = _UPPER_ARM * height * lengths[0] * arm.foreshortening[0]
        keypoints[elbow] = keypoints[shoulder] + d1 * upper_length
        forearm_length = _FOREARM * height * lengths[1] * arm.foreshortening[1]
        keypoints[wrist] = keypoints[elbow] + d2 * forearm_length
        hands.append(keypoints[wrist] + d2 * 0.035 * height)
    for side, hip, knee, ankle, leg, lengths, foot in (
            (1, L_HIP, L_KNEE, L_ANKLE, pose.legs[0], body.legs[0], pose.feet[0]),
            (-1, R_HIP, R_KNEE, R_ANKLE, pose.legs[1], body.legs[1], pose.feet[1])):
        d1 = _in_frame(leg.angle, side, pelvis_frame)
        d2 = _in_frame(leg.angle - leg.bend, side, pelvis_frame)
        keypoints[knee] = keypoints[hip] + d1 * _THIGH * height * lengths[0] * leg.foreshortening[0]
        keypoints[ankle] = (keypoints[knee]
                            + d2 * _SHIN * height * lengths[1] * leg.foreshortening[1])
        # The foot points toward the camera and outward: down and to its side in the image.
        foot_angle = foot + 0.3 * (leg.angle - leg.bend)
        feet.append(keypoints[ankle] + _in_frame(foot_angle, side, pelvis_frame) * 0.065 * height)

    head_roll = torso_frame + pose.head_tilt
    head_radius = _HEAD_RADIUS * height * body.head
    head_center = shoulder_center - _direction(head_roll) * (_NECK * height * body.neck)
    hidden = np.zeros(17, dtype=bool)
    for index, (azimuth, elevation, radius, depth_limit) in _FACE.items():
        x, y, depth = _sphere_point(azimuth, elevation + pose.pitch, radius, pose.yaw)
        keypoints[index] = head_center + rotate(np.array([x, y]) * head_radius, head_roll)
        hidden[index] = depth < depth_limit

    widths = {name: (w[0] * height * body.build, w[1] * height * body.build)
              for name, w in (("upper_arm", _UPPER_ARM_W), ("forearm", _FOREARM_W),
                              ("thigh", _THIGH_W), ("shin", _SHIN_W))}
    return Figure(keypoints, hidden, head_center, head_radius, pose.yaw, head_roll,
                   (hands[0], hands[1]), (feet[0], feet[1]), widths, body.colors, height)


# Walking (the video mode): the swinging leg's knee bend and the arms' swing per radian
# of thigh swing.
_KNEE_FLEX = 1.6
_ARM_SWING = 0.9


@dataclass(frozen=True)
class Gait:
    """How one person walks, whatever the moment.

    arms: (angle, bend, follow) of each arm at rest, the person's left first; `follow`
        scales how much it swings with the legs (0 for a hand on the hip).
    elbow: the swinging arms' elbow bend; stance: the legs' outward angle; roll, lean:
        pelvis and torso tilt; max_yaw: body turn when walking straight across.
    """

    arms: tuple[tuple[float, float, float], tuple[float, float, float]]
    elbow: float
    stance: float
    roll: float
    lean: float
    max_yaw: float


def sample_gait(rng: np.random.Generator) -> Gait:
    """Most people swing both arms; some carry a bag on one side or rest a hand on a hip."""
    arms = [(float(rng.uniform(0.05, 0.2)), 0.0, 1.0) for _ in range(2)]
    habit, side = rng.random(), int(rng.integers(2))
    if habit > 0.85:
        arms[side] = (0.6, -1.3, 0.0)          # hand on the hip: elbow out, no swing
    elif habit > 0.7:
        arms[side] = (0.06, 0.05, 0.2)         # carrying: a straight, stiff arm
    return Gait((arms[0], arms[1]), float(rng.uniform(0.15, 0.5)), float(rng.uniform(0.03, 0.1)),
                float(rng.normal(0.0, 0.03)), float(rng.normal(0.0, 0.05)),
                float(rng.uniform(0.45, 0.75)))


def walking_pose(gait: Gait, phase: float, swing: float, heading: float,
                 head: tuple[float, float, float]) -> Pose:
    """The pose at gait `phase` (radians; one stride per turn) with thighs swinging
    `swing` radians either way, walking toward `heading` (radians, 0 the image's right,
    pi/2 the camera); head: (turn, nod, roll) on top of the body's."""
    s, c = math.sin(phase), math.cos(phase)
    # hx: the share of the walk that crosses the image (signed); the rest is depth,
    # which shows as foreshortening instead of swing in the image plane.
    hx, hy = math.cos(heading), abs(math.sin(heading))
    legs, arms, feet = [], [], []
    # side +1 is the person's left. A leg swings forward while its phase term rises;
    # the swinging leg's knee bends, its shin trailing behind the walk.
    for side in (1, -1):
        flex = _KNEE_FLEX * swing * max(0.0, side * c) ** 2
        shortening = (1.0 - hy * (1.0 - math.cos(swing * s)),
                      1.0 - 0.5 * hy * (1.0 - math.cos(flex)))
        leg = Limb(gait.stance + swing * s * hx, side * hx * flex, shortening)
        legs.append(leg)
        # Toes toward the walk when crossing, splayed outward when facing the camera.
        toes = hx * 1.4 + (1.0 - abs(hx)) * side * 0.6
        feet.append(side * toes - 0.3 * (leg.angle - leg.bend))
    for side, (angle, bend, follow) in zip((1, -1), gait.arms):
        arm_swing = _ARM_SWING * swing * follow      # opposite to the same side's leg
        forward = max(0.0, -side * s)
        arms.append(Limb(angle - arm_swing * s * hx,
                         bend + follow * side * hx * (gait.elbow + 0.5 * arm_swing * forward)))
    body_yaw = gait.max_yaw * hx
    turn, nod, tilt = head
    return Pose(gait.roll + 0.15 * swing * c, gait.lean, body_yaw, (arms[0], arms[1]),
                (legs[0], legs[1]), (feet[0], feet[1]), tilt,
                float(np.clip(body_yaw + turn, -1.25, 1.25)), nod)


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


