"""Read Caffe `.caffemodel` weights without Caffe: a minimal protobuf wire decoder.

A `.caffemodel` is one serialised `NetParameter` message. Only the fields that
carry weights are decoded; everything else is skipped by its wire type. Field
numbers are those of BVLC caffe's `src/caffe/proto/caffe.proto`:

    NetParameter       name = 1, layers = 2 (V1LayerParameter), layer = 100 (LayerParameter)
    LayerParameter     name = 1, type = 2 (string), blobs = 7
    V1LayerParameter   layer = 1 (V0, unsupported), name = 4, type = 5 (enum), blobs = 6
    BlobProto          num = 1, channels = 2, height = 3, width = 4 (legacy 4-D shape),
                       data = 5 (packed float), shape = 7, double_data = 8 (packed double)
    BlobShape          dim = 1 (packed int64)

Blobs become a flat state dict by layer name: blob 0 is `{layer}.weight` (a
PReLU's slopes too), blob 1 `{layer}.bias`, any further blob `{layer}.blobs.{i}`
so that it shows up as unexpected in a strict load. Packed floats are read
with numpy in one call per blob, so a 200 MB file parses in well under a second.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgepose.errors import CheckpointError
from export.checkpoints import load_strict

log = logging.getLogger(__name__)

# Wire types (protobuf encoding): 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.
_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5

_NET_V1_LAYERS, _NET_LAYER = 2, 100
_LAYER_NAME, _LAYER_TYPE, _LAYER_BLOBS = 1, 2, 7
_V1_V0_LAYER, _V1_NAME, _V1_TYPE, _V1_BLOBS = 1, 4, 5, 6
_BLOB_LEGACY = (1, 2, 3, 4)  # num, channels, height, width
_BLOB_DATA, _BLOB_SHAPE, _BLOB_DOUBLE = 5, 7, 8
_SHAPE_DIM = 1

# V1LayerParameter.LayerType values of the layers pose networks use; others keep the number.
_V1_TYPES = {3: "Concat", 4: "Convolution", 5: "Data", 6: "Dropout", 14: "InnerProduct",
             15: "LRN", 17: "Pooling", 18: "ReLU", 20: "Softmax", 22: "Split", 25: "Eltwise",
             33: "Slice", 39: "Deconvolution"}

_BLOB_KEYS = ("weight", "bias")
_MAX_DIM = 1 << 31


class _WireError(Exception):
    """Malformed protobuf at byte `pos`; turned into a CheckpointError naming the file."""

    def __init__(self, message: str, pos: int, *, short: bool = False) -> None:
        super().__init__(message)
        self.pos = pos
        self.short = short  # ran past the end of the enclosing message


@dataclass(frozen=True)
class CaffeBlob:
    """One parameter blob; `legacy` when its shape came from num/channels/height/width."""

    data: np.ndarray  # float32, in the stored shape
    legacy: bool = False


@dataclass(frozen=True)
class CaffeLayer:
    name: str
    type: str
    blobs: tuple[CaffeBlob, ...]

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(b.data.shape) for b in self.blobs)


# --- wire format ---------------------------------------------------------------------------

def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise _WireError("a varint runs past the end", pos, short=True)
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _WireError("a varint is longer than 10 bytes", pos)


def _fields(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, a, b) per field in buf[start:end].

    Varint: a is the value. Other wire types: buf[a:b] is the payload.
    """
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _WireError("field number 0", pos)
        if wire == _VARINT:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value, pos
            continue
        if wire == _BYTES:
            size, pos = _varint(buf, pos, end)
        elif wire == _FIXED64:
            size = 8
        elif wire == _FIXED32:
            size = 4
        else:
            raise _WireError(f"wire type {wire} (protobuf groups or not protobuf at all)", pos)
        if pos + size > end:
            raise _WireError(f"field {number} needs {size} bytes, {end - pos} are left", pos,
                             short=True)
        yield number, wire, pos, pos + size
        pos += size


def _packed_varints(buf: bytes, start: int, end: int) -> list[int]:
    values, pos = [], start
    while pos < end:
        value, pos = _varint(buf, pos, end)
        values.append(value)
    return values


