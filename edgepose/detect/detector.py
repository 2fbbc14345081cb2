"""A person detector in front of a top-down model: frame → person boxes and scores.

`Detector.open(path)` takes the ONNX a user exported (ONNX Runtime) or an engine
`edgepose build` made from it (TensorRT); its card is read from the file, or guessed
from the graph when a user's ONNX carries none, and stated in one line.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edgepose._closing import Closeable
from edgepose.backends import ENGINE_SUFFIXES, open_runner
from edgepose.backends.base import Runner, check_card_against_io
from edgepose.detect.card import PREPROCESSING, DetectorCard
from edgepose.detect.formats import guess_card, read_people
from edgepose.detect.letterbox import Letterbox, letterbox_image, plan_letterbox
from edgepose.errors import CardError, InputError, ModelFileError
from edgepose.preprocess import MIN_BOX_PIXELS, check_frame, normalize_to_tensor

log = logging.getLogger(__name__)

#: Normalisations a user can name instead of mean and std (0-255 units, as the card).
NORMALIZATIONS: Mapping[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "unit": ((0.0, 0.0, 0.0), (255.0, 255.0, 255.0)),            # x / 255 (Ultralytics)
    "raw": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),                   # 0-255 as is (YOLOX)
    "imagenet": (tuple(PREPROCESSING["mmdet"]["mean"]), tuple(PREPROCESSING["mmdet"]["std"])),
}
#: Card fields a caller may override, beside format, color and normalize.
OVERRIDABLE = ("person_class", "score_threshold", "iou_threshold", "max_detections", "resize",
               "pad")


@dataclass(frozen=True)
class Detections:
    """People found in one frame: boxes (N, 4) xywh float32 frame pixels, scores (N,)."""

    boxes: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def to_json(self) -> list[dict[str, Any]]:
        """COCO detection results (category 1, person), without an image id."""
        return [{"category_id": 1, "bbox": [round(float(v), 2) for v in box],
                 "score": round(float(score), 5)}
                for box, score in zip(self.boxes, self.scores)]


def _nms_center_point_box(path: Path) -> int | None:
    """center_point_box of the graph's NonMaxSuppression, read with onnx when installed
    (a Jetson runtime may lack it; the card then says xyxy and can be overridden)."""
    try:
        onnx = importlib.import_module("onnx")
    except ImportError:
        return None
    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception:  # noqa: BLE001 - ONNX Runtime already opened it; this is a hint only
        return None
    for node in graph.node:
        if node.op_type == "NonMaxSuppression":
            return next((int(a.i) for a in node.attribute if a.name == "center_point_box"), 0)
    return None


def apply_overrides(card: DetectorCard, *, color: str | None = None,
                    normalize: str | None = None, **changes: Any) -> DetectorCard:
    """The card with a user's overrides (None keeps the card's value)."""
    unknown = sorted(set(changes) - set(OVERRIDABLE))
    if unknown:
        raise InputError(f"unknown detector setting(s) {', '.join(unknown)}; expected "
                         f"{', '.join(OVERRIDABLE + ('color', 'normalize'))}")
    spec = card.input
    if color is not None:
        spec = replace(spec, color=color)
    if normalize is not None:
        if normalize not in NORMALIZATIONS:
            raise InputError(f"normalize is {normalize!r}; expected one of "
                             f"{', '.join(NORMALIZATIONS)}")
        mean, std = NORMALIZATIONS[normalize]
        spec = replace(spec, mean=mean, std=std)
    changes = {k: v for k, v in changes.items() if v is not None}
    try:
        return card.with_updates(input=spec, **changes)
    except CardError as exc:
        raise InputError(str(exc).replace("detector card field", "detector setting")) from None


def detector_input(frame: np.ndarray, card: DetectorCard) -> tuple[np.ndarray, Letterbox]:
    """(1, …) float32 network input of a BGR frame, prepared as the detector's exporter
    prepares it, and the letterbox that maps the detector's boxes back to the frame."""
    height, width = frame.shape[:2]
    spec = card.input
    size = (spec.width, spec.height)
    plan = plan_letterbox((width, height), size, card.resize, card.pad)
    canvas = letterbox_image(frame, plan, size, spec.pad_value)
    return normalize_to_tensor(canvas[None], np.array(spec.mean), np.array(spec.std),
                               spec.color, spec.layout), plan


