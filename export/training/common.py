"""What the CPU trainers of the demo checkpoints share: input checks, the optimisation loop,
float16 save, the command line's tail."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

from edgepose.errors import EdgeposeError, InputError
from edgepose.keypoints import KeypointSet
from edgepose.io import atomic_path

log = logging.getLogger(__name__)
# Steps per entry of the loss history (and per log line).
LOG_EVERY = 50
PRECISIONS = ("auto", "bf16", "fp32")
PRECISION_HELP = ("forward-pass arithmetic while training: bf16 (bfloat16 autocast, float32 "
                  "weights; ~1.8x faster than fp32 where the CPU has AVX512-BF16 or AMX, slower "
                  "elsewhere), fp32, or auto = bf16 where it is native (default auto)")
COMPILE_MODES = ("auto", "on", "off")
COMPILE_HELP = ("compile the training step with torch.compile (inductor): about 1.5x faster "
                "steps for HRNet after a few minutes of compiling on the first step; on, off, "
                "or auto = on where a C++ compiler is found (default auto)")


def add_run_options(parser: Any, defaults: Any, *, compile_option: bool = True) -> None:
    """--threads, --precision and (where the trainer compiles) --compile, which every
    trainer takes alike; defaults: its TrainConfig()."""
    parser.add_argument("--threads", type=int, default=defaults.threads,
                        help=f"torch CPU threads (default {defaults.threads})")
    parser.add_argument("--precision", choices=PRECISIONS, default=defaults.precision,
                        help=PRECISION_HELP)
    if compile_option:
        parser.add_argument("--compile", choices=COMPILE_MODES, default=defaults.compile,
                            help=COMPILE_HELP)


def native_bf16() -> bool:
    """Whether oneDNN runs bfloat16 convolutions natively on this CPU (AVX512-BF16 or AMX);
    elsewhere it emulates them, slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str) -> str:
    """'bf16' or 'fp32' for a trainer's --precision; 'auto' picks bf16 where it is native."""
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16() else "fp32"
    return precision


def resolve_compile(mode: str) -> bool:
    """Whether a trainer's --compile mode compiles the step. Inductor's CPU code needs a C++
    compiler (CXX, else g++), so 'auto' compiles only where one is on the PATH."""
    if mode not in COMPILE_MODES:
        raise InputError(f"compile must be one of {', '.join(COMPILE_MODES)}; got {mode!r}")
    if mode == "auto":
        return shutil.which(os.environ.get("CXX", "g++")) is not None
    return mode == "on"


def check_config(config: Any, counts: Sequence[str],
                 bounds: Sequence[tuple[str, bool, str]]) -> None:
    """InputError naming the first field of a trainer's config that is out of range.

    counts: fields that must be positive integers; bounds: (field, within its range,
    the range in words) for the float fields, which must also be finite. `seed` must be a
    non-negative integer.
    """
    for name in counts:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
    for name, ok, meaning in bounds:
        if not (math.isfinite(getattr(config, name)) and ok):
            raise InputError(f"{name} must be {meaning}, got {getattr(config, name)!r}")
    if isinstance(config.seed, bool) or not isinstance(config.seed, int) or config.seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {config.seed!r}")


def read_annotations(annotations: Path) -> dict:
    """A trainer's COCO keypoints file; InputError when it is missing or not JSON, before
    any training starts."""
    path = Path(annotations)
    if not path.is_file():
        raise InputError(f"annotation file {str(path)!r} does not exist")
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"annotation file {str(path)!r} is not JSON: {exc}") from None


def keypoint_rows(annotation: dict, keypoint_set: KeypointSet, annotations: Path,
                  trainer: str) -> np.ndarray:
    """A COCO annotation's keypoints as (K, 3) x, y, v rows; InputError naming the annotation
    and the `trainer` when it holds another count than `keypoint_set` (another layout's set
    would otherwise fail at the first step, or train the wrong maps)."""
    rows = np.asarray(annotation.get("keypoints", []), np.float64)
    k = keypoint_set.num_keypoints
    if rows.size != 3 * k:
        raise InputError(
            f"annotation {annotation.get('id')} in {annotations} has {rows.size // 3} keypoints; "
            f"{trainer} needs {k} in {keypoint_set.name} order (write the set with "
            f"`python -m export.training.synthetic --layout {keypoint_set.name}`)")
    return rows.reshape(k, 3)


def check_output_folder(out: Path) -> None:
    """InputError when a checkpoint's folder is missing: found before training, not after."""
    if not Path(out).parent.is_dir():
        raise InputError(f"output folder {str(Path(out).parent)!r} does not exist; create it "
                         "first")


# The one-cycle schedule's share of warm-up steps.
WARMUP_FRACTION = 0.05


