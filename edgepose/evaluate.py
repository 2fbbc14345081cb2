"""Accuracy: COCO keypoint AP/AR, PCKh, and a model run over an annotated image folder.

COCO AP and AR come from pycocotools' COCOeval (loaded lazily: the 'eval'
extra), so the numbers are the ones papers and leaderboards print; `oks` writes
the same similarity out in numpy for tests and reports. PCKh follows the MPII
evaluation as the HRNet code runs it.

Shape letters: N people, K keypoints.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import time
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from edgepose import _optional
from edgepose.backends import open_runner
from edgepose.errors import InputError
from edgepose.io import read_image, read_json
from edgepose.keypoints import COCO17, KEYPOINT_SETS, MPII16, KeypointSet, get_keypoint_set
from edgepose.pipeline import TopDownPipeline, bottom_up_pipeline

_log = logging.getLogger(__name__)

#: COCOeval's keypoint summary, in the order of its `stats`.
METRIC_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
#: The columns models are compared by (EvalReport.format_table).
TABLE_METRICS = ("AP", "AP50", "AP75", "APm", "APl", "AR")
#: COCOeval's keypoint setting scores only this many results per image, best first.
COCO_MAX_RESULTS_PER_IMAGE = 20
PERSON_CATEGORY_ID = 1
#: MPII's head size is this fraction of the head box diagonal (SC_BIAS in its code).
MPII_HEAD_SIZE_FACTOR = 0.6
#: MPII's mean PCKh leaves out pelvis and thorax, which are nearly always right.
MPII_MEAN_EXCLUDES = tuple(MPII16.names.index(name) for name in ("pelvis", "thorax"))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- OKS -------------------------------------------------------------------------------


def oks(predicted: np.ndarray, ground_truth: np.ndarray, area: float,
        sigmas: Sequence[float] | np.ndarray) -> float:
    """Object keypoint similarity of one predicted person with one labelled person.

    predicted (K, 2) pixels; ground_truth (K, 3) as x, y, visibility; area: the
    person's segment area in pixels²; sigmas (K,) the per-keypoint constants.

    OKS = mean over keypoints with visibility > 0 of exp(−d² / (2·area·(2σ)²)), d
    the distance in pixels: COCO's definition, as pycocotools' computeOks writes
    it, machine epsilon added to the area included (a zero area stays defined).
    """
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if sigmas.ndim != 1 or sigmas.size == 0 or not np.all(np.isfinite(sigmas) & (sigmas > 0)):
        raise InputError(f"sigmas: expected K positive finite numbers, got {sigmas!r}")
    count = sigmas.shape[0]
    predicted = np.asarray(predicted, dtype=np.float64)
    ground_truth = np.asarray(ground_truth, dtype=np.float64)
    if predicted.shape != (count, 2):
        raise InputError(f"predicted: expected shape ({count}, 2) for {count} sigmas, "
                         f"got {predicted.shape}")
    if ground_truth.shape != (count, 3):
        raise InputError(f"ground_truth: expected shape ({count}, 3) as x, y, visibility, "
                         f"got {ground_truth.shape}")
    if not (_is_number(area) or isinstance(area, np.number)) or not (math.isfinite(area)
                                                                    and area >= 0):
        raise InputError(f"area: expected a finite number >= 0 (pixels²), got {area!r}")
    labelled = ground_truth[:, 2] > 0
    if not labelled.any():
        raise InputError("ground_truth has no labelled keypoint (visibility > 0): OKS is "
                         "undefined for it, and COCO evaluation ignores such people")
    if not np.all(np.isfinite(predicted[labelled])) or \
            not np.all(np.isfinite(ground_truth[labelled])):
        raise InputError("predicted and ground_truth must be finite at labelled keypoints")
    squared = np.sum((predicted - ground_truth[:, :2]) ** 2, axis=1)
    variances = (2.0 * sigmas) ** 2
    exponent = squared / (2.0 * (float(area) + np.spacing(1)) * variances)
    return float(np.mean(np.exp(-exponent[labelled])))


# --- COCO files ------------------------------------------------------------------------


def read_coco_keypoints(path: str | Path) -> dict[str, Any]:
    """A COCO keypoints annotation file, checked for what evaluation reads.

    InputError when the file is missing, not JSON, or not in COCO keypoints
    format (images, annotations with keypoints/num_keypoints/bbox/area, categories).
    """
    return _load_coco_keypoints(path)[0]


def _load_coco_keypoints(path: str | Path) -> tuple[dict[str, Any], int | None]:
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
        if not isinstance(image, Mapping) or not _is_int(image.get("id")):
            raise InputError(f"{where}: images[{index}] has no integer 'id'")
        if image["id"] in image_ids:
            raise InputError(f"{where}: image id {image['id']} appears twice in 'images'")
        image_ids.add(image["id"])
    for index, category in enumerate(data["categories"]):
        if not isinstance(category, Mapping) or not _is_int(category.get("id")):
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
                and all(_is_number(v) for v in keypoints)):
            raise InputError(f"{where}: annotations[{index}]['keypoints'] must be a list of "
                             "x, y, visibility numbers (3·K of them)")
        if not (isinstance(bbox, list) and len(bbox) == 4
                and all(_is_number(v) and math.isfinite(v) for v in bbox)):
            raise InputError(f"{where}: annotations[{index}]['bbox'] is {bbox!r}; expected "
                             "[x, y, w, h], four finite numbers")
        if not all(math.isfinite(v) for v in keypoints):
            raise InputError(f"{where}: annotations[{index}]['keypoints'] holds NaN or "
                             "infinity; expected finite x, y, visibility numbers")
        if not _is_number(annotation["area"]) or not _is_int(annotation["num_keypoints"]) \
                or not _is_int(annotation["category_id"]):
            raise InputError(f"{where}: annotations[{index}] needs a numeric 'area' and integer "
                             "'num_keypoints' and 'category_id'")
        if annotation["image_id"] not in image_ids:
            raise InputError(f"{where}: annotations[{index}] refers to image id "
                             f"{annotation['image_id']!r}, which is not in 'images'")
        if not _is_int(annotation["id"]) or annotation["id"] in annotation_ids:
            raise InputError(f"{where}: annotations[{index}] has id {annotation['id']!r}; "
                             "expected an integer id used once")
        annotation_ids.add(annotation["id"])
        counts.add(len(keypoints) // 3)
    if len(counts) > 1:
        raise InputError(f"{where}: annotations have different keypoint counts "
                         f"{sorted(counts)}; expected one keypoint set")
    return counts.pop() if counts else None


def _read_results(results: Sequence[Mapping[str, Any]] | str | Path) -> list[Any]:
    if isinstance(results, (str, Path)):
        results = read_json(results, "results file")
    if not isinstance(results, (list, tuple)):
        raise InputError(f"results: expected a list of COCO keypoint results, got "
                         f"{type(results).__name__}")
    return list(results)


def _clean_results(results: list[Any], count: int, image_ids: set[int],
                   category_ids: set[int]) -> list[dict[str, Any]]:
    """Fresh result dicts with the four keys COCO keypoint results have.

    Fresh because pycocotools' loadRes writes into the dicts it gets. Only the four
    keys because loadRes picks its branch from the first result's keys: with a
    'bbox' it takes the detection branch and sets each result's area from the box
    instead of the keypoint extent, which changes APm/APl from the official figure.
    """
    cleaned = []
    for index, result in enumerate(results):
        if not isinstance(result, Mapping):
            raise InputError(f"results[{index}] is {type(result).__name__}; expected a dict "
                             "with image_id, category_id, keypoints and score")
        image_id, category_id = result.get("image_id"), result.get("category_id")
        keypoints, score = result.get("keypoints"), result.get("score")
        if not _is_int(image_id) or image_id not in image_ids:
            raise InputError(f"results[{index}] has image_id {image_id!r}, which the "
                             "annotations do not hold; results must come from the annotated "
                             "images")
        if not _is_int(category_id) or category_id not in category_ids:
            raise InputError(f"results[{index}] has category_id {category_id!r}; the "
                             f"annotations have categories {sorted(category_ids)}")
        if not (isinstance(keypoints, (list, tuple)) and len(keypoints) == 3 * count
                and all(_is_number(v) and math.isfinite(v) for v in keypoints)):
            got = len(keypoints) if isinstance(keypoints, (list, tuple)) else keypoints
            raise InputError(f"results[{index}]['keypoints']: expected {3 * count} finite "
                             f"numbers (x, y, score for {count} keypoints), got {got!r}")
        if not (_is_number(score) and math.isfinite(score)):
            raise InputError(f"results[{index}]['score'] is {score!r}; expected a number")
        cleaned.append({"image_id": image_id, "category_id": category_id,
                        "keypoints": [float(v) for v in keypoints], "score": float(score)})
    return cleaned


def coco_keypoint_eval(annotations: str | Path | Mapping[str, Any],
                       results: Sequence[Mapping[str, Any]] | str | Path, *,
                       sigmas: Sequence[float] | np.ndarray | None = None,
                       image_ids: Iterable[int] | None = None) -> dict[str, float]:
    """COCO keypoint AP and AR (OKS) of `results` against `annotations`, by pycocotools.

    annotations: a COCO keypoints file, or one loaded as a dict.
    results: COCO keypoint results (dicts with image_id, category_id, keypoints as
    [x, y, score]·K, score), or a JSON file of them; an empty list scores 0.
    Other keys are ignored (see _clean_results: a 'bbox' would change the scores).
    sigmas: K OKS constants; default COCO's, which needs K = 17.
    image_ids: score these images only; default every image in the annotations,
    so an annotated image without results counts its people as missed.

    Returns METRIC_NAMES → value in [0, 1], NaN where no person falls in the
    category (APm with no medium-sized person), which pycocotools writes as -1.
    COCOeval scores at most COCO_MAX_RESULTS_PER_IMAGE results per image.
    """
    coco_api = _optional.pycocotools()
    if isinstance(annotations, Mapping):
        dataset: Mapping[str, Any] = annotations
        count = check_coco_keypoints(dataset)
    else:
        dataset, count = _load_coco_keypoints(annotations)
    if sigmas is None:
        if count not in (None, COCO17.num_keypoints):
            raise InputError(f"the annotations have {count} keypoints per person; COCO's "
                             f"sigmas cover {COCO17.num_keypoints}, so pass sigmas for {count}")
        sigmas = COCO17.sigmas
    sigma_array = np.asarray(sigmas, dtype=np.float64)
    count = count or sigma_array.size
    if sigma_array.shape != (count,) or not np.all(np.isfinite(sigma_array) & (sigma_array > 0)):
        raise InputError(f"sigmas: expected {count} positive numbers (one per keypoint), "
                         f"got shape {sigma_array.shape}")

    known_images = {image["id"] for image in dataset["images"]}
    categories = {category["id"] for category in dataset["categories"]}
    cleaned = _clean_results(_read_results(results), count, known_images, categories)
    if image_ids is None:
        selected = sorted(known_images)
    else:
        selected = sorted(set(image_ids))
        unknown = [i for i in selected if i not in known_images]
        if unknown:
            raise InputError(f"image_ids {unknown[:5]} are not in the annotations")
    crowded = [(i, n) for i, n in Counter(r["image_id"] for r in cleaned).items()
               if n > COCO_MAX_RESULTS_PER_IMAGE]
    if crowded:
        _log.warning("%d image(s) have more than %d results (image %s has %d); COCO keypoint "
                     "evaluation scores only the %d best of each", len(crowded),
                     COCO_MAX_RESULTS_PER_IMAGE, crowded[0][0], crowded[0][1],
                     COCO_MAX_RESULTS_PER_IMAGE)

    # pycocotools prints progress on stdout; a library must not, so it goes to the debug log.
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        ground_truth = coco_api.coco.COCO()
        # Shallow copies: COCOeval writes 'ignore' flags into the annotation dicts.
        ground_truth.dataset = {**dataset,
                                "annotations": [dict(a) for a in dataset["annotations"]]}
        ground_truth.createIndex()
        if cleaned:
            detections = ground_truth.loadRes(cleaned)
        else:
            # loadRes reads results[0] and fails on an empty list; no results is AP 0.
            detections = coco_api.coco.COCO()
            detections.dataset = {"images": list(dataset["images"]),
                                  "categories": list(dataset["categories"]), "annotations": []}
            detections.createIndex()
        evaluator = coco_api.cocoeval.COCOeval(ground_truth, detections, iouType="keypoints")
        evaluator.params.kpt_oks_sigmas = sigma_array
        evaluator.params.imgIds = selected
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    _log.debug("pycocotools output:\n%s", captured.getvalue())
    return {name: float(value) if value >= 0 else math.nan
            for name, value in zip(METRIC_NAMES, evaluator.stats)}


# --- PCKh ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PCKhResult:
    """PCKh: the fraction of visible joints within threshold × head size of the truth.

    per_joint (K,) in [0, 1], NaN for a joint never visible; visible (K,) counts.
    mean: correct / visible summed over the joints not in `excluded` — the
    visibility-weighted joint mean MPII reports.
    """

    per_joint: np.ndarray
    visible: np.ndarray
    mean: float
    threshold: float
    excluded: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        per_joint = np.asarray(self.per_joint, dtype=np.float64)
        visible = np.asarray(self.visible, dtype=np.int64)
        if per_joint.ndim != 1 or visible.shape != per_joint.shape:
            raise InputError(f"PCKhResult: per_joint (K,) and visible (K,) must match, got "
                             f"{per_joint.shape} and {visible.shape}")
        object.__setattr__(self, "per_joint", per_joint)
        object.__setattr__(self, "visible", visible)
        object.__setattr__(self, "excluded", tuple(int(k) for k in self.excluded))

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "mean": _json_number(self.mean),
                "per_joint": [_json_number(v) for v in self.per_joint],
                "visible": [int(v) for v in self.visible], "excluded": list(self.excluded)}


def mpii_head_sizes(head_boxes: np.ndarray) -> np.ndarray:
    """MPII head sizes (N,) from head boxes (N, 4) as x1, y1, x2, y2: 0.6 × the diagonal."""
    boxes = np.asarray(head_boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise InputError(f"head_boxes: expected shape (N, 4) as x1, y1, x2, y2, got {boxes.shape}")
    return MPII_HEAD_SIZE_FACTOR * np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def pckh(predicted: np.ndarray, ground_truth: np.ndarray, visible: np.ndarray,
         head_sizes: np.ndarray, threshold: float = 0.5, *,
         mean_excludes: Sequence[int] = ()) -> PCKhResult:
    """PCKh@threshold: a joint is right when ‖predicted − truth‖ ≤ threshold × head size.

    predicted, ground_truth (N, K, 2) pixels; visible (N, K), nonzero where the
    joint is labelled; head_sizes (N,) pixels (see mpii_head_sizes).
    mean_excludes: joints left out of the mean; MPII_MEAN_EXCLUDES for MPII's figure.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    ground_truth = np.asarray(ground_truth, dtype=np.float64)
    if predicted.ndim != 3 or predicted.shape[2] != 2:
        raise InputError(f"predicted: expected shape (N, K, 2), got {predicted.shape}")
    people, count = predicted.shape[:2]
    if ground_truth.shape != predicted.shape:
        raise InputError(f"ground_truth: expected shape {predicted.shape} like predicted, got "
                         f"{ground_truth.shape}")
    visible = np.asarray(visible)
    if visible.shape != (people, count):
        raise InputError(f"visible: expected shape ({people}, {count}), got {visible.shape}")
    visible = visible != 0
    head_sizes = np.asarray(head_sizes, dtype=np.float64)
    if head_sizes.shape != (people,) or not np.all(np.isfinite(head_sizes) & (head_sizes > 0)):
        raise InputError(f"head_sizes: expected {people} positive finite sizes, got shape "
                         f"{head_sizes.shape}")
    if not (_is_number(threshold) and math.isfinite(threshold) and threshold > 0):
        raise InputError(f"threshold: expected a positive number, got {threshold!r}")
    excluded = tuple(int(k) for k in mean_excludes)
    if any(not 0 <= k < count for k in excluded):
        raise InputError(f"mean_excludes {excluded}: expected joint indices in [0, {count})")
    if not (np.all(np.isfinite(predicted[visible])) and np.all(np.isfinite(ground_truth[visible]))):
        raise InputError("predicted and ground_truth must be finite where visible")

    with np.errstate(invalid="ignore"):  # unlabelled joints may hold NaN; they are masked out
        distance = np.linalg.norm(predicted - ground_truth, axis=2) / head_sizes[:, None]
        correct = (distance <= threshold) & visible
    visible_count = visible.sum(axis=0)
    correct_count = correct.sum(axis=0)
    per_joint = np.divide(correct_count, visible_count, out=np.full(count, np.nan),
                          where=visible_count > 0)
    counted = np.ones(count, dtype=bool)
    counted[list(excluded)] = False
    total = int(visible_count[counted].sum())
    mean = float(correct_count[counted].sum() / total) if total else math.nan
    return PCKhResult(per_joint=per_joint, visible=visible_count, mean=mean,
                      threshold=float(threshold), excluded=excluded)


