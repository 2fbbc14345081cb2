"""The .caffemodel reader: files written here by tests/export/caffe_writer.py.

The writer is an independent protobuf encoder for caffe.proto's fields. The
OpenPose files carry every real layer name (and blob-less ReLU/Data layers, as
real files do) at 1/8 width to stay small; that the real widths are checked is
shown by loading such a file into the released-width model, and by a slow test
with a full 210 MB COCO-18 file.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

from edgepose.errors import CheckpointError
from export.caffe import caffemodel_layers, load_caffemodel_into, read_caffemodel
from export.families import prepare_model
from export.models.openpose import OpenPoseBody25, OpenPoseCOCO18
from tests.export import caffe_writer as cw

StateDict = dict[str, torch.Tensor]


def _random_state(model: nn.Module, seed: int) -> StateDict:
    generator = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=generator) for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def coco18_d8() -> StateDict:
    return _random_state(OpenPoseCOCO18(width_divisor=8), seed=0)


@pytest.fixture(scope="module")
def coco18_file(tmp_path_factory, coco18_d8: StateDict):
    path = tmp_path_factory.mktemp("caffe") / "pose_iter_440000.caffemodel"
    return cw.write_caffemodel(path, cw.layers_from_state_dict(coco18_d8))


def _equal(loaded: StateDict, expected: StateDict) -> bool:
    return loaded.keys() == expected.keys() and all(
        torch.equal(loaded[k], v) for k, v in expected.items())


# --- reading -------------------------------------------------------------------------------

def test_coco18_caffemodel_loads_strictly(coco18_file, coco18_d8: StateDict) -> None:
    prepared = prepare_model("openpose", "coco18_d8", coco18_file, input_size=(64, 64))
    assert _equal(prepared.model.state_dict(), coco18_d8)
    assert prepared.layout == "caffemodel"
    assert prepared.card.source["format"] == "caffemodel"
    assert prepared.card.source["checkpoint"] == "pose_iter_440000.caffemodel"


def test_body25_caffemodel_with_prelu_loads_strictly(tmp_path) -> None:
    state = _random_state(OpenPoseBody25(width_divisor=8), seed=1)
    path = cw.write_caffemodel(tmp_path / "pose_iter_584000.caffemodel",
                               cw.layers_from_state_dict(state))
    prepared = prepare_model("openpose", "body25_d8", path)
    assert _equal(prepared.model.state_dict(), state)
    prelus = [layer for layer in caffemodel_layers(path) if layer.type == "PReLU"]
    assert len(prelus) == 99 and prelus[0].name == "prelu4_2"


def test_layers_keep_file_order_names_types_and_shapes(coco18_file) -> None:
    layers = caffemodel_layers(coco18_file)
    assert [(layer.name, layer.type) for layer in layers[:4]] == [
        ("data", "Data"), ("conv1_1", "Convolution"), ("relu_conv1_1", "ReLU"),
        ("conv1_2", "Convolution")]
    assert layers[1].shapes == ((8, 3, 3, 3), (8,))
    assert layers[2].blobs == ()
    state = read_caffemodel(coco18_file)
    assert "data.weight" not in state and "relu_conv1_1.weight" not in state
    assert len(state) == 184


def test_v1_layers_with_legacy_shapes(tmp_path) -> None:
    # CPM-era files: NetParameter.layers (V1), enum types, num/channels/height/width.
    weight = np.arange(2 * 3 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 3)
    bias = np.array([0.5, -1.5], dtype=np.float32)
    path = cw.write_caffemodel(tmp_path / "v1.caffemodel", [
        ("data", "Data", []), ("conv1_stage1", "Convolution", [weight, bias]),
        ("relu1_stage1", "ReLU", []), ("pool1_stage1", "Pooling", []),
    ], v1=True)
    layers = caffemodel_layers(path)
    assert [(layer.name, layer.type) for layer in layers] == [
        ("data", "Data"), ("conv1_stage1", "Convolution"), ("relu1_stage1", "ReLU"),
        ("pool1_stage1", "Pooling")]
    assert layers[1].shapes == ((2, 3, 3, 3), (1, 1, 1, 2))  # as stored
    # Caffe's own rule: a legacy (1, 1, 1, C) blob fits an expected (C,).
    model = nn.Module()
    model.add_module("conv1_stage1", nn.Conv2d(3, 2, 3))
    load_caffemodel_into(model, path)
    assert torch.equal(model.conv1_stage1.weight, torch.from_numpy(weight))
    assert torch.equal(model.conv1_stage1.bias, torch.from_numpy(bias))


@pytest.mark.parametrize(
    "options",
    [
        {"packed": False},  # repeated floats unpacked: legal protobuf, not what Caffe writes
        {"double": True},  # double_data (Caffe built with Dtype=double)
    ],
)
def test_other_float_encodings(tmp_path, options: dict) -> None:
    weight = np.linspace(-1, 1, 2 * 2 * 1 * 1, dtype=np.float32).reshape(2, 2, 1, 1)
    path = cw.write_caffemodel(tmp_path / "enc.caffemodel",
                               [("conv", "Convolution", [weight, np.ones(2, np.float32)])],
                               **options)
    state = read_caffemodel(path)
    assert torch.equal(state["conv.weight"], torch.from_numpy(weight))
    assert state["conv.weight"].dtype == torch.float32


def test_tensors_are_writable_and_own_their_memory(coco18_file) -> None:
    state = read_caffemodel(coco18_file)
    tensor = state["conv1_1.weight"]
    tensor.add_(1.0)  # a view of the file's read-only bytes would refuse this
    assert tensor.is_contiguous()


# --- refusing ------------------------------------------------------------------------------

def test_released_widths_are_checked(coco18_file) -> None:
    with pytest.raises(CheckpointError) as info:
        prepare_model("openpose", "coco18", coco18_file)
    message = str(info.value)
    # every tensor but the 12 output biases (38 or 19 channels at any width)
    assert "shape mismatch in 172 tensors" in message
    assert "conv1_1.weight: checkpoint (8, 3, 3, 3) vs model (64, 3, 3, 3)" in message
    assert "missing" not in message and "unexpected" not in message


def _cpm_layers() -> list[cw.Layer]:
    """The first layers of CPM's pose_deploy_centerMap, small: another network entirely."""
    rng = np.random.default_rng(0)
    layers: list[cw.Layer] = [("data", "Data", [])]
    for name, cin, cout in (("conv1_stage1", 3, 4), ("conv2_stage1", 4, 4),
                            ("conv3_stage1", 4, 4), ("Mconv1_stage2", 5, 4)):
        layers.append((name, "Convolution", [rng.standard_normal((cout, cin, 3, 3)),
                                             rng.standard_normal(cout)]))
    layers.append(("pool_center_lower", "Pooling", []))
    return layers


