"""COCO keypoint AP/AR of a model run over an annotated image folder: the loop behind
`edgepose eval`.

Shape letters: N people, K keypoints.
"""

from __future__ import annotations

import math
import time
from contextlib import ExitStack
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from edgepose.backends import open_runner
from edgepose.errors import InputError
from edgepose.evaluate.common import backend_name, is_int, is_number, json_number, progress_bar
from edgepose.evaluate.datasets import (PERSON_CATEGORY_ID, check_image_files,
                                        ground_truth_people, load_coco_keypoints,
                                        read_detections, usable_boxes)
from edgepose.evaluate.metrics import METRIC_NAMES, coco_box_eval, coco_keypoint_eval
from edgepose.io import read_image
from edgepose.keypoints import KEYPOINT_SETS, KeypointSet, get_keypoint_set
from edgepose.pipeline import TopDownPipeline, bottom_up_pipeline

#: The columns models are compared by (EvalReport.format_table).
TABLE_METRICS = ("AP", "AP50", "AP75", "APm", "APl", "AR")


@dataclass(frozen=True)
class EvalReport:
    """One evaluate_model run.

    metrics: METRIC_NAMES → value (NaN where nobody is in the category).
    images: images scored; people: person boxes the model ran on.
    box_source: "ground truth", the detections file or the detector used.
    skipped_boxes: boxes not run because nothing of them lies in the image (zero width
        or height, or wholly outside); with ground-truth boxes, people scored as missed.
    detector: with a detector, the line stating its card; box_metrics: its person box
        AP/AR on the same images (BOX_METRIC_NAMES).
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
    detector: str | None = None
    box_metrics: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        absent = [name for name in METRIC_NAMES if name not in self.metrics]
        if absent:
            raise InputError(f"EvalReport.metrics: expected {METRIC_NAMES}, missing {absent}")
        object.__setattr__(self, "metrics",
                           MappingProxyType({k: float(v) for k, v in self.metrics.items()}))
        for name in ("images", "people", "skipped_boxes"):
            value = getattr(self, name)
            if not is_int(value) or value < 0:
                raise InputError(f"EvalReport.{name}: expected a count >= 0, got {value!r}")
        if not (is_number(self.wall_time_s) and self.wall_time_s >= 0):
            raise InputError(f"EvalReport.wall_time_s: expected seconds >= 0, "
                             f"got {self.wall_time_s!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN metrics become null."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["metrics"] = {k: json_number(v) for k, v in self.metrics.items()}
        if self.box_metrics is not None:
            data["box_metrics"] = {k: json_number(v) for k, v in self.box_metrics.items()}
        return data

    @property
    def ms_per_image(self) -> float:
        """Wall time per image scored, reading and scoring included."""
        return 1000.0 * self.wall_time_s / max(self.images, 1)

    def format_table(self) -> str:
        """Two aligned lines: the TABLE_METRICS names and their values ('n/a' for NaN)."""
        cells = [("n/a" if math.isnan(self.metrics[name]) else f"{self.metrics[name]:.3f}")
                 for name in TABLE_METRICS]
        width = max(len(c) for c in cells + list(TABLE_METRICS)) + 2
        return "\n".join("".join(c.rjust(width) for c in row)
                         for row in (TABLE_METRICS, cells))


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
                   cuda_impl: str = "auto", detector: str | Path | None = None,
                   detector_options: Mapping[str, Any] | None = None) -> EvalReport:
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
    detector: a person detector (edgepose.detect.Detector.open, with detector_options)
    that finds the boxes in every image instead; its person box AP is reported too.
    """
    start = time.perf_counter()
    if limit is not None and (not is_int(limit) or limit <= 0):
        raise InputError(f"limit: expected a positive number of images, got {limit!r}")
    if not (is_number(detection_threshold) and math.isfinite(detection_threshold)):
        raise InputError(f"detection_threshold: expected a number, got {detection_threshold!r}")
    dataset, count = load_coco_keypoints(annotations_path)
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise InputError(f"images folder {str(images_dir)!r} does not exist")
    if not any(c["id"] == PERSON_CATEGORY_ID for c in dataset["categories"]):
        raise InputError(f"annotation file {str(annotations_path)!r} has no person category "
                         f"(id {PERSON_CATEGORY_ID}); its categories are "
                         f"{[c['id'] for c in dataset['categories']]}")

    people = ground_truth_people(dataset)
    if not people:
        raise InputError(f"annotation file {str(annotations_path)!r} holds no person with "
                         "labelled keypoints (num_keypoints > 0, iscrowd 0): nothing to score")
    images = sorted(dataset["images"], key=lambda image: image["id"])
    if limit is not None:
        images = [image for image in images if image["id"] in people][:limit]
    selected = {image["id"] for image in images}
    if detector is not None and detections is not None:
        raise InputError("boxes come from a detector or from a detections file, not both")
    if detector is not None:
        boxes = {image["id"]: None for image in images}
        box_source = f"detector {Path(detector).name}"
    elif detections is None:
        boxes = {i: ([a["bbox"] for a in people[i]], [1.0] * len(people[i]))
                 for i in selected if i in people}
        box_source = "ground truth"
    else:
        boxes = read_detections(detections, selected, detection_threshold)
        box_source = f"detections {str(detections)} (score >= {detection_threshold:g})"

    to_run = [image for image in images if image["id"] in boxes]
    for image in to_run:
        if not isinstance(image.get("file_name"), str) or not image["file_name"]:
            raise InputError(f"annotation file {str(annotations_path)!r}: image id {image['id']} "
                             "has no 'file_name'")
    # Found before the run, not an hour into it.
    check_image_files(to_run, images_dir, annotations_path)

    results: list[dict[str, Any]] = []
    found_boxes: list[dict[str, Any]] = []
    people_run = skipped = 0
    with ExitStack() as stack:
        runner = stack.enter_context(open_runner(model_path, cuda_graph=cuda_graph,
                                                 cuda_impl=cuda_impl))
        card = runner.card
        keypoint_set = get_keypoint_set(card.keypoints)
        if card.paradigm == "bottom-up":
            if detections is not None or detector is not None or flip or refine is not None:
                raise InputError(f"{card.family}/{card.variant} is a bottom-up model: it finds "
                                 "people in the whole image, so detections, a detector, flip "
                                 "test and refinement do not apply")
            scored = _scored_keypoint_set(keypoint_set, count)
            check_image_files(images, images_dir, annotations_path)
            pipeline = bottom_up_pipeline(runner)
            for image_info in progress_bar(images, progress):
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
        finder = None
        if detector is not None:
            from edgepose.detect import Detector

            finder = stack.enter_context(Detector.open(detector, **(detector_options or {})))
        for image_info in progress_bar(to_run, progress):
            image = read_image(images_dir / image_info["file_name"])
            if finder is not None:
                found = finder(image)
                boxes[image_info["id"]] = (found.boxes.tolist(), found.scores.tolist())
                found_boxes.extend(dict(entry, image_id=image_info["id"])
                                   for entry in found.to_json())
            image_boxes, image_scores = usable_boxes(*boxes[image_info["id"]], image.shape,
                                                      clean=detections is None
                                                      and finder is None)
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
        statement = None if finder is None else finder.statement

    metrics = coco_keypoint_eval(dataset, results, sigmas=keypoint_set.sigmas,
                                 image_ids=selected)
    box_metrics = (None if statement is None
                   else coco_box_eval(dataset, found_boxes, image_ids=selected))
    return EvalReport(metrics=metrics, images=len(images), people=people_run, backend=backend,
                      family=card.family, variant=card.variant, precision=card.precision,
                      flip_test=bool(flip_test), refine=refine_used, box_source=box_source,
                      wall_time_s=time.perf_counter() - start, random_init=card.random_init,
                      skipped_boxes=skipped, detector=statement, box_metrics=box_metrics)
