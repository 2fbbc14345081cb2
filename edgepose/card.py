"""ModelCard: the metadata contract between export and runtime (schema 1).

Every ONNX file edgepose writes carries a card as JSON in
``metadata_props["edgepose"]``; every engine has it beside it as
``<engine>.json``. The runtime reads nothing else to run a model, so the card is
validated on load and each message names the field, the value and what is allowed.
Keys this version does not know are kept and written back unchanged, so a newer
exporter's additions survive a round trip through an older runtime. Each decoder's
settings are read once, at load, into one frozen spec per scheme (``decoder.spec``),
which holds their defaults; ``input.crop`` likewise holds the top-down crop rule.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, Mapping

from edgepose.decode.ae import PRESETS as AE_PRESETS
from edgepose.decode.hourglass import REFINE_METHODS as HOURGLASS_SOURCES
from edgepose.decode.paf import PRESETS as PAF_PRESETS
from edgepose.decode.dark import check_dark_kernel
from edgepose.decode.topdown import REFINE_METHODS
from edgepose.errors import CardError, InputError
from edgepose.keypoints import KEYPOINT_SETS
from edgepose.preprocess import BOX_RULES, PADDING

SCHEMA_VERSION = 1
METADATA_KEY = "edgepose"

PARADIGMS = ("top-down", "bottom-up")
LAYOUTS = ("NCHW", "NHWC")
COLORS = ("RGB", "BGR")
ROLES = ("heatmaps", "pafs", "tags", "heatmaps_hr", "center_map")
# decoder.refine: what TopDownDecoder implements. 'udp' was once listed here, but no
# decoder implements it, so a card naming it is refused at load.
REFINES = REFINE_METHODS
PRECISIONS = ("fp32", "fp16", "int8")


def _require(condition: bool, where: str, value: Any, allowed: str) -> None:
    if not condition:
        raise CardError(f"model card field {where!r} is {value!r}; expected {allowed}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_bool(where: str, value: Any) -> None:
    _require(isinstance(value, bool), where, value, "true or false")


def _split_known(cls: type, data: Mapping[str, Any], where: str) -> tuple[dict, dict]:
    if not isinstance(data, Mapping):
        raise CardError(f"model card field {where!r} is {data!r}; expected a JSON object")
    known = {f.name for f in fields(cls)} - {"extra"}
    return ({k: v for k, v in data.items() if k in known},
            {k: v for k, v in data.items() if k not in known})


@dataclass(frozen=True)
class InputSpec:
    """How a frame becomes the network input: x = (pixel − mean) / std in `color` order."""

    name: str
    height: int
    width: int
    layout: str = "NCHW"
    color: str = "RGB"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    pad_value: float = 0.0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require(isinstance(self.name, str) and bool(self.name), "input.name", self.name,
                 "a non-empty tensor name")
        for axis in ("height", "width"):
            value = getattr(self, axis)
            _require(isinstance(value, int) and not isinstance(value, bool) and value > 0,
                     f"input.{axis}", value, "a positive integer")
        _require(self.layout in LAYOUTS, "input.layout", self.layout, f"one of {LAYOUTS}")
        _require(self.color in COLORS, "input.color", self.color, f"one of {COLORS}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            _require(isinstance(value, (list, tuple)) and len(value) == 3
                     and all(_is_number(v) for v in value),
                     f"input.{name}", value, "three finite numbers in 0-255 units")
            object.__setattr__(self, name, tuple(float(v) for v in value))
        _require(all(v > 0 for v in self.std), "input.std", self.std, "three positive numbers")
        _require(_is_number(self.pad_value), "input.pad_value", self.pad_value, "a finite number")
        object.__setattr__(self, "_crop", CropSpec(
            **{key: self.extra[name] for key, name in (("rule", "box_rule"),
                                                     ("padding", "box_padding"))
               if name in self.extra}))

    @property
    def crop(self) -> "CropSpec":
        """How a top-down model's person box becomes a crop (input.box_rule, box_padding)."""
        return self._crop


@dataclass(frozen=True)
class CropSpec:
    """A top-down crop: `rule` "fit" (HRNet: the box grown to the input's aspect) or
    "height" (CPM: the box height alone), the box scaled by `padding`. Read from the
    card's input.box_rule and input.box_padding."""

    rule: str = BOX_RULES[0]
    padding: float = PADDING

    def __post_init__(self) -> None:
        _require(self.rule in BOX_RULES, "input.box_rule", self.rule, f"one of {BOX_RULES}")
        _require(_is_number(self.padding) and self.padding > 0, "input.box_padding",
                 self.padding, "a positive number")
        object.__setattr__(self, "padding", float(self.padding))