def _int32(value: int) -> int:
    """A varint-encoded int32 (negative ones take 10 bytes, two's complement in 64 bits)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(buf: bytes, start: int, end: int) -> str:
    return bytes(buf[start:end]).decode("utf-8", errors="replace")


def _floats(buf: bytes, start: int, end: int, dtype: str) -> np.ndarray:
    itemsize = np.dtype(dtype).itemsize
    if (end - start) % itemsize:
        raise _WireError(f"{end - start} bytes of packed data are not whole {dtype} values",
                         start)
    return np.frombuffer(buf, dtype=dtype, count=(end - start) // itemsize, offset=start)


# --- messages ------------------------------------------------------------------------------

def _blob(buf: bytes, start: int, end: int) -> CaffeBlob:
    legacy: dict[int, int] = {}
    shape: list[int] | None = None
    data: list[np.ndarray] = []
    doubles: list[np.ndarray] = []
    for number, wire, a, b in _fields(buf, start, end):
        if number in _BLOB_LEGACY and wire == _VARINT:
            legacy[number] = _int32(a)
        elif number == _BLOB_SHAPE and wire == _BYTES:
            shape = shape or []
            for dim_number, dim_wire, c, d in _fields(buf, a, b):
                if dim_number == _SHAPE_DIM and dim_wire == _BYTES:
                    shape.extend(_packed_varints(buf, c, d))
                elif dim_number == _SHAPE_DIM and dim_wire == _VARINT:
                    shape.append(c)
        elif number == _BLOB_DATA and wire == _BYTES:
            data.append(_floats(buf, a, b, "<f4"))
        elif number == _BLOB_DATA and wire == _FIXED32:  # unpacked: legal, never written by Caffe
            data.append(_floats(buf, a, b, "<f4"))
        elif number == _BLOB_DOUBLE and wire == _BYTES:
            doubles.append(_floats(buf, a, b, "<f8"))
        elif number == _BLOB_DOUBLE and wire == _FIXED64:
            doubles.append(_floats(buf, a, b, "<f8"))
    is_legacy = shape is None
    if is_legacy:
        shape = [legacy.get(n, 0) for n in _BLOB_LEGACY] if legacy else [0]
    if any(d < 0 or d >= _MAX_DIM for d in shape):
        raise _WireError(f"blob shape {tuple(shape)} is not a shape", start)
    chunks = data or doubles
    values = (chunks[0] if len(chunks) == 1 else np.concatenate(chunks) if chunks
              else np.zeros(0, np.float32))
    count = math.prod(shape)
    if values.size != count:
        raise _WireError(f"a blob of shape {tuple(shape)} holds {values.size} values, "
                         f"expected {count}", start)
    # frombuffer views the file's bytes (read-only, maybe unaligned): copy once into our own array.
    return CaffeBlob(values.astype(np.float32, copy=True).reshape(shape), is_legacy)


def _layer(buf: bytes, start: int, end: int, v1: bool) -> CaffeLayer:
    name_field, type_field, blobs_field = ((_V1_NAME, _V1_TYPE, _V1_BLOBS) if v1 else
                                           (_LAYER_NAME, _LAYER_TYPE, _LAYER_BLOBS))
    name, kind, blobs = "", "", []
    for number, wire, a, b in _fields(buf, start, end):
        if number == name_field and wire == _BYTES:
            name = _text(buf, a, b)
        elif number == type_field and v1 and wire == _VARINT:
            kind = _V1_TYPES.get(a, f"V1 type {a}")
        elif number == type_field and not v1 and wire == _BYTES:
            kind = _text(buf, a, b)
        elif number == blobs_field and wire == _BYTES:
            blobs.append(_blob(buf, a, b))
        elif v1 and number == _V1_V0_LAYER and wire == _BYTES:
            raise _WireError("the layer is in Caffe's V0 format (2014 and older); convert the "
                             "file with Caffe's upgrade_net_proto_binary first", a)
    return CaffeLayer(name, kind, tuple(blobs))


def _looks_like_text(head: bytes) -> bool:
    text = head.lstrip()
    return text.startswith((b"name:", b"layer", b"input", b"layers", b"#", b"state"))


def _parse_error(path: Path, size: int, layers: list[CaffeLayer], exc: _WireError,
                 top_level: bool) -> CheckpointError:
    where = (f"after layer {layers[-1].name!r} (#{len(layers)})" if layers
             else "before the first layer")
    # Every layer is one length-prefixed field of the top-level message, checked
    # against the end of the file before it is read: a cut file fails up there.
    cause = ("the file is truncated (an incomplete download?)" if top_level and exc.short
             else "the file is damaged or not a caffemodel")
    return CheckpointError(f"cannot parse {path} ({size} bytes) as a Caffe .caffemodel: {exc} "
                           f"at byte {exc.pos}, {where}; {cause}")


def caffemodel_layers(path: str | Path) -> list[CaffeLayer]:
    """Every layer of the NetParameter in `path`, in file order, with its blobs."""
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read caffemodel {path}: {exc.strerror or exc}; expected "
                              f"a Caffe .caffemodel weights file") from None
    if buf.startswith(b"PK\x03\x04"):
        raise CheckpointError(f"{path} is a zip archive, as torch.save writes, not a Caffe "
                              f".caffemodel; pass it as a .pth checkpoint")
    if _looks_like_text(buf[:64]):
        raise CheckpointError(f"{path} is text, probably a .prototxt network description; "
                              f"the weights are in the binary .caffemodel beside it")
    layers: list[CaffeLayer] = []
    fields = _fields(buf, 0, len(buf))
    while True:
        try:
            number, wire, a, b = next(fields, (0, 0, 0, 0))
        except _WireError as exc:
            raise _parse_error(path, len(buf), layers, exc, top_level=True) from None
        if number == 0:
            break
        if number not in (_NET_LAYER, _NET_V1_LAYERS):
            continue
        try:
            if wire != _BYTES:
                raise _WireError(f"NetParameter field {number} has wire type {wire}", a)
            layers.append(_layer(buf, a, b, v1=number == _NET_V1_LAYERS))
        except _WireError as exc:
            raise _parse_error(path, len(buf), layers, exc, top_level=False) from None
    if not layers:
        raise CheckpointError(f"{path} holds no Caffe layers (NetParameter.layer or .layers); "
                              f"expected a binary .caffemodel weights file")
    log.debug("%s: %d layers, %d with weights", path, len(layers),
              sum(bool(layer.blobs) for layer in layers))
    return layers


def _conform(blob: CaffeBlob, expected: Sequence[int] | None) -> np.ndarray:
    """Caffe's own rule for legacy 4-D blobs: (1, 1, 1, C) fits an expected (C,), etc."""
    data = blob.data
    if (expected is None or not blob.legacy or tuple(data.shape) == tuple(expected)
            or len(expected) > 4):
        return data
    if (1,) * (4 - len(expected)) + tuple(expected) == tuple(data.shape):
        return data.reshape(tuple(expected))
    return data


