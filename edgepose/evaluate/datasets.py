"""The COCO files evaluation reads: keypoint annotations (checked, since pycocotools
asserts or silently overwrites on faults), detection results, and the person boxes the
official HRNet test crops.

Shape letters: N people.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from edgepose.errors import InputError
from edgepose.evaluate.common import is_int, is_number
from edgepose.io import read_json
from edgepose.preprocess import MAX_BOX_PIXELS, MIN_BOX_PIXELS

_log = logging.getLogger(__name__)

PERSON_CATEGORY_ID = 1


def read_coco_keypoints(path: str | Path) -> dict[str, Any]:
    """A COCO keypoints annotation file, checked for what evaluation reads.

    InputError when the file is missing, not JSON, or not in COCO keypoints
    format (images, annotations with keypoints/num_keypoints/bbox/area, categories).
    """
    return load_coco_keypoints(path)[0]


def load_coco_keypoints(path: str | Path) -> tuple[dict[str, Any], int | None]:
    data = read_json(path, "annotation file")
    return data, check_coco_keypoints(data, source=repr(str(path)))


def check_coco_keypoints(data: Any, source: str = "(in memory)") -> int | None:
    """Check a loaded COCO keypoints dataset; return K, or None when it has no annotations.

    pycocotools asserts or silently overwrites on these faults (duplicate ids
    replace each other in its index), so they are caught here with a message.
    """
    where = f"annotation file {source}"
    if not isinstance(data, Mapping):
        raise InputError(f"{where} holds a JSON {type(data).__name__}; expected a COCO object "
                         "with 'images', 'annotations' and 'categories'")
    absent = [key for key in ("images", "annotations", "categories")
              if not isinstance(data.get(key), list)]
    if absent:
        raise InputError(f"{where} is not in COCO format: it lacks the list(s) "
                         f"{', '.join(absent)}; expected 'images', 'annotations' and "
                         "'categories' as in person_keypoints_val2017.json")
    image_ids: set[int] = set()
    for index, image in enumerate(data["images"]):
        if not isinstance(image, Mapping) or not is_int(image.get("id")):
            raise InputError(f"{where}: images[{index}] has no integer 'id'")
        if image["id"] in image_ids:
            raise InputError(f"{where}: image id {image['id']} appears twice in 'images'")
        image_ids.add(image["id"])
    for index, category in enumerate(data["categories"]):
        if not isinstance(category, Mapping) or not is_int(category.get("id")):
            raise InputError(f"{where}: categories[{index}] has no integer 'id'")
    annotation_ids: set[int] = set()
    counts: set[int] = set()
    for index, annotation in enumerate(data["annotations"]):
        if not isinstance(annotation, Mapping) or "keypoints" not in annotation:
            raise InputError(f"{where} is not a COCO keypoints file: annotations[{index}] has "
                             "no 'keypoints' (a detection or caption file?); expected "
                             "person_keypoints-style annotations")
        absent = [key for key in ("id", "image_id", "category_id", "bbox", "area",
                                  "num_keypoints") if key not in annotation]
        if absent:
            raise InputError(f"{where}: annotations[{index}] lacks {', '.join(absent)}")
        keypoints, bbox = annotation["keypoints"], annotation["bbox"]
        if not (isinstance(keypoints, list) and keypoints and len(keypoints) % 3 == 0
                and all(is_number(v) for v in keypoints)):
            raise InputError(f"{where}: annotations[{index}]['keypoints'] must be a list of "
                             "x, y, visibility numbers (3·K of them)")
        if not (isinstance(bbox, list) and len(bbox) == 4
                and all(is_number(v) and math.isfinite(v) for v in bbox)):
            raise InputError(f"{where}: annotations[{index}]['bbox'] is {bbox!r}; expected "
                             "[x, y, w, h], four finite numbers")
        if not all(math.isfinite(v) for v in keypoints):
            raise InputError(f"{where}: annotations[{index}]['keypoints'] holds NaN or "
                             "infinity; expected finite x, y, visibility numbers")
        if not is_number(annotation["area"]) or not is_int(annotation["num_keypoints"]) \
                or not is_int(annotation["category_id"]):
            raise InputError(f"{where}: annotations[{index}] needs a numeric 'area' and integer "
                             "'num_keypoints' and 'category_id'")
        if annotation["image_id"] not in image_ids:
            raise InputError(f"{where}: annotations[{index}] refers to image id "
                             f"{annotation['image_id']!r}, which is not in 'images'")
        if not is_int(annotation["id"]) or annotation["id"] in annotation_ids:
            raise InputError(f"{where}: annotations[{index}] has id {annotation['id']!r}; "
                             "expected an integer id used once")
        annotation_ids.add(annotation["id"])
        counts.add(len(keypoints) // 3)
    if len(counts) > 1:
        raise InputError(f"{where}: annotations have different keypoint counts "
                         f"{sorted(counts)}; expected one keypoint set")
    return counts.pop() if counts else None


def _clean_box(bbox: Sequence[float], width: int, height: int) -> list[float] | None:
    """The official HRNet COCO loader's clean_bbox: clipped to the image, 1 px narrower.

    Kept as the official code has it so ground-truth-box AP matches the published
    figures; None where nothing is left (the official code keeps zero-width boxes,
    which the pipeline refuses; they are rare and unscoreable anyway).
    """
    x, y, w, h = (float(v) for v in bbox)
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1.0))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1.0))
    return [x1, y1, x2 - x1, y2 - y1] if x2 > x1 and y2 > y1 else None


def usable_boxes(boxes: list[list[float]], scores: list[float], shape: tuple[int, ...], *,
                  clean: bool) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4) and scores (N,) the pipeline accepts: ground-truth boxes cleaned as
    the official loader does, detections outside the image dropped (a detector's rare
    stray box must not stop an hour-long run), and so are boxes of a size the pipeline
    refuses (preprocess.MIN_BOX_PIXELS..MAX_BOX_PIXELS). The caller counts what was dropped."""
    height, width = shape[:2]
    kept_boxes, kept_scores = [], []
    for box, score in zip(boxes, scores):
        box = _clean_box(box, width, height) if clean else box
        if box is None or box[0] >= width or box[1] >= height or box[0] + box[2] <= 0 \
                or box[1] + box[3] <= 0:
            _log.debug("box %s lies outside the %dx%d image; skipped", box, width, height)
            continue
        if not all(MIN_BOX_PIXELS <= side <= MAX_BOX_PIXELS for side in box[2:]):
            # The pipeline refuses such a box; here it is counted and skipped instead.
            _log.debug("box %s is too thin or too large to crop; skipped", box)
            continue
        kept_boxes.append(box)
        kept_scores.append(score)
    return (np.asarray(kept_boxes, np.float32).reshape(-1, 4),
            np.asarray(kept_scores, np.float32))


