"""Inference backends behind one Runner protocol; the file suffix picks one."""

from __future__ import annotations

from pathlib import Path

from edgepose.backends.base import Runner, RunnerBase, TensorSpec
from edgepose.errors import InputError

ONNX_SUFFIXES = (".onnx",)
ENGINE_SUFFIXES = (".engine", ".plan")


def open_runner(path: str | Path, providers: list[str] | None = None, *,
                cuda_graph: bool = False, cuda_impl: str = "auto") -> Runner:
    """A runner for a model file: `.onnx` → ONNX Runtime, `.engine`/`.plan` → TensorRT.

    providers: ONNX Runtime execution providers (ONNX models only).
    cuda_graph, cuda_impl: TensorRT options (engines only); see TensorRTRunner.
    """
    suffix = Path(path).suffix.lower()
    if suffix in ONNX_SUFFIXES:
        if cuda_graph or cuda_impl != "auto":
            raise InputError(f"CUDA graphs and the CUDA implementation apply to TensorRT "
                             f"engines ({', '.join(ENGINE_SUFFIXES)}), not to {str(path)!r}")
        from edgepose.backends.onnxruntime import OnnxRuntimeRunner

        return OnnxRuntimeRunner(path, providers=providers)
    if suffix in ENGINE_SUFFIXES:
        if providers:
            raise InputError(f"ONNX Runtime providers {providers} do not apply to the TensorRT "
                             f"engine {str(path)!r}")
        from edgepose.backends.tensorrt import TensorRTRunner

        return TensorRTRunner(path, cuda_graph=cuda_graph, cuda_impl=cuda_impl)
    raise InputError(
        f"cannot tell the backend for {str(path)!r} from its suffix {suffix!r}; "
        f"expected one of {ONNX_SUFFIXES + ENGINE_SUFFIXES}"
    )


__all__ = ["Runner", "RunnerBase", "TensorSpec", "open_runner"]