@dataclass(frozen=True)
class OutputSpec:
    """One network output; `stride` is input pixels per output pixel."""

    name: str
    role: str
    stride: int
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require(isinstance(self.name, str) and bool(self.name), "outputs[].name", self.name,
                 "a non-empty tensor name")
        _require(self.role in ROLES, f"outputs[{self.name}].role", self.role, f"one of {ROLES}")
        _require(isinstance(self.stride, int) and not isinstance(self.stride, bool)
                 and self.stride > 0, f"outputs[{self.name}].stride", self.stride,
                 "a positive integer")


@dataclass(frozen=True)
class TopDownSpec:
    """decoder "topdown" (HRNet heatmaps): `refine` none | shift (HRNet's quarter pixel) |
    dark, with DARK's blur size `dark_kernel` (mmpose's 11 when the card has none)."""

    refine: str = "shift"
    dark_kernel: int = 11
    flip_test: bool = False

    def __post_init__(self) -> None:
        _check_refine(self.refine)
        try:
            object.__setattr__(self, "dark_kernel", check_dark_kernel(self.dark_kernel))
        except InputError as exc:
            raise CardError(f"model card field 'decoder.dark_kernel' is {self.dark_kernel!r}; "
                            f"expected a positive odd integer ({exc})") from None
        _check_bool("decoder.flip_test", self.flip_test)


@dataclass(frozen=True)
class HourglassSpec:
    """decoder "hourglass" (Stacked Hourglass): the quarter-pixel rule of the port the
    weights come from, `source` princeton | bearpaw; `integer`: the ports' whole-pixel
    output coordinates."""

    source: str = HOURGLASS_SOURCES[0]
    integer: bool = False
    flip_test: bool = False

    def __post_init__(self) -> None:
        _require(self.source in HOURGLASS_SOURCES, "decoder.source", self.source,
                 f"one of {HOURGLASS_SOURCES}")
        _check_bool("decoder.integer", self.integer)
        _check_bool("decoder.flip_test", self.flip_test)


@dataclass(frozen=True)
class CpmSpec:
    """decoder "cpm" (Convolutional Pose Machines): argmax of upsampled belief maps;
    `background`: the maps end with a background channel."""

    background: bool = True
    flip_test: bool = False

    def __post_init__(self) -> None:
        _check_bool("decoder.background", self.background)
        _check_bool("decoder.flip_test", self.flip_test)


@dataclass(frozen=True)
class PafSpec:
    """decoder "paf" (OpenPose part affinity fields): grouping constants `preset`
    python | cmu (PafParams). PAF grouping has no flip test."""

    preset: str = PAF_PRESETS[0]
    flip_test: bool = False

    def __post_init__(self) -> None:
        _require(self.preset in PAF_PRESETS, "decoder.preset", self.preset,
                 f"one of {PAF_PRESETS}")
        _require(self.flip_test is False, "decoder.flip_test", self.flip_test,
                 "false (PAF grouping has no flip test)")


@dataclass(frozen=True)
class AeSpec:
    """decoder "ae" (associative embedding: AE, HigherHRNet): grouping constants
    `preset` pose-ae-train | higherhrnet (AeParams)."""

    preset: str = AE_PRESETS[0]
    flip_test: bool = False

    def __post_init__(self) -> None:
        _require(self.preset in AE_PRESETS, "decoder.preset", self.preset,
                 f"one of {AE_PRESETS}")
        _check_bool("decoder.flip_test", self.flip_test)


SchemeSpec = TopDownSpec | HourglassSpec | CpmSpec | PafSpec | AeSpec
# decoder.name → the spec of its settings; the decoders the runtime implements.
SCHEMES: Mapping[str, type] = {"topdown": TopDownSpec, "hourglass": HourglassSpec,
                               "cpm": CpmSpec, "paf": PafSpec, "ae": AeSpec}


def _check_refine(refine: Any) -> None:
    hint = " ('udp' is implemented by no decoder)" if refine == "udp" else ""
    _require(refine in REFINES, "decoder.refine", refine, f"one of {REFINES}{hint}")


@dataclass(frozen=True)
class DecoderSpec:
    """The card's decoder section as written: name, refine, flip_test, and the
    scheme's own keys flat beside them (kept in `extra`). `spec` is the typed,
    validated view the runtime reads, built here, once. `refine` is checked for
    every card but only "topdown" uses it (the others' rules are fixed or named by
    their own keys)."""

    name: str
    refine: str = "shift"
    flip_test: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require(isinstance(self.name, str) and self.name in SCHEMES, "decoder.name",
                 self.name, f"one of {tuple(SCHEMES)}")
        _check_refine(self.refine)
        _check_bool("decoder.flip_test", self.flip_test)
        scheme = SCHEMES[self.name]
        given = {"refine": self.refine, "flip_test": self.flip_test, **self.extra}
        object.__setattr__(self, "_spec", scheme(
            **{f.name: given[f.name] for f in fields(scheme) if f.name in given}))

    @property
    def spec(self) -> SchemeSpec:
        """The decoder's settings, typed, with the defaults of those the card leaves out."""
        return self._spec


