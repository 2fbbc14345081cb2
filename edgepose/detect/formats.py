"""Detector output formats: recognise one from a graph's outputs and metadata, and read
person boxes out of it.

Every reader returns xyxy boxes in network-input pixels and their scores, people
only, best first, thresholded and capped as the card says; raw formats (YOLOv8,
YOLOX) go through nms.py, the others already ran NMS inside the graph.
"""

from __future__ import annotations

import ast
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from edgepose.backends.base import TensorSpec
from edgepose.card import InputSpec
from edgepose.detect.card import (FORMAT_OUTPUTS, FORMAT_PREPROCESSING, FORMATS, PREPROCESSING,
                                  DetectorCard)
from edgepose.detect.nms import nms
from edgepose.errors import CardError, DecodeError

YOLO_STRIDES = (8, 16, 32)
#: More rows than this on the box axis cannot be an end-to-end output (300 by default).
_END2END_MAX = 1000

Boxes = tuple[np.ndarray, np.ndarray]   # (N, 4) xyxy float32, (N,) float32


def anchor_count(height: int, width: int, strides: Sequence[int] = YOLO_STRIDES) -> int:
    """Grid cells over all strides: YOLOv8's A (8400 at 640x640)."""
    return sum((height // s) * (width // s) for s in strides)


# --- recognising a format -------------------------------------------------------------

def _names(metadata: Mapping[str, str]) -> dict[int, str] | None:
    text = metadata.get("names")
    if text is None:
        return None
    try:
        names = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    if isinstance(names, list):
        names = dict(enumerate(names))
    return {int(k): str(v) for k, v in names.items()} if isinstance(names, dict) else None


def _input_size(image: TensorSpec, metadata: Mapping[str, str]) -> tuple[int, int] | None:
    """(height, width) from the graph's input shape, else Ultralytics' imgsz."""
    if len(image.shape) == 4 and image.shape[2] and image.shape[3]:
        return int(image.shape[2]), int(image.shape[3])
    text = metadata.get("imgsz")
    if text is not None:
        try:
            size = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return None
        if isinstance(size, int):
            return size, size
        if isinstance(size, (list, tuple)) and len(size) == 2:
            return int(size[0]), int(size[1])
    return None


def _float3(outputs: Sequence[TensorSpec]) -> list[TensorSpec]:
    return [o for o in outputs if o.dtype.kind == "f" and len(o.shape) == 3]


def recognise(outputs: Sequence[TensorSpec], metadata: Mapping[str, str],
              size: tuple[int, int]) -> tuple[str, tuple[str, ...], str]:
    """(format, output names in the format's order, why) for a graph's outputs."""
    by_name = {o.name: o for o in outputs}
    if set(FORMAT_OUTPUTS["efficientnms"]) <= set(by_name):
        return "efficientnms", FORMAT_OUTPUTS["efficientnms"], "EfficientNMS's four outputs"
    if {"dets", "labels"} <= set(by_name):
        return "mmdeploy", ("dets", "labels"), "mmdeploy's dets and labels"
    selected = [o for o in outputs if o.dtype.kind == "i" and len(o.shape) == 2
                and o.shape[1] == 3]
    floats = _float3(outputs)
    if selected:
        boxes = [o for o in floats if o.shape[2] == 4]
        scores = [o for o in floats if o not in boxes]
        if len(boxes) == 1 and len(scores) == 1:
            return ("onnx_nms", (boxes[0].name, scores[0].name, selected[0].name),
                    "ONNX NonMaxSuppression's selected indices")
    if len(floats) != 1:
        raise CardError("its outputs " + _show(outputs) + " match none of the formats")
    only = floats[0]
    _, rows, cols = only.shape
    anchors = anchor_count(*size)
    if cols == anchors or (rows is not None and cols is not None and rows < cols
                           and cols > _END2END_MAX):
        return "yolov8", (only.name,), f"{only.name} {_shape(only)}: 4+nc rows over A anchors"
    if rows == anchors:
        return "yolox", (only.name,), f"{only.name} {_shape(only)}: A anchors of 5+nc values"
    if cols == 6:
        return "end2end", (only.name,), f"{only.name} {_shape(only)}: x1 y1 x2 y2 score class"
    raise CardError(f"its output {only.name} {_shape(only)} matches none of the formats")


def _shape(spec: TensorSpec) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in spec.shape) + ")"


def _show(outputs: Sequence[TensorSpec]) -> str:
    return ", ".join(f"{o.name} {_shape(o)}" for o in outputs)


def guess_card(inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec],
               metadata: Mapping[str, str], *, source: str, format: str | None = None,
               nms_center_point_box: int | None = None,
               input_size: tuple[int, int] | None = None,
               person_class: int | None = None) -> DetectorCard:
    """A card for a detector that carries none, from what its graph says.

    format: the user's --detector-format (then the outputs are taken in that format's
    order, by name where the names match). input_size: (height, width) where the graph's
    input is dynamic. person_class: the user's, which the class names then need not
    confirm. Raises CardError saying what is missing.
    """
    if len(inputs) != 1:
        raise CardError(f"{source}: a detector takes one image input; this graph takes "
                        f"{_show(inputs)}")
    image = inputs[0]
    size = input_size or _input_size(image, metadata)
    if size is None:
        raise CardError(f"{source}: its input {image.name} {_shape(image)} has no fixed height "
                        "and width and no imgsz metadata; give the size it was exported for")
    why = []
    if format is None:
        try:
            format, names, reason = recognise(outputs, metadata, size)
        except CardError as exc:
            raise CardError(f"{source}: {exc}; name the format (one of {', '.join(FORMATS)})") \
                from None
        why.append(reason)
    else:
        if format not in FORMATS:
            raise CardError(f"detector format {format!r} is not one of {', '.join(FORMATS)}")
        names = _outputs_for(format, outputs, source)
        why.append("format given")
    preprocessing = dict(PREPROCESSING[FORMAT_PREPROCESSING[format]])
    person = 0 if person_class is None else person_class
    labels = _names(metadata)
    if labels is not None and person_class is None:
        people = [k for k, v in labels.items() if v.lower() == "person"]
        if not people:
            raise CardError(f"{source}: its class names {sorted(labels.values())[:5]} have no "
                            "'person'; give the person class id")
        person = people[0]
        why.append(f"'person' is class {person} in its names")
    encoding = "cxcywh" if nms_center_point_box == 1 else "xyxy"
    spec = InputSpec(name=image.name, height=size[0], width=size[1],
                     color=preprocessing.pop("color"), mean=preprocessing.pop("mean"),
                     std=preprocessing.pop("std"), pad_value=preprocessing.pop("pad_value"))
    return DetectorCard(format=format, input=spec, outputs=names, person_class=person,
                        box_encoding=encoding, **preprocessing,
                        source={"origin": "guessed", "why": "; ".join(why),
                                "metadata": {k: metadata[k] for k in sorted(metadata)
                                             if k in ("names", "imgsz", "stride", "task",
                                                      "author", "description")}})


