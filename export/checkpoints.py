"""Read checkpoints, map their key layout to our models, load them strictly.

Released pose checkpoints come as plain state dicts, wrapped in training
dicts (`{"state_dict": ...}`), prefixed by DataParallel (`module.`) or renamed
by mmpose (`backbone.` + head prefix). `remap_to_model` tries a small table of
key rewrites and keeps the one that fits the model best; `load_strict` then
refuses anything that does not fit exactly, with a readable diff, because the
official test scripts load with strict=False and silently keep random weights.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from edgepose.errors import CheckpointError

logger = logging.getLogger(__name__)

# Keys under which training scripts nest the weights, most specific first.
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
_MAX_WRAPPER_DEPTH = 3

# Whole-model prefixes added by (Distributed)DataParallel and by wrappers that
# keep the parallel model as `self.model` (Princeton's hourglass trainers).
_PARALLEL_PREFIXES = (("", ""), ("+model.module.", "model.module."), ("+module.", "module."))

# Per layout: (old prefix, new prefix) rewrites, first match wins; keys that
# match none are kept, so strays show up as unexpected keys.
_LAYOUTS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("official", ()),
    ("mmpose-0.x", (("backbone.", ""), ("keypoint_head.", ""))),
    ("mmpose-1.x", (("backbone.", ""), ("head.", ""))),
)

# BatchNorm counters only matter for momentum=None training; checkpoints saved
# before PyTorch 0.4.1 lack them and PyTorch itself fills them in.
_OPTIONAL_SUFFIX = ".num_batches_tracked"

_GLOBAL_RE = re.compile(r"\bGLOBAL ([A-Za-z_][\w.]*)")
_DETAIL_RE = re.compile(r"WeightsUnpickler error:\s*(\S[^\n]*)")

_LIST_LIMIT = 5
_CHUNK = 1 << 20


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensor state dict in `path`, unwrapped from training dicts.

    Loads with weights_only=True only: a checkpoint that pickles Python objects
    is refused rather than executed.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint not found: {path}; expected a PyTorch state dict file (.pth/.pt)"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = _refused_global(str(exc))
        if refused is None:
            raise _unreadable(path, exc) from None
        raise CheckpointError(
            f"{path} is not a weights-only checkpoint: it holds pickled code or objects "
            f"({refused}) that torch's weights-only loader refuses; edgepose loads only "
            f"weights-only (tensor-only) checkpoints (torch.load weights_only=True). If you "
            f"trust the file, load it yourself and save only the state dict, e.g. "
            f"torch.save(ckpt['state_dict'], 'clean.pth')"
        ) from None
    except Exception as exc:  # torch raises many types for damaged files
        raise _unreadable(path, exc) from None
    return _unwrap(obj, path)


def _refused_global(message: str) -> str | None:
    """The class or function a weights_only load refused, or None when the file is damaged.

    torch words both cases as "Weights only load failed"; only a refusal names the
    pickled global ("Unsupported global: GLOBAL m.C", or "unsupported GLOBAL
    posix.system whose module posix is blocked" for code), while a damaged stream
    reports an unsupported operand. Whether the name resolves here says nothing:
    a class pickled from a script lives in that script's `__main__`.
    """
    match = _GLOBAL_RE.search(message)
    return None if match is None else match.group(1)


def _unreadable(path: Path, exc: Exception) -> CheckpointError:
    text = str(exc).strip()
    detail = _DETAIL_RE.search(text)
    reason = (detail.group(1) if detail else text.splitlines()[0] if text else "").strip()
    # torch's messages run on with advice; the first sentence carries the cause.
    reason = reason.split(". ")[0][:160]
    reason = f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__
    return CheckpointError(
        f"cannot read {path} as a PyTorch checkpoint ({reason}); expected a file written "
        f"by torch.save holding a state dict; is it truncated or of another format?"
    )


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    for _ in range(_MAX_WRAPPER_DEPTH):
        if not isinstance(obj, Mapping):
            break
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return {str(k): v for k, v in obj.items()}
        inner = next((obj[k] for k in _WRAPPER_KEYS if k in obj), None)
        if inner is None:
            keys = ", ".join(_head(sorted(map(str, obj))))
            raise CheckpointError(
                f"{path} holds a dict that is neither a state dict (all tensors) nor wraps "
                f"one under {' / '.join(_WRAPPER_KEYS)}; its keys: {keys or '(none)'}"
            )
        obj = inner
    raise CheckpointError(
        f"{path} holds {type(obj).__name__}, expected a state dict (a dict of tensors), "
        f"possibly wrapped under {' / '.join(_WRAPPER_KEYS)}"
    )


def _rewrite(key: str, parallel: str, rules: tuple[tuple[str, str], ...]) -> str:
    if parallel and key.startswith(parallel):
        key = key[len(parallel) :]
    for old, new in rules:
        if key.startswith(old):
            return new + key[len(old) :]
    return key


def remap_to_model(
    state_dict: Mapping[str, torch.Tensor], expected_keys: set[str]
) -> tuple[dict[str, torch.Tensor], str]:
    """Rename keys to the layout that matches the most `expected_keys`.

    Returns the renamed dict and the layout's name, e.g. "official",
    "mmpose-0.x" or "official+module."; "unknown" when no layout matches any
    key (the dict is then returned unchanged). Ties go to the earlier, simpler
    layout; a rewrite that would merge two keys into one is never chosen.
    """
    best: tuple[int, dict[str, torch.Tensor], str] = (0, dict(state_dict), "unknown")
    for suffix, parallel in _PARALLEL_PREFIXES:
        for layout, rules in _LAYOUTS:
            renamed = {_rewrite(k, parallel, rules): v for k, v in state_dict.items()}
            if len(renamed) != len(state_dict):
                continue
            score = len(expected_keys.intersection(renamed))
            if score > best[0]:
                best = (score, renamed, layout + suffix)
    score, renamed, name = best
    logger.debug("checkpoint layout %s matches %d of %d keys", name, score, len(expected_keys))
    return renamed, name


def _head(items: list[str]) -> list[str]:
    return items[:_LIST_LIMIT] + (["…"] if len(items) > _LIST_LIMIT else [])


def _describe(label: str, items: list[str]) -> str:
    return f"{label} {len(items)} keys: {', '.join(_head(items))}"


def load_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, source: str) -> None:
    """Load `state_dict` into `model`, refusing any missing, extra or reshaped key.

    `source` names the file and layout for the error message. Missing
    BatchNorm `num_batches_tracked` counters are the one tolerance: they are
    set to 0, as PyTorch does for old checkpoints.
    """
    expected = model.state_dict()
    given = dict(state_dict)
    missing = [k for k in expected if k not in given]
    filled = [k for k in missing if k.endswith(_OPTIONAL_SUFFIX)]
    missing = [k for k in missing if not k.endswith(_OPTIONAL_SUFFIX)]
    unexpected = [k for k in given if k not in expected]
    not_tensors = [k for k, v in given.items() if not isinstance(v, torch.Tensor)]
    reshaped = [
        f"{k}: checkpoint {tuple(given[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in given and isinstance(given[k], torch.Tensor) and given[k].shape != v.shape
    ]
    problems = []
    if reshaped:
        problems.append(f"shape mismatch in {len(reshaped)} tensors: {', '.join(_head(reshaped))}")
    if missing:
        problems.append(_describe("missing", missing))
    if unexpected:
        problems.append(_describe("unexpected", unexpected))
    if not_tensors:
        problems.append(_describe("non-tensor values at", not_tensors))
    model_name = type(model).__name__
    if problems:
        matched = len(expected) - len(missing) - len(filled)
        if matched < len(expected) // 2:
            hint = f"is this a {model_name} checkpoint at all (wrong model family)?"
        elif reshaped:
            hint = "is --variant right (width, number of joints)?"
        else:
            hint = "wrong --variant or wrong model family?"
        raise CheckpointError(
            f"{source} does not fit {model_name}: {'; '.join(problems)}; hint: {hint}"
        )
    _refuse_non_finite(given, source)
    for key in filled:
        given[key] = torch.zeros_like(expected[key])
    if filled:
        logger.info("%s: set %d missing num_batches_tracked counters to 0", source, len(filled))
    try:
        model.load_state_dict(given, strict=True)
    except RuntimeError as exc:  # the checks above should leave nothing for torch to find
        raise CheckpointError(f"{source} does not load into {model_name}: {exc}") from None


def _refuse_non_finite(state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """CheckpointError naming the first tensor holding NaN or infinity.

    Such weights export and even pass the ONNX check (NaN against NaN), and every
    pose they give is garbage; this is where the file's fault is still visible.
    """
    bad = [key for key, value in state_dict.items()
           if value.is_floating_point() and not bool(torch.isfinite(value).all())]
    if bad:
        more = f" (and {len(bad) - 1} more tensors)" if len(bad) > 1 else ""
        raise CheckpointError(
            f"{source}: tensor {bad[0]!r} holds NaN/inf values{more}; expected finite "
            f"weights: the checkpoint is corrupt or diverged in training; use another "
            f"checkpoint (e.g. an earlier one of the same run)"
        )


def load_checkpoint_into(model: nn.Module, path: str | Path) -> str:
    """Read `path`, remap its layout, load it strictly; returns the layout name."""
    state_dict = read_checkpoint(path)
    renamed, layout = remap_to_model(state_dict, set(model.state_dict()))
    load_strict(model, renamed, source=f"checkpoint {path} (layout {layout})")
    logger.info("loaded %s (layout %s)", path, layout)
    return layout


def sha256_of_file(path: str | Path) -> str:
    """Hex sha256 of the file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise CheckpointError(f"cannot read {path} to hash it: {exc.strerror}") from None
    return digest.hexdigest()