@dataclass(frozen=True)
class ModelCard:
    """Everything the runtime needs to run and decode one model."""

    #: Where an ONNX file carries this card (metadata_props key).
    metadata_key: ClassVar[str] = METADATA_KEY

    family: str
    variant: str
    paradigm: str
    keypoints: str
    input: InputSpec
    outputs: tuple[OutputSpec, ...]
    decoder: DecoderSpec
    precision: str = "fp32"
    source: Mapping[str, Any] = field(default_factory=dict)
    engine: Mapping[str, Any] | None = None
    schema: int = SCHEMA_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require(self.schema == SCHEMA_VERSION, "schema", self.schema,
                 f"{SCHEMA_VERSION} (this edgepose reads schema {SCHEMA_VERSION} only; "
                 "use the edgepose version that wrote the file or re-export)")
        for name in ("family", "variant"):
            value = getattr(self, name)
            _require(isinstance(value, str) and bool(value), name, value, "a non-empty string")
        _require(self.paradigm in PARADIGMS, "paradigm", self.paradigm, f"one of {PARADIGMS}")
        _require(self.keypoints in KEYPOINT_SETS, "keypoints", self.keypoints,
                 f"one of {tuple(sorted(KEYPOINT_SETS))}")
        _require(self.precision in PRECISIONS, "precision", self.precision,
                 f"one of {PRECISIONS}")
        object.__setattr__(self, "outputs", tuple(self.outputs))
        _require(len(self.outputs) > 0, "outputs", list(self.outputs), "at least one output")
        names = [o.name for o in self.outputs]
        _require(len(set(names)) == len(names), "outputs", names, "unique output names")
        _require(isinstance(self.source, Mapping), "source", self.source, "a JSON object")
        _require(self.engine is None or isinstance(self.engine, Mapping), "engine", self.engine,
                 "a JSON object or absent")

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)

    def output(self, role: str) -> OutputSpec:
        """The output with this role; CardError naming the roles present otherwise."""
        for spec in self.outputs:
            if spec.role == role:
                return spec
        raise CardError(
            f"model card of {self.family}/{self.variant} has no output with role {role!r}; "
            f"it has {[o.role for o in self.outputs]}"
        )

    @property
    def random_init(self) -> bool:
        """True when the weights are random: results must then say so."""
        return self.source.get("format") == "random-init"

    def with_updates(self, **changes: Any) -> "ModelCard":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        def section(obj: Any) -> dict[str, Any]:
            out = {f.name: getattr(obj, f.name) for f in fields(obj) if f.name != "extra"}
            out = {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}
            out.update(obj.extra)
            return out

        data: dict[str, Any] = {
            "schema": self.schema,
            "family": self.family,
            "variant": self.variant,
            "paradigm": self.paradigm,
            "keypoints": self.keypoints,
            "input": section(self.input),
            "outputs": [section(o) for o in self.outputs],
            "decoder": section(self.decoder),
            "precision": self.precision,
            "source": dict(self.source),
        }
        if self.engine is not None:
            data["engine"] = dict(self.engine)
        data.update(self.extra)
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelCard":
        if not isinstance(data, Mapping):
            raise CardError(f"a model card must be a JSON object, got {type(data).__name__}")
        schema = data.get("schema")
        if schema != SCHEMA_VERSION:
            raise CardError(
                f"model card has schema {schema!r}; this edgepose supports schema "
                f"{SCHEMA_VERSION}: upgrade edgepose or re-export the model"
            )
        known, extra = _split_known(cls, data, "card")
        absent = [k for k in ("family", "variant", "paradigm", "keypoints", "input", "outputs",
                              "decoder") if k not in known]
        if absent:
            raise CardError(f"model card lacks the field(s) {', '.join(absent)}")
        outputs = known["outputs"]
        if not isinstance(outputs, list):
            raise CardError(f"model card field 'outputs' is {outputs!r}; expected a JSON list")
        known["input"] = _section(InputSpec, known["input"], "input", ("name", "height", "width"))
        known["outputs"] = tuple(_section(OutputSpec, o, "outputs[]", ("name", "role", "stride"))
                                 for o in outputs)
        known["decoder"] = _section(DecoderSpec, known["decoder"], "decoder", ("name",))
        return cls(**known, extra=extra)

    @classmethod
    def from_json(cls, text: str | bytes) -> "ModelCard":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CardError(f"model card is not valid JSON: {exc}") from None
        return cls.from_dict(data)


def _section(cls: type, data: Any, where: str, required: tuple[str, ...]) -> Any:
    known, extra = _split_known(cls, data, where)
    absent = [k for k in required if k not in known]
    if absent:
        raise CardError(f"model card section {where!r} lacks {', '.join(absent)}")
    try:
        return cls(**known, extra=extra)
    except TypeError as exc:
        raise CardError(f"model card section {where!r} is malformed: {exc}") from None