class Detector(Closeable):
    """`detector(frame) -> Detections`: the people in a BGR uint8 frame.

    card: the DetectorCard in use; statement: one line saying where it came from.
    """

    def __init__(self, runner: Runner, card: DetectorCard, statement: str) -> None:
        self.runner = runner
        self.card = card
        self.statement = statement
        self._input = runner.inputs[0]

    @classmethod
    def open(cls, path: str | Path, *, format: str | None = None,
             input_size: tuple[int, int] | None = None, providers: list[str] | None = None,
             cuda_graph: bool = False, cuda_impl: str = "auto", threads: int | None = None,
             **overrides: Any) -> "Detector":
        """Open a detector; overrides: see apply_overrides (color, normalize, person_class,
        score_threshold, iou_threshold, max_detections, resize, pad). format and
        input_size (height, width) only apply to an ONNX file without a card."""
        path = Path(path)
        engine = path.suffix.lower() in ENGINE_SUFFIXES
        runner = open_runner(path, providers, cuda_graph=cuda_graph, cuda_impl=cuda_impl,
                             card_type=DetectorCard if engine else None,
                             threads=None if engine else threads)
        try:
            card, origin = cls._card_for(runner, path, format, input_size,
                                         overrides.get("person_class"))
            card = apply_overrides(card, **overrides)
            changed = ", ".join(sorted(k for k, v in overrides.items() if v is not None))
            statement = (f"detector {path.name} ({origin}{'; overridden: ' if changed else ''}"
                         f"{changed}): {card.describe()}")
            check_card_against_io(card, runner.inputs, runner.outputs, str(path))
        except CardError as exc:
            runner.close()
            raise ModelFileError(str(exc)) from None
        except BaseException:
            runner.close()
            raise
        return cls(runner, card, statement)

    @staticmethod
    def _card_for(runner: Runner, path: Path, format: str | None,
                  input_size: tuple[int, int] | None,
                  person_class: int | None) -> tuple[DetectorCard, str]:
        """(card, where it came from)."""
        if runner.card is not None:
            card = runner.card
            origin = "its sidecar's card"
        else:
            text = runner.metadata.get(DetectorCard.metadata_key)
            if text is None:
                card = guess_card(runner.inputs, runner.outputs, runner.metadata,
                                  source=str(path), format=format,
                                  nms_center_point_box=_nms_center_point_box(path),
                                  input_size=input_size, person_class=person_class)
                why = card.source.get("why", "")
                return card, f"no edgepose detector card, guessed from the graph: {why}"
            card = DetectorCard.from_json(text)
            origin = "its embedded card"
        if format is not None and format != card.format:
            raise InputError(f"{path} carries a detector card saying format {card.format}; "
                             f"format {format} does not apply (export it again to change it)")
        return card, origin

    def __call__(self, frame: np.ndarray) -> Detections:
        check_frame(frame)      # an empty frame is refused by plan_letterbox
        height, width = frame.shape[:2]
        tensor, plan = detector_input(frame, self.card)
        if self._input.dtype != np.float32:
            tensor = tensor.astype(self._input.dtype)
        outputs = self.runner.infer({self.card.input.name: tensor})
        boxes, scores = read_people(self.card, outputs)
        boxes = plan.to_frame(boxes, width, height)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        # A box clipped to a sliver at the border cannot be cropped.
        usable = (xywh[:, 2] >= MIN_BOX_PIXELS) & (xywh[:, 3] >= MIN_BOX_PIXELS)
        return Detections(xywh[usable].astype(np.float32), scores[usable].astype(np.float32))

    def _release(self) -> None:
        self.runner.close()
