"""The detector card: what a detector's graph cannot say about itself.

A person detector's ONNX names its outputs and their shapes, and exporters add a
little metadata (Ultralytics writes `names`, `imgsz`, `stride`, `task`); the rest —
the output format's meaning, the person class, colour order, normalisation, letterbox
or stretch, thresholds — is this card. It is guessed when a user's ONNX is first
opened (formats.guess_card), stated in one line, overridable, and embedded in
metadata_props["edgepose_detector"] by `edgepose export detector`, `calibrate` and
`build` (in the engine's sidecar) like the pose card.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, Mapping

from edgepose.card import InputSpec
from edgepose.errors import CardError

SCHEMA_VERSION = 1
DETECTOR_METADATA_KEY = "edgepose_detector"

#: Output formats, each with the outputs it reads, in this order.
FORMAT_OUTPUTS: Mapping[str, tuple[str, ...]] = {
    "yolov8": ("predictions",),          # (1, 4+nc, A): cx, cy, w, h, class scores
    "yolox": ("predictions",),           # (1, A, 5+nc) before the grid decoding
    "end2end": ("detections",),          # (1, N, 6): x1, y1, x2, y2, score, class
    "mmdeploy": ("dets", "labels"),      # (1, N, 5) x1, y1, x2, y2, score; (1, N)
    "efficientnms": ("num_dets", "det_boxes", "det_scores", "det_classes"),
    "onnx_nms": ("boxes", "scores", "selected"),   # (1, A, 4), (1, C, A), (K, 3)
}
FORMATS = tuple(FORMAT_OUTPUTS)
#: Formats whose graph ends before NMS: edgepose runs it (nms.py).
RAW_FORMATS = ("yolov8", "yolox")
BOX_ENCODINGS = ("xyxy", "yxyx", "cxcywh")
RESIZES = ("letterbox", "stretch")
PADS = ("center", "corner")

#: How each exporter feeds its network (0-255 units, as the pose card).
PREPROCESSING: Mapping[str, Mapping[str, Any]] = {
    "ultralytics": {"color": "RGB", "mean": (0.0, 0.0, 0.0), "std": (255.0, 255.0, 255.0),
                    "resize": "letterbox", "pad": "center", "pad_value": 114.0},
    "yolox": {"color": "BGR", "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0),
              "resize": "letterbox", "pad": "corner", "pad_value": 114.0},
    # mmdet's RTMDet/YOLOX configs as mmdeploy exports them: BGR, ImageNet statistics.
    "mmdet": {"color": "BGR", "mean": (103.53, 116.28, 123.675),
              "std": (57.375, 57.12, 58.395), "resize": "letterbox", "pad": "corner",
              "pad_value": 114.0},
}
FORMAT_PREPROCESSING = {"yolov8": "ultralytics", "end2end": "ultralytics",
                        "efficientnms": "ultralytics", "onnx_nms": "ultralytics",
                        "yolox": "yolox", "mmdeploy": "mmdet"}


def _require(condition: bool, where: str, value: Any, allowed: str) -> None:
    if not condition:
        raise CardError(f"detector card field {where!r} is {value!r}; expected {allowed}")


def _fraction(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and 0.0 <= value <= 1.0)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True)
class DetectorCard:
    """How to feed a person detector and read its boxes.

    outputs: the graph's output names in FORMAT_OUTPUTS[format] order.
    person_class: the class id of people among the detector's classes.
    score_threshold: boxes scoring below it are dropped. iou_threshold and
        max_detections: the NMS edgepose runs on raw formats (and the cap on the
        boxes kept for every format).
    strides: YOLOX's grid strides, in output order. box_encoding: how the boxes fed
        to an ONNX NonMaxSuppression are laid out (center_point_box 1 is cxcywh).
    """

    metadata_key: ClassVar[str] = DETECTOR_METADATA_KEY

    format: str
    input: InputSpec
    outputs: tuple[str, ...]
    resize: str = "letterbox"
    pad: str = "center"
    person_class: int = 0
    score_threshold: float = 0.3
    iou_threshold: float = 0.45
    max_detections: int = 100
    strides: tuple[int, ...] = (8, 16, 32)
    box_encoding: str = "xyxy"
    precision: str = "fp32"
    source: Mapping[str, Any] = field(default_factory=dict)
    calibration: Mapping[str, Any] | None = None
    engine: Mapping[str, Any] | None = None
    schema: int = SCHEMA_VERSION

    #: What calibration and the runners name a model by; a detector has no pose family.
    paradigm: ClassVar[str] = "detector"
    family: ClassVar[str] = "detector"

    def __post_init__(self) -> None:
        _require(self.schema == SCHEMA_VERSION, "schema", self.schema,
                 f"{SCHEMA_VERSION} (this edgepose reads detector card schema "
                 f"{SCHEMA_VERSION} only)")
        _require(self.format in FORMATS, "format", self.format, f"one of {FORMATS}")
        object.__setattr__(self, "outputs", tuple(self.outputs))
        wanted = FORMAT_OUTPUTS[self.format]
        _require(len(self.outputs) == len(wanted)
                 and all(isinstance(n, str) and n for n in self.outputs),
                 "outputs", list(self.outputs),
                 f"{len(wanted)} output name(s) for format {self.format}: {', '.join(wanted)}")
        _require(self.resize in RESIZES, "resize", self.resize, f"one of {RESIZES}")
        _require(self.pad in PADS, "pad", self.pad, f"one of {PADS}")
        _require(isinstance(self.person_class, int) and not isinstance(self.person_class, bool)
                 and self.person_class >= 0, "person_class", self.person_class,
                 "a class id (integer >= 0)")
        for name in ("score_threshold", "iou_threshold"):
            _require(_fraction(getattr(self, name)), name, getattr(self, name),
                     "a number from 0 to 1")
        _require(_count(self.max_detections), "max_detections", self.max_detections,
                 "a positive integer")
        object.__setattr__(self, "strides", tuple(self.strides))
        _require(len(self.strides) > 0 and all(_count(s) for s in self.strides), "strides",
                 list(self.strides), "positive integers")
        _require(self.box_encoding in BOX_ENCODINGS, "box_encoding", self.box_encoding,
                 f"one of {BOX_ENCODINGS}")
        _require(isinstance(self.source, Mapping), "source", self.source, "a JSON object")
        _require(self.precision in ("fp32", "fp16", "int8"), "precision", self.precision,
                 "fp32, fp16 or int8")

    @property
    def output_names(self) -> tuple[str, ...]:
        return self.outputs

    @property
    def variant(self) -> str:
        return f"{self.format} {self.input.width}x{self.input.height}"

    @property
    def output_roles(self) -> dict[str, str]:
        """{role: graph output name}."""
        return dict(zip(FORMAT_OUTPUTS[self.format], self.outputs))

    def with_updates(self, **changes: Any) -> "DetectorCard":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "input":
                value = {f.name: (list(getattr(value, f.name))
                                  if isinstance(getattr(value, f.name), tuple)
                                  else getattr(value, f.name))
                         for f in fields(InputSpec) if f.name != "extra"}
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            if item.name in ("engine", "calibration") and value is None:
                continue
            data[item.name] = value
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any) -> "DetectorCard":
        if not isinstance(data, Mapping):
            raise CardError(f"a detector card must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CardError(f"detector card has unknown field(s) {', '.join(unknown)}")
        absent = [k for k in ("format", "input", "outputs") if k not in data]
        if absent:
            raise CardError(f"detector card lacks the field(s) {', '.join(absent)}")
        values = dict(data)
        spec = values["input"]
        if not isinstance(spec, Mapping):
            raise CardError(f"detector card field 'input' is {spec!r}; expected a JSON object")
        try:
            values["input"] = InputSpec(**spec)
        except TypeError as exc:
            raise CardError(f"detector card field 'input' is malformed: {exc}") from None
        except CardError as exc:
            raise CardError(f"detector card: {exc}") from None
        try:
            return cls(**values)
        except TypeError as exc:
            raise CardError(f"detector card is malformed: {exc}") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> "DetectorCard":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CardError(f"detector card is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def describe(self) -> str:
        """One line: what edgepose will do with this detector."""
        spec = self.input
        scale = ("/255" if spec.mean == (0.0, 0.0, 0.0) and spec.std == (255.0,) * 3
                 else "0-255" if spec.mean == (0.0, 0.0, 0.0) and spec.std == (1.0,) * 3
                 else f"mean {list(spec.mean)} std {list(spec.std)}")
        fit = ("stretched" if self.resize == "stretch"
               else f"letterboxed ({'centred' if self.pad == 'center' else 'bottom-right'} "
                    f"pad {spec.pad_value:g})")
        nms = (f", NMS IoU {self.iou_threshold:g}" if self.format in RAW_FORMATS else "")
        return (f"format {self.format}, input {spec.width}x{spec.height} {spec.color} {scale} "
                f"{fit}, person class {self.person_class}, score >= {self.score_threshold:g}"
                f"{nms}, at most {self.max_detections} people")