def adamw_one_cycle(model: torch.nn.Module, learning_rate: float, weight_decay: float, steps: int,
                    fused: bool = False
                    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW under a one-cycle cosine schedule (5 % warm-up) over a fixed step count, so a
    run is defined by its step count alone and the same command gives the same weights.

    A warm-up needs more than one step, so runs of 20 steps or fewer (5 % of them is at
    most one step) have none: their learning rate starts at its peak and falls along the
    same cosine. (torch's OneCycleLR divides by zero at exactly one warm-up step, and
    skips the warm-up below it.)

    fused updates all parameters in one kernel instead of a loop over HRNet's hundreds of
    small tensors (29 → 11 ms a W10 step); it rounds differently, so only the compiled
    path takes it and the eager one still reproduces the shipped checkpoints."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay,
                                  fused=fused)
    if WARMUP_FRACTION * steps <= 1:
        log.info("%d steps leave no room for a warm-up (%g of them); the learning rate "
                 "starts at its peak", steps, WARMUP_FRACTION)
        # Ends, like OneCycleLR, at its floor (the peak / 25 / 1e4) on the last step.
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(steps - 1, 1), eta_min=learning_rate / 25 / 1e4)
        return optimizer, scheduler
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=learning_rate, total_steps=steps, pct_start=WARMUP_FRACTION,
        anneal_strategy="cos")
    return optimizer, scheduler


def progress_bar(total: int, description: str):
    """A tqdm bar of `total` steps, or a silent stand-in where tqdm is not installed."""
    try:
        from tqdm import tqdm
    except ImportError:
        class _Silent:
            def update(self, _count: int) -> None: ...
            def close(self) -> None: ...
        return _Silent()
    return tqdm(total=total, desc=description, unit="step")


@dataclass(frozen=True)
class TrainingRun:
    steps: int
    seconds: float
    history: list[dict[str, float]]  # mean loss of each LOG_EVERY steps, and of the last few
    first_step_seconds: float  # with compile_step, mostly the compilation


def run_steps(model: torch.nn.Module, loader: Iterable[Any],
              loss_of_batch: Callable[[Any], torch.Tensor], *, steps: int, learning_rate: float,
              weight_decay: float, description: str, precision: str = "fp32",
              compile_step: bool = False) -> TrainingRun:
    """`steps` optimiser steps over `loader` (repeated as often as needed), the model left in
    eval mode. InputError when the loss stops being finite, naming the learning rate.

    precision 'bf16' runs the forward pass under bfloat16 autocast (weights, optimiser and
    the loss's reductions stay float32). Either way the model trains channels-last, which
    oneDNN's convolutions prefer; it is handed back in the default layout. Measured on
    2 AVX512-BF16 cores, HRNet w8 at 128x96, batch 32: 1.37 s a step plain, 0.95 s
    channels-last, 0.54 s channels-last + bf16.

    compile_step runs the forward pass and the loss through torch.compile: inductor fuses
    each batch norm with its neighbours, which eager mode runs as separate passes (a quarter
    of an eager W10 step). The first step pays for the compilation; the clock includes it.
    A failed compilation is an InputError that points at --compile off.
    """
    if precision not in ("bf16", "fp32"):
        raise InputError(f"precision must be 'bf16' or 'fp32' here (resolve 'auto' first); "
                         f"got {precision!r}")

    def forward_context():
        return (torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16"
                else contextlib.nullcontext())

    def forward_loss(batch: Any) -> torch.Tensor:
        with forward_context():
            return loss_of_batch(batch).float()

    step_loss = torch.compile(forward_loss) if compile_step else forward_loss

    model.to(memory_format=torch.channels_last)
    optimizer, scheduler = adamw_one_cycle(model, learning_rate, weight_decay, steps,
                                           fused=compile_step)
    start = time.monotonic()
    first_step_seconds = 0.0
    done, running, window = 0, 0.0, 0
    history = []
    model.train()
    progress = progress_bar(steps, description)
    while done < steps:
        for batch in loader:
            try:
                loss = step_loss(batch)
            except torch._dynamo.exc.BackendCompilerFailed as exc:
                cause = exc.inner_exception
                first_line = next(iter(str(cause).strip().splitlines()), "")[:200]
                raise InputError(f"torch.compile could not compile the training step "
                                 f"({type(cause).__name__}: {first_line}); train with "
                                 "--compile off") from exc
            if not torch.isfinite(loss):
                raise InputError(f"the loss became {loss.item()} at step {done + 1}; lower "
                                 f"--lr (now {learning_rate})")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            done += 1
            if done == 1:
                first_step_seconds = time.monotonic() - start
                log.info("first step: %.1f s", first_step_seconds)
            running += loss.item()
            window += 1
            progress.update(1)
            if done % LOG_EVERY == 0 or done == steps:
                elapsed = time.monotonic() - start
                history.append({"step": done, "seconds": round(elapsed, 1),
                                "loss": running / window})
                log.info("step %d/%d, %.0f s, loss %.6f", done, steps, elapsed, running / window)
                running, window = 0.0, 0
            if done == steps:
                break
    progress.close()
    model.to(memory_format=torch.contiguous_format)
    model.eval()
    return TrainingRun(done, time.monotonic() - start, history, first_step_seconds)


def save_float16(model: torch.nn.Module, out: Path) -> None:
    """The model's state dict with float tensors as float16 (half the shipped size), written
    to a temporary file and renamed."""
    state = {key: value.half() if value.is_floating_point() else value
             for key, value in model.state_dict().items()}
    with atomic_path(out) as temporary:
        torch.save(state, temporary)


def run_training_command(args: Any, make_config: Callable[[], Any],
                         train: Callable[[Path, Path, Path, Any], dict]) -> int:
    """A trainer's command line after parsing `args` (annotations, images, out): train,
    print the record without its loss history, and exit 2 with one line on bad input."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        record = train(args.annotations, args.images, args.out, make_config())
    except EdgeposeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in record.items() if k != "loss_history"}, indent=2))
    return 0
