"""Poses: the result of every pipeline, in image pixels.

Shape letters: N people, K keypoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgepose.errors import InputError
from edgepose.keypoints import get_keypoint_set


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise InputError(message)


@dataclass(frozen=True)
class Poses:
    """xy (N,K,2) float32 pixels; scores (N,K); person_scores (N,); boxes (N,4) xywh or None;
    track_ids (N,) int, a person's id across a stream's frames, or None outside a stream."""

    xy: np.ndarray
    scores: np.ndarray
    person_scores: np.ndarray
    keypoint_set: str
    boxes: np.ndarray | None = None
    track_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        count = get_keypoint_set(self.keypoint_set).num_keypoints
        xy = np.asarray(self.xy, dtype=np.float32)
        _check(xy.ndim == 3 and xy.shape[1:] == (count, 2),
               f"Poses.xy: expected shape (N, {count}, 2) for {self.keypoint_set}, got {xy.shape}")
        people = xy.shape[0]
        scores = np.asarray(self.scores, dtype=np.float32)
        _check(scores.shape == (people, count),
               f"Poses.scores: expected shape ({people}, {count}), got {scores.shape}")
        person_scores = np.asarray(self.person_scores, dtype=np.float32)
        _check(person_scores.shape == (people,),
               f"Poses.person_scores: expected shape ({people},), got {person_scores.shape}")
        object.__setattr__(self, "xy", xy)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "person_scores", person_scores)
        if self.boxes is not None:
            boxes = np.asarray(self.boxes, dtype=np.float32)
            _check(boxes.shape == (people, 4),
                   f"Poses.boxes: expected shape ({people}, 4), got {boxes.shape}")
            object.__setattr__(self, "boxes", boxes)
        if self.track_ids is not None:
            ids = np.asarray(self.track_ids)
            _check(ids.shape == (people,) and ids.dtype.kind in "iu",
                   f"Poses.track_ids: expected ({people},) integers, got {ids.dtype} {ids.shape}")
            object.__setattr__(self, "track_ids", ids.astype(np.int64))

    def __len__(self) -> int:
        return self.xy.shape[0]

    def in_keypoint_set(self, name: str) -> "Poses":
        """The same people in keypoint set `name`, matched by keypoint name.

        For scoring a model against annotations of another convention, e.g. OpenPose's
        COCO-18 or BODY_25 against COCO-17 ground truth: the neck, mid-hip and feet the
        target lacks are dropped, and the rest is reordered. InputError when the target
        has a keypoint this set does not predict.
        """
        source, target = get_keypoint_set(self.keypoint_set), get_keypoint_set(name)
        if source.name == target.name:
            return self
        position = {keypoint: i for i, keypoint in enumerate(source.names)}
        absent = [keypoint for keypoint in target.names if keypoint not in position]
        if absent:
            raise InputError(f"{source.name} poses cannot be given as {target.name}: they have "
                             f"no {', '.join(absent)}")
        index = [position[keypoint] for keypoint in target.names]
        return Poses(xy=self.xy[:, index], scores=self.scores[:, index],
                     person_scores=self.person_scores, keypoint_set=target.name,
                     boxes=self.boxes, track_ids=self.track_ids)

    def to_coco_results(self, image_id: int, category_id: int = 1) -> list[dict[str, Any]]:
        """COCO keypoint results: flat [x, y, score] per keypoint, as the evaluators read them."""
        triples = np.concatenate([self.xy, self.scores[..., None]], axis=2)
        results = []
        for person in range(len(self)):
            entry = {
                "image_id": image_id,
                "category_id": category_id,
                "keypoints": [round(float(v), 3) for v in triples[person].ravel()],
                "score": float(self.person_scores[person]),
            }
            if self.boxes is not None:
                entry["bbox"] = [round(float(v), 2) for v in self.boxes[person]]
            if self.track_ids is not None:
                entry["track_id"] = int(self.track_ids[person])
            results.append(entry)
        return results
