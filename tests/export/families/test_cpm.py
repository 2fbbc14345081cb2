"""CPM: the prototxts' layer names and shapes, Caffe's pooling, checkpoints, ONNX export."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from edgepose.backends.onnxruntime import OnnxRuntimeRunner
from edgepose.errors import CheckpointError, InputError
from export.families import prepare_model
from export.onnx_files.lint import check_onnx_for_tensorrt
from export.models.cpm import (
    CPMCenterMap,
    CPMVariant,
    CPMVgg,
    CenterMapInput,
    center_map,
    parse_cpm_variant,
)
from export.onnx import export_onnx, read_card
from tests.export.caffe_writer import layers_from_state_dict, write_caffemodel

# Convolution layers of pose_deploy_centerMap.prototxt, in file order (MPII+LSP model).
CENTERMAP_CONVS = (
    [f"conv{i}_stage1" for i in range(1, 8)]
    + [f"conv{i}_stage2" for i in range(1, 5)]
    + [f"Mconv{i}_stage2" for i in range(1, 6)]
    + [name for stage in range(3, 7)
       for name in [f"conv1_stage{stage}"] + [f"Mconv{i}_stage{stage}" for i in range(1, 6)]]
)
# Convolution layers of pose_deploy_resize.prototxt (VGG trunk), in file order.
VGG_CONVS = (
    ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv3_4",
     "conv4_1", "conv4_2", "conv4_3_CPM", "conv4_4_CPM", "conv4_5_CPM", "conv4_6_CPM",
     "conv4_7_CPM", "conv5_1_CPM", "conv5_2_CPM"]
    + [f"Mconv{i}_stage{stage}" for stage in range(2, 7) for i in range(1, 8)]
)
# (layer, weight shape) read off the prototxts: num_output, input channels, kernel.
CENTERMAP_SHAPES = [
    ("conv1_stage1", (128, 3, 9, 9)), ("conv4_stage1", (32, 128, 5, 5)),
    ("conv5_stage1", (512, 32, 9, 9)), ("conv7_stage1", (15, 512, 1, 1)),
    ("conv4_stage2", (32, 128, 5, 5)), ("conv1_stage3", (32, 128, 5, 5)),
    # concat_stageT = [image features 32, previous belief 15, pooled center 1]
    ("Mconv1_stage2", (128, 48, 11, 11)), ("Mconv4_stage6", (128, 128, 1, 1)),
    ("Mconv5_stage6", (15, 128, 1, 1)),
]
VGG_SHAPES = [
    ("conv4_7_CPM", (128, 256, 3, 3)), ("conv5_1_CPM", (512, 128, 1, 1)),
    ("conv5_2_CPM", (15, 512, 1, 1)),
    # concat_stageT = [belief 15, conv4_7_CPM 128, pooled center 1]
    ("Mconv1_stage2", (128, 144, 7, 7)), ("Mconv6_stage6", (128, 128, 1, 1)),
    ("Mconv7_stage6", (15, 128, 1, 1)),
]


@pytest.fixture(scope="module")
def centermap() -> CPMCenterMap:
    return CPMCenterMap()


@pytest.fixture(scope="module")
def vgg() -> CPMVgg:
    return CPMVgg()


def _keys(names: list[str]) -> list[str]:
    return [f"{name}.{part}" for name in names for part in ("weight", "bias")]


@pytest.mark.parametrize(("which", "convs"), [("centermap", CENTERMAP_CONVS), ("vgg", VGG_CONVS)])
def test_state_dict_is_the_prototxt(request, which: str, convs: list[str]) -> None:
    model = request.getfixturevalue(which)
    assert sorted(model.state_dict()) == sorted(_keys(convs))


@pytest.mark.parametrize(("which", "key", "shape"),
                         [("centermap", k, s) for k, s in CENTERMAP_SHAPES]
                         + [("vgg", k, s) for k, s in VGG_SHAPES])
def test_layer_has_the_prototxt_shape(request, which: str, key: str, shape) -> None:
    assert tuple(request.getfixturevalue(which).state_dict()[f"{key}.weight"].shape) == shape


@pytest.mark.parametrize("variant", ["centermap_d8", "vgg_d8"])
def test_368_input_gives_six_stages_of_46x46_maps(variant: str) -> None:
    model = prepare_model("cpm", variant, None).model.model.eval()
    with torch.no_grad():
        stages = model.stage_outputs(torch.zeros(2, 4, 368, 368))
    assert list(stages) == model.stage_names and len(stages) == 6
    assert all(tuple(t.shape) == (2, 15, 46, 46) for t in stages.values())


def test_max_pools_round_up_like_caffe() -> None:
    # Caffe: out = ceil((in - kernel) / stride) + 1; floor mode would give 45 at the end.
    size, sizes = 368, []
    for _ in range(3):
        size = math.ceil((size - 3) / 2) + 1
        sizes.append(size)
    assert sizes == [184, 92, 46]
    model = CPMCenterMap(width_divisor=16)
    x = torch.zeros(1, 3, 368, 368)
    assert tuple(model._image_trunk(1, x).shape[2:]) == (46, 46)


def _caffe_average_pool(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """Caffe's PoolingLayer AVE forward, pad 0, written out as loops."""
    height, width = x.shape
    out_h = int(math.ceil((height - kernel) / stride)) + 1
    out_w = int(math.ceil((width - kernel) / stride)) + 1
    out = np.zeros((out_h, out_w))
    for ph in range(out_h):
        for pw in range(out_w):
            hstart, wstart = ph * stride, pw * stride
            hend, wend = min(hstart + kernel, height), min(wstart + kernel, width)
            pool_size = (hend - hstart) * (wend - wstart)
            out[ph, pw] = x[hstart:hend, wstart:wend].sum() / pool_size
    return out