def read_caffemodel(path: str | Path, *,
                    expected_shapes: Mapping[str, Sequence[int]] | None = None,
                    ) -> dict[str, torch.Tensor]:
    """The weights in `path` as a flat state dict: `{layer}.weight`, `{layer}.bias`.

    Layers without blobs (ReLU, Pooling, Concat, data and loss layers) are left
    out. With `expected_shapes`, blobs stored in Caffe's legacy 4-D form are
    reshaped to the expected shape where Caffe itself would accept them.
    """
    state: dict[str, torch.Tensor] = {}
    for layer in caffemodel_layers(path):
        for i, blob in enumerate(layer.blobs):
            key = f"{layer.name}.{_BLOB_KEYS[i]}" if i < len(_BLOB_KEYS) else \
                f"{layer.name}.blobs.{i}"
            if key in state:
                raise CheckpointError(f"{path} has two layers named {layer.name!r} with "
                                      f"weights; expected unique layer names")
            shape = expected_shapes.get(key) if expected_shapes is not None else None
            state[key] = torch.from_numpy(_conform(blob, shape))
    if not state:
        raise CheckpointError(f"{path} is a Caffe network without weights (no layer has "
                              f"blobs); expected a trained .caffemodel")
    return state


def load_caffemodel_into(model: nn.Module, path: str | Path) -> None:
    """Read `path` and load it into `model` strictly (same diff as export.checkpoints)."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    state = read_caffemodel(path, expected_shapes=expected)
    load_strict(model, state, source=f"caffemodel {path}")
    log.info("loaded %s (%d tensors)", path, len(state))
