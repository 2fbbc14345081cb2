"""What the CPU trainers of the demo checkpoints share: optimiser, progress, float16 save."""

from __future__ import annotations

from pathlib import Path

import torch

from edgepose.io import atomic_path


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


def save_float16(model: torch.nn.Module, out: Path) -> None:
    """The model's state dict with float tensors as float16 (half the shipped size), written
    to a temporary file and renamed."""
    state = {key: value.half() if value.is_floating_point() else value
             for key, value in model.state_dict().items()}
    with atomic_path(out) as temporary:
        torch.save(state, temporary)