# --- A model over a dataset ------------------------------------------------------------


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


@dataclass(frozen=True)
class EvalReport:
    """One evaluate_model run.

    metrics: METRIC_NAMES → value (NaN where nobody is in the category).
    images: images scored; people: person boxes the model ran on.
    box_source: "ground truth" or the detections file used.
    skipped_boxes: boxes not run because nothing of them lies in the image (zero width
        or height, or wholly outside); with ground-truth boxes, people scored as missed.
    """

    metrics: Mapping[str, float]
    images: int
    people: int
    backend: str
    family: str
    variant: str
    precision: str
    flip_test: bool
    refine: str
    box_source: str
    wall_time_s: float
    random_init: bool = False
    skipped_boxes: int = 0

    def __post_init__(self) -> None:
        absent = [name for name in METRIC_NAMES if name not in self.metrics]
        if absent:
            raise InputError(f"EvalReport.metrics: expected {METRIC_NAMES}, missing {absent}")
        object.__setattr__(self, "metrics",
                           MappingProxyType({k: float(v) for k, v in self.metrics.items()}))
        for name in ("images", "people", "skipped_boxes"):
            value = getattr(self, name)
            if not _is_int(value) or value < 0:
                raise InputError(f"EvalReport.{name}: expected a count >= 0, got {value!r}")
        if not (_is_number(self.wall_time_s) and self.wall_time_s >= 0):
            raise InputError(f"EvalReport.wall_time_s: expected seconds >= 0, "
                             f"got {self.wall_time_s!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN metrics become null."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["metrics"] = {k: _json_number(v) for k, v in self.metrics.items()}
        return data

    def format_table(self) -> str:
        """Two aligned lines: the TABLE_METRICS names and their values ('n/a' for NaN)."""
        cells = [("n/a" if math.isnan(self.metrics[name]) else f"{self.metrics[name]:.3f}")
                 for name in TABLE_METRICS]
        width = max(len(c) for c in cells + list(TABLE_METRICS)) + 2
        return "\n".join("".join(c.rjust(width) for c in row)
                         for row in (TABLE_METRICS, cells))


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


def _usable_boxes(boxes: list[list[float]], scores: list[float], shape: tuple[int, ...], *,
                  clean: bool) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4) and scores (N,) the pipeline accepts: ground-truth boxes cleaned as
    the official loader does, detections outside the image dropped (a detector's rare
    stray box must not stop an hour-long run). The caller counts what was dropped."""
    height, width = shape[:2]
    kept_boxes, kept_scores = [], []
    for box, score in zip(boxes, scores):
        box = _clean_box(box, width, height) if clean else box
        if box is None or box[0] >= width or box[1] >= height or box[0] + box[2] <= 0 \
                or box[1] + box[3] <= 0:
            _log.debug("box %s lies outside the %dx%d image; skipped", box, width, height)
            continue
        kept_boxes.append(box)
        kept_scores.append(score)
    return (np.asarray(kept_boxes, np.float32).reshape(-1, 4),
            np.asarray(kept_scores, np.float32))


def _ground_truth_people(dataset: Mapping[str, Any]) -> dict[int, list[Mapping[str, Any]]]:
    """Annotations the official use_gt_bbox test crops: labelled, not crowds, positive area."""
    people: dict[int, list[Mapping[str, Any]]] = {}
    for annotation in dataset["annotations"]:
        if (annotation["category_id"] == PERSON_CATEGORY_ID and annotation["num_keypoints"] > 0
                and not annotation.get("iscrowd", 0) and annotation["area"] > 0):
            people.setdefault(annotation["image_id"], []).append(annotation)
    return people


def _read_detections(path: str | Path, image_ids: set[int],
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
        if not (isinstance(item, Mapping) and _is_int(item.get("image_id"))
                and isinstance(bbox, list) and len(bbox) == 4
                and all(_is_number(v) and math.isfinite(v) for v in bbox)
                and _is_number(item.get("score")) and math.isfinite(item["score"])
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
                  elsewhere, path.name)
    if empty:
        _log.warning("%d detection(s) in %s have zero width or height; skipped", empty, path.name)
    return found


def backend_name(runner: Any) -> str:
    """The runner's backend for reports: module and providers or TensorRT module."""
    module = type(runner).__module__
    name = (module.rsplit(".", 1)[-1] if module.startswith("edgepose.backends.")
            else type(runner).__name__)
    detail = getattr(runner, "tensorrt_module", None) or ", ".join(getattr(runner, "providers", ()))
    return f"{name} ({detail})" if detail else name