def _outputs_for(format: str, outputs: Sequence[TensorSpec], source: str) -> tuple[str, ...]:
    roles = FORMAT_OUTPUTS[format]
    names = [o.name for o in outputs]
    if set(roles) <= set(names):
        return roles
    if len(names) == len(roles):
        return tuple(names)
    raise CardError(f"{source}: format {format} reads {len(roles)} output(s) "
                    f"({', '.join(roles)}) but the graph has {_show(outputs)}")


# --- reading boxes --------------------------------------------------------------------

def _xyxy(boxes: np.ndarray, encoding: str) -> np.ndarray:
    boxes = boxes.astype(np.float64, copy=False)
    if encoding == "xyxy":
        return boxes
    if encoding == "yxyx":
        return boxes[:, [1, 0, 3, 2]]
    half = boxes[:, 2:4] / 2
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)


def _finish(card: DetectorCard, boxes: np.ndarray, scores: np.ndarray) -> Boxes:
    """Thresholded, finite, best first, capped."""
    keep = np.isfinite(scores) & np.all(np.isfinite(boxes), axis=1) \
        & (scores >= card.score_threshold)
    boxes, scores = boxes[keep], scores[keep]
    order = np.argsort(-scores, kind="stable")[:card.max_detections]
    return boxes[order].astype(np.float32), scores[order].astype(np.float32)


def _single(outputs: Mapping[str, np.ndarray], name: str, rank: int) -> np.ndarray:
    array = np.asarray(outputs[name])
    if array.ndim != rank or array.shape[0] != 1:
        raise DecodeError(f"detector output {name!r} has shape {array.shape}; expected batch 1 "
                          f"and {rank} axes")
    return array[0]


def _check_class(card: DetectorCard, classes: int) -> None:
    if card.person_class >= classes:
        raise DecodeError(f"the detector has {classes} class(es) but its card's person class is "
                          f"{card.person_class}")


def _raw_people(card: DetectorCard, boxes: np.ndarray, class_scores: np.ndarray) -> Boxes:
    """Best class per anchor, as Ultralytics and YOLOX do; people kept, then NMS."""
    _check_class(card, class_scores.shape[1])
    best = np.argmax(class_scores, axis=1)
    score = class_scores[np.arange(len(best)), best]
    people = (best == card.person_class) & (score >= card.score_threshold) \
        & np.isfinite(score) & np.all(np.isfinite(boxes), axis=1)
    boxes, score = boxes[people], score[people]
    kept = nms(boxes, score, iou_threshold=card.iou_threshold,
               max_detections=card.max_detections)
    return boxes[kept].astype(np.float32), score[kept].astype(np.float32)


