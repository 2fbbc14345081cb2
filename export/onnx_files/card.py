"""ONNX files without torch: read one, write one atomically, and find, embed or read the
ModelCard inside it, so that precision (calib) and the engine builder, which never need
torch, share one implementation with the exporter.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from edgepose.card import METADATA_KEY, ModelCard
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


def find_card(model: onnx.ModelProto) -> ModelCard | None:
    """The card in metadata_props["edgepose"]; None when absent, CardError when malformed."""
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return ModelCard.from_json(prop.value)
    return None


def read_card(path: str | Path) -> ModelCard:
    """The card of an edgepose ONNX file, read without creating a session."""
    card = find_card(load_onnx(path, external_data=False))
    if card is None:
        raise ModelFileError(f"{path} carries no edgepose model card")
    return card


def embed_card(model: onnx.ModelProto, card: ModelCard) -> None:
    """Replace any card in `model` with `card` (metadata_props["edgepose"])."""
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=METADATA_KEY, value=card.to_json(indent=None))
