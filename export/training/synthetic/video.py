"""Synthetic people on video: walkers with track ids and per-frame COCO keypoints.

Shapes: T frames, P people (tracks). Keypoints, flags and boxes as in the image
generator (see the package docstring); a track keeps its body and colours.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from edgepose.errors import InputError
from edgepose.io import scratch_folder, write_bytes_atomic, write_json_atomic
from export.training.synthetic.config import (ANNOTATION_FILE, IMAGE_FORMATS, JPEG_QUALITY,
                                              PersonAnnotation, SyntheticConfig)
from export.training.synthetic.dataset import _coco_row, _layout, _progress_bar, coco_category
from export.training.synthetic.figure import (LEG_LENGTH, Body, Figure, Gait, pose_figure,
                                              sample_body, sample_gait, walking_pose)
from export.training.synthetic.render import (annotate, draw_background, draw_figures,
                                              draw_occluder, photometric)

log = logging.getLogger(__name__)

VIDEO_FILE = "video.avi"

# How people walk: about one stride (two steps) a second, a stride at most 0.8 standing
# heights long. A slow walker takes slower strides rather than shorter ones below
# _MIN_STRIDE, so that the legs visibly swing; the feet never skate (one stride covers
# its length).
_CADENCE = (0.8, 1.0)          # strides per second
_MIN_STRIDE = (0.35, 0.6)      # standing heights, one person's shortest
_MAX_STRIDE = 0.8
_MAX_SWING = 0.45              # thigh swing either way, radians (about 26 degrees)
# Seen from eye level, a step toward the camera moves the feet down the image less
# than a step across it moves them sideways.
_DEPTH_SPEED = 0.5


@dataclass(frozen=True)
class SyntheticVideoConfig:
    """What a synthetic video looks like. Every range is (low, high), inclusive.

    frame_size: (width, height) in pixels. frames: how many; fps: frames per second.
    people: how many people (tracks) walk through the video; each may be outside the
        frame for part of it.
    seed: determines the video completely.
    walk_speed: walking speed in pixels per second of a person at the near (bottom)
        edge of the floor; farther people cover proportionally fewer pixels.
    person_height: standing height at the far and the near edge of the floor, as
        fractions of the frame height (the camera is at eye level: heads line up).
    turn_back: probability that a person turns round (through facing the camera) once
        at a random moment in view, and again each time they walk out of the frame:
        then they come back.
    occluders: how many still objects stand in front of the people.
    clutter, blur, lighting, min_visible_keypoints, min_area: as in SyntheticConfig,
        fixed for the whole video (one camera, one scene).
    noise: largest standard deviation of the sensor noise; new in every frame.
    """

    frame_size: tuple[int, int] = (320, 256)
    frames: int = 100
    fps: float = 10.0
    people: int = 3
    seed: int = 0
    walk_speed: tuple[float, float] = (15.0, 45.0)
    person_height: tuple[float, float] = (0.25, 0.8)
    turn_back: float = 0.4
    occluders: tuple[int, int] = (0, 2)
    clutter: tuple[int, int] = (4, 24)
    blur: float = 0.3
    noise: float = 6.0
    lighting: bool = True
    min_visible_keypoints: int = 4
    min_area: float = 1024.0

    def __post_init__(self) -> None:
        size = _pair(self.frame_size, integer=True)
        if size is None or min(size) < 32:
            raise InputError(f"frame_size must be two integers (width, height), each at least "
                             f"32 pixels, got {self.frame_size!r}")
        if not _is_number(self.frames, integer=True) or not 1 <= self.frames <= 1_000_000:
            raise InputError(f"frames must be an integer from 1 to 1000000, got {self.frames!r}")
        if not _is_number(self.fps) or not 0.1 <= self.fps <= 1000.0:
            raise InputError(f"fps must be a number of frames per second from 0.1 to 1000, "
                             f"got {self.fps!r}")
        if not _is_number(self.people, integer=True) or not 1 <= self.people <= 100:
            raise InputError(f"people must be an integer from 1 to 100, got {self.people!r}")
        speed = _pair(self.walk_speed)
        if speed is None or not 0.0 <= speed[0] <= speed[1] <= 10_000.0:
            raise InputError(f"walk_speed must be two numbers (low, high) with 0 <= low <= high "
                             f"<= 10000 pixels per second, got {self.walk_speed!r}")
        heights = _pair(self.person_height)
        if heights is None or not 0.0 < heights[0] <= heights[1] <= 1.0 or heights[0] * size[1] < 8:
            raise InputError(f"person_height must be two fractions of the frame height (far, "
                             f"near) with 0 < far <= near <= 1 and far at least 8 pixels "
                             f"({8.0 / size[1]:.3f} here), got {self.person_height!r}")
        if not _is_number(self.turn_back) or not 0.0 <= self.turn_back <= 1.0:
            raise InputError(f"turn_back is a probability in [0, 1], got {self.turn_back!r}")
        self.frame_config()       # checks seed, occluders, clutter, blur, noise and the rest

    @property
    def width(self) -> int:
        return int(self.frame_size[0])

    @property
    def height(self) -> int:
        return int(self.frame_size[1])

    @property
    def duration(self) -> float:
        """Seconds the video lasts."""
        return self.frames / float(self.fps)

    def frame_config(self) -> SyntheticConfig:
        """The image generator's settings for one frame (annotation thresholds, effects)."""
        return SyntheticConfig(image_size=(self.width, self.height), people=(1, 1),
                               seed=self.seed,
                               min_person_height=float(self.person_height[0] * self.height),
                               truncation=0.0, occluders=self.occluders, clutter=self.clutter,
                               blur=self.blur, noise=self.noise, lighting=self.lighting,
                               min_visible_keypoints=self.min_visible_keypoints,
                               min_area=self.min_area)


