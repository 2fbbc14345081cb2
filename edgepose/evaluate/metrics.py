"""COCO keypoint AP/AR by pycocotools' COCOeval (loaded lazily: the 'eval' extra), so
the numbers are the ones papers and leaderboards print, and OKS, the same similarity
written out in numpy for tests and reports.

Shape letters: K keypoints.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from edgepose import _optional
from edgepose.errors import InputError
from edgepose.evaluate.common import is_int, is_number
from edgepose.evaluate.datasets import check_coco_keypoints, load_coco_keypoints
from edgepose.io import read_json
from edgepose.keypoints import COCO17

_log = logging.getLogger(__name__)

#: COCOeval's keypoint summary, in the order of its `stats`.
METRIC_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
#: COCOeval's keypoint setting scores only this many results per image, best first.
COCO_MAX_RESULTS_PER_IMAGE = 20


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
    if not (is_number(area) or isinstance(area, np.number)) or not (math.isfinite(area)
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
        if not is_int(image_id) or image_id not in image_ids:
            raise InputError(f"results[{index}] has image_id {image_id!r}, which the "
                             "annotations do not hold; results must come from the annotated "
                             "images")
        if not is_int(category_id) or category_id not in category_ids:
            raise InputError(f"results[{index}] has category_id {category_id!r}; the "
                             f"annotations have categories {sorted(category_ids)}")
        if not (isinstance(keypoints, (list, tuple)) and len(keypoints) == 3 * count
                and all(is_number(v) and math.isfinite(v) for v in keypoints)):
            got = len(keypoints) if isinstance(keypoints, (list, tuple)) else keypoints
            raise InputError(f"results[{index}]['keypoints']: expected {3 * count} finite "
                             f"numbers (x, y, score for {count} keypoints), got {got!r}")
        if not (is_number(score) and math.isfinite(score)):
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
        dataset, count = load_coco_keypoints(annotations)
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

    def configure(params: Any) -> None:
        params.kpt_oks_sigmas = sigma_array
        params.imgIds = selected

    return _cocoeval(coco_api, dataset, cleaned, "keypoints", configure, METRIC_NAMES)


def _cocoeval(coco_api: Any, dataset: Mapping[str, Any], results: list[dict[str, Any]],
              iou_type: str, configure: Callable[[Any], None],
              names: Sequence[str]) -> dict[str, float]:
    """pycocotools' COCOeval summary as {name: value}, NaN where it reports -1;
    configure sets the evaluator's params (image ids, sigmas, categories)."""
    # pycocotools prints progress on stdout; a library must not, so it goes to the debug log.
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        ground_truth, detections = _coco_pair(coco_api, dataset, results)
        evaluator = coco_api.cocoeval.COCOeval(ground_truth, detections, iouType=iou_type)
        configure(evaluator.params)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    _log.debug("pycocotools output:\n%s", captured.getvalue())
    return {name: float(value) if value >= 0 else math.nan
            for name, value in zip(names, evaluator.stats)}


def _coco_pair(coco_api: Any, dataset: Mapping[str, Any],
               results: list[dict[str, Any]]) -> tuple[Any, Any]:
    """pycocotools' ground truth and results objects for COCOeval."""
    ground_truth = coco_api.coco.COCO()
    # Shallow copies: COCOeval writes 'ignore' flags into the annotation dicts.
    ground_truth.dataset = {**dataset, "annotations": [dict(a) for a in dataset["annotations"]]}
    ground_truth.createIndex()
    if results:
        return ground_truth, ground_truth.loadRes(results)
    # loadRes reads results[0] and fails on an empty list; no results is AP 0.
    detections = coco_api.coco.COCO()
    detections.dataset = {"images": list(dataset["images"]),
                          "categories": list(dataset["categories"]), "annotations": []}
    detections.createIndex()
    return ground_truth, detections


#: pycocotools' bbox summary, in its order.
BOX_METRIC_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs",
                    "ARm", "ARl")


def coco_box_eval(dataset: Mapping[str, Any], results: Sequence[Mapping[str, Any]], *,
                  image_ids: Iterable[int]) -> dict[str, float]:
    """COCO box AP/AR (pycocotools, iouType "bbox") of person detections against the
    annotations' person boxes, over `image_ids`; an empty result list scores 0."""
    coco_api = _optional.pycocotools()
    selected = sorted(set(image_ids))

    def configure(params: Any) -> None:
        params.imgIds = selected
        params.catIds = [1]

    return _cocoeval(coco_api, dataset, [dict(r) for r in results], "bbox", configure,
                     BOX_METRIC_NAMES)
