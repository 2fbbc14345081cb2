"""What the grouping benchmarks share: stage timing, the printed table, the machine, the JSON."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

from edgepose.io import write_json_atomic

# Each stage: (vectorised call, loop-reference call).
Stages = dict[str, tuple[Callable[[], object], Callable[[], object]]]


def add_scene_arguments(parser: argparse.ArgumentParser, *, size: str, size_meaning: str,
                        default_json: Path, root: Path) -> None:
    """The options every grouping benchmark takes: its synthetic scene, repeats, report."""
    parser.add_argument("--people", type=int, default=30, help="people in the frame (default 30)")
    parser.add_argument("--size", default=size, help=f"{size_meaning} HxW (default {size})")
    parser.add_argument("--seed", type=int, default=4,
                        help="seed of the synthetic people (default 4)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs of the loop reference (default 3; the vectorised "
                             "decoder runs 10x as many)")
    parser.add_argument("--json", type=Path, default=default_json,
                        help=f"report JSON (default {default_json.relative_to(root)})")


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' -> (H, W)."""
    height, width = (int(v) for v in text.lower().split("x"))
    return height, width


def median_seconds(function: Callable[[], object], repeats: int) -> float:
    """Median wall time of `repeats` calls: robust to one call slowed by the machine."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_in_rounds(calls: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median ms of each call, timed in `rounds` rounds that call each once: the
    machine's slow spells fall on all of them alike, so their proportions hold. Only
    for pieces of one side: alternating with the other side's calls changes what
    each finds in the cache."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(spans) for name, spans in times.items()}


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


def timing_fields(results: dict[str, dict[str, float]], repeats: int, goal: float,
                  ratio: float, **machine_extra: Any) -> dict[str, Any]:
    """The report's timing part, the same for every grouping benchmark."""
    return {"repeats": {"vectorised": 10 * repeats, "reference": repeats},
            "stages": results, "goal_ratio": goal, "goal_met": ratio >= goal,
            "machine": machine(**machine_extra)}


def write_report(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, report)
    print(f"\njson: {path}")
