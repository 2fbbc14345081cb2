"""What the CPU trainers of the demo checkpoints share: the optimisation loop, float16 save."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from edgepose.errors import InputError
from edgepose.io import atomic_path

log = logging.getLogger(__name__)
# Steps per entry of the loss history (and per log line).
LOG_EVERY = 50


def adamw_one_cycle(model: torch.nn.Module, learning_rate: float, weight_decay: float, steps: int
                    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW under a one-cycle cosine schedule (5 % warm-up) over a fixed step count, so a
    run is defined by its step count alone and the same command gives the same weights."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=learning_rate, total_steps=steps, pct_start=0.05,
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


def run_steps(model: torch.nn.Module, loader: Iterable[Any],
              loss_of_batch: Callable[[Any], torch.Tensor], *, steps: int, learning_rate: float,
              weight_decay: float, description: str) -> TrainingRun:
    """`steps` optimiser steps over `loader` (repeated as often as needed), the model left in
    eval mode. InputError when the loss stops being finite, naming the learning rate."""
    optimizer, scheduler = adamw_one_cycle(model, learning_rate, weight_decay, steps)
    start = time.monotonic()
    done, running, window = 0, 0.0, 0
    history = []
    model.train()
    progress = progress_bar(steps, description)
    while done < steps:
        for batch in loader:
            loss = loss_of_batch(batch)
            if not torch.isfinite(loss):
                raise InputError(f"the loss became {loss.item()} at step {done + 1}; lower "
                                 f"--lr (now {learning_rate})")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            done += 1
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
    model.eval()
    return TrainingRun(done, time.monotonic() - start, history)


def save_float16(model: torch.nn.Module, out: Path) -> None:
    """The model's state dict with float tensors as float16 (half the shipped size), written
    to a temporary file and renamed."""
    state = {key: value.half() if value.is_floating_point() else value
             for key, value in model.state_dict().items()}
    with atomic_path(out) as temporary:
        torch.save(state, temporary)
