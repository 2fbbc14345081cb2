"""Persistent ids for people across video frames: a ByteTrack-style tracker.

Shape letters: N boxes of one frame, T tracks, K keypoints. Boxes are (x, y, w, h)
pixels; the Kalman state is (cx, cy, w/h, h) and their velocities per frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgepose import _optional
from edgepose.errors import InputError
from edgepose.keypoints import COCO17

# The Kalman noise scales of ByteTrack (inherited from DeepSORT): standard deviations
# as fractions of the box height, so one filter serves near and far people alike.
POSITION_NOISE = 1.0 / 20.0
VELOCITY_NOISE = 1.0 / 160.0
# The aspect ratio barely changes for a walking person; its noise is fixed, not scaled.
_ASPECT_NOISE = 1e-2
_ASPECT_VELOCITY_NOISE = 1e-5
_ASPECT_MEASUREMENT_NOISE = 1e-1

_TRANSITION = np.eye(8)
_TRANSITION[:4, 4:] = np.eye(4)  # constant velocity, one frame per step
_OBSERVATION = np.eye(4, 8)


@dataclass(frozen=True)
class TrackerConfig:
    """Thresholds of the tracker (ByteTrack's defaults).

    high_score: detections scoring at least this enter the first association.
    low_score: detections in [low_score, high_score) enter only the second one, where
        they can extend a track but never start one; lower scores are ignored.
    new_track_score: an unmatched high-score detection starts a track only from this score.
    first_match_iou: the least similarity for a pair of the first association: IoU of
        the track's predicted box, or with keypoints the IoU–OKS mean (see Tracker), so
        that a weak overlap whose poses disagree no longer matches.
    second_match_iou: the least IoU for a pair of the second (low-score) association.
    max_lost_frames: a track missing from up to this many consecutive frames can still
        take its id back; missing from more, it is deleted.
    use_keypoints: blend keypoint OKS into the first association where keypoints are given.
    min_keypoint_score: a keypoint counts in OKS only if it scores at least this both in
        the detection and in the track's last pose.
    """

    high_score: float = 0.5
    low_score: float = 0.1
    new_track_score: float = 0.6
    first_match_iou: float = 0.2
    second_match_iou: float = 0.5
    max_lost_frames: int = 30
    use_keypoints: bool = True
    min_keypoint_score: float = 0.3

    def __post_init__(self) -> None:
        for name in ("high_score", "low_score", "new_track_score", "min_keypoint_score"):
            value = getattr(self, name)
            if not _is_number(value) or not math.isfinite(value):
                raise InputError(f"TrackerConfig.{name} must be a finite number, got {value!r}")
        if not self.low_score <= self.high_score <= self.new_track_score:
            raise InputError(
                "TrackerConfig: expected low_score <= high_score <= new_track_score, got "
                f"{self.low_score}, {self.high_score}, {self.new_track_score}")
        for name in ("first_match_iou", "second_match_iou"):
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 < value <= 1.0:
                raise InputError(f"TrackerConfig.{name} must lie in (0, 1], got {value!r}")
        lost = self.max_lost_frames
        if not isinstance(lost, int) or isinstance(lost, bool) or lost < 0:
            raise InputError(f"TrackerConfig.max_lost_frames must be an int >= 0, got {lost!r}")
        if not isinstance(self.use_keypoints, bool):
            raise InputError(f"TrackerConfig.use_keypoints must be a bool, "
                             f"got {self.use_keypoints!r}")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def box_iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU (A, B) of xywh boxes (A, 4) with xywh boxes (B, 4); 0 where the union is empty."""
    a = np.asarray(boxes_a, np.float64).reshape(-1, 1, 4)
    b = np.asarray(boxes_b, np.float64).reshape(1, -1, 4)
    low, high = np.maximum(a[..., :2], b[..., :2]), np.minimum(a[..., :2] + a[..., 2:],
                                                                b[..., :2] + b[..., 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=-1)
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def keypoint_similarity(xy: np.ndarray, counted: np.ndarray, reference_xy: np.ndarray,
                        reference_counted: np.ndarray, areas: np.ndarray,
                        sigmas: np.ndarray) -> np.ndarray:
    """OKS (N, T) of poses xy (N, K, 2) with reference poses (T, K, 2).

    counted (N, K) and reference_counted (T, K) say which keypoints take part; areas (N,)
    are the scales of the first poses in pixels². COCO's OKS: the mean over keypoints
    counted in both of exp(−d² / (2·area·(2σ)²)); NaN for a pair with none in common.
    """
    squared = np.sum((xy[:, None] - reference_xy[None]) ** 2, axis=-1)
    scale = 2.0 * (areas[:, None, None] + np.spacing(1)) * (2.0 * sigmas) ** 2
    both = counted[:, None, :] & reference_counted[None, :, :]
    total = np.where(both, np.exp(-squared / scale), 0.0).sum(axis=-1)
    common = both.sum(axis=-1)
    return np.where(common > 0, total / np.maximum(common, 1), np.nan)


def boxes_to_measurements(boxes: np.ndarray) -> np.ndarray:
    """xywh (N, 4) → Kalman measurements (N, 4): centre x, centre y, aspect w/h, height."""
    x, y, w, h = np.moveaxis(np.asarray(boxes, np.float64), -1, 0)
    return np.stack([x + w / 2, y + h / 2, w / h, h], axis=-1)


def measurements_to_boxes(measurements: np.ndarray) -> np.ndarray:
    """Kalman measurements (N, 4) as cx, cy, w/h, h → xywh boxes (N, 4)."""
    cx, cy, aspect, h = np.moveaxis(np.asarray(measurements, np.float64), -1, 0)
    w = aspect * h
    return np.stack([cx - w / 2, cy - h / 2, w, h], axis=-1)


def _diagonal(stds: np.ndarray) -> np.ndarray:
    """Covariances (N, D, D) with stds (N, D) squared on their diagonals."""
    return np.einsum("nd,de->nde", stds ** 2, np.eye(stds.shape[1]))


def kalman_initiate(measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States (N, 8) at rest at the measurements (N, 4), with their covariances (N, 8, 8).

    The velocities start at zero with a deliberately wide spread: nothing is known of
    them, and a narrow one would make the first frames of a track lag behind.
    """
    height = measurements[:, 3]
    position, velocity = 2 * POSITION_NOISE * height, 10 * VELOCITY_NOISE * height
    stds = np.stack([position, position, np.full_like(height, _ASPECT_NOISE), position,
                     velocity, velocity, np.full_like(height, _ASPECT_VELOCITY_NOISE), velocity],
                    axis=1)
    mean = np.concatenate([measurements, np.zeros_like(measurements)], axis=1)
    return mean, _diagonal(stds)


def kalman_predict(mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States (N, 8) and covariances (N, 8, 8) moved one frame ahead."""
    height = mean[:, 3]
    position, velocity = POSITION_NOISE * height, VELOCITY_NOISE * height
    aspect, aspect_velocity = (np.full_like(height, _ASPECT_NOISE),
                               np.full_like(height, _ASPECT_VELOCITY_NOISE))
    process = _diagonal(np.stack([position, position, aspect, position,
                                  velocity, velocity, aspect_velocity, velocity], axis=1))
    return mean @ _TRANSITION.T, _TRANSITION @ covariance @ _TRANSITION.T + process


def kalman_update(mean: np.ndarray, covariance: np.ndarray,
                  measurements: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States (N, 8) and covariances (N, 8, 8) corrected by measurements (N, 4)."""
    height = mean[:, 3]
    position = POSITION_NOISE * height
    aspect = np.full_like(height, _ASPECT_MEASUREMENT_NOISE)
    noise = _diagonal(np.stack([position, position, aspect, position], axis=1))
    innovation_covariance = _OBSERVATION @ covariance @ _OBSERVATION.T + noise
    # Solved rather than inverted; the innovation covariance is symmetric, so this is Kᵀ.
    gain = np.linalg.solve(innovation_covariance, _OBSERVATION @ covariance).transpose(0, 2, 1)
    innovation = measurements - mean @ _OBSERVATION.T
    mean = mean + np.einsum("nij,nj->ni", gain, innovation)
    covariance = covariance - gain @ innovation_covariance @ gain.transpose(0, 2, 1)
    return mean, covariance


def _assign(similarity: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs (row, column) maximising Σ(similarity − threshold) over pairs at or above it.

    A pair counts by how far it clears the threshold (ByteTrack's solver leaves rows and
    columns unmatched at that price), so a bare pass never displaces a clearly better one.
    """
    if similarity.size == 0:
        return []
    allowed = similarity >= threshold
    # The small constant keeps a pair exactly at the threshold above the forbidden ones.
    gain = np.where(allowed, similarity - threshold + 1e-9, 0.0)
    rows, columns = _optional.scipy_for_tracking().linear_sum_assignment(gain, maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, columns) if allowed[r, c]]


class _Track:
    """One person's filter state, the frame it was last seen, and its last pose."""

    def __init__(self, track_id: int, mean: np.ndarray, covariance: np.ndarray,
                 frame: int) -> None:
        self.track_id = track_id
        self.mean, self.covariance = mean, covariance
        self.last_frame = frame
        self.lost = False
        self.keypoints: np.ndarray | None = None       # (K, 2)
        self.keypoints_counted: np.ndarray | None = None  # (K,)


class Tracker:
    """ByteTrack: persistent ids for the boxes of successive frames of one video.

    Each `update` moves every track one frame with its Kalman filter, then
    1. matches detections scoring >= high_score with all tracks, seen or lost;
    2. matches detections in [low_score, high_score) with the tracks seen last frame that
       are still unmatched, by IoU alone (low scores mean occlusion or blur, when poses
       are least reliable); tracks left over are lost;
    3. starts a track, with a new id, for each unmatched detection scoring
       >= new_track_score — on the frame it appears, without ByteTrack's one-frame
       probation, so every such box has an id at once;
    4. deletes the tracks lost for more than max_lost_frames frames.
    With keypoints, step 1 scores a pair whose boxes overlap by the mean of their IoU and
    the OKS of the detection's pose with the track's last pose (area: the detection box's
    w·h); see `_first_similarity` for why the mean.
    Ids start at 1 and are never reused, not even after `reset`.

    sigmas: K OKS constants for the keypoints passed to `update`; COCO's when None and K
    is 17.
    """

    def __init__(self, config: TrackerConfig | None = None,
                 sigmas: np.ndarray | tuple[float, ...] | None = None) -> None:
        if config is None:
            config = TrackerConfig()
        if not isinstance(config, TrackerConfig):
            raise InputError(f"config: expected a TrackerConfig, got {type(config).__name__}")
        self.config = config
        self._sigmas: np.ndarray | None = None
        if sigmas is not None:
            values = np.asarray(sigmas, np.float64)
            positive = np.all(np.isfinite(values) & (values > 0))
            if values.ndim != 1 or values.size == 0 or not positive:
                raise InputError(f"sigmas: expected K positive finite numbers, got {sigmas!r}")
            self._sigmas = values
        self._next_id = 1
        self.reset()

    def reset(self) -> None:
        """Forget every track (a cut to another scene); ids keep counting up."""
        self._tracks: list[_Track] = []
        self._frame = 0

    def update(self, boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray | None = None,
               keypoint_scores: np.ndarray | None = None) -> np.ndarray:
        """Track ids (N,) int64 for the frame's boxes (N, 4) xywh with scores (N,).

        keypoints (N, K, 2) pixels and keypoint_scores (N, K), if given, help tell apart
        people whose boxes overlap. An id is -1 where a box joined no track and started
        none (a low score, or a high one below new_track_score).
        """
        boxes, scores = _checked_boxes(boxes, scores)
        pose = self._checked_pose(keypoints, keypoint_scores, len(boxes))
        self._frame += 1
        ids = np.full(len(boxes), -1, np.int64)
        self._predict()
        predicted = measurements_to_boxes(
            np.array([t.mean[:4] for t in self._tracks]).reshape(-1, 4))
        config = self.config
        high = np.flatnonzero(scores >= config.high_score)
        low = np.flatnonzero((scores >= config.low_score) & (scores < config.high_score))

        similarity = self._first_similarity(predicted, boxes[high], pose, high)
        matched_tracks, matched_high = set(), set()
        for track, column in _assign(similarity, config.first_match_iou):
            self._match(track, high[column], boxes, pose, ids)
            matched_tracks.add(track)
            matched_high.add(column)

        # Only tracks seen last frame: a lost track is too uncertain to take a low-score box.
        waiting = [t for t in range(len(self._tracks))
                   if t not in matched_tracks and not self._tracks[t].lost]
        similarity = box_iou_matrix(predicted[waiting], boxes[low])
        for row, column in _assign(similarity, config.second_match_iou):
            self._match(waiting[row], low[column], boxes, pose, ids)
            matched_tracks.add(waiting[row])

        for index, track in enumerate(self._tracks):
            if index not in matched_tracks:
                track.lost = True
        for column, detection in enumerate(high):
            if column not in matched_high and scores[detection] >= config.new_track_score:
                self._start(detection, boxes, pose, ids)
        self._tracks = [t for t in self._tracks
                        if self._frame - t.last_frame <= config.max_lost_frames]
        return ids

    def _predict(self) -> None:
        if not self._tracks:
            return
        for track in self._tracks:
            if track.lost:
                # Extrapolated over many unseen frames, a shrinking height reaches zero or
                # below, where the box means nothing; an unseen person keeps their size.
                track.mean[7] = 0.0
        mean, covariance = kalman_predict(np.stack([t.mean for t in self._tracks]),
                                          np.stack([t.covariance for t in self._tracks]))
        for track, m, c in zip(self._tracks, mean, covariance):
            track.mean, track.covariance = m, c

    def _first_similarity(self, predicted: np.ndarray, boxes: np.ndarray,
                          pose: tuple[np.ndarray, np.ndarray] | None,
                          detections: np.ndarray) -> np.ndarray:
        iou = box_iou_matrix(predicted, boxes)
        posed = [t for t, track in enumerate(self._tracks) if track.keypoints is not None]
        if pose is None or not posed or len(detections) == 0:
            return iou
        xy, counted = pose[0][detections], pose[1][detections]
        tracks = [self._tracks[t] for t in posed]
        # Where the pose was last seen, not moved along the predicted box: the IoU already
        # speaks for the motion model, the pose should be a second opinion when it is wrong
        # (people who meet and turn back, whom the prediction carries through each other).
        reference = np.stack([t.keypoints for t in tracks])
        reference_counted = np.stack([t.keypoints_counted for t in tracks])
        sigmas = self._sigmas if self._sigmas is not None else np.asarray(COCO17.sigmas)
        oks = keypoint_similarity(xy, counted, reference, reference_counted,
                                  boxes[:, 2] * boxes[:, 3], sigmas).T
        # Blend = mean of IoU and OKS, only where the boxes overlap. People crossing in a
        # crowd have near-equal boxes but different poses: the mean lets the pose break
        # that tie, which max(IoU, OKS) would not (a neighbour's full overlap would still
        # win), while a poorly estimated pose halves the box's vote instead of vetoing it,
        # as a product would. Pairs with no keypoint in common keep their IoU.
        blended = iou.copy()
        rows = np.asarray(posed)
        part = blended[rows]
        usable = (part > 0) & np.isfinite(oks)
        blended[rows] = np.where(usable, (part + np.nan_to_num(oks)) / 2, part)
        return blended

    def _match(self, index: int, detection: int, boxes: np.ndarray,
               pose: tuple[np.ndarray, np.ndarray] | None, ids: np.ndarray) -> None:
        track = self._tracks[index]
        measurement = boxes_to_measurements(boxes[detection:detection + 1])
        mean, covariance = kalman_update(track.mean[None], track.covariance[None], measurement)
        track.mean, track.covariance = mean[0], covariance[0]
        track.last_frame, track.lost = self._frame, False
        self._remember_pose(track, detection, boxes, pose)
        ids[detection] = track.track_id

    def _start(self, detection: int, boxes: np.ndarray,
               pose: tuple[np.ndarray, np.ndarray] | None, ids: np.ndarray) -> None:
        mean, covariance = kalman_initiate(boxes_to_measurements(boxes[detection:detection + 1]))
        track = _Track(self._next_id, mean[0], covariance[0], self._frame)
        self._next_id += 1
        self._remember_pose(track, detection, boxes, pose)
        self._tracks.append(track)
        ids[detection] = track.track_id

    def _remember_pose(self, track: _Track, detection: int, boxes: np.ndarray,
                       pose: tuple[np.ndarray, np.ndarray] | None) -> None:
        if pose is None:
            return
        track.keypoints = pose[0][detection].copy()
        track.keypoints_counted = pose[1][detection].copy()

    def _checked_pose(self, keypoints: np.ndarray | None, keypoint_scores: np.ndarray | None,
                      people: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(xy (N, K, 2), counted (N, K)) or None where keypoints are absent or unused."""
        if keypoints is None:
            if keypoint_scores is not None:
                raise InputError("keypoint_scores were given without keypoints")
            return None
        xy = np.asarray(keypoints, np.float64)
        if xy.ndim != 3 or xy.shape[0] != people or xy.shape[2] != 2:
            raise InputError(f"keypoints: expected shape ({people}, K, 2) for {people} boxes, "
                             f"got {xy.shape}")
        if not np.all(np.isfinite(xy)):
            raise InputError("keypoints must be finite: found NaN or infinity")
        count = xy.shape[1]
        if keypoint_scores is not None:
            keypoint_scores = np.asarray(keypoint_scores, np.float64)
            if keypoint_scores.shape != (people, count):
                raise InputError(f"keypoint_scores: expected shape ({people}, {count}), "
                                 f"got {keypoint_scores.shape}")
            if not np.all(np.isfinite(keypoint_scores)):
                raise InputError("keypoint_scores must be finite: found NaN or infinity")
        if not self.config.use_keypoints:
            return None
        expected = len(self._sigmas) if self._sigmas is not None else len(COCO17.sigmas)
        if count != expected:
            source = "the tracker's sigmas" if self._sigmas is not None else "COCO's sigmas"
            raise InputError(f"keypoints: expected K = {expected} to match {source}, got "
                             f"{count}; pass Tracker(sigmas=...) with one OKS sigma per keypoint")
        if keypoint_scores is None:
            return xy, np.ones((people, count), bool)
        return xy, keypoint_scores >= self.config.min_keypoint_score


def _checked_boxes(boxes: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    boxes = np.asarray(boxes, np.float64)
    scores = np.asarray(scores, np.float64)
    if boxes.size == 0 and boxes.ndim <= 2:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise InputError(f"boxes: expected shape (N, 4) as x, y, w, h, got {boxes.shape}")
    if scores.shape != (len(boxes),):
        raise InputError(f"scores: expected shape ({len(boxes)},), one per box, "
                         f"got {scores.shape}")
    if not np.all(np.isfinite(boxes)) or not np.all(np.isfinite(scores)):
        raise InputError("boxes and scores must be finite: found NaN or infinity")
    if np.any(boxes[:, 2:] <= 0):
        raise InputError("boxes: widths and heights must be > 0; drop empty boxes (e.g. people "
                         "with no keypoint found) before tracking")
    return boxes, scores
