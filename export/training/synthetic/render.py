"""Drawing figures, backgrounds, occluders and camera effects into one image."""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from edgepose.errors import InputError
from export.training.synthetic.config import (L_ANKLE, L_EAR, L_ELBOW, L_EYE, L_HIP, L_KNEE,
                                              L_SHOULDER, L_WRIST, NOSE, R_ANKLE, R_EAR, R_ELBOW,
                                              R_EYE, R_HIP, R_KNEE, R_SHOULDER, R_WRIST,
                                              PersonAnnotation, SyntheticConfig)
from export.training.synthetic.figure import Figure, rotate, sample_figure

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


def _draw_figure(canvas: _Canvas, figure: Figure) -> None:
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


def _draw_head(canvas: _Canvas, figure: Figure) -> None:
    """Hair, face, ears, and (above 4 px head radius) eyes, nose and mouth."""
    k, c, r = figure.keypoints, figure.colors, figure.head_radius
    center, yaw, roll = figure.head_center, figure.yaw, figure.roll
    angle = -math.degrees(roll)
    # Hair all round, the face toward the camera (its offset shows where the head
    # turns), then the visible ears on top so that they read at any hair colour.
    canvas.ellipse(center, (r, r * 1.08), angle, c["hair"], _darker(c["hair"], 0.5))
    face_center = center + rotate(np.array([0.32 * r * math.sin(yaw), 0.16 * r]), roll)
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
        mouth = k[NOSE] + rotate(np.array([0.0, 0.3 * r]), roll)
        canvas.ellipse(mouth, (0.22 * r * (0.5 + 0.5 * math.cos(yaw)), 0.06 * r), angle,
                       (60, 50, 140), None, False)


def draw_figures(image: np.ndarray, figures: list[Figure]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Draw `figures` into `image` in list order (back to front); return (owner, masks).

    owner: (H, W) int8, the index of the figure drawn last at each pixel, -2 where
    none is. masks: one (H, W) uint8 silhouette per figure, 255 inside, including
    the parts later figures cover.
    """
    height, width = image.shape[:2]
    owner = np.full((height, width), -2, np.int8)
    masks = []
    for number, figure in enumerate(figures):
        mask = np.zeros((height, width), np.uint8)
        outline = max(1, int(round(figure.height / 110)))
        _draw_figure(_Canvas(image, mask, outline), figure)
        owner[mask > 0] = number
        masks.append(mask)
    return owner, masks


def _random_color(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, size=3))  # type: ignore[return-value]


def draw_background(rng: np.random.Generator, width: int, height: int,
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


def draw_occluder(rng: np.random.Generator, image: np.ndarray, owner: np.ndarray,
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


def photometric(rng: np.random.Generator, image: np.ndarray,
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


def _place(rng: np.random.Generator, figure: Figure, config: SyntheticConfig,
           centers: list[np.ndarray]) -> Figure:
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


def annotate(figure: Figure, mask: np.ndarray, owner: np.ndarray, index: int,
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
    image = draw_background(rng, width, height, config.clutter)
    count = int(rng.integers(config.people[0], config.people[1] + 1))
    # Half log-uniform, half uniform: many mid-sized people, some small and some large.
    low = config.min_person_height
    heights = np.where(rng.random(count) < 0.5,
                       np.exp(rng.uniform(math.log(low), math.log(height), count)),
                       rng.uniform(low, height, count))
    figures: list[Figure] = []
    for person_height in np.sort(heights):       # far (small) figures first
        figure = sample_figure(rng, float(person_height))
        figures.append(_place(rng, figure, config, [(f.extent()[0] + f.extent()[1]) / 2
                                                    for f in figures]))
    owner, masks = draw_figures(image, figures)
    for _ in range(int(rng.integers(config.occluders[0], config.occluders[1] + 1))):
        target = figures[int(rng.integers(len(figures)))]
        low, high = target.extent()
        draw_occluder(rng, image, owner, np.concatenate([low, high]))
    image = photometric(rng, image, config)
    people = []
    for number, (figure, mask) in enumerate(zip(figures, masks)):
        annotation = annotate(figure, mask, owner, number, config)
        if annotation is not None:
            people.append(annotation)
    return image, people


# --- the dataset --------------------------------------------------------------------