def _progress(items: Sequence[Any], enabled: bool) -> Iterable[Any]:
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:  # the bar is a nicety; no tqdm, no bar
        return items
    return tqdm(items, total=len(items), desc="evaluate", unit="image", leave=False)


def _check_image_files(images: Sequence[Mapping[str, Any]], images_dir: Path,
                       annotations_path: str | Path) -> None:
    missing = [image for image in images if not (images_dir / image["file_name"]).is_file()]
    if missing:
        raise InputError(f"image {str(images_dir / missing[0]['file_name'])!r} (image id "
                         f"{missing[0]['id']} in {str(annotations_path)!r}) does not exist; "
                         f"{len(missing)} of the {len(images)} images to run are missing")


def _scored_keypoint_set(predicted: KeypointSet, annotated: int | None) -> KeypointSet:
    """The set to score in: the model's, or the one set with the annotations' keypoint count
    whose keypoints the model predicts (COCO-17 for OpenPose's COCO-18 and BODY_25)."""
    if annotated is None or annotated == predicted.num_keypoints:
        scored = predicted
    else:
        names = set(predicted.names)
        matching = [s for s in KEYPOINT_SETS.values()
                    if s.num_keypoints == annotated and set(s.names) <= names]
        if len(matching) != 1:
            raise InputError(f"the model predicts {predicted.num_keypoints} {predicted.name} "
                             f"keypoints and the annotations have {annotated} per person; no "
                             "keypoint set of that size is part of the model's")
        scored = matching[0]
    _require_sigmas(scored)
    return scored