def _is_number(value: object, integer: bool = False) -> bool:
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    return (isinstance(value, kinds) and not isinstance(value, bool)
            and math.isfinite(float(value)))  # type: ignore[arg-type]


def _pair(value: object, integer: bool = False) -> tuple[float, float] | None:
    """(a, b) from a 2-sequence of numbers, else None."""
    if (isinstance(value, (tuple, list)) and len(value) == 2
            and all(_is_number(v, integer) for v in value)):
        return value[0], value[1]
    return None


# --- the plan: where everyone is in every frame -------------------------------------


@dataclass(frozen=True)
class _Floor:
    """Where feet can stand (image rows) and how tall a person standing there is."""

    far: float
    near: float
    far_height: float
    near_height: float

    @staticmethod
    def of(config: SyntheticVideoConfig) -> "_Floor":
        far_height, near_height = (f * config.height for f in config.person_height)
        near = config.height - 1.0 - 0.02 * config.height
        # Eye-level camera: the head tops of near and far people share one row.
        return _Floor(near - (near_height - far_height), near, far_height, near_height)

    def height_at(self, row: float) -> float:
        if self.near - self.far < 1e-6:
            return self.near_height
        share = (row - self.far) / (self.near - self.far)
        return self.far_height + (self.near_height - self.far_height) * share


@dataclass(frozen=True)
class _Walker:
    """One track: its body and habits, and per frame (T,) arrays of path and gait.

    x, y: the ground point between the feet. heading: direction of travel, radians,
    0 toward the image's right, pi/2 toward the camera. phase: gait cycle, radians.
    swing: thigh swing amplitude, radians. head: (T, 3) the head's turn, nod and roll
    on top of the body's.
    """

    track_id: int
    body: Body
    x: np.ndarray
    y: np.ndarray
    heading: np.ndarray
    phase: np.ndarray
    swing: np.ndarray
    head: np.ndarray
    gait: Gait

    def figure(self, n: int, floor: _Floor) -> Figure:
        """The figure in frame `n`, its lowest point (a foot) on the ground point."""
        turn, nod, tilt = (float(v) for v in self.head[n])
        pose = walking_pose(self.gait, float(self.phase[n]), float(self.swing[n]),
                            float(self.heading[n]), (turn, nod, tilt))
        figure = pose_figure(self.body, pose, floor.height_at(float(self.y[n])))
        _, high = figure.extent()
        return figure.translated(np.array([self.x[n], self.y[n] - high[1]]))


def _wiggle(rng: np.random.Generator, t: np.ndarray, amplitude: tuple[float, float],
            period: tuple[float, float], terms: int = 2) -> np.ndarray:
    """A smooth zero-mean wobble: a sum of sines of random amplitude, period and phase."""
    out = np.zeros_like(t)
    for _ in range(terms):
        out += rng.uniform(*amplitude) * np.sin(2 * math.pi * t / rng.uniform(*period)
                                                + rng.uniform(0, 2 * math.pi))
    return out


