"""MPII PCKh of a top-down model, scored as the official HRNet code scores MPII validation.

Inputs are the files that code reads (lib/dataset/mpii.py): `valid.json`, a list of
people with MATLAB (1-based) `center`, `scale`, `joints` and `joints_vis`, and
`gt_valid.mat` with `pos_gt_src` (16, 2, N), `jnt_missing` (16, N) and `headboxes_src`
(2, 2, N), person i of the .mat being entry i of the .json. The official steps:
crop at center − 1 (0-based) moved down by 15·scale with scale × 1.25, predict in
0-based pixels, add 1 back, and count a joint right when its distance to pos_gt_src
is at most threshold × 0.6 × the head box diagonal; the mean weighs joints by how often
they are visible and leaves out pelvis and thorax; "Mean@0.1" is the same at 0.1.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from edgepose import _optional
from edgepose.backends import open_runner
from edgepose.decode.hourglass import mpii_center_scale
from edgepose.errors import InputError
from edgepose.evaluate.common import backend_name, is_number, json_number
from edgepose.io import read_image
from edgepose.keypoints import MPII16
from edgepose.pipeline import TopDownPipeline

#: MPII's head size is this fraction of the head box diagonal (SC_BIAS in its code).
MPII_HEAD_SIZE_FACTOR = 0.6
#: MPII's mean PCKh leaves out pelvis and thorax, which are nearly always right.
MPII_MEAN_EXCLUDES = tuple(MPII16.names.index(name) for name in ("pelvis", "thorax"))


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
        return {"threshold": self.threshold, "mean": json_number(self.mean),
                "per_joint": [json_number(v) for v in self.per_joint],
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
    if not (is_number(threshold) and math.isfinite(threshold) and threshold > 0):
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


#: The rows HRNet prints: a joint group and the MPII16 joints averaged into it.
PCKH_GROUPS = (("Head", ("head_top",)), ("Shoulder", ("left_shoulder", "right_shoulder")),
               ("Elbow", ("left_elbow", "right_elbow")), ("Wrist", ("left_wrist", "right_wrist")),
               ("Hip", ("left_hip", "right_hip")), ("Knee", ("left_knee", "right_knee")),
               ("Ankle", ("left_ankle", "right_ankle")))
MATLAB_OFFSET = 1.0  # MPII's coordinates count pixels from 1


@dataclass(frozen=True)
class MpiiTruth:
    """The people of valid.json with the truth of gt_valid.mat, one row per person."""
    images: list[str]           # (N,) file names
    centers: np.ndarray         # (N, 2) 1-based, as in valid.json
    scales: np.ndarray          # (N,)
    joints: np.ndarray          # (N, 16, 2) 1-based, pos_gt_src
    visible: np.ndarray         # (N, 16) bool, 1 − jnt_missing
    head_boxes: np.ndarray      # (N, 4) x1, y1, x2, y2 from headboxes_src


def read_mpii_truth(annotations: str | Path, ground_truth_mat: str | Path) -> MpiiTruth:
    """valid.json + gt_valid.mat → MpiiTruth, checked against each other."""
    try:
        people = json.loads(Path(annotations).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read MPII annotations {str(annotations)!r}: {exc}") from None
    if not isinstance(people, list) or not people or not all(
            isinstance(p, dict) and {"image", "center", "scale"} <= p.keys() for p in people):
        raise InputError(f"{annotations}: expected HRNet's MPII valid.json, a list of people "
                         f"with 'image', 'center' and 'scale'")
    scipy_io = _optional.import_optional("scipy.io", "eval", "reading MPII's .mat files")
    try:
        mat = scipy_io.loadmat(str(ground_truth_mat))
    except (OSError, ValueError, TypeError, scipy_io.matlab.MatReadError) as exc:
        raise InputError(f"cannot read {str(ground_truth_mat)!r} as a MATLAB file: {exc}") from None
    missing = [k for k in ("pos_gt_src", "jnt_missing", "headboxes_src") if k not in mat]
    if missing:
        raise InputError(f"{ground_truth_mat}: not MPII's gt_valid.mat, no {', '.join(missing)}")
    count, joints = len(people), MPII16.num_keypoints
    shapes = {"pos_gt_src": (joints, 2, count), "jnt_missing": (joints, count),
              "headboxes_src": (2, 2, count)}
    for key, shape in shapes.items():
        if mat[key].shape != shape:
            raise InputError(f"{ground_truth_mat}: {key} has shape {mat[key].shape}; the "
                             f"{count} people of {annotations} need {shape}")
    boxes = np.asarray(mat["headboxes_src"], np.float64)  # (corner, xy, person)
    try:
        centers = np.array([p["center"] for p in people], np.float64).reshape(count, 2)
        scales = np.array([p["scale"] for p in people], np.float64).reshape(count)
    except (TypeError, ValueError):
        raise InputError(f"{annotations}: every person needs 'center' as [x, y] and 'scale' as "
                         "one number, as in HRNet's MPII valid.json") from None
    return MpiiTruth(
        images=[str(p["image"]) for p in people],
        centers=centers,
        scales=scales,
        joints=np.transpose(np.asarray(mat["pos_gt_src"], np.float64), (2, 0, 1)),
        visible=np.asarray(mat["jnt_missing"]).T == 0,
        head_boxes=np.concatenate([boxes[0].T, boxes[1].T], axis=1))


@dataclass(frozen=True)
class MpiiReport:
    at_half: PCKhResult         # PCKh@0.5
    at_tenth: PCKhResult        # PCKh@0.1
    people: int
    images: int
    backend: str
    family: str
    variant: str
    flip_test: bool
    wall_time_s: float
    random_init: bool = False   # the model card says its weights are untrained

    def groups(self) -> dict[str, float]:
        """HRNet's rows in percent: each joint group's mean, Mean and Mean@0.1."""
        names = MPII16.names
        rows = {group: 100 * float(np.mean([self.at_half.per_joint[names.index(j)] for j in joints]))
                for group, joints in PCKH_GROUPS}
        rows["Mean"] = 100 * self.at_half.mean
        rows["Mean@0.1"] = 100 * self.at_tenth.mean
        return rows

    def format_table(self) -> str:
        rows = self.groups()
        width = max(len(name) for name in rows) + 2
        return ("".join(f"{name:>{width}}" for name in rows) + "\n"
                + "".join(f"{'n/a' if math.isnan(v) else f'{v:.2f}':>{width}}"
                          for v in rows.values()))

    def to_dict(self) -> dict[str, Any]:
        return {"pckh": {k: (None if math.isnan(v) else v) for k, v in self.groups().items()},
                "at_0.5": self.at_half.to_dict(), "at_0.1": self.at_tenth.to_dict(),
                "people": self.people, "images": self.images, "backend": self.backend,
                "family": self.family, "variant": self.variant, "flip_test": self.flip_test,
                "wall_time_s": self.wall_time_s, "random_init": self.random_init}


def predict_mpii(pipeline: TopDownPipeline, truth: MpiiTruth, images_dir: Path,
                 people: Iterable[int]) -> np.ndarray:
    """Predictions (N, 16, 2) in MPII's 1-based pixels for the given people, NaN elsewhere."""
    predicted = np.full(truth.joints.shape, np.nan)
    by_image: dict[str, list[int]] = {}
    for index in people:
        by_image.setdefault(truth.images[index], []).append(index)
    for name, indices in by_image.items():
        path = images_dir / name
        if not path.is_file():
            raise InputError(f"image {name!r} of the annotations is not in {images_dir}")
        centers, scales = mpii_center_scale(truth.centers[indices] - MATLAB_OFFSET,
                                            truth.scales[indices])
        poses = pipeline.run_centers_scales(read_image(path), centers, scales)
        predicted[indices] = poses.xy + MATLAB_OFFSET
    return predicted


