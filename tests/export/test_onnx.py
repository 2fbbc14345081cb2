"""torch → ONNX: ONNX Runtime must reproduce PyTorch, and the card must travel with the file."""

import numpy as np
import onnx
import pytest
import torch

from edgepose.backends.onnxruntime import OnnxRuntimeRunner
from edgepose.errors import ModelFileError
from export.families import prepare_model
from export.onnx import ExportError, export_onnx, read_card, verify_onnx


@pytest.fixture(scope="module")
def second_variant(tmp_path_factory):
    prepared = prepare_model("hrnet", "w12_96x64", None)
    path = export_onnx(prepared.model, prepared.card, tmp_path_factory.mktemp("v2") / "m.onnx")
    return prepared, path


def _torch_vs_ort(model, path, batch):
    feed = np.random.default_rng(batch).standard_normal((batch, 3, *path_input_hw(path))).astype(np.float32)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(feed)).numpy()
    with OnnxRuntimeRunner(path) as runner:
        got = runner.infer({"input": feed})["heatmaps"]
    return expected, got


def path_input_hw(path):
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    return dims[2].dim_value, dims[3].dim_value


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("which", ["w8_128x96 via CLI", "w12_96x64 via export_onnx"])
def test_onnx_runtime_matches_pytorch(exported_hrnet, second_variant, which, batch):
    if which.startswith("w8"):
        model, path = prepare_model("hrnet", "w8_128x96", None).model, exported_hrnet
    else:
        (prepared, path) = second_variant
        model = prepared.model
    expected, got = _torch_vs_ort(model, path, batch)
    assert got.shape == expected.shape == (batch, 17, *(s // 4 for s in path_input_hw(path)))
    # FP32 kernels differ in summation order only: errors stay near float32 epsilon × range.
    assert np.max(np.abs(got - expected)) <= 1e-5 * max(1.0, np.max(np.abs(expected)))


def test_only_the_batch_axis_is_dynamic(exported_hrnet):
    graph = onnx.load(str(exported_hrnet)).graph
    for value in (*graph.input, *graph.output):
        dims = value.type.tensor_type.shape.dim
        assert dims[0].dim_param and not dims[0].dim_value, value.name
        assert all(d.dim_value > 0 for d in dims[1:]), value.name
    assert [i.name for i in graph.input] == ["input"]
    assert [o.name for o in graph.output] == ["heatmaps"]


def test_opset_is_17_by_default(exported_hrnet):
    model = onnx.load(str(exported_hrnet))
    assert {o.domain: o.version for o in model.opset_import}[""] == 17


def test_card_is_embedded(exported_hrnet):
    card = read_card(exported_hrnet)
    assert (card.family, card.variant, card.keypoints) == ("hrnet", "w8_128x96", "coco17")
    assert card.input.height == 128 and card.input.width == 96
    assert card.random_init
    with OnnxRuntimeRunner(exported_hrnet) as runner:
        assert runner.card == card


def test_verification_catches_a_graph_that_drifted(second_variant):
    prepared, path = second_variant
    model = prepare_model("hrnet", "w12_96x64", None).model
    with torch.no_grad():
        model.final_layer.bias.add_(0.5)  # the graph no longer matches this model
    with pytest.raises(ExportError, match="differs from PyTorch"):
        verify_onnx(model, path)
    results = verify_onnx(prepared.model, path, batch_sizes=(2,))
    assert results[0].batch == 2 and results[0].max_rel_error < 1e-4


def test_onnx_without_card_is_refused(tmp_path, second_variant):
    _, path = second_variant
    model = onnx.load(str(path))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    with pytest.raises(ModelFileError, match="carries no edgepose model card"):
        OnnxRuntimeRunner(bare)
    with pytest.raises(ModelFileError, match="carries no edgepose model card"):
        read_card(bare)
