"""edgepose: human pose estimation from PyTorch checkpoints to TensorRT engines.

This package is the on-device runtime. It imports with numpy and OpenCV alone;
backends load their libraries lazily when a model is opened.
"""

__version__ = "0.1.0"
