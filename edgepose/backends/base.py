"""The Runner protocol every inference backend implements.

A runner owns one loaded model and its card. `infer` maps input names to arrays
and returns output names to arrays; shapes follow the model, batch first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from edgepose._closing import Closeable
from edgepose.card import InputSpec, ModelCard
from edgepose.errors import BackendError, CardError, InputError


@dataclass(frozen=True)
class TensorSpec:
    """Name, dtype and shape of one model input or output.

    shape: one entry per axis; None marks an axis sized at run time (the batch).
    """

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]


class Card(Protocol):
    """What a runner reads from a card: the pose ModelCard or a detector's card."""

    metadata_key: ClassVar[str]
    input: InputSpec
    engine: Mapping[str, Any] | None

    @property
    def output_names(self) -> tuple[str, ...]: ...

    @classmethod
    def from_json(cls, text: str | bytes) -> "Card": ...


@runtime_checkable
class Runner(Protocol):
    card: ModelCard
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    #: largest batch one `infer` call accepts; None when unbounded
    max_batch: int | None

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...

    def __enter__(self) -> "Runner": ...

    def __exit__(self, *exc_info: object) -> None: ...


class RunnerBase(Closeable):
    """Context-manager plumbing shared by the backends; close() is idempotent."""

    def _require_open(self) -> None:
        """BackendError once closed: a closed runner's session or engine is gone."""
        if self.closed:
            raise BackendError(f"the runner for {getattr(self, 'path', 'this model')} is closed; "
                               "open the model again with open_runner(path) to run it")


def _shape_text(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("N" if i == 0 and v is None else "?" if v is None else str(v)
                           for i, v in enumerate(shape)) + ")"


def _batch_text(low: int, high: int | None) -> str:
    return f"{low}..{high}" if high is not None else f"{low} or more"


@dataclass(frozen=True)
class FeedContract:
    """What a runner's `infer` accepts, worked out once when it opens so that each
    call only compares names, dtypes and shapes.

    inputs: the runner's input specs; axis 0 of each is the batch, bounded by
    min_batch..max_batch (max None: unbounded). owner and batch_range name the
    runner and its batch limit in messages ("engine", "profile"); batch_fix says how
    to get past that limit.
    """

    inputs: tuple[TensorSpec, ...]
    owner: str = "model"
    min_batch: int = 1
    max_batch: int | None = None
    batch_range: str = "batch range"
    batch_fix: str = "split the batch"
    names: frozenset[str] = field(init=False)
    expected: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "names", frozenset(s.name for s in self.inputs))
        batch = _batch_text(self.min_batch, self.max_batch)
        described = ", ".join(f"{s.name!r}: {_shape_text(s.shape)} {s.dtype}" for s in self.inputs)
        object.__setattr__(self, "expected", f"{{{described}}} with N in {batch}")


def check_feeds(feeds: object, contract: FeedContract) -> None:
    """InputError unless `feeds` is a dict of exactly the contract's inputs, each a numpy
    array of its dtype and shape with a batch in range. Compares only; no array is read."""
    if not isinstance(feeds, Mapping):
        raise InputError(f"feeds must be a dict of input name → array, {contract.expected}; "
                         f"got a {type(feeds).__name__}")
    names = contract.names
    if feeds.keys() != names:
        given = sorted(str(k) for k in feeds)
        missing = sorted(names - set(feeds))
        unknown = sorted(str(k) for k in feeds if k not in names)
        raise InputError(f"model inputs are {sorted(names)}, got feeds {given} (missing "
                         f"{missing}, unknown {unknown}); pass {contract.expected}")
    owner = contract.owner
    for spec in contract.inputs:
        array = feeds[spec.name]
        if not isinstance(array, np.ndarray):
            raise InputError(f"input {spec.name!r} is a {type(array).__name__}; expected a numpy "
                             f"array, {contract.expected}")
        if array.dtype != spec.dtype:
            raise InputError(f"input {spec.name!r} is {array.dtype}; this {owner} takes "
                             f"{spec.dtype}, {contract.expected} — convert it with "
                             f"array.astype(np.{spec.dtype.name})")
        shape = array.shape
        if len(shape) != len(spec.shape):
            raise InputError(f"input {spec.name!r} has shape {shape}; this {owner} takes "
                             f"{len(spec.shape)} axes, {contract.expected}")
        for axis in range(1, len(shape)):
            want = spec.shape[axis]
            if want is not None and shape[axis] != want:
                raise InputError(f"input {spec.name!r} axis {axis} is {shape[axis]}; this {owner} "
                                 f"takes {contract.expected}")
        if shape:
            batch, low, high = shape[0], contract.min_batch, contract.max_batch
            if batch < low or (high is not None and batch > high):
                raise InputError(f"batch {batch} is outside this {owner}'s {contract.batch_range} "
                                 f"{_batch_text(low, high)}; {contract.batch_fix}")


#: Axis of each image dimension in the card's input layouts.
_LAYOUT_AXES: Mapping[str, Mapping[str, int]] = {
    "NCHW": {"channels": 1, "height": 2, "width": 3},
    "NHWC": {"height": 1, "width": 2, "channels": 3},
}


def check_card_against_io(card: Card, inputs: Sequence[TensorSpec],
                          outputs: Sequence[TensorSpec], source: str, noun: str = "graph") -> None:
    """CardError unless the card describes this model's I/O: its input exists with rank 4,
    3 channels and the card's height and width where the model states them (by the card's
    layout), and every output it names exists. source names the file; noun the model
    ("graph", "engine")."""
    fix = f"the card does not describe this {noun}: re-export the model or correct its card"
    spec = card.input
    by_name = {t.name: t for t in inputs}
    tensor = by_name.get(spec.name)
    if tensor is None:
        raise CardError(f"{source}: the card's input.name is {spec.name!r} but the {noun}'s "
                        f"inputs are {sorted(by_name)}; {fix}")
    shape = tensor.shape
    if len(shape) != 4:
        raise CardError(f"{source}: the {noun}'s input {spec.name!r} has shape "
                        f"{_shape_text(shape)} ({len(shape)} axes) but the card's input.layout "
                        f"{spec.layout} needs 4; {fix}")
    axes = _LAYOUT_AXES[spec.layout]
    # Channels first: a wrong layout shows as a channel count, not as a height.
    for field_name, want in (("channels", 3), ("height", spec.height), ("width", spec.width)):
        axis = axes[field_name]
        got = shape[axis]
        if got is None or got == want:
            continue
        if field_name == "channels":
            raise CardError(f"{source}: the {noun}'s input {spec.name!r} has shape "
                            f"{_shape_text(shape)}, so {got} channels on axis {axis} by the card's "
                            f"input.layout {spec.layout}; expected 3 (is input.layout right?) — "
                            f"{fix}")
        raise CardError(f"{source}: the card's input.{field_name} is {want} but the {noun}'s input "
                        f"{spec.name!r} has shape {_shape_text(shape)}, {field_name} {got} on axis "
                        f"{axis} of {spec.layout}; {fix}")
    have = {t.name for t in outputs}
    missing = [name for name in card.output_names if name not in have]
    if missing:
        raise CardError(f"{source}: the card names output(s) {missing} that the {noun} lacks; "
                        f"the {noun}'s outputs are {sorted(have)}; {fix}")
