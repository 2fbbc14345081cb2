"""Helpers the evaluation modules share: number checks, JSON numbers, the backend's
name for reports and the optional progress bar."""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def json_number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def backend_name(runner: Any) -> str:
    """The runner's backend for reports: module and providers or TensorRT module."""
    module = type(runner).__module__
    name = (module.rsplit(".", 1)[-1] if module.startswith("edgepose.backends.")
            else type(runner).__name__)
    detail = getattr(runner, "tensorrt_module", None) or ", ".join(getattr(runner, "providers", ()))
    return f"{name} ({detail})" if detail else name


def progress_bar(items: Sequence[Any], enabled: bool) -> Iterable[Any]:
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:  # the bar is a nicety; no tqdm, no bar
        return items
    return tqdm(items, total=len(items), desc="evaluate", unit="image", leave=False)
