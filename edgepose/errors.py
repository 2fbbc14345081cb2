"""The exceptions edgepose raises.

Every message states what was expected, what arrived and how to fix it, so a
CLI user can act on the one line printed for them.
"""

from __future__ import annotations


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
