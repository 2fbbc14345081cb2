"""The Runner protocol every inference backend implements.

A runner owns one loaded model and its card. `infer` maps input names to arrays
and returns output names to arrays; shapes follow the model, batch first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol, runtime_checkable

import numpy as np

from edgepose._closing import Closeable
from edgepose.card import ModelCard


@dataclass(frozen=True)
class TensorSpec:
    """Name, dtype and shape of one model input or output.

    shape: one entry per axis; None marks an axis sized at run time (the batch).
    """

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]


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
