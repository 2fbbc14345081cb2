"""`edgepose export detector`: a user's detector ONNX with its detector card embedded.

The card is what edgepose.detect would guess (or the user overrides), checked by
opening the graph in ONNX Runtime and running it on one blank frame; the written
copy is the user's graph unchanged but for the metadata entry, so calibrate and
build read the card from the file as they do a pose model's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.detect import DetectorCard, Detector
from edgepose.errors import InputError
from export.onnx_files.card import embed_card, load_onnx, save_onnx_atomic


def export_detector(source: str | Path, out: str | Path, **options: Any) -> DetectorCard:
    """Write `source` with its detector card to `out`; options: Detector.open's."""
    source, out = Path(source), Path(out)
    if source.suffix.lower() != ".onnx":
        raise InputError(f"'edgepose export detector' reads an ONNX file, not {source.name}")
    with Detector.open(source, **options) as detector:
        spec = detector.card.input
        detector(np.zeros((spec.height, spec.width, 3), np.uint8))   # the outputs read back
        card = detector.card
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    card = card.with_updates(source={**card.source, "origin": "edgepose export detector",
                                     "onnx_sha256": digest, "onnx": source.name})
    model = load_onnx(source)
    embed_card(model, card)
    save_onnx_atomic(model, out)
    return card