def _smoothstep(progress: float) -> float:
    return progress * progress * (3.0 - 2.0 * progress)


def _plan_walker(config: SyntheticVideoConfig, floor: _Floor, index: int,
                 direction: int) -> _Walker:
    """Person `index`'s plan: a body, habits, and a walk that starts across the frame in
    `direction` (+1 toward the image's right, -1 left)."""
    rng = np.random.default_rng([config.seed, 1, index])
    body = sample_body(rng)
    t = np.arange(config.frames) / float(config.fps)
    y0 = float(rng.uniform(floor.far, floor.near))
    speed = float(rng.uniform(*config.walk_speed))
    # Aim to be at cross_x at cross_time, so that people walking opposite ways meet;
    # someone aimed late may walk in from outside the frame.
    cross_time = rng.uniform(0.1, 0.9) * config.duration
    cross_x = rng.uniform(0.1, 0.9) * config.width
    x0 = cross_x - direction * speed * floor.height_at(y0) / floor.near_height * cross_time
    heading = ((0.0 if direction > 0 else math.pi) + rng.uniform(-0.3, 0.3)
               + _wiggle(rng, t, (0.03, 0.15), (3.0, 10.0)))
    pace = 1.0 - 0.15 * (0.5 + 0.5 * np.sin(2 * math.pi * t / rng.uniform(3.0, 8.0)
                                            + rng.uniform(0, 2 * math.pi)))
    x, y, heading, phase, swing = _walk(rng, config, floor, (x0, y0), speed, heading, pace)
    head = np.stack([_wiggle(rng, t, (0.1, 0.3), (2.5, 8.0)),
                     rng.normal(0.0, 0.08) + _wiggle(rng, t, (0.02, 0.06), (2.0, 6.0)),
                     rng.normal(0.0, 0.06) + _wiggle(rng, t, (0.01, 0.05), (2.0, 6.0))], axis=1)
    return _Walker(index + 1, body, x, y, heading, phase, swing, head, sample_gait(rng))


def _walk(rng: np.random.Generator, config: SyntheticVideoConfig, floor: _Floor,
          start: tuple[float, float], speed: float, course: np.ndarray,
          pace: np.ndarray) -> tuple[np.ndarray, ...]:
    """Follow `course` (T,) headings at `speed` x `pace` (T,) frame by frame.

    Turns round at most once at a random moment in view, and each time the walker
    leaves the frame, with probability `config.turn_back` each; a turn goes through
    facing the camera (the figure model never shows its back) and slows the walk.
    Returns (x, y, heading, phase, swing), each (T,).
    """
    frames, dt = config.frames, 1.0 / float(config.fps)
    cadence = float(rng.uniform(*_CADENCE))
    min_stride = float(rng.uniform(*_MIN_STRIDE))
    # planned: (when, only if in view then) of the next turn.
    planned = ((rng.uniform(0.15, 0.75) * config.duration, True)
               if rng.random() < config.turn_back else None)
    x, y, heading = np.empty(frames), np.empty(frames), np.empty(frames)
    phase, swing = np.empty(frames), np.empty(frames)
    x[0], y[0], phase[0] = start[0], start[1], rng.uniform(0, 2 * math.pi)
    margin = max(0.15 * (floor.near - floor.far), 1.0)
    turned, turn, gone = 0.0, None, False   # turn: (start, seconds, +-pi) while turning
    for n in range(frames):
        now, height = n * dt, floor.height_at(float(y[n]))
        outside = x[n] < -0.4 * height or x[n] > config.width + 0.4 * height
        if turn is None and planned is not None and now >= planned[0]:
            if not (outside and planned[1]):
                sign = 1.0 if math.cos(course[n] + turned) > 0 else -1.0
                turn = (now, float(rng.uniform(1.5, 3.0)), sign * math.pi)
            planned = None
        away = math.cos(course[n] + turned) * (x[n] - config.width / 2) > 0
        if not outside:
            gone = False
        elif away and not gone and turn is None and planned is None:
            gone = True                     # one decision per exit: come back or not
            if rng.random() < config.turn_back:
                planned = (now + rng.uniform(0.5, 2.5), False)
        progress = 0.0 if turn is None else min(1.0, (now - turn[0]) / turn[1])
        heading[n] = course[n] + turned + (0.0 if turn is None else turn[2] * _smoothstep(progress))
        if turn is not None and progress >= 1.0:
            turned, turn = turned + turn[2], None
        step_speed = (speed * pace[n] * (1.0 - 0.6 * math.sin(math.pi * progress) ** 2)
                      * height / floor.near_height)        # pixels per second
        stride = min(max(step_speed / cadence, min_stride * height), _MAX_STRIDE * height)
        # A foot swings a quarter stride either side of the hip.
        swing[n] = math.asin(min(stride / 4.0 / (LEG_LENGTH * height), math.sin(_MAX_SWING)))
        if n + 1 == frames:
            break
        vx = step_speed * math.cos(heading[n])
        vy = step_speed * math.sin(heading[n]) * _DEPTH_SPEED
        room = (floor.near - y[n]) if vy > 0 else (y[n] - floor.far)
        vy *= min(1.0, max(0.0, room / margin))     # ease off before the floor's edge
        x[n + 1] = x[n] + vx * dt
        y[n + 1] = min(max(y[n] + vy * dt, floor.far), floor.near)
        phase[n + 1] = phase[n] + 2 * math.pi * step_speed / stride * dt
    return x, y, heading, phase, swing