def test_center_pool_divides_the_last_window_by_its_clipped_size() -> None:
    rng = np.random.default_rng(0)
    maps = rng.random((368, 368)).astype(np.float32)
    x = torch.zeros(1, 4, 368, 368)
    x[0, 3] = torch.from_numpy(maps)
    _, pooled = CPMCenterMap._split(x)
    expected = _caffe_average_pool(maps.astype(np.float64), 9, 8)
    assert expected.shape == (46, 46)
    np.testing.assert_allclose(pooled[0, 0].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_center_map_is_the_published_gaussian() -> None:
    values = center_map(368, 368)
    # produceCenterLabelMap: exp(-((X - 184)² + (Y - 184)²) / (2·21²)) on a 1-based grid.
    assert values.shape == (368, 368) and values.dtype == np.float32
    assert values[183, 183] == 1.0 and np.unravel_index(values.argmax(), values.shape) == (183, 183)
    assert values[183, 183 + 21] == pytest.approx(math.exp(-0.5), rel=1e-6)
    assert values[183 - 21, 183 - 21] == pytest.approx(math.exp(-1.0), rel=1e-6)
    assert values[0, 0] == pytest.approx(math.exp(-(2 * 183 ** 2) / (2 * 21 ** 2)), abs=1e-30)


def test_center_map_wrapper_feeds_the_constant_channel() -> None:
    model = CPMCenterMap(width_divisor=16).eval()
    wrapped = CenterMapInput(model, 368, 368).eval()
    image = torch.randn(2, 3, 368, 368, generator=torch.Generator().manual_seed(0))
    by_hand = torch.cat([image, torch.from_numpy(center_map(368, 368)).expand(2, 1, -1, -1)], 1)
    with torch.no_grad():
        assert torch.equal(wrapped(image), model(by_hand))
    assert set(wrapped.state_dict()) == {f"model.{k}" for k in model.state_dict()}


def test_stages_chain_beliefs() -> None:
    # Stage 3's belief must change when stage 2's does: it is concatenated in.
    model = CPMCenterMap(width_divisor=16).eval()
    x = torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model.stage_outputs(x)
        model.Mconv5_stage2.bias.add_(1.0)
        after = model.stage_outputs(x)
    assert torch.equal(before["conv7_stage1"], after["conv7_stage1"])
    assert not torch.equal(before["Mconv5_stage3"], after["Mconv5_stage3"])


@pytest.mark.parametrize(("shape", "fragment"), [((1, 3, 368, 368), "(N, 4, H, W)"),
                                                 ((1, 4, 100, 368), "multiples of 8")])
def test_forward_rejects_bad_input(shape, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        CPMVgg(width_divisor=16)(torch.zeros(shape))


@pytest.mark.parametrize(("text", "expected"), [("centermap", CPMVariant("centermap")),
                                                ("vgg_d8", CPMVariant("vgg", 8))])
def test_parse_variant(text: str, expected: CPMVariant) -> None:
    assert parse_cpm_variant(text) == expected


@pytest.mark.parametrize("text", ["cpm", "vgg_d3", "centermap_"])
def test_parse_variant_rejects(text: str) -> None:
    with pytest.raises(InputError):
        parse_cpm_variant(text)


def test_card_describes_cmu_preprocessing() -> None:
    card = prepare_model("cpm", "centermap_d8", None).card
    assert (card.family, card.paradigm, card.keypoints) == ("cpm", "top-down", "mpii_cpm14")
    assert (card.input.height, card.input.width, card.input.color) == (368, 368, "BGR")
    # value/256 - 0.5 == (value - 128) / 256; the pad of 128 normalises to 0.
    assert card.input.mean == (128.0,) * 3 and card.input.std == (256.0,) * 3
    assert card.input.pad_value == 128.0
    assert card.input.extra["box_rule"] == "height" and card.input.extra["box_padding"] == 1.2
    assert card.input.extra["center_map"]["sigma"] == 21.0
    assert card.decoder.name == "cpm" and card.output("heatmaps").stride == 8


def _random_state(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {k: torch.rand(v.shape, generator=generator) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("variant", ["centermap_d8", "vgg_d8"])
def test_caffemodel_loads_strictly(tmp_path, variant: str) -> None:
    inner = prepare_model("cpm", variant, None).model.model
    state = _random_state(inner, seed=5)
    path = write_caffemodel(tmp_path / "cpm.caffemodel", layers_from_state_dict(state), v1=True)
    prepared = prepare_model("cpm", variant, path)
    loaded = prepared.model.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    assert prepared.layout == "caffemodel"
    assert prepared.card.source["checkpoint"] == "cpm.caffemodel"


def test_flat_pth_loads_strictly_and_the_wrong_variant_is_listed(tmp_path) -> None:
    state = _random_state(CPMVgg(width_divisor=8), seed=6)
    path = tmp_path / "cpm_vgg.pth"
    torch.save(state, path)
    prepared = prepare_model("cpm", "vgg_d8", path)
    assert torch.equal(prepared.model.model.conv4_7_CPM.weight, state["conv4_7_CPM.weight"])
    with pytest.raises(CheckpointError) as info:
        prepare_model("cpm", "centermap_d8", path)
    message = str(info.value)
    assert "missing" in message and "conv1_stage1.weight" in message
    assert "unexpected" in message and "conv1_1.weight" in message
    assert "use --variant vgg" in message


def test_prepare_rejects_other_keypoints_and_sizes() -> None:
    with pytest.raises(InputError, match="mpii_cpm14"):
        prepare_model("cpm", "vgg_d8", None, keypoints="coco17")
    with pytest.raises(InputError, match="368x368"):
        prepare_model("cpm", "vgg_d8", None, input_size=(256, 256))


@pytest.mark.parametrize("variant", ["centermap_d8", "vgg_d8"])
def test_onnx_runtime_matches_pytorch(tmp_path, variant: str) -> None:
    prepared = prepare_model("cpm", variant, None)
    path = export_onnx(prepared.model, prepared.card, tmp_path / f"{variant}.onnx")
    assert read_card(path) == prepared.card
    check_onnx_for_tensorrt(path)
    for batch in (1, 4):
        feed = np.random.default_rng(batch).uniform(-0.5, 0.5, (batch, 3, 368, 368))
        feed = feed.astype(np.float32)
        with torch.no_grad():
            want = prepared.model.eval()(torch.from_numpy(feed)).numpy()
        with OnnxRuntimeRunner(path) as runner:
            got = runner.infer({"input": feed})["heatmaps"]
        assert got.shape == want.shape == (batch, 15, 46, 46)
        scale = max(1.0, float(np.max(np.abs(want))))
        assert np.max(np.abs(got - want)) <= 1e-5 * scale
