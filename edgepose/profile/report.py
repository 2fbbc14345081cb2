"""The side-by-side table of a ProfileReport, as plain text."""

from __future__ import annotations

from typing import Callable

from edgepose.profile.stats import (LAYER_RUNS, STAGE_LABELS, STAGES, ModelProfile, ProfileReport,
                                    StageStats, stage_of)


def _ms(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if value < 10 else f"{value:.2f}" if value < 100 else f"{value:.1f}"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}" if value < 1000 else f"{value:.0f}"


def _mib(value: int | None) -> str:
    return "—" if value is None else f"{value / 2**20:.1f}"


def _times(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


_CELL = 8  # width of one number


def format_report(report: ProfileReport, top_layers: int) -> str:
    models = report.models
    lines = [f"edgepose profile · {report.created}", report.environment.summary(), ""]
    for index, model in enumerate(models, 1):
        what = f"{model.family} {model.variant} {model.precision}"
        how = f"{model.backend} on {model.device}, {model.timing}"
        if model.copies:
            how += f", {model.copies} copies"
        if model.cuda_graph:
            how += ", CUDA graph"
        if model.flip_test:
            how += ", flip test (2 runs per crop)"
        runs = (f"{model.video.frames} frames" if model.video is not None else
                ", ".join(f"B{b.batch}×{b.iterations}" for b in model.batches))
        lines.append(f"[{index}] {model.name}: {what}; {how}; load {_ms(model.load_ms)} ms; "
                     f"{model.source}; {model.warmup} warm-up, timed {runs}")
    lines.append("")
    header_cells = []
    for index in range(len(models)):
        cells = f"{'mean':>{_CELL}}{'p50':>{_CELL}}{'p99':>{_CELL}}"
        if index:
            cells += f"{'ratio':>{_CELL}}"
        header_cells.append(cells)
    titles = []
    for index in range(1, len(models) + 1):
        width = _CELL * (3 if index == 1 else 4)
        title = f"[{index}]" + (" vs [1]" if index > 1 else "")
        titles.append(f"{title:^{width}}")
    label_width = 23
    lines.append(f"{'ms':<{label_width}}" + "  ".join(titles))
    lines.append(f"{'batch  stage':<{label_width}}" + "  ".join(header_cells))

    def stage_row(label: str, getter: Callable[[ModelProfile], StageStats | None],
                  ratio: Callable[[int], float | None]) -> str:
        cells = []
        for index, model in enumerate(models):
            stats = getter(model)
            cell = (f"{_ms(stats.mean if stats else None):>{_CELL}}"
                    f"{_ms(stats.p50 if stats else None):>{_CELL}}"
                    f"{_ms(stats.p99 if stats else None):>{_CELL}}")
            if index:
                cell += f"{_times(ratio(index)):>{_CELL}}"
            cells.append(cell)
        return f"{label:<{label_width}}" + "  ".join(cells)

    def value_row(label: str, values: list[str], ratios: list[float | None]) -> str:
        cells = []
        for index, value in enumerate(values):
            cell = f"{value:>{_CELL}}{'':>{2 * _CELL}}"
            if index:
                cell += f"{_times(ratios[index]):>{_CELL}}"
            cells.append(cell)
        return f"{label:<{label_width}}" + "  ".join(cells)

    def relative(values: list[float | None]) -> list[float | None]:
        first = values[0]
        return [None if v is None or not first else v / first for v in values]

    sizes = sorted({b.batch for m in models for b in m.batches})
    for size in sizes:
        present = [s for s in STAGES if any(m.batch(size) and s in m.batch(size).stages
                                             for m in models)]
        for stage in present:
            lines.append(stage_row(f"{size:<5}  {STAGE_LABELS[stage]}",
                                   lambda m, st=stage: stage_of(m, size, st),
                                   lambda i, st=stage: report.ratio(i, size, st)))
        first_calls = [m.batch(size).first_call_ms.get("end_to_end") if m.batch(size) else None
                       for m in models]
        lines.append(value_row(f"{size:<5}  first call ms", [_ms(v) for v in first_calls],
                               relative(first_calls)))
        fps = [m.batch(size).frames_per_s if m.batch(size) else None for m in models]
        pps = [m.batch(size).people_per_s if m.batch(size) else None for m in models]
        lines.append(value_row(f"{size:<5}  frames/s", [_rate(v) for v in fps], relative(fps)))
        lines.append(value_row(f"{size:<5}  people/s", [_rate(v) for v in pps], relative(pps)))
    if any(m.video is not None for m in models):
        present = [s for s in STAGES if any(m.video and s in m.video.stages for m in models)]
        for stage in present:
            lines.append(stage_row(f"video  {STAGE_LABELS[stage]}",
                                   lambda m, st=stage: stage_of(m, None, st),
                                   lambda i, st=stage: report.ratio(i, None, st)))
        first_frames = [m.video.first_frame_ms.get("end_to_end") if m.video else None
                        for m in models]
        lines.append(value_row("video  first frame ms", [_ms(v) for v in first_frames],
                               relative(first_frames)))
        fps = [m.video.fps if m.video else None for m in models]
        pps = [m.video.people_per_s if m.video else None for m in models]
        lines.append(value_row("video  frames/s", [_rate(v) for v in fps], relative(fps)))
        lines.append(value_row("video  people/s", [_rate(v) for v in pps], relative(pps)))
    # Host figures are process-wide (shared libraries load once), so no ratio for them.
    memory_rows = (("host RSS MiB", lambda m: m.memory.host_rss_bytes, False),
                   ("RSS growth MiB", lambda m: m.memory.host_rss_growth_bytes, False),
                   ("GPU MiB", lambda m: m.memory.gpu_bytes, True))
    for label, getter, compare in memory_rows:
        values = [getter(m) for m in models]
        lines.append(value_row(f"mem    {label}", [_mib(v) for v in values],
                               relative(values) if compare else [None] * len(values)))
    for index, model in enumerate(models, 1):
        if not model.layers:
            continue
        shown = model.layers[:top_layers]
        lines += ["", f"[{index}] {model.name}: top {len(shown)} of {len(model.layers)} layers "
                      f"(batch {model.layer_batch}, mean of {LAYER_RUNS} calls with TensorRT's "
                      "profiler attached)"]
        for layer in shown:
            name = layer.name if len(layer.name) <= 60 else layer.name[:57] + "..."
            lines.append(f"  {name:<60} {_ms(layer.mean_ms):>{_CELL}} ms {layer.share:>7.1%}")
    lines += ["", "The stages of a call add up to its 'end to end'. vs [1]: mean / model [1]'s "
                  "mean (other rows: value / model [1]'s value)."]
    return "\n".join(lines)