def _require_sigmas(keypoint_set: KeypointSet) -> None:
    if keypoint_set.sigmas is None:
        raise InputError(f"keypoint set {keypoint_set.name} has no OKS sigmas, so COCO AP is "
                         "undefined for it; score it with pckh")


def evaluate_model(model_path: str | Path, annotations_path: str | Path,
                   images_dir: str | Path, *, flip: bool | None = None,
                   refine: str | None = None, detections: str | Path | None = None,
                   detection_threshold: float = 0.0, progress: bool = True,
                   limit: int | None = None, cuda_graph: bool = False,
                   cuda_impl: str = "auto") -> EvalReport:
    """COCO keypoint AP/AR of a model over an annotated image folder.

    Top-down models run on the ground-truth person boxes (people with labelled
    keypoints, no crowds: the official HRNet "use_gt_bbox" test), or on the
    person boxes of `detections`, a COCO detection results file, those scoring
    below `detection_threshold` dropped. Bottom-up models (OpenPose) run on every
    image; their poses are scored in the annotations' keypoint set when it is part
    of the model's (COCO-17 from COCO-18 or BODY_25, matched by keypoint name).
    flip, refine: override the card's flip test and heatmap refinement (top-down).
    limit: only the first `limit` images (by id) that hold a labelled person; a
    quick check, not a figure to publish.
    cuda_graph, cuda_impl: TensorRT runner options (see open_runner).
    """
    start = time.perf_counter()
    if limit is not None and (not _is_int(limit) or limit <= 0):
        raise InputError(f"limit: expected a positive number of images, got {limit!r}")
    if not (_is_number(detection_threshold) and math.isfinite(detection_threshold)):
        raise InputError(f"detection_threshold: expected a number, got {detection_threshold!r}")
    dataset, count = _load_coco_keypoints(annotations_path)
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise InputError(f"images folder {str(images_dir)!r} does not exist")
    if not any(c["id"] == PERSON_CATEGORY_ID for c in dataset["categories"]):
        raise InputError(f"annotation file {str(annotations_path)!r} has no person category "
                         f"(id {PERSON_CATEGORY_ID}); its categories are "
                         f"{[c['id'] for c in dataset['categories']]}")

    people = _ground_truth_people(dataset)
    if not people:
        raise InputError(f"annotation file {str(annotations_path)!r} holds no person with "
                         "labelled keypoints (num_keypoints > 0, iscrowd 0): nothing to score")
    images = sorted(dataset["images"], key=lambda image: image["id"])
    if limit is not None:
        images = [image for image in images if image["id"] in people][:limit]
    selected = {image["id"] for image in images}
    if detections is None:
        boxes = {i: ([a["bbox"] for a in people[i]], [1.0] * len(people[i]))
                 for i in selected if i in people}
        box_source = "ground truth"
    else:
        boxes = _read_detections(detections, selected, detection_threshold)
        box_source = f"detections {str(detections)} (score >= {detection_threshold:g})"

    to_run = [image for image in images if image["id"] in boxes]
    for image in to_run:
        if not isinstance(image.get("file_name"), str) or not image["file_name"]:
            raise InputError(f"annotation file {str(annotations_path)!r}: image id {image['id']} "
                             "has no 'file_name'")
    # Found before the run, not an hour into it.
    _check_image_files(to_run, images_dir, annotations_path)

    results: list[dict[str, Any]] = []
    people_run = skipped = 0
    with open_runner(model_path, cuda_graph=cuda_graph, cuda_impl=cuda_impl) as runner:
        card = runner.card
        keypoint_set = get_keypoint_set(card.keypoints)
        if card.paradigm == "bottom-up":
            if detections is not None or flip or refine is not None:
                raise InputError(f"{card.family}/{card.variant} is a bottom-up model: it finds "
                                 "people in the whole image, so detections, flip test and "
                                 "refinement do not apply")
            scored = _scored_keypoint_set(keypoint_set, count)
            _check_image_files(images, images_dir, annotations_path)
            pipeline = bottom_up_pipeline(runner)
            for image_info in _progress(images, progress):
                poses = pipeline(read_image(images_dir / image_info["file_name"]))
                poses = poses.in_keypoint_set(scored.name)
                results.extend(poses.to_coco_results(image_info["id"], PERSON_CATEGORY_ID))
                people_run += len(poses)
            metrics = coco_keypoint_eval(dataset, results, sigmas=scored.sigmas,
                                         image_ids=selected)
            return EvalReport(metrics=metrics, images=len(images), people=people_run,
                              backend=backend_name(runner), family=card.family,
                              variant=card.variant, precision=card.precision, flip_test=False,
                              refine="none", box_source=f"none (bottom-up; scored as "
                                                        f"{scored.name})",
                              wall_time_s=time.perf_counter() - start,
                              random_init=card.random_init)
        if count is not None and count != keypoint_set.num_keypoints:
            raise InputError(f"the model predicts {keypoint_set.num_keypoints} "
                             f"{keypoint_set.name} keypoints but the annotations have {count} "
                             "per person; evaluate with annotations of the model's keypoint set")
        _require_sigmas(keypoint_set)
        pipeline = TopDownPipeline(runner, flip_test=flip, refine=refine)
        for image_info in _progress(to_run, progress):
            image = read_image(images_dir / image_info["file_name"])
            image_boxes, image_scores = _usable_boxes(*boxes[image_info["id"]], image.shape,
                                                      clean=detections is None)
            # Ground-truth people whose box leaves nothing to crop still count in AP, as
            # misses: the report says how many, or the drop would look like the model's.
            skipped += len(boxes[image_info["id"]][0]) - len(image_boxes)
            if not len(image_boxes):
                continue
            poses = pipeline(image, image_boxes, image_scores)
            results.extend(poses.to_coco_results(image_info["id"], PERSON_CATEGORY_ID))
            people_run += len(poses)
        backend = backend_name(runner)
        flip_test, refine_used = pipeline.flip_test, pipeline.decoder.refine

    metrics = coco_keypoint_eval(dataset, results, sigmas=keypoint_set.sigmas,
                                 image_ids=selected)
    return EvalReport(metrics=metrics, images=len(images), people=people_run, backend=backend,
                      family=card.family, variant=card.variant, precision=card.precision,
                      flip_test=bool(flip_test), refine=refine_used, box_source=box_source,
                      wall_time_s=time.perf_counter() - start, random_init=card.random_init,
                      skipped_boxes=skipped)
