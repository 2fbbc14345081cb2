"""Imports of optional dependencies, each in one place.

`edgepose` imports with numpy and OpenCV alone; the backends ask here for the
rest, and a missing module becomes an error naming the pip extra to install.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType

from edgepose.errors import MissingDependencyError

_log = logging.getLogger(__name__)

#: The TensorRT Python modules, full runtime first: `tensorrt` runs every plan; the
#: lean and dispatch runtimes (`pip install tensorrt-lean` / `tensorrt-dispatch`)
#: run version-compatible plans only.
TENSORRT_MODULES = ("tensorrt", "tensorrt_lean", "tensorrt_dispatch")


def import_optional(module: str, extra: str, purpose: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(module, extra, purpose) from None


def onnxruntime() -> ModuleType:
    return import_optional("onnxruntime", "ort", "Running ONNX models")


def tensorrt(module: str = "tensorrt", purpose: str = "Running TensorRT engines") -> ModuleType:
    """One of TENSORRT_MODULES, or MissingDependencyError naming the 'trt' extra.

    The wheels fail in more ways than ImportError when their shared libraries are
    missing (OSError, RuntimeError from their loaders), and a `tensorrt-stubs`
    package makes `import tensorrt` succeed as an empty namespace; all of these
    count as "not installed" rather than crashing later on a missing attribute.
    """
    if module not in TENSORRT_MODULES:
        raise ValueError(f"unknown TensorRT module {module!r}; expected one of {TENSORRT_MODULES}")
    try:
        loaded = importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(module, "trt", purpose) from None
    except Exception as exc:  # noqa: BLE001 - see the docstring
        _log.debug("importing %s failed: %r", module, exc)
        raise MissingDependencyError(module, "trt", purpose) from exc
    if not hasattr(loaded, "Runtime"):
        _log.debug("%s imported without a Runtime class (a stub package?)", module)
        raise MissingDependencyError(module, "trt", purpose)
    return loaded


def cuda_runtime() -> ModuleType:
    """cuda-python's CUDA runtime bindings.

    `cuda.bindings.runtime` since cuda-python 12.6.1; older releases (still common on
    JetPack) only have `cuda.cudart`.
    """
    try:
        return importlib.import_module("cuda.bindings.runtime")
    except ImportError:
        pass
    return import_optional("cuda.cudart", "trt", "The cuda-python CUDA layer")


def pycuda_driver() -> ModuleType:
    """pycuda's driver module; importing it loads libcuda, so it fails without a driver."""
    try:
        return importlib.import_module("pycuda.driver")
    except ImportError:
        raise MissingDependencyError("pycuda", "pycuda", "The pycuda CUDA layer") from None
    except Exception as exc:  # noqa: BLE001 - a broken libcuda raises its own errors
        _log.debug("importing pycuda.driver failed: %r", exc)
        raise MissingDependencyError("pycuda", "pycuda", "The pycuda CUDA layer") from exc


def scipy_optimize() -> ModuleType:
    """scipy.optimize, whose linear_sum_assignment is the AE decoder's Hungarian matching."""
    return import_optional("scipy.optimize", "ae", "Associative Embedding grouping")


def scipy_for_tracking() -> ModuleType:
    """scipy.optimize for the tracker's Hungarian matching of people to tracks."""
    return import_optional("scipy.optimize", "track", "Tracking people across frames")


def pycocotools() -> ModuleType:
    """pycocotools with its `coco` and `cocoeval` modules loaded (COCO keypoint evaluation).

    Its compiled mask extension fails with ValueError, not ImportError, when built
    against another numpy ABI (the failure xtcocotools' wheels show with numpy 2);
    that counts as "not installed" too, so the user is told what to reinstall.
    """
    purpose = "COCO keypoint evaluation"
    try:
        importlib.import_module("pycocotools.coco")
        importlib.import_module("pycocotools.cocoeval")
    except ImportError:
        raise MissingDependencyError("pycocotools", "eval", purpose) from None
    except Exception as exc:  # noqa: BLE001 - see the docstring
        _log.debug("importing pycocotools failed: %r", exc)
        raise MissingDependencyError("pycocotools", "eval", purpose) from exc
    return importlib.import_module("pycocotools")


def tritonclient(protocol: str) -> ModuleType:
    """tritonclient.http or tritonclient.grpc, the client side of a Triton server."""
    if protocol not in ("http", "grpc"):
        raise ValueError(f"unknown Triton protocol {protocol!r}; expected 'http' or 'grpc'")
    return import_optional(f"tritonclient.{protocol}", "triton",
                           f"Talking to a Triton server over {protocol}")
