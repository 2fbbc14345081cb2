"""Write `.caffemodel` files for tests: a protobuf encoder for the fields export.caffe reads.

Written from caffe.proto's field numbers (see export/caffe.py), independently of
the decoder. Layers are given as (name, type, blobs); `v1=True` writes the old
V1LayerParameter form (`layers = 2`, enum type, legacy num/channels/height/width
shapes, 1-D blobs as (1, 1, 1, C)) that CPM-era files use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

V1_TYPE_NUMBERS = {"Concat": 3, "Convolution": 4, "Data": 5, "Pooling": 17, "ReLU": 18}

Layer = tuple[str, str, Sequence[np.ndarray]]


def varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def length_delimited(number: int, payload: bytes) -> bytes:
    return key(number, 2) + varint(len(payload)) + payload


def varint_field(number: int, value: int) -> bytes:
    return key(number, 0) + varint(value)


def blob(array: np.ndarray, *, legacy: bool = False, packed: bool = True,
         double: bool = False) -> bytes:
    array = np.asarray(array)
    out = b""
    if legacy:
        dims = (1,) * (4 - array.ndim) + tuple(array.shape)
        for number, dim in zip((1, 2, 3, 4), dims):
            out += varint_field(number, dim)
    else:
        out += length_delimited(7, length_delimited(1, b"".join(varint(d) for d in array.shape)))
    if double:
        out += length_delimited(8, array.astype("<f8").tobytes())
    elif packed:
        out += length_delimited(5, array.astype("<f4").tobytes())
    else:
        out += b"".join(key(5, 5) + np.float32(v).astype("<f4").tobytes()
                        for v in array.reshape(-1))
    return out


def layer(name: str, kind: str, blobs: Iterable[np.ndarray], *, v1: bool = False,
          **blob_options) -> bytes:
    if v1:
        out = length_delimited(4, name.encode()) + varint_field(5, V1_TYPE_NUMBERS[kind])
        out += b"".join(length_delimited(6, blob(b, legacy=True, **blob_options)) for b in blobs)
        return length_delimited(2, out)
    # bottom/top strings as in real files, so the decoder must skip fields it does not use
    out = (length_delimited(1, name.encode()) + length_delimited(2, kind.encode())
           + length_delimited(3, b"bottom_blob") + length_delimited(4, name.encode()))
    out += b"".join(length_delimited(7, blob(b, **blob_options)) for b in blobs)
    return length_delimited(100, out)


def net(layers: Iterable[Layer], *, name: str = "test net", v1: bool = False,
        **blob_options) -> bytes:
    out = length_delimited(1, name.encode())
    out += b"".join(layer(n, k, b, v1=v1, **blob_options) for n, k, b in layers)
    return out


def write_caffemodel(path: str | Path, layers: Iterable[Layer], **options) -> Path:
    path = Path(path)
    path.write_bytes(net(layers, **options))
    return path


def layers_from_state_dict(state: Mapping[str, torch.Tensor],
                           with_activations: bool = True) -> list[Layer]:
    """Caffe layers for a flat Caffe-named state dict: `x.weight`, `x.bias` -> layer x.

    A 1-D `weight` alone is a PReLU. With `with_activations`, a blob-less ReLU
    follows each convolution, as in real files, and the list opens with a data layer.
    """
    grouped: dict[str, list[np.ndarray]] = {}
    for key_name, tensor in state.items():
        name, _, _ = key_name.rpartition(".")
        grouped.setdefault(name, []).append(tensor.detach().numpy())
    layers: list[Layer] = [("data", "Data", [])] if with_activations else []
    for name, blobs in grouped.items():
        kind = "PReLU" if len(blobs) == 1 and blobs[0].ndim == 1 else "Convolution"
        layers.append((name, kind, blobs))
        if with_activations and kind == "Convolution":
            layers.append((f"relu_{name}", "ReLU", []))
    return layers
