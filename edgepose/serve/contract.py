"""What goes over the wire between a Triton client and the repository `edgepose triton`
writes: the pose model's tensor names and types, and Poses to and from those tensors.

The server side (the Python-backend pose model) and the client side
(`edgepose infer --triton`) both use this module, so a name changed here changes both.
One request is one encoded image (JPEG, PNG, …, as `cv2.imdecode` reads it), with
optional person boxes for a top-down model; the answer is the people found.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from edgepose.errors import InputError
from edgepose.keypoints import get_keypoint_set
from edgepose.poses import Poses

#: The encoded image, bytes as UINT8 of any length.
IMAGE = "IMAGE"
#: Optional (N, 4) xywh person boxes in pixels (top-down models), and their scores (N,).
BOXES = "BOXES"
BOX_SCORES = "BOX_SCORES"
INPUTS = (IMAGE, BOXES, BOX_SCORES)

#: (N, K, 2) keypoint pixels; (N, K) keypoint scores; (N,) person scores; (N, 4) xywh
#: person boxes — (0, 4) when the pipeline gives none (bottom-up) for N > 0.
KEYPOINTS = "KEYPOINTS"
KEYPOINT_SCORES = "KEYPOINT_SCORES"
PERSON_SCORES = "PERSON_SCORES"
PERSON_BOXES = "PERSON_BOXES"
OUTPUTS = (KEYPOINTS, KEYPOINT_SCORES, PERSON_SCORES, PERSON_BOXES)

#: Keys of the pose model's config parameters that a client reads.
PARAM_KEYPOINT_SET = "edgepose_keypoint_set"
PARAM_CARD = "edgepose_card"
PARAM_PARADIGM = "edgepose_paradigm"
PARAM_DETECTOR = "edgepose_detector_model"


def config_parameters(config: Mapping) -> dict[str, str]:
    """A model config's parameters as key → string, from the JSON form Triton gives
    (HTTP's and gRPC's get_model_config, and the Python backend's args["model_config"])."""
    found = {}
    for key, value in (config.get("parameters") or {}).items():
        if isinstance(value, Mapping) and isinstance(value.get("string_value"), str):
            found[key] = value["string_value"]
    return found


def request_tensors(encoded: bytes, boxes: np.ndarray | None = None,
                    box_scores: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The inputs of one request: the encoded image, and the boxes when given."""
    if not isinstance(encoded, (bytes, bytearray, memoryview)) or len(encoded) == 0:
        raise InputError("the image to send must be the non-empty bytes of an encoded image "
                         "(e.g. cv2.imencode('.png', frame)[1].tobytes())")
    tensors = {IMAGE: np.frombuffer(bytes(encoded), dtype=np.uint8)}
    if box_scores is not None and boxes is None:
        raise InputError("box scores need boxes")
    if boxes is not None:
        boxes = np.asarray(boxes, dtype=np.float32)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise InputError(f"boxes must be (N, 4) xywh, got shape {boxes.shape}")
        tensors[BOXES] = np.ascontiguousarray(boxes)
        if box_scores is not None:
            scores = np.asarray(box_scores, dtype=np.float32)
            if scores.shape != (len(boxes),):
                raise InputError(f"box scores must be ({len(boxes)},), got {scores.shape}")
            tensors[BOX_SCORES] = np.ascontiguousarray(scores)
    return tensors


def poses_to_tensors(poses: Poses) -> dict[str, np.ndarray]:
    """The outputs of one request."""
    people = len(poses)
    boxes = (np.zeros((0, 4), np.float32) if poses.boxes is None
             else poses.boxes.astype(np.float32))
    return {KEYPOINTS: poses.xy.astype(np.float32).reshape(people, -1, 2),
            KEYPOINT_SCORES: poses.scores.astype(np.float32),
            PERSON_SCORES: poses.person_scores.astype(np.float32),
            PERSON_BOXES: boxes}


def poses_from_tensors(tensors: Mapping[str, np.ndarray], keypoint_set: str) -> Poses:
    """Poses from one response's outputs; InputError when one is missing or misshapen."""
    missing = [name for name in OUTPUTS if name not in tensors or tensors[name] is None]
    if missing:
        raise InputError(f"the server's answer lacks output(s) {missing}; is this a pose "
                         "model written by 'edgepose triton'?")
    count = get_keypoint_set(keypoint_set).num_keypoints
    xy = np.asarray(tensors[KEYPOINTS], np.float32)
    if xy.ndim != 3 or xy.shape[1:] != (count, 2):
        raise InputError(f"the server's {KEYPOINTS} has shape {xy.shape}; expected (N, {count}, 2) "
                         f"for {keypoint_set}")
    boxes = np.asarray(tensors[PERSON_BOXES], np.float32)
    return Poses(xy=xy, scores=tensors[KEYPOINT_SCORES],
                 person_scores=tensors[PERSON_SCORES], keypoint_set=keypoint_set,
                 boxes=None if boxes.shape[0] == 0 and len(xy) > 0 else boxes.reshape(-1, 4))
