"""Accuracy: COCO keypoint AP/AR, PCKh, and a model run over an annotated image folder.

metrics: OKS and COCOeval; datasets: the COCO files read; coco: the COCO run loop
(evaluate_model); mpii: PCKh, MPII's files and its run loop (evaluate_mpii);
tracking: identity switches and MOTA of track ids across frames.
"""

from __future__ import annotations

from edgepose.evaluate.coco import TABLE_METRICS, EvalReport, evaluate_model
from edgepose.evaluate.common import backend_name
from edgepose.evaluate.datasets import (PERSON_CATEGORY_ID, check_coco_keypoints,
                                        read_coco_keypoints)
from edgepose.evaluate.metrics import (COCO_MAX_RESULTS_PER_IMAGE, METRIC_NAMES,
                                       coco_keypoint_eval, oks)
from edgepose.evaluate.mpii import (MPII_HEAD_SIZE_FACTOR, MPII_MEAN_EXCLUDES, MpiiReport,
                                    MpiiTruth, PCKhResult, evaluate_mpii, mpii_head_sizes, pckh,
                                    read_mpii_truth)
from edgepose.evaluate.tracking import TrackingScore, id_switches

__all__ = [
    "COCO_MAX_RESULTS_PER_IMAGE", "METRIC_NAMES", "MPII_HEAD_SIZE_FACTOR", "MPII_MEAN_EXCLUDES",
    "PERSON_CATEGORY_ID", "TABLE_METRICS", "EvalReport", "MpiiReport", "MpiiTruth",
    "PCKhResult", "TrackingScore", "backend_name", "check_coco_keypoints", "coco_keypoint_eval",
    "evaluate_model", "evaluate_mpii", "id_switches", "mpii_head_sizes", "oks", "pckh", "read_coco_keypoints",
    "read_mpii_truth",
]
