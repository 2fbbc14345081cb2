"""Calibration sources: image folders, COCO annotation files and videos, as network inputs.

Calibration must see what inference sees, so every input is made by the runtime's
own preprocessing (edgepose.preprocess, driven by the model card) in the order
TopDownPipeline applies it: box → center/scale (1.25 padding) → affine crop with the
card's pad value → (pixel − mean) / std in the card's colour order and layout.

- A folder of images: top-down models see each whole image as one person box (what
  TopDownPipeline does without boxes); bottom-up models see the full frame.
- A folder plus a COCO keypoints file: top-down models see person crops from its
  boxes; bottom-up models see the full frames.
- A video file: every n-th frame (cv2.VideoCapture), as whole frames.

Bottom-up models get what BottomUpPipeline feeds them: the frame resized into the
card's input size keeping its aspect and padded bottom/right
(preprocess.resize_pad_for_bottom_up), then normalised.

Part of the data is held out (HOLDOUT_FRACTION of the images or frames, at most
MAX_HOLDOUT) and never used for ranges: the accuracy report and gate measure on it.

Shape letters: S samples; inputs are (S, 3, h, w) for NCHW cards, (S, h, w, 3) for NHWC.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import cv2
import numpy as np

from edgepose.card import ModelCard
from edgepose.detect.detector import detector_input
from edgepose.errors import InputError
from edgepose.io import read_image
from edgepose.preprocess import (affine_matrices, crop_batch, crop_centers_scales,
                                 normalize_to_tensor, resize_pad_for_bottom_up, validate_boxes)
from edgepose.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES

log = logging.getLogger(__name__)

HOLDOUT_FRACTION = 0.2
MAX_HOLDOUT = 200
PERSON_CATEGORY_ID = 1


@dataclass(frozen=True)
class Samples:
    """Preprocessed network inputs and where each came from.

    inputs (S, …) float32 in the card's layout; centers, scales (S, 2) the crop
    geometry of top-down samples (None for bottom-up); origins (S,) e.g.
    "000003.jpg", "000003.jpg#17" (annotation 17) or "frame 240".
    """

    inputs: np.ndarray
    centers: np.ndarray | None
    scales: np.ndarray | None
    origins: tuple[str, ...]

    def __post_init__(self) -> None:
        inputs = np.ascontiguousarray(self.inputs, dtype=np.float32)
        if inputs.ndim != 4:
            raise InputError(f"Samples.inputs: expected (S, …) with 4 axes, got {inputs.shape}")
        count = inputs.shape[0]
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "origins", tuple(self.origins))
        if len(self.origins) != count:
            raise InputError(f"Samples: {count} inputs but {len(self.origins)} origins")
        for name in ("centers", "scales"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=np.float32)
                if value.shape != (count, 2):
                    raise InputError(f"Samples.{name}: expected ({count}, 2), got {value.shape}")
                object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def fingerprint(self) -> str:
        """sha256 of the preprocessed inputs: equal fingerprints, equal calibration data."""
        digest = hashlib.sha256(f"{self.inputs.dtype}{self.inputs.shape}".encode())
        digest.update(self.inputs.tobytes())
        return "sha256:" + digest.hexdigest()


@dataclass(frozen=True)
class CalibrationData:
    """Calibration samples and held-out samples from one source.

    kind: "images", "coco" or "video". skipped: files that could not be read.
    holdout_image_ids: the held-out COCO images (the report scores AP on these).
    """

    calibration: Samples
    holdout: Samples
    kind: str
    source: str
    requested: int
    skipped: tuple[str, ...] = ()
    images_dir: Path | None = None
    annotations: Path | None = None
    holdout_image_ids: tuple[int, ...] = field(default_factory=tuple)

    def summary(self) -> dict[str, Any]:
        """JSON-ready description for the card, the cache and the report."""
        return {"kind": self.kind, "source": self.source, "requested": self.requested,
                "samples": len(self.calibration), "holdout": len(self.holdout),
                "skipped": len(self.skipped), "fingerprint": self.calibration.fingerprint}


# --- the runtime's preprocessing -----------------------------------------------------------


def model_inputs(image: np.ndarray, card: ModelCard, boxes: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Network inputs for one BGR uint8 image, as the runtime makes them.

    Top-down: one crop per box (N, 4) xywh, or one for the whole image when boxes is
    None, exactly as TopDownPipeline; returns inputs (N, …) float32 and the crops'
    centers and scales (N, 2). Bottom-up: the whole frame as BottomUpPipeline
    prepares it (boxes must be None); returns inputs (1, …) and None, None. Detectors
    (a DetectorCard): the whole frame letterboxed as edgepose.detect.Detector does.
    """
    height, width = image.shape[:2]
    spec = card.input
    if card.paradigm == "detector":
        if boxes is not None:
            raise InputError("detectors take full frames, not person boxes")
        return detector_input(image, card)[0], None, None
    if card.paradigm == "bottom-up":
        if boxes is not None:
            raise InputError("bottom-up models take full frames, not person boxes")
        padded, _, _ = resize_pad_for_bottom_up(image, spec.height, card.outputs[0].stride,
                                                spec.pad_value, target_width=spec.width)
        inputs = normalize_to_tensor(padded[None], spec.mean, spec.std, color=spec.color,
                                     layout=spec.layout)
        return inputs, None, None
    size = (spec.width, spec.height)
    if boxes is None:
        boxes = np.array([[0.0, 0.0, width, height]], np.float32)
    boxes = validate_boxes(np.asarray(boxes, np.float32).reshape(-1, 4), width, height)
    centers, scales = crop_centers_scales(boxes, spec)
    matrices = affine_matrices(centers, scales, size)
    crops = crop_batch(image, matrices, size, border_value=spec.pad_value)
    inputs = normalize_to_tensor(crops, spec.mean, spec.std, color=spec.color,
                                 layout=spec.layout)
    return inputs, centers, scales


