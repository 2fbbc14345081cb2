"""ONNX Runtime backend: the CPU reference executor for every graph we build.

CPU by default; CUDA or TensorRT execution providers when the user names them
and the installed onnxruntime has them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from edgepose import _optional
from edgepose.backends.base import (Card, FeedContract, RunnerBase, TensorSpec,
                                    check_card_against_io, check_feeds)
from edgepose.card import METADATA_KEY, ModelCard
from edgepose.errors import BackendError, CardError, InputError, ModelFileError

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


def _spec(arg) -> TensorSpec:
    dtype = _ORT_TYPES.get(arg.type)
    if dtype is None:
        raise ModelFileError(f"tensor {arg.name!r} has type {arg.type}, which edgepose does not feed")
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in arg.shape)
    return TensorSpec(arg.name, np.dtype(dtype), shape)


def reference_session_options(ort: Any, threads: int | None = None) -> Any:
    """SessionOptions for every ONNX Runtime session that stands in for TensorRT (this
    runner, calib's range collection, sensitivity and accuracy runs)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # Run Q/DQ graphs as written, which is what TensorRT computes: ORT's CPU fusions
    # of Q/DQ into its own INT8 kernels tripled the demo INT8 graph's heatmap error
    # (relative L2 0.27 against 0.097 as written) and cost 1.7 AP points more.
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    if threads:
        options.intra_op_num_threads = threads
    return options


class OnnxRuntimeRunner(RunnerBase):
    """Runs an edgepose ONNX file (one that carries a ModelCard) with ONNX Runtime."""

    def __init__(self, path: str | Path, providers: Sequence[str] | None = None,
                 threads: int | None = None, *, card_type: type[Card] | None = ModelCard) -> None:
        """card_type: the card the graph must carry (ModelCard for pose models); None
        opens any graph, with `card` None and its metadata in `metadata`."""
        ort = _optional.onnxruntime()
        path = Path(path)
        if not path.is_file():
            raise InputError(f"model file {str(path)!r} does not exist")
        available = ort.get_available_providers()
        providers = list(providers or ["CPUExecutionProvider"])
        unknown = [p for p in providers if p not in available]
        if unknown:
            raise BackendError(
                f"ONNX Runtime provider(s) {unknown} are not in this onnxruntime build; "
                f"available: {available}"
            )
        options = reference_session_options(ort, threads)
        try:
            self._session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors on bad files
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelFileError(
                f"{path} is not a loadable ONNX model ({first_line}); re-export it with "
                "'edgepose export'"
            ) from None
        self.path = path
        self.metadata = dict(self._session.get_modelmeta().custom_metadata_map)
        self.card = (None if card_type is None
                     else _card_from_metadata(self.metadata, path, card_type))
        self.inputs = tuple(_spec(a) for a in self._session.get_inputs())
        self.outputs = tuple(_spec(a) for a in self._session.get_outputs())
        if self.card is not None:
            # Here, not inside ORT on the first call: a card edited apart from its graph.
            check_card_against_io(self.card, self.inputs, self.outputs, str(path), "graph")
        batch = self.inputs[0].shape[0] if self.inputs and self.inputs[0].shape else None
        self.max_batch = batch
        self._feeds = FeedContract(
            self.inputs, owner="model", min_batch=1 if batch is None else batch, max_batch=batch,
            batch_fix=(f"split the batch into calls of at most {batch} (the graph's fixed batch)"
                       if batch is not None else "pass at least one item"))
        self._output_names = [o.name for o in self.outputs]
        self.providers = tuple(self._session.get_providers())

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._require_open()
        check_feeds(feeds, self._feeds)
        values = self._session.run(self._output_names,
                                   feeds if type(feeds) is dict else dict(feeds))
        return dict(zip(self._output_names, values))

    def _release(self) -> None:
        self._session = None


def _card_from_metadata(metadata: Mapping[str, str], path: Path, card_type: type[Card]) -> Card:
    key = card_type.metadata_key
    text = metadata.get(key)
    if text is None:
        raise ModelFileError(
            f"{path} carries no edgepose {'model' if key == METADATA_KEY else 'detector'} card "
            f"(metadata_props[{key!r}]); export it with 'edgepose export' so the runtime knows "
            "how to pre- and post-process it"
        )
    try:
        return card_type.from_json(text)
    except CardError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