def read_yolov8(card: DetectorCard, outputs: Mapping[str, np.ndarray]) -> Boxes:
    rows = _single(outputs, card.outputs[0], 3).astype(np.float64)    # (4+nc, A)
    if rows.shape[0] < 5:
        raise DecodeError(f"a YOLOv8 output has 4+nc rows; got {rows.shape[0]}")
    return _raw_people(card, _xyxy(rows[:4].T, "cxcywh"), rows[4:].T)


def yolox_grid(height: int, width: int, strides: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(A, 2) cell (x, y) and (A,) stride, stride by stride, each row-major as YOLOX."""
    cells, steps = [], []
    for stride in strides:
        ys, xs = np.mgrid[0:height // stride, 0:width // stride]
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        steps.append(np.full(xs.size, stride))
    return np.concatenate(cells).astype(np.float64), np.concatenate(steps).astype(np.float64)


def read_yolox(card: DetectorCard, outputs: Mapping[str, np.ndarray]) -> Boxes:
    rows = _single(outputs, card.outputs[0], 2 + 1).astype(np.float64)   # (A, 5+nc)
    cells, steps = yolox_grid(card.input.height, card.input.width, card.strides)
    if rows.shape[0] != len(cells) or rows.shape[1] < 6:
        raise DecodeError(f"a YOLOX output at {card.input.width}x{card.input.height} with strides "
                          f"{list(card.strides)} has ({len(cells)}, 5+nc) values; got {rows.shape}")
    with np.errstate(over="ignore"):          # a huge logit is an infinite box, dropped later
        centers = (rows[:, :2] + cells) * steps[:, None]
        sizes = np.exp(rows[:, 2:4]) * steps[:, None]
    boxes = _xyxy(np.concatenate([centers, sizes], axis=1), "cxcywh")
    return _raw_people(card, boxes, rows[:, 4:5] * rows[:, 5:])


def read_end2end(card: DetectorCard, outputs: Mapping[str, np.ndarray]) -> Boxes:
    rows = _single(outputs, card.outputs[0], 3).astype(np.float64)      # (N, 6)
    if rows.shape[1] != 6:
        raise DecodeError(f"an end-to-end output has 6 values per box; got {rows.shape[1]}")
    people = np.rint(rows[:, 5]) == card.person_class
    return _finish(card, rows[people, :4], rows[people, 4])


def read_mmdeploy(card: DetectorCard, outputs: Mapping[str, np.ndarray]) -> Boxes:
    dets = _single(outputs, card.outputs[0], 3).astype(np.float64)      # (N, 5)
    labels = _single(outputs, card.outputs[1], 2)
    if dets.shape[1] != 5 or labels.shape[0] != dets.shape[0]:
        raise DecodeError(f"mmdeploy's dets are (1, N, 5) with labels (1, N); got "
                          f"{(1, *dets.shape)} and {(1, *labels.shape)}")
    people = labels == card.person_class
    return _finish(card, dets[people, :4], dets[people, 4])


def read_efficientnms(card: DetectorCard, outputs: Mapping[str, np.ndarray]) -> Boxes:
    count, boxes, scores, classes = (np.asarray(outputs[n]) for n in card.outputs)
    found = int(count.reshape(-1)[0])
    boxes, scores, classes = boxes[0, :found], scores[0, :found], classes[0, :found]
    people = classes == card.person_class
    return _finish(card, boxes[people].astype(np.float64), scores[people].astype(np.float64))


def read_onnx_nms(card: DetectorCard, outputs: Mapping[str, np.ndarray]) -> Boxes:
    boxes = _single(outputs, card.outputs[0], 3)          # (A, 4)
    scores = _single(outputs, card.outputs[1], 3)         # (C, A)
    selected = np.asarray(outputs[card.outputs[2]]).reshape(-1, 3).astype(np.int64)
    _check_class(card, scores.shape[0])
    rows = selected[(selected[:, 0] == 0) & (selected[:, 1] == card.person_class)
                    & (selected[:, 2] >= 0) & (selected[:, 2] < boxes.shape[0])]
    picked = rows[:, 2]
    return _finish(card, _xyxy(boxes[picked], card.box_encoding),
                   scores[card.person_class, picked].astype(np.float64))


READERS: Mapping[str, Callable[[DetectorCard, Mapping[str, np.ndarray]], Boxes]] = {
    "yolov8": read_yolov8, "yolox": read_yolox, "end2end": read_end2end,
    "mmdeploy": read_mmdeploy, "efficientnms": read_efficientnms, "onnx_nms": read_onnx_nms,
}


def read_people(card: DetectorCard, outputs: Mapping[str, Any]) -> Boxes:
    """Person boxes (xyxy, input pixels) and scores from one image's outputs."""
    return READERS[card.format](card, outputs)