class _Scene:
    """Everything fixed for a video (background, occluders, lighting, walkers)."""

    def __init__(self, config: SyntheticVideoConfig) -> None:
        self.config, self.floor = config, _Floor.of(config)
        self.frame_config = config.frame_config()
        rng = np.random.default_rng([config.seed, 0])
        first = 1 if rng.random() < 0.5 else -1
        # Alternate directions, so that people cross each other (and occlude).
        self.walkers = [_plan_walker(config, self.floor, i, first * (-1) ** i)
                        for i in range(config.people)]
        self.background = draw_background(np.random.default_rng([config.seed, 3]), config.width,
                                          config.height, config.clutter)
        self.occluders = []
        for _ in range(int(rng.integers(config.occluders[0], config.occluders[1] + 1))):
            center, half = rng.uniform(0.1, 0.9) * config.width, rng.uniform(0.05, 0.12)
            top = self.floor.near - self.floor.near_height * rng.uniform(0.3, 0.8)
            self.occluders.append(np.array([center - half * config.width, top,
                                            center + half * config.width, self.floor.near]))
        self.noise = float(rng.uniform(0.0, config.noise))

    def render(self, n: int) -> tuple[np.ndarray, list[tuple[int, PersonAnnotation]]]:
        """Frame `n`: (BGR uint8 (H, W, 3), [(track id, annotation)] of the people in it)."""
        config, floor = self.config, self.floor
        image = self.background.copy()
        placed = []
        for walker in sorted(self.walkers, key=lambda w: (w.y[n], w.track_id)):  # far first
            figure = walker.figure(n, floor)
            low, high = figure.extent()
            reach = 0.2 * figure.height      # limb widths stick out past the keypoints
            if (high[0] > -reach and low[0] < config.width + reach
                    and high[1] > -reach and low[1] < config.height + reach):
                placed.append((walker.track_id, figure))
        owner, masks = draw_figures(image, [figure for _, figure in placed])
        for number, box in enumerate(self.occluders):
            # The same generator every frame draws the same object in the same place.
            draw_occluder(np.random.default_rng([config.seed, 6, number]), image, owner, box)
        # Lighting and blur: one draw for the whole video; the sensor noise changes.
        still = dataclasses.replace(self.frame_config, noise=0.0)
        image = photometric(np.random.default_rng([config.seed, 2]), image, still)
        if self.noise > 0:
            noise = np.random.default_rng([config.seed, 4, n]).standard_normal(
                size=image.shape, dtype=np.float32) * np.float32(self.noise)
            image = np.clip(image.astype(np.float32) + noise + 0.5, 0, 255).astype(np.uint8)
        people = []
        for number, ((track_id, figure), mask) in enumerate(zip(placed, masks)):
            annotation = annotate(figure, mask, owner, number, self.frame_config)
            if annotation is not None:
                people.append((track_id, annotation))
        people.sort(key=lambda item: item[0])
        return image, people


# --- on disk ------------------------------------------------------------------------


def frame_file_name(index: int, image_format: str = "jpg") -> str:
    return f"frame_{index:06d}.{image_format}"


