"""edgepose: human pose estimation from PyTorch checkpoints to TensorRT engines.

This package is the on-device runtime. It imports with numpy and OpenCV alone;
backends load their libraries lazily when a model is opened.
"""

__version__ = "0.1.0"

from edgepose.api import Estimator, load  # noqa: E402 - after the version, which setup reads
from edgepose.errors import EdgeposeError, InputError  # noqa: E402
from edgepose.poses import Poses  # noqa: E402

__all__ = ["load", "Estimator", "Poses", "EdgeposeError", "InputError", "__version__"]
