"""The Runner protocol every inference backend implements.

A runner owns one loaded model and its card. `infer` maps input names to arrays
and returns output names to arrays; shapes follow the model, batch first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol, runtime_checkable

import numpy as np

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


class RunnerBase:
    """Context-manager plumbing shared by the backends; close() is idempotent."""

    closed = False

    def close(self) -> None:
        if not self.closed:
            self._release()
            self.closed = True

    def _release(self) -> None:  # pragma: no cover - overridden where there is something to free
        """Free backend resources; called once."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown may have torn down modules
            pass
