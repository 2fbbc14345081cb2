"""The profile plot, drawn with matplotlib (the `plot` extra, imported when a plot is drawn).

Left: end-to-end latency per batch size (mean, with a p50–p99 bar), or for a video
run the mean of each stage per model. Right: a histogram of end-to-end latency.
The legend sits below both, one full model name per entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgepose._optional import import_optional
from edgepose.errors import InputError
from edgepose.io import write_image_atomic
from edgepose.profile.stats import STAGE_LABELS, STAGES, ProfileReport

#: Pixels of the default plot; the height grows by LEGEND_ROW_PX per model past two.
PLOT_SIZE = (1400, 620)
LEGEND_ROW_PX = 22
_DPI = 100
#: matplotlib's default cycle ("tab10"), so colours match across the two panels.
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")


def _matplotlib() -> tuple[Any, Any]:
    """(matplotlib.figure, matplotlib.backends.backend_agg), or MissingDependencyError."""
    import_optional("matplotlib", "plot", "Drawing the profile plot")
    figure = import_optional("matplotlib.figure", "plot", "Drawing the profile plot")
    agg = import_optional("matplotlib.backends.backend_agg", "plot", "Drawing the profile plot")
    return figure, agg


def plot_figure(report: ProfileReport, size: tuple[int, int] | None = None) -> Any:
    """The plot as a matplotlib Figure (no pyplot, no global backend change).

    size: (width, height) pixels; None: PLOT_SIZE, taller for more than two models.
    """
    figure_module, agg = _matplotlib()
    models = report.models
    if size is None:
        size = (PLOT_SIZE[0], PLOT_SIZE[1] + LEGEND_ROW_PX * max(0, len(models) - 2))
    width, height = size
    # Constrained layout leaves room for tick labels and for the legend outside the panels.
    figure = figure_module.Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI,
                                  layout="constrained")
    agg.FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    colors = [_COLORS[i % len(_COLORS)] for i in range(len(models))]
    if any(m.batches for m in models):
        _latency_per_batch(left, report, colors)
    else:
        _video_stages(left, report, colors)
    _histogram(right, report, colors)
    patch = import_optional("matplotlib.patches", "plot", "Drawing the profile plot").Patch
    handles = [patch(color=color, label=f"[{index}] {model.name}")
               for index, (model, color) in enumerate(zip(models, colors), 1)]
    figure.legend(handles=handles, loc="outside lower left", ncol=1, frameon=False, fontsize=9)
    figure.suptitle(f"edgepose profile {report.created}", x=0.99, ha="right", fontsize=8,
                    color="0.45")
    return figure


def _latency_per_batch(axes: Any, report: ProfileReport, colors: list[str]) -> None:
    models = report.models
    sizes = sorted({b.batch for m in models for b in m.batches})
    for index, (model, color) in enumerate(zip(models, colors)):
        offset = (index - (len(models) - 1) / 2) * 0.06
        found = [(slot + offset, model.batch(batch).stages["end_to_end"])
                 for slot, batch in enumerate(sizes) if model.batch(batch) is not None]
        slots = [slot for slot, _ in found]
        means = [stats.mean for _, stats in found]
        axes.vlines(slots, [s.p50 for _, s in found], [s.p99 for _, s in found], colors=color,
                    linewidth=2)
        axes.plot(slots, means, "o-", color=color, linewidth=2, markersize=5)
    axes.set_xticks(range(len(sizes)), [str(s) for s in sizes])
    axes.set_xlim(-0.5, len(sizes) - 0.5)
    axes.set_ylim(bottom=0)
    axes.set_xlabel("batch size")
    axes.set_ylabel("ms")
    axes.set_title("end-to-end latency per batch size (mean; bar p50-p99)", fontsize=11)
    axes.grid(axis="y", color="0.9")
    axes.set_axisbelow(True)


def _video_stages(axes: Any, report: ProfileReport, colors: list[str]) -> None:
    """Horizontal bars: each model's mean per stage, stage by stage (video runs)."""
    models = [m for m in report.models if m.video is not None]
    stages = [s for s in STAGES if s != "end_to_end"
              and any(s in m.video.stages for m in models)]
    height = 0.8 / max(1, len(report.models))
    for index, (model, color) in enumerate(zip(report.models, colors)):
        if model.video is None:
            continue
        means = [model.video.stages[s].mean if s in model.video.stages else 0.0 for s in stages]
        rows = [row + (index - (len(report.models) - 1) / 2) * height
                for row in range(len(stages))]
        axes.barh(rows, means, height=height, color=color)
    axes.set_yticks(range(len(stages)), [STAGE_LABELS[s] for s in stages])
    axes.invert_yaxis()
    axes.set_xlim(left=0)
    axes.set_xlabel("ms (mean per frame)")
    axes.set_title("video: mean time per stage", fontsize=11)
    axes.grid(axis="x", color="0.9")
    axes.set_axisbelow(True)


def _histogram(axes: Any, report: ProfileReport, colors: list[str]) -> None:
    series = []
    for model, color in zip(report.models, colors):
        if model.batches:
            series.append((model.batches[0].samples_ms, f"batch {model.batches[0].batch}", color))
        elif model.video is not None:
            series.append((model.video.samples_ms, "video frames", color))
    every = np.concatenate([np.asarray(s, np.float64) for s, _, _ in series])
    low, high = float(every.min()), float(np.percentile(every, 99.5))
    if not high > low:
        high = low + max(1e-3, abs(low) * 0.01)
    bins = np.linspace(low, high, 41)
    for samples, _, color in series:
        clipped = np.clip(np.asarray(samples, np.float64), low, high)
        axes.hist(clipped, bins=bins, color=color, alpha=0.35)
        axes.hist(clipped, bins=bins, color=color, histtype="step", linewidth=2)
    what = sorted({label for _, label, _ in series})
    ticker = import_optional("matplotlib.ticker", "plot", "Drawing the profile plot")
    axes.yaxis.set_major_locator(ticker.MaxNLocator(integer=True))  # counts of calls
    axes.set_xlabel("ms")
    axes.set_ylabel("calls")
    axes.set_title(f"end-to-end latency histogram ({', '.join(what)}; "
                   "last bin holds > p99.5)", fontsize=11)
    axes.grid(axis="y", color="0.9")
    axes.set_axisbelow(True)


def plot_image(report: ProfileReport, size: tuple[int, int] | None = None) -> np.ndarray:
    """The plot as a BGR uint8 image (height, width, 3); see plot_figure for `size`."""
    figure = plot_figure(report, size)
    figure.canvas.draw()
    rgba = np.asarray(figure.canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., 2::-1])


def write_plot(report: ProfileReport, path: str | Path) -> Path:
    """Write `plot_image(report)` as a PNG, atomically."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise InputError(f"the plot is a PNG; name the file *.png, not {path.name!r}")
    return write_image_atomic(path, plot_image(report))

