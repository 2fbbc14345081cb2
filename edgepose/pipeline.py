"""Pipelines: a frame in, Poses out, driven by the runner's ModelCard alone.

Shape letters: N people, K keypoints, H, W heatmap size.
"""

from __future__ import annotations

import numpy as np

from edgepose.backends.base import Runner
from edgepose.card import ModelCard
from edgepose.decode.topdown import TopDownDecoder, average_flip
from edgepose.errors import InputError
from edgepose.keypoints import get_keypoint_set
from edgepose.poses import Poses
from edgepose.preprocess import (
    affine_matrices,
    box_to_center_scale,
    crop_batch,
    normalize_to_tensor,
    validate_boxes,
)

# Official HRNet/COCO rescoring: keypoints below this confidence do not vote.
KEYPOINT_VOTE_THRESHOLD = 0.2
# Batch size for runners whose batch axis is dynamic (ONNX Runtime on the CPU).
DEFAULT_CHUNK = 16


def person_scores(keypoint_scores: np.ndarray, box_scores: np.ndarray,
                  threshold: float = KEYPOINT_VOTE_THRESHOLD) -> np.ndarray:
    """COCO person score: box score × mean of the keypoint scores above `threshold` (0 if none)."""
    voting = keypoint_scores > threshold
    count = voting.sum(axis=1)
    total = np.where(voting, keypoint_scores, 0.0).sum(axis=1)
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return (mean * box_scores).astype(np.float32)


class TopDownPipeline:
    """Frame + person boxes → crops → runner (in chunks) → decode → image-space Poses.

    `flip_test` and `refine` override the card's decoder settings when given.
    """

    def __init__(self, runner: Runner, *, flip_test: bool | None = None,
                 refine: str | None = None, box_padding: float = 1.25) -> None:
        card: ModelCard = runner.card
        if card.paradigm != "top-down":
            raise InputError(
                f"{card.family}/{card.variant} is a {card.paradigm} model; TopDownPipeline "
                "needs a top-down model"
            )
        self.runner = runner
        self.card = card
        self.keypoint_set = get_keypoint_set(card.keypoints)
        self.flip_test = card.decoder.flip_test if flip_test is None else flip_test
        self.decoder = TopDownDecoder(refine=card.decoder.refine if refine is None else refine)
        self.box_padding = box_padding
        self.heatmap_name = card.output("heatmaps").name
        spec = card.input
        self.input_size = (spec.width, spec.height)
        self.chunk = runner.max_batch or DEFAULT_CHUNK
        self._crops = np.empty((self.chunk, spec.height, spec.width, 3), np.uint8)
        tensor_shape = ((3, spec.height, spec.width) if spec.layout == "NCHW"
                        else (spec.height, spec.width, 3))
        self._tensor = np.empty((self.chunk, *tensor_shape), np.float32)
        # Mirroring the input means reversing its width axis, wherever the layout puts it.
        self._width_axis = 3 if spec.layout == "NCHW" else 2

    def __call__(self, image: np.ndarray, boxes: np.ndarray | None = None,
                 box_scores: np.ndarray | None = None) -> Poses:
        """image (h, w, 3) BGR uint8; boxes (N,4) xywh pixels (None: the whole image)."""
        if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3
                and image.dtype == np.uint8):
            shape = getattr(image, "shape", None)
            raise InputError(f"expected a BGR uint8 image of shape (h, w, 3), got {shape}")
        height, width = image.shape[:2]
        if boxes is None:
            boxes = np.array([[0.0, 0.0, width, height]], np.float32)
        boxes = validate_boxes(np.asarray(boxes, np.float32).reshape(-1, 4), width, height)
        people = boxes.shape[0]
        if people == 0:
            count = self.keypoint_set.num_keypoints
            return Poses(xy=np.zeros((0, count, 2)), scores=np.zeros((0, count)),
                         person_scores=np.zeros(0), keypoint_set=self.keypoint_set.name,
                         boxes=np.zeros((0, 4)))
        box_scores = (np.ones(people, np.float32) if box_scores is None
                      else np.asarray(box_scores, np.float32).reshape(-1))
        if box_scores.shape != (people,):
            raise InputError(f"expected {people} box scores, got {box_scores.shape[0]}")
        centers, scales = box_to_center_scale(boxes, self.input_size[0] / self.input_size[1],
                                              padding=self.box_padding)
        matrices = affine_matrices(centers, scales, self.input_size)
        heatmaps = np.concatenate([self._run_chunk(image, matrices[start:start + self.chunk])
                                   for start in range(0, people, self.chunk)])
        xy, scores = self.decoder.decode(heatmaps, centers, scales)
        return Poses(xy=xy, scores=scores, person_scores=person_scores(scores, box_scores),
                     keypoint_set=self.keypoint_set.name, boxes=boxes)

    def _run_chunk(self, image: np.ndarray, matrices: np.ndarray) -> np.ndarray:
        count = matrices.shape[0]
        crops = crop_batch(image, matrices, self.input_size, out=self._crops[:count],
                           border_value=self.card.input.pad_value)
        spec = self.card.input
        tensor = normalize_to_tensor(crops, spec.mean, spec.std, color=spec.color,
                                     layout=spec.layout, out=self._tensor[:count])
        heatmaps = self._infer(tensor)
        if self.flip_test:
            mirrored = np.ascontiguousarray(np.flip(tensor, axis=self._width_axis))
            heatmaps = average_flip(heatmaps, self._infer(mirrored),
                                    self.keypoint_set.flip_permutation())
        return heatmaps

    def _infer(self, tensor: np.ndarray) -> np.ndarray:
        outputs = self.runner.infer({self.card.input.name: tensor})
        # Copied because runners may hand out views of buffers reused on the next call.
        return np.array(outputs[self.heatmap_name], dtype=np.float32, copy=True)
