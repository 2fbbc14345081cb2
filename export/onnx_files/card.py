"""ONNX files without torch: read one, write one atomically, and find, embed or read the
ModelCard inside it, so that precision (calib) and the engine builder, which never need
torch, share one implementation with the exporter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from edgepose.card import ModelCard
from edgepose.detect.card import DetectorCard
from edgepose.errors import ModelFileError
from edgepose.io import atomic_path


def load_onnx(path: str | Path, *, external_data: bool = True) -> onnx.ModelProto:
    """The ModelProto of `path`; ModelFileError when it is missing or unreadable."""
    if not Path(path).is_file():
        raise ModelFileError(f"ONNX file {str(path)!r} does not exist")
    try:
        return onnx.load(str(path), load_external_data=external_data)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several unrelated types
        raise ModelFileError(f"{path} is not a readable ONNX file: {exc}") from None


def save_onnx_atomic(model: onnx.ModelProto, out: str | Path) -> Path:
    """Write `model` to `out` through a temporary file beside it (never half-written)."""
    with atomic_path(out) as temporary:
        onnx.save(model, str(temporary))
    return Path(out)


def find_card(model: onnx.ModelProto, card_type: Any = ModelCard) -> Any:
    """The card of `card_type` (ModelCard: metadata_props["edgepose"], DetectorCard:
    ["edgepose_detector"]); None when absent, CardError when malformed."""
    for prop in model.metadata_props:
        if prop.key == card_type.metadata_key:
            return card_type.from_json(prop.value)
    return None


def read_card(path: str | Path) -> ModelCard | DetectorCard:
    """The pose or detector card of an edgepose ONNX file, read without a session."""
    model = load_onnx(path, external_data=False)
    for card_type in (ModelCard, DetectorCard):
        card = find_card(model, card_type)
        if card is not None:
            return card
    raise ModelFileError(f"{path} carries no edgepose model card (export it with 'edgepose "
                         "export', a detector with 'edgepose export detector')")


def embed_card(model: onnx.ModelProto, card: ModelCard | DetectorCard) -> None:
    """Replace any card of the same kind in `model` with `card`."""
    key = card.metadata_key
    kept = [p for p in model.metadata_props if p.key != key]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=key, value=card.to_json(indent=None))
