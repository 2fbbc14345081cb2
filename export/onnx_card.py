"""The ModelCard inside an ONNX file: find it, replace it. onnx only, no torch,
so calibration (which never needs torch) and export share one implementation.
"""

from __future__ import annotations

import onnx

from edgepose.card import METADATA_KEY, ModelCard


def find_card(model: onnx.ModelProto) -> ModelCard | None:
    """The card in metadata_props["edgepose"]; None when absent, CardError when malformed."""
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            return ModelCard.from_json(prop.value)
    return None


def embed_card(model: onnx.ModelProto, card: ModelCard) -> None:
    """Replace any card in `model` with `card` (metadata_props["edgepose"])."""
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=METADATA_KEY, value=card.to_json(indent=None))
