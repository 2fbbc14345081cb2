"""What a synthetic dataset looks like, and one person's annotation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgepose.errors import InputError
from edgepose.keypoints import COCO17, COCO18, KeypointSet

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