def test_caffemodel_of_another_network(tmp_path) -> None:
    path = cw.write_caffemodel(tmp_path / "pose_iter_985000_addLEEDS.caffemodel", _cpm_layers())
    with pytest.raises(CheckpointError) as info:
        prepare_model("openpose", "coco18_d8", path)
    message = str(info.value)
    assert "missing 184 keys: conv1_1.weight" in message
    assert "unexpected 8 keys: conv1_stage1.weight" in message
    assert "wrong model family" in message


def test_caffemodel_of_the_other_variant_names_it(tmp_path) -> None:
    state = _random_state(OpenPoseBody25(width_divisor=8), seed=2)
    path = cw.write_caffemodel(tmp_path / "body25.caffemodel", cw.layers_from_state_dict(state))
    with pytest.raises(CheckpointError, match="use --variant body25"):
        prepare_model("openpose", "coco18_d8", path)


@pytest.mark.parametrize(
    ("cut", "fragment"),
    [
        (lambda n: n // 2, "truncated"),  # in the middle of a layer's weights
        (lambda n: n - 1, "truncated"),  # one byte short
        (lambda n: 30, "truncated"),  # inside the first layer
        (lambda n: 1, "truncated"),  # inside the first field's header
    ],
)
def test_truncated_caffemodel(tmp_path, coco18_file, cut, fragment: str) -> None:
    data = coco18_file.read_bytes()
    path = tmp_path / "cut.caffemodel"
    path.write_bytes(data[:cut(len(data))])
    with pytest.raises(CheckpointError) as info:
        read_caffemodel(path)
    message = str(info.value)
    assert fragment in message and str(path) in message
    assert "as a Caffe .caffemodel" in message


def test_truncated_at_a_layer_boundary_lists_missing_layers(tmp_path, coco18_d8) -> None:
    layers = cw.layers_from_state_dict(coco18_d8)
    path = cw.write_caffemodel(tmp_path / "short.caffemodel", layers[: len(layers) // 2])
    with pytest.raises(CheckpointError, match=r"missing \d+ keys: Mconv"):
        prepare_model("openpose", "coco18_d8", path)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "holds no Caffe layers"),  # empty file
        (b'name: "OpenPose - BODY_25"\ninput: "image"\n', ".prototxt"),  # the text network file
        (b"PK\x03\x04rest of a zip", "zip archive"),  # a torch.save file renamed
        (bytes([0x0B, 0x00]), "wire type 3"),  # not protobuf at all
        (cw.net([]), "holds no Caffe layers"),  # a NetParameter with only a name
        (cw.net([("relu", "ReLU", [])]), "without weights"),  # layers but no blobs
    ],
)
def test_not_a_caffemodel(tmp_path, content: bytes, fragment: str) -> None:
    path = tmp_path / "bad.caffemodel"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=fragment.replace(".", r"\.")):
        read_caffemodel(path)