def write_synthetic_video(out_dir: str | Path, config: SyntheticVideoConfig | None = None, *,
                          layout: Literal["coco17", "coco18"] = "coco17",
                          image_format: Literal["jpg", "png"] = "jpg",
                          progress: bool = False) -> tuple[Path, Path]:
    """Write a synthetic video and its annotations; return (video path, annotation path).

    out_dir/video.avi (Motion JPEG, OpenCV's own AVI writer), every frame as
    out_dir/images/frame_000000.jpg … (what image-folder evaluation reads), and
    out_dir/person_keypoints.json, written last: COCO keypoints whose images are the
    frames in order (id = frame index + 1, with "frame_index" and "video_id"), whose
    annotations carry a "track_id" that stays with a person across frames, and a
    top-level "videos" entry with fps and frame count. People outside the frame have
    no annotation in it. Frames already in out_dir/images beyond `frames` are left alone.
    """
    config = SyntheticVideoConfig() if config is None else config
    if not isinstance(config, SyntheticVideoConfig):
        raise InputError(f"config must be a SyntheticVideoConfig, got {type(config).__name__}")
    keypoint_set = _layout(layout)
    if image_format not in IMAGE_FORMATS:
        raise InputError(f"unknown image format {image_format!r}; expected one of "
                         f"{', '.join(IMAGE_FORMATS)}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output {str(out_dir)!r} exists and is not a folder")
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    video_path = out_dir / VIDEO_FILE

    started = time.perf_counter()
    scene = _Scene(config)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    bar = _progress_bar(config.frames, progress)
    with scratch_folder(video_path, "video") as scratch:
        # The built-in writer needs no FFmpeg, and picks the container by the extension.
        temporary = scratch / VIDEO_FILE
        writer = cv2.VideoWriter(str(temporary), cv2.CAP_OPENCV_MJPEG,
                                 cv2.VideoWriter_fourcc(*"MJPG"), float(config.fps),
                                 (config.width, config.height))
        if not writer.isOpened():
            raise InputError(f"this OpenCV ({cv2.__version__}) cannot write a Motion JPEG AVI "
                             f"video of {config.width}x{config.height} at {config.fps} fps to "
                             f"{str(video_path)!r}; install an OpenCV with video I/O "
                             "(opencv-python or opencv-python-headless)")
        try:
            writer.set(cv2.VIDEOWRITER_PROP_QUALITY, JPEG_QUALITY)
            encoding = ([cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if image_format == "jpg"
                        else [cv2.IMWRITE_PNG_COMPRESSION, 3])
            for n in range(config.frames):
                frame, people = scene.render(n)
                writer.write(frame)
                name = frame_file_name(n, image_format)
                ok, encoded = cv2.imencode("." + image_format, frame, encoding)
                if not ok:
                    raise InputError(f"OpenCV could not encode frame {n} as {image_format}")
                write_bytes_atomic(image_dir / name, encoded.tobytes())
                images.append({"id": n + 1, "file_name": name, "width": config.width,
                               "height": config.height, "frame_index": n, "video_id": 1})
                for track_id, person in people:
                    flat, labelled = _coco_row(person, layout)
                    annotations.append({
                        "id": len(annotations) + 1, "image_id": n + 1, "category_id": 1,
                        "bbox": [round(v, 2) for v in person.bbox], "area": person.area,
                        "iscrowd": 0, "keypoints": flat, "num_keypoints": labelled,
                        "track_id": track_id})
                if bar is not None:
                    bar.update(1)
        finally:
            writer.release()
            if bar is not None:
                bar.close()
        os.replace(temporary, video_path)
    payload = {
        "info": {"description": "edgepose synthetic people, video", "version": "1",
                 "generator": "export.training.synthetic.video", "layout": keypoint_set.name,
                 "config": dataclasses.asdict(config)},
        "licenses": [],
        "videos": [{"id": 1, "file_name": VIDEO_FILE, "fps": float(config.fps),
                    "frames": config.frames, "width": config.width, "height": config.height,
                    "tracks": config.people}],
        "images": images,
        "annotations": annotations,
        "categories": [coco_category(layout)],
    }
    annotation_path = write_json_atomic(out_dir / ANNOTATION_FILE, payload)
    elapsed = time.perf_counter() - started
    log.info("wrote a %d-frame video: %d people, %d person-frames (%d annotated), to %s "
             "in %.1f s",
             config.frames, len({a["track_id"] for a in annotations}), len(annotations),
             sum(a["num_keypoints"] > 0 for a in annotations), out_dir, elapsed)
    return video_path, annotation_path
