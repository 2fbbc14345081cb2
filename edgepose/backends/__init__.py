"""Inference backends behind one Runner protocol; the file suffix picks one."""

from __future__ import annotations

from pathlib import Path

from edgepose.backends.base import Card, Runner, RunnerBase, TensorSpec
from edgepose.card import ModelCard
from edgepose.errors import InputError

ONNX_SUFFIXES = (".onnx",)
ENGINE_SUFFIXES = (".engine", ".plan")


def open_runner(path: str | Path, providers: list[str] | None = None, *,
                cuda_graph: bool = False, cuda_impl: str = "auto",
                card_type: type[Card] | None = ModelCard, threads: int | None = None) -> Runner:
    """A runner for a model file: `.onnx` → ONNX Runtime, `.engine`/`.plan` → TensorRT.

    providers: ONNX Runtime execution providers (ONNX models only).
    cuda_graph, cuda_impl: TensorRT options (engines only); see TensorRTRunner.
    card_type: the card the model carries (the pose ModelCard, or a detector's card);
    None opens an ONNX graph that has none (engines always have their sidecar).
    threads: ONNX Runtime's intra-op threads (default: its own choice, all cores); a
    pipelined stream gives each model fewer so that its stages do not fight for cores.
    """
    suffix = Path(path).suffix.lower()
    if suffix in ONNX_SUFFIXES:
        if cuda_graph or cuda_impl != "auto":
            raise InputError(f"CUDA graphs and the CUDA implementation apply to TensorRT "
                             f"engines ({', '.join(ENGINE_SUFFIXES)}), not to {str(path)!r}")
        from edgepose.backends.onnxruntime import OnnxRuntimeRunner

        return OnnxRuntimeRunner(path, providers=providers, card_type=card_type,
                                 threads=threads)
    if suffix in ENGINE_SUFFIXES:
        if providers:
            raise InputError(f"ONNX Runtime providers {providers} do not apply to the TensorRT "
                             f"engine {str(path)!r}")
        from edgepose.backends.tensorrt import TensorRTRunner

        if card_type is None:
            raise InputError(f"the engine {str(path)!r} needs its sidecar card: build it with "
                             "'edgepose build' from an ONNX file that carries one")
        return TensorRTRunner(path, cuda_graph=cuda_graph, cuda_impl=cuda_impl,
                              card_type=card_type)
    raise InputError(
        f"cannot tell the backend for {str(path)!r} from its suffix {suffix!r}; "
        f"expected one of {ONNX_SUFFIXES + ENGINE_SUFFIXES}"
    )


__all__ = ["Runner", "RunnerBase", "TensorSpec", "open_runner"]
