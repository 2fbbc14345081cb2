"""The exceptions edgepose raises.

Every message states what was expected, what arrived and how to fix it, so a
CLI user can act on the one line printed for them.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence


class EdgeposeError(Exception):
    """Base of every error edgepose raises on purpose."""


class CardError(EdgeposeError):
    """A ModelCard is missing, malformed or of an unsupported schema."""


class ModelFileError(EdgeposeError):
    """A model file (ONNX, engine) cannot be read or lacks what edgepose needs."""


class CheckpointError(EdgeposeError):
    """A checkpoint does not match the model it is loaded into."""


class InputError(EdgeposeError):
    """User input (image, boxes, arrays, arguments) is unusable."""


class DecodeError(EdgeposeError):
    """Network outputs cannot be decoded (wrong shape, NaNs)."""


class BackendError(EdgeposeError):
    """An inference backend failed to load or run a model."""


class MissingDependencyError(EdgeposeError, ImportError):
    """An optional dependency is not installed; the message names the extra."""

    def __init__(self, module: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the Python module '{module}', which is not installed; "
            f"install it with: pip install 'edgepose[{extra}]'"
        )
        self.module = module
        self.extra = extra


class CudaError(BackendError):
    """A CUDA call failed; the message names the call and the CUDA error name."""


class PrecisionError(EdgeposeError):
    """Base of the errors of calib/: an FP16 or INT8 graph cannot be made as asked."""


class CalibrationError(PrecisionError):
    """Calibration cannot produce ranges (no data, a tensor never computed, a bad cache)."""


class Fp16Error(PrecisionError):
    """The FP16 conversion produced a graph that is not what TensorRT should build."""


class _GateOutcome(Protocol):
    def describe(self) -> str: ...


class GateError(PrecisionError):
    """The accuracy thresholds cannot be met; `best` is the closest result (a
    calib.gate.GateResult), `model` its graph (an onnx.ModelProto)."""

    def __init__(self, best: _GateOutcome, model: Any = None) -> None:
        super().__init__(
            f"the INT8 accuracy gate cannot be met: the best graph reached {best.describe()}. "
            "Relax --max-ap-drop/--max-kpt-error, calibrate with another --method or more "
            "representative --data, or pass --force to write the best graph anyway")
        self.best = best
        self.model = model


class ExportError(EdgeposeError):
    """Export failed or the exported graph disagrees with PyTorch."""


class LintError(EdgeposeError):
    """The ONNX graph is not one TensorRT 10.3 builds as intended; `findings` (each an
    export.onnx_files.lint.LintFinding) lists why."""

    def __init__(self, source: str, findings: Sequence[Any]) -> None:
        lines = "\n".join(f"  - {finding}" for finding in findings)
        super().__init__(
            f"{source} cannot be built with TensorRT 10.3's ONNX parser "
            f"({len(findings)} problem{'s' if len(findings) != 1 else ''}):\n{lines}"
        )
        self.findings = list(findings)


class EngineBuildError(EdgeposeError):
    """TensorRT could not parse the ONNX file or build an engine from it."""