def ground_truth_people(dataset: Mapping[str, Any]) -> dict[int, list[Mapping[str, Any]]]:
    """Annotations the official use_gt_bbox test crops: labelled, not crowds, positive area."""
    people: dict[int, list[Mapping[str, Any]]] = {}
    for annotation in dataset["annotations"]:
        if (annotation["category_id"] == PERSON_CATEGORY_ID and annotation["num_keypoints"] > 0
                and not annotation.get("iscrowd", 0) and annotation["area"] > 0):
            people.setdefault(annotation["image_id"], []).append(annotation)
    return people


def read_detections(path: str | Path, image_ids: set[int],
                     threshold: float) -> dict[int, tuple[list[list[float]], list[float]]]:
    """Person boxes and scores per image from COCO detection results (a JSON list)."""
    data = read_json(path, "detections file")
    if not isinstance(data, list):
        raise InputError(f"detections file {str(path)!r} must hold a JSON list of COCO "
                         'detection results {"image_id", "category_id", "bbox", "score"}')
    found: dict[int, tuple[list[list[float]], list[float]]] = {}
    elsewhere = empty = 0
    for index, item in enumerate(data):
        bbox = item.get("bbox") if isinstance(item, Mapping) else None
        if not (isinstance(item, Mapping) and is_int(item.get("image_id"))
                and isinstance(bbox, list) and len(bbox) == 4
                and all(is_number(v) and math.isfinite(v) for v in bbox)
                and is_number(item.get("score")) and math.isfinite(item["score"])
                and item["score"] >= 0):
            raise InputError(f"detections file {str(path)!r}, entry {index}: {item!r}; expected "
                             '{"image_id": int, "category_id": 1, "bbox": [x, y, w, h], '
                             '"score": s}, finite numbers, s >= 0')
        if item.get("category_id", PERSON_CATEGORY_ID) != PERSON_CATEGORY_ID \
                or item["score"] < threshold:
            continue
        if item["image_id"] not in image_ids:
            elsewhere += 1
            continue
        if bbox[2] <= 0 or bbox[3] <= 0:
            empty += 1
            continue
        boxes, scores = found.setdefault(item["image_id"], ([], []))
        boxes.append([float(v) for v in bbox])
        scores.append(float(item["score"]))
    if elsewhere:
        _log.info("%d detection(s) in %s are for images not being evaluated; skipped",
                  elsewhere, Path(path).name)
    if empty:
        _log.warning("%d detection(s) in %s have zero width or height; skipped", empty,
                     Path(path).name)
    return found


def check_image_files(images: Sequence[Mapping[str, Any]], images_dir: Path,
                       annotations_path: str | Path) -> None:
    missing = [image for image in images if not (images_dir / image["file_name"]).is_file()]
    if missing:
        raise InputError(f"image {str(images_dir / missing[0]['file_name'])!r} (image id "
                         f"{missing[0]['id']} in {str(annotations_path)!r}) does not exist; "
                         f"{len(missing)} of the {len(images)} images to run are missing")