# --- sources ---------------------------------------------------------------------------------


def _holdout_count(items: int, holdout: float) -> int:
    if items < 2 or holdout <= 0:
        return 0
    return max(1, min(MAX_HOLDOUT, int(round(items * holdout))))


def _progress(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # the bar is a nicety
        return None
    return tqdm(total=total, desc=desc, unit="image", leave=False)


class _Collector:
    """Accumulates preprocessed samples until `limit`."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.inputs: list[np.ndarray] = []
        self.centers: list[np.ndarray] = []
        self.scales: list[np.ndarray] = []
        self.origins: list[str] = []

    @property
    def full(self) -> bool:
        return self.limit is not None and len(self.origins) >= self.limit

    def add(self, inputs: np.ndarray, centers: np.ndarray | None, scales: np.ndarray | None,
            origins: Sequence[str]) -> None:
        room = len(origins) if self.limit is None else self.limit - len(self.origins)
        self.inputs.append(inputs[:room])
        if centers is not None and scales is not None:
            self.centers.append(centers[:room])
            self.scales.append(scales[:room])
        self.origins.extend(origins[:room])

    def samples(self, card: ModelCard) -> Samples:
        spec = card.input
        shape = ((0, 3, spec.height, spec.width) if spec.layout == "NCHW"
                 else (0, spec.height, spec.width, 3))
        inputs = np.concatenate(self.inputs) if self.inputs else np.zeros(shape, np.float32)
        if card.paradigm != "top-down":
            return Samples(inputs, None, None, self.origins)
        centers = np.concatenate(self.centers) if self.centers else np.zeros((0, 2), np.float32)
        scales = np.concatenate(self.scales) if self.scales else np.zeros((0, 2), np.float32)
        return Samples(inputs, centers, scales, self.origins)


def _read(path: Path, skipped: list[str]) -> np.ndarray | None:
    try:
        return read_image(path)
    except InputError as exc:
        log.debug("skipping %s: %s", path, exc)
        skipped.append(path.name)
        return None


def _check_samples(samples: Any) -> int:
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise InputError(f"samples must be a positive number of calibration samples, "
                         f"got {samples!r}")
    return int(samples)


def load_calibration_data(data: str | Path, card: ModelCard, *,
                          annotations: str | Path | None = None, samples: int = 512,
                          seed: int = 0, holdout: float = HOLDOUT_FRACTION,
                          every: int | None = None, progress: bool = True) -> CalibrationData:
    """Calibration and held-out samples from a folder, a folder + COCO file, or a video.

    samples: calibration samples wanted; fewer available gives a warning and all of
    them. seed: picks which images, crops or frames. every: video frame step (default:
    spread the samples over the whole video). Unreadable images are skipped and
    counted in `skipped`.
    """
    samples = _check_samples(samples)
    if not (isinstance(holdout, (int, float)) and 0 <= holdout < 1):
        raise InputError(f"holdout must be a fraction in [0, 1), got {holdout!r}")
    if card.paradigm not in ("top-down", "bottom-up", "detector"):
        raise InputError(f"unknown paradigm {card.paradigm!r} in the model card")
    path = Path(data)
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        if annotations is not None:
            raise InputError("annotations apply to an image folder, not to the video "
                             f"{str(path)!r}")
        return _from_video(path, card, samples, seed, holdout, every, progress)
    if path.is_file():
        raise InputError(f"calibration data {str(path)!r} is a file but not a video "
                         f"({', '.join(VIDEO_SUFFIXES)}); pass a folder of images or a video")
    if not path.is_dir():
        raise InputError(f"calibration data {str(path)!r} does not exist; pass a folder of "
                         "images or a video file")
    if every is not None:
        raise InputError("every (the frame step) applies to videos only")
    if annotations is not None:
        return _from_coco(path, Path(annotations), card, samples, seed, holdout, progress)
    return _from_folder(path, card, samples, seed, holdout, progress)


def _warn_fewer(found: int, samples: int, what: str) -> None:
    if found < samples:
        log.warning("asked for %d calibration samples but only %d %s are available; "
                    "calibrating on all %d", samples, found, what, found)


def _from_folder(folder: Path, card: ModelCard, samples: int, seed: int, holdout: float,
                 progress: bool) -> CalibrationData:
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"calibration folder {str(folder)!r} holds no images "
                         f"({', '.join(IMAGE_SUFFIXES)}); pass a folder with images in it")
    order = np.random.default_rng(seed).permutation(len(files))
    held = _holdout_count(len(files), holdout)
    held_files = [files[i] for i in order[:held]]
    pool = [files[i] for i in order[held:]]
    skipped: list[str] = []
    bar = _progress(min(samples, len(pool)) + held, progress, "calibration images")

    def collect(paths: Iterable[Path], limit: int | None) -> Samples:
        collector = _Collector(limit)
        for file in paths:
            if collector.full:
                break
            image = _read(file, skipped)
            if bar is not None:
                bar.update(1)
            if image is None:
                continue
            inputs, centers, scales = model_inputs(image, card)
            collector.add(inputs, centers, scales, [file.name])
        return collector.samples(card)

    try:
        calibration = collect(pool, samples)
        held_out = collect(held_files, None)
    finally:
        if bar is not None:
            bar.close()
    if len(calibration) == 0:
        raise InputError(f"none of the {len(pool)} calibration images in {str(folder)!r} could "
                         f"be read ({len(skipped)} unreadable); pass readable images")
    if skipped:
        log.warning("skipped %d unreadable image(s) in %s (first: %s)", len(skipped), folder,
                    skipped[0])
    _warn_fewer(len(calibration), samples, "readable images (after holding out "
                f"{len(held_out)} for the accuracy report)")
    return CalibrationData(calibration, held_out, "images", str(folder), samples,
                           tuple(skipped), images_dir=folder)


def _load_coco(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"annotation file {str(path)!r} does not exist")
    try:
        dataset = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"annotation file {str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(dataset, dict) or not all(isinstance(dataset.get(k), list)
                                                for k in ("images", "annotations")):
        raise InputError(f"annotation file {str(path)!r} is not a COCO file: expected "
                         "'images' and 'annotations' lists as in person_keypoints_val2017.json")
    return dataset


def _person_boxes(dataset: dict[str, Any]) -> dict[int, list[tuple[int, list[float]]]]:
    """Per image id, (annotation id, xywh box) of its non-crowd people with an area."""
    people: dict[int, list[tuple[int, list[float]]]] = {}
    for annotation in dataset["annotations"]:
        box = annotation.get("bbox") if isinstance(annotation, dict) else None
        if (not isinstance(box, list) or len(box) != 4 or annotation.get("iscrowd", 0)
                or annotation.get("category_id", PERSON_CATEGORY_ID) != PERSON_CATEGORY_ID
                or not all(isinstance(v, (int, float)) for v in box)
                or box[2] <= 1 or box[3] <= 1):
            continue
        people.setdefault(annotation.get("image_id"), []).append(
            (annotation.get("id", -1), [float(v) for v in box]))
    return people


def _clip_boxes(boxes: list[list[float]], width: int, height: int) -> np.ndarray:
    array = np.asarray(boxes, np.float64).reshape(-1, 4)
    x1 = np.clip(array[:, 0], 0, width)
    y1 = np.clip(array[:, 1], 0, height)
    x2 = np.clip(array[:, 0] + array[:, 2], 0, width)
    y2 = np.clip(array[:, 1] + array[:, 3], 0, height)
    return np.stack([x1, y1, x2 - x1, y2 - y1], axis=1).astype(np.float32)


def _from_coco(folder: Path, annotation_path: Path, card: ModelCard, samples: int, seed: int,
               holdout: float, progress: bool) -> CalibrationData:
    dataset = _load_coco(annotation_path)
    people = _person_boxes(dataset)
    images = [image for image in dataset["images"]
              if isinstance(image, dict) and isinstance(image.get("file_name"), str)]
    if card.paradigm == "top-down":
        images = [image for image in images if image.get("id") in people]
    if not images:
        raise InputError(f"annotation file {str(annotation_path)!r} lists no image with a "
                         "person box; a top-down model is calibrated on person crops")
    images.sort(key=lambda image: image["id"])
    order = np.random.default_rng(seed).permutation(len(images))
    held = _holdout_count(len(images), holdout)
    held_images = [images[i] for i in order[:held]]
    pool = [images[i] for i in order[held:]]
    skipped: list[str] = []
    bar = _progress(len(pool) + held, progress, "calibration images")

    def collect(entries: Iterable[dict[str, Any]], limit: int | None) -> Samples:
        collector = _Collector(limit)
        for entry in entries:
            if collector.full:
                break
            image = _read(folder / entry["file_name"], skipped)
            if bar is not None:
                bar.update(1)
            if image is None:
                continue
            height, width = image.shape[:2]
            if card.paradigm != "top-down":
                inputs, centers, scales = model_inputs(image, card)
                collector.add(inputs, centers, scales, [entry["file_name"]])
                continue
            ids = [a for a, _ in people[entry["id"]]]
            boxes = _clip_boxes([b for _, b in people[entry["id"]]], width, height)
            usable = (boxes[:, 2] > 1) & (boxes[:, 3] > 1)
            if not usable.any():
                continue
            inputs, centers, scales = model_inputs(image, card, boxes[usable])
            origins = [f"{entry['file_name']}#{a}" for a, ok in zip(ids, usable) if ok]
            collector.add(inputs, centers, scales, origins)
        return collector.samples(card)

    try:
        calibration = collect(pool, samples)
        held_out = collect(held_images, None)
    finally:
        if bar is not None:
            bar.close()
    what = "person crops" if card.paradigm == "top-down" else "images"
    if len(calibration) == 0:
        raise InputError(f"no calibration {what} could be made from {str(annotation_path)!r} "
                         f"and {str(folder)!r} ({len(skipped)} unreadable image(s)); check that "
                         "the folder holds the images the file names")
    if skipped:
        log.warning("skipped %d unreadable image(s) in %s (first: %s)", len(skipped), folder,
                    skipped[0])
    _warn_fewer(len(calibration), samples, f"{what} (after holding out {len(held_images)} "
                "images for the accuracy report)")
    read_held = {Path(o.split("#")[0]).name for o in held_out.origins}
    held_ids = tuple(sorted(image["id"] for image in held_images
                            if Path(image["file_name"]).name in read_held))
    return CalibrationData(calibration, held_out, "coco", f"{annotation_path} + {folder}",
                           samples, tuple(skipped), images_dir=folder,
                           annotations=annotation_path, holdout_image_ids=held_ids)


def _from_video(path: Path, card: ModelCard, samples: int, seed: int, holdout: float,
                every: int | None, progress: bool) -> CalibrationData:
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        raise InputError(f"every must be a positive frame step, got {every!r}")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InputError(f"video {str(path)!r} cannot be opened by OpenCV; convert it to an "
                         "MP4 (H.264) or AVI (MJPG) file")
    try:
        wanted_holdout = (0 if holdout <= 0 else
                          min(MAX_HOLDOUT, max(1, math.ceil(samples * holdout / (1 - holdout)))))
        wanted = samples + wanted_holdout
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        step = every or (max(1, frames // wanted) if frames > 0 else 1)
        collector = _Collector(None)
        bar = _progress(wanted, progress, "video frames")
        index = 0
        try:
            while len(collector.origins) < wanted:
                if index % step == 0:
                    ok, frame = capture.read()
                    if not ok:
                        break
                    if frame.ndim == 2:
                        frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
                    inputs, centers, scales = model_inputs(np.ascontiguousarray(frame), card)
                    collector.add(inputs, centers, scales, [f"frame {index}"])
                    if bar is not None:
                        bar.update(1)
                elif not capture.grab():
                    break
                index += 1
        finally:
            if bar is not None:
                bar.close()
    finally:
        capture.release()
    everything = collector.samples(card)
    if len(everything) == 0:
        raise InputError(f"video {str(path)!r} yielded no frames")
    held = _holdout_count(len(everything), holdout)
    order = np.random.default_rng(seed).permutation(len(everything))
    held_index = np.sort(order[:held])
    calib_index = np.sort(order[held:])

    def subset(index: np.ndarray) -> Samples:
        return Samples(everything.inputs[index],
                       None if everything.centers is None else everything.centers[index],
                       None if everything.scales is None else everything.scales[index],
                       [everything.origins[i] for i in index])

    calibration = subset(calib_index)
    _warn_fewer(len(calibration), samples, f"frames (every {step}th, after holding out {held})")
    return CalibrationData(calibration, subset(held_index), "video", f"{path} (every {step})",
                           samples)