def test_blob_with_the_wrong_number_of_values(tmp_path) -> None:
    shape = cw.length_delimited(7, cw.length_delimited(1, cw.varint(2) + cw.varint(3)))
    bad = shape + cw.length_delimited(5, np.zeros(5, "<f4").tobytes())  # 5 values for (2, 3)
    layer = cw.length_delimited(100, cw.length_delimited(1, b"fc") + cw.length_delimited(7, bad))
    path = tmp_path / "count.caffemodel"
    path.write_bytes(layer)
    with pytest.raises(CheckpointError, match=r"shape \(2, 3\) holds 5 values, expected 6"):
        read_caffemodel(path)


def test_duplicate_layer_names(tmp_path) -> None:
    blobs = [np.zeros((1, 1, 1, 1), np.float32), np.zeros(1, np.float32)]
    path = cw.write_caffemodel(tmp_path / "dup.caffemodel",
                               [("conv", "Convolution", blobs), ("conv", "Convolution", blobs)])
    with pytest.raises(CheckpointError, match="two layers named 'conv'"):
        read_caffemodel(path)


def test_missing_file() -> None:
    with pytest.raises(CheckpointError, match="cannot read caffemodel"):
        read_caffemodel("/nonexistent/pose.caffemodel")


@pytest.mark.slow
def test_released_size_coco18_caffemodel(tmp_path) -> None:
    # A full 210 MB COCO-18 file, as CMU's pose_iter_440000.caffemodel is sized.
    model = OpenPoseCOCO18()
    state = model.state_dict()
    path = cw.write_caffemodel(tmp_path / "full.caffemodel", cw.layers_from_state_dict(state))
    start = time.perf_counter()
    read = read_caffemodel(path)
    assert time.perf_counter() - start < 10, "parsing must not loop over floats in Python"
    assert _equal(read, state)
    prepared = prepare_model("openpose", "coco18", path)
    assert _equal(prepared.model.state_dict(), state)
