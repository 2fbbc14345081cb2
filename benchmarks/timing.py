"""What the grouping benchmarks share: stage timing, the printed table, the machine, the JSON."""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

from edgepose.io import write_json_atomic

# Each stage: (vectorised call, loop-reference call).
Stages = dict[str, tuple[Callable[[], object], Callable[[], object]]]


def median_seconds(function: Callable[[], object], repeats: int) -> float:
    """Median wall time of `repeats` calls: robust to one call slowed by the machine."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_stages(stages: Stages, repeats: int) -> dict[str, dict[str, float]]:
    """Median times of each stage (the vectorised side runs 10x as often: it is faster) and
    the ratio, after one untimed call of the vectorised side to warm caches and imports."""
    results = {}
    for name, (fast, loop) in stages.items():
        fast()
        fast_s = median_seconds(fast, 10 * repeats)
        loop_s = median_seconds(loop, repeats)
        results[name] = {"vectorised_ms": 1e3 * fast_s, "reference_ms": 1e3 * loop_s,
                         "ratio": loop_s / fast_s}
    return results


def print_stages(title: str, results: dict[str, dict[str, float]], goal: float) -> float:
    """Print the table and the goal line for the `grouping` stage; returns its ratio."""
    width = max(10, max(len(name) for name in results) + 2)
    print(title)
    print(f"{'stage':<{width}}{'vectorised ms':>15}{'loop ms':>12}{'ratio':>9}")
    for name, r in results.items():
        print(f"{name:<{width}}{r['vectorised_ms']:>15.2f}{r['reference_ms']:>12.1f}"
              f"{r['ratio']:>8.1f}x")
    ratio = results["grouping"]["ratio"]
    print(f"goal: grouping >= {goal:g}x faster: {'met' if ratio >= goal else 'NOT met'} "
          f"({ratio:.1f}x)")
    return ratio


def machine(**extra: Any) -> dict[str, Any]:
    """Where the numbers were measured: they mean nothing without it."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "load_average": load, **extra}


def write_report(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, report)
    print(f"\njson: {path}")