def evaluate_mpii(model_path: str | Path, annotations: str | Path, ground_truth_mat: str | Path,
                  images_dir: str | Path, *, flip: bool | None = None,
                  refine: str | None = None, limit: int | None = None,
                  cuda_graph: bool = False, cuda_impl: str = "auto") -> MpiiReport:
    """PCKh@0.5 and @0.1 of an MPII16 top-down model over MPII validation (see module doc).

    limit: only the first `limit` people; a quick check, not a figure to publish.
    """
    start = time.perf_counter()
    truth = read_mpii_truth(annotations, ground_truth_mat)
    selected = range(len(truth.images) if limit is None else min(limit, len(truth.images)))
    with open_runner(model_path, cuda_graph=cuda_graph, cuda_impl=cuda_impl) as runner:
        card = runner.card
        if card.keypoints != MPII16.name or card.paradigm != "top-down":
            raise InputError(f"MPII PCKh scores top-down {MPII16.name} models; {model_path} is "
                             f"a {card.paradigm} {card.keypoints} model")
        pipeline = TopDownPipeline(runner, flip_test=flip, refine=refine)
        predicted = predict_mpii(pipeline, truth, Path(images_dir), selected)
        backend = backend_name(runner)
    rows = list(selected)
    head_sizes = mpii_head_sizes(truth.head_boxes[rows])
    scores = {threshold: pckh(predicted[rows], truth.joints[rows], truth.visible[rows],
                              head_sizes, threshold, mean_excludes=MPII_MEAN_EXCLUDES)
              for threshold in (0.5, 0.1)}
    return MpiiReport(at_half=scores[0.5], at_tenth=scores[0.1], people=len(rows),
                      images=len({truth.images[i] for i in rows}), backend=backend,
                      family=card.family, variant=card.variant,
                      flip_test=bool(pipeline.flip_test), wall_time_s=time.perf_counter() - start,
                      random_init=card.random_init)
