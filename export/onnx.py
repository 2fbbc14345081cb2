"""torch → ONNX with the ModelCard embedded, verified against PyTorch.

The graph has one dynamic axis, the batch; every other size comes from the card,
because TensorRT builds fastest, and our lint accepts only, fully static spatial
shapes. The file is run in ONNX Runtime on random inputs at several batch sizes
under a temporary name and renamed only then: an export that drifts from PyTorch
never ships.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
import torch

from edgepose.backends.onnxruntime import OnnxRuntimeRunner
from edgepose.card import ModelCard
from edgepose.errors import ExportError, InputError
from edgepose.io import atomic_path
# read_card is imported from here by the exporter's tests, beside export_onnx.
from export.onnx_files.card import embed_card, read_card  # noqa: F401

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17
# What torch.onnx 2.13 writes as asked (measured on HRNet: 14 and 15 come out as 18,
# 16-26 as asked); the top is the highest opset torch declares support for.
SUPPORTED_OPSETS = (16, 23)
# FP32 kernels in ORT and PyTorch sum in different orders; 1e-4 of the output's
# range is far below what moves a heatmap argmax, and far above reordering noise.
DEFAULT_RELATIVE_TOLERANCE = 1e-4


@dataclass(frozen=True)
class VerificationResult:
    """ORT vs PyTorch on one random batch; errors are maxima over all outputs."""

    batch: int
    max_abs_error: float
    max_rel_error: float  # max_abs_error / max |PyTorch output|

    def __str__(self) -> str:
        return (f"batch {self.batch}: max abs error {self.max_abs_error:.3g}, "
                f"relative to output range {self.max_rel_error:.3g}")


def check_opset(opset: int) -> int:
    """`opset` when torch.onnx writes it as asked; InputError otherwise.

    The exporter's own operators are opset 18 and it converts to the opset asked
    for; below SUPPORTED_OPSETS the conversion fails for HRNet and it quietly
    writes 18, above it torch declares no support (an opset it does not know
    also comes out as 18).
    """
    low, high = SUPPORTED_OPSETS
    if isinstance(opset, bool) or not isinstance(opset, int) or not low <= opset <= high:
        raise InputError(f"opset must be an integer from {low} to {high} (what torch.onnx "
                         f"{torch.__version__.split('+')[0]} writes as asked), got "
                         f"{opset!r}; the default is {DEFAULT_OPSET}")
    return opset


def written_opset(model: onnx.ModelProto) -> int:
    """The default-domain opset a ModelProto declares (what runtimes go by)."""
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        raise ExportError("the exported graph imports no default-domain (ai.onnx) opset")
    return int(versions[0])


@dataclass(frozen=True)
class WrittenOnnx:
    """An exported file, the opset it declares, and its checks against PyTorch."""

    path: Path
    opset: int
    verification: tuple[VerificationResult, ...]


def write_onnx(model: torch.nn.Module, card: ModelCard, out: str | Path, *,
               opset: int = DEFAULT_OPSET, verify: bool = True,
               example_batch: int = 2) -> WrittenOnnx:
    """Trace `model` (input per the card, batch dynamic) to `out` with the card embedded;
    with `verify`, check it against PyTorch (verify_onnx) before it takes the name `out`.

    The check runs on the temporary file beside `out`: a failed or interrupted check
    leaves nothing at `out` (and the next run there removes the temporary file).
    """
    check_opset(opset)
    spec = card.input
    shape = ((example_batch, 3, spec.height, spec.width) if spec.layout == "NCHW"
             else (example_batch, spec.height, spec.width, 3))
    example = torch.randn(*shape)
    # Batch 1 is avoided as the example: torch.export specialises size-1 axes.
    batch = torch.export.Dim("batch", min=1, max=4096)
    model = model.eval()
    with atomic_path(out) as temporary:
        with _quiet_exporter():
            try:
                with torch.no_grad():
                    program = torch.onnx.export(
                        model, (example,), input_names=[spec.name],
                        output_names=[o.name for o in card.outputs], opset_version=opset,
                        dynamic_shapes=({0: batch},), dynamo=True, verbose=False,
                        external_data=False,
                    )
            except Exception as exc:  # noqa: BLE001 - the exporter raises many types
                raise ExportError(f"torch.onnx.export failed for {card.family}/{card.variant}: "
                                  f"{str(exc).splitlines()[0]}") from exc
        proto = program.model_proto
        written = written_opset(proto)
        if written != opset:
            # The exporter's version converter gives up quietly and keeps its own opset.
            raise ExportError(f"asked for opset {opset}, but torch.onnx could only write "
                              f"opset {written} for {card.family}/{card.variant}; export with "
                              f"opset={written}")
        embed_card(proto, card)
        onnx.checker.check_model(proto)
        onnx.save(proto, str(temporary))
        checks: tuple[VerificationResult, ...] = ()
        if verify:
            log.info("checking the ONNX graph for %s against PyTorch with ONNX Runtime", out)
            try:
                checks = tuple(verify_onnx(model, temporary))
            except ExportError as exc:
                raise ExportError(f"{exc}; nothing was written to {out} (export with "
                                  "verify=False to inspect the graph)") from None
    log.info("wrote %s (opset %d)", out, written)
    return WrittenOnnx(Path(out), written, checks)


def export_onnx(model: torch.nn.Module, card: ModelCard, out: str | Path, *,
                opset: int = DEFAULT_OPSET, example_batch: int = 2) -> Path:
    """Trace `model` (input per the card, batch dynamic) to `out` with the card embedded,
    unchecked; write_onnx also checks it against PyTorch."""
    return write_onnx(model, card, out, opset=opset, verify=False,
                      example_batch=example_batch).path


@contextlib.contextmanager
def _quiet_exporter():
    """Silence the exporter's chatter (missing torchvision ops, opset conversion notes).

    Its real failures still raise; what it logs at WARNING here never concerns our models.
    """
    names = ("torch.onnx", "torch._export", "torch.export", "onnxscript")
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def verify_onnx(model: torch.nn.Module, path: str | Path, *,
                batch_sizes: Sequence[int] = (1, 3), seed: int = 0,
                tolerance: float = DEFAULT_RELATIVE_TOLERANCE) -> list[VerificationResult]:
    """Run `path` in ONNX Runtime and `model` in PyTorch on the same random inputs.

    Raises ExportError when an output differs by more than `tolerance` × its range.
    """
    generator = np.random.default_rng(seed)
    results = []
    model = model.eval()
    with OnnxRuntimeRunner(path) as runner:
        spec = runner.inputs[0]
        for batch in batch_sizes:
            feed = generator.standard_normal((batch, *spec.shape[1:])).astype(np.float32)
            with torch.no_grad():
                reference = model(torch.from_numpy(feed))
            reference = reference if isinstance(reference, (tuple, list)) else (reference,)
            produced = runner.infer({spec.name: feed})
            abs_error = rel_error = 0.0
            for out_spec, expected in zip(runner.outputs, reference):
                expected = expected.numpy()
                got = produced[out_spec.name]
                if got.shape != expected.shape:
                    raise ExportError(f"output {out_spec.name!r}: ONNX shape {got.shape} vs "
                                      f"PyTorch {expected.shape} at batch {batch}")
                _refuse_non_finite(expected, "PyTorch", out_spec.name, batch)
                _refuse_non_finite(got, "ONNX Runtime", out_spec.name, batch)
                error = float(np.max(np.abs(got - expected)))
                abs_error = max(abs_error, error)
                rel_error = max(rel_error, error / max(float(np.max(np.abs(expected))), 1e-12))
            result = VerificationResult(batch, abs_error, rel_error)
            results.append(result)
            if rel_error > tolerance:
                raise ExportError(f"ONNX output differs from PyTorch: {result} "
                                  f"(allowed {tolerance:g})")
    return results


def _refuse_non_finite(output: np.ndarray, runner: str, name: str, batch: int) -> None:
    """ExportError when an output holds NaN or infinity: NaN compares as no error with
    some formulas (max over NaN, NaN > tolerance is False), so it is refused first."""
    if not np.isfinite(output).all():
        raise ExportError(f"{runner} output {name!r} holds NaN/inf values at batch {batch} on "
                          "random inputs; expected finite outputs: the weights are corrupt or "
                          "diverged, or the model overflows float32")
