"""OpenPose models against facts from CMU's prototxts (reference/models.md §2).

The expected layer tables below were read from CMU's
`models/pose/coco/pose_deploy_linevec.prototxt` and
`models/pose/body_25/pose_deploy.prototxt` (layer names, num_output, kernel
sizes, concat inputs), not from export.models.openpose. The BODY_25 tensor and
parameter counts come from propagating channels through that prototxt.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgepose.backends.onnxruntime import OnnxRuntimeRunner
from edgepose.errors import CheckpointError, InputError
from edgepose.keypoints import BODY25, COCO18, KEYPOINT_SETS
from export.families import parse_input_size, prepare_model
from export.models.openpose import (
    OpenPoseBody25,
    OpenPoseCOCO18,
    OpenPoseVariant,
    parse_openpose_variant,
)
from export.onnx_files.lint import check_onnx_for_tensorrt
from export.onnx import export_onnx, read_card

Shape = tuple[int, ...]

# --- facts ---------------------------------------------------------------------------------

# (layer, in channels, out channels, kernel), both prototxts up to conv4_4_CPM.
TRUNK = [
    ("conv1_1", 3, 64, 3), ("conv1_2", 64, 64, 3),
    ("conv2_1", 64, 128, 3), ("conv2_2", 128, 128, 3),
    ("conv3_1", 128, 256, 3), ("conv3_2", 256, 256, 3), ("conv3_3", 256, 256, 3),
    ("conv3_4", 256, 256, 3),
    ("conv4_1", 256, 512, 3), ("conv4_2", 512, 512, 3),
    ("conv4_3_CPM", 512, 256, 3), ("conv4_4_CPM", 256, 128, 3),
]
# models.md §2: sample keys of the converted COCO .pth, and its counts.
COCO18_SAMPLE_KEYS = [
    ("conv1_1.weight", (64, 3, 3, 3)),
    ("conv5_5_CPM_L1.weight", (38, 512, 1, 1)),
    ("Mconv1_stage2_L1.weight", (128, 185, 7, 7)),
    ("Mconv7_stage6_L2.weight", (19, 128, 1, 1)),
]
COCO18_TENSORS = 184
COCO18_PARAMS = 52_311_446
# BODY_25, counted from pose_deploy.prototxt (weights + biases of 114 convs, 99 PReLU slopes).
BODY25_TENSORS = 327
BODY25_PARAMS = 26_166_084
# (stage, input channels, Mconv1-5 width, Mconv6 width, output channels): the inputs are
# conv4_4_CPM (128), + PAFs (52), + stage-0 heatmaps (26), per the prototxt's Concat layers.
BODY25_STAGES = [
    ("stage0_L2", 128, 96, 256, 52),
    ("stage1_L2", 180, 128, 512, 52),
    ("stage2_L2", 180, 128, 512, 52),
    ("stage3_L2", 180, 128, 512, 52),
    ("stage0_L1", 180, 96, 256, 26),
    ("stage1_L1", 206, 128, 512, 26),
]


def _conv(out: dict[str, Shape], name: str, cin: int, cout: int, k: int) -> None:
    out[f"{name}.weight"] = (cout, cin, k, k)
    out[f"{name}.bias"] = (cout,)


def coco18_expected() -> dict[str, Shape]:
    out: dict[str, Shape] = {}
    for name, cin, cout, k in TRUNK:
        _conv(out, name, cin, cout, k)
    for branch, channels in (("L1", 38), ("L2", 19)):
        for i in (1, 2, 3):
            _conv(out, f"conv5_{i}_CPM_{branch}", 128, 128, 3)
        _conv(out, f"conv5_4_CPM_{branch}", 128, 512, 1)
        _conv(out, f"conv5_5_CPM_{branch}", 512, channels, 1)
        for t in range(2, 7):
            _conv(out, f"Mconv1_stage{t}_{branch}", 185, 128, 7)
            for i in (2, 3, 4, 5):
                _conv(out, f"Mconv{i}_stage{t}_{branch}", 128, 128, 7)
            _conv(out, f"Mconv6_stage{t}_{branch}", 128, 128, 1)
            _conv(out, f"Mconv7_stage{t}_{branch}", 128, channels, 1)
    return out


def body25_expected() -> dict[str, Shape]:
    out: dict[str, Shape] = {}
    for name, cin, cout, k in TRUNK:
        _conv(out, name, cin, cout, k)
    for prelu, channels in (("prelu4_2", 512), ("prelu4_3_CPM", 256), ("prelu4_4_CPM", 128)):
        out[f"{prelu}.weight"] = (channels,)
    for stage, cin, width, m6, channels in BODY25_STAGES:
        for i in range(1, 6):
            for j in range(3):
                block_in = (cin if i == 1 else 3 * width) if j == 0 else width
                _conv(out, f"Mconv{i}_{stage}_{j}", block_in, width, 3)
                out[f"Mprelu{i}_{stage}_{j}.weight"] = (width,)
        _conv(out, f"Mconv6_{stage}", 3 * width, m6, 1)
        out[f"Mprelu6_{stage}.weight"] = (m6,)
        _conv(out, f"Mconv7_{stage}", m6, channels, 1)
    return out


def _shapes(model: torch.nn.Module) -> dict[str, Shape]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def coco18() -> OpenPoseCOCO18:
    return OpenPoseCOCO18()


@pytest.fixture(scope="module")
def body25() -> OpenPoseBody25:
    return OpenPoseBody25()


# --- key layout ----------------------------------------------------------------------------

def test_coco18_state_dict_is_the_prototxt(coco18: OpenPoseCOCO18) -> None:
    assert _shapes(coco18) == coco18_expected()
    assert len(coco18.state_dict()) == COCO18_TENSORS
    assert sum(p.numel() for p in coco18.parameters()) == COCO18_PARAMS


@pytest.mark.parametrize(("key", "shape"), COCO18_SAMPLE_KEYS)
def test_coco18_key_has_the_released_shape(coco18: OpenPoseCOCO18, key: str, shape: Shape) -> None:
    assert tuple(coco18.state_dict()[key].shape) == shape


def test_body25_state_dict_is_the_prototxt(body25: OpenPoseBody25) -> None:
    assert _shapes(body25) == body25_expected()
    assert len(body25.state_dict()) == BODY25_TENSORS
    assert sum(p.numel() for p in body25.parameters()) == BODY25_PARAMS


@pytest.mark.parametrize(
    ("key", "shape"),
    [
        ("prelu4_2.weight", (512,)),  # PReLU starts at conv4_2 (relu4_1 stays a ReLU)
        ("Mconv1_stage0_L2_0.weight", (96, 128, 3, 3)),  # first PAF stage sees features only
        ("Mconv2_stage0_L2_0.weight", (96, 288, 3, 3)),  # the block's three outputs concatenated
        ("Mconv1_stage1_L2_0.weight", (128, 180, 3, 3)),  # features + 52 PAFs
        ("Mconv7_stage3_L2.weight", (52, 512, 1, 1)),  # final PAFs
        ("Mconv1_stage1_L1_0.weight", (128, 206, 3, 3)),  # features + heatmaps + PAFs
        ("Mconv7_stage1_L1.weight", (26, 512, 1, 1)),  # final heatmaps, 25 parts + background
    ],
)
def test_body25_key_has_the_prototxt_shape(body25: OpenPoseBody25, key: str, shape: Shape) -> None:
    assert tuple(body25.state_dict()[key].shape) == shape


def test_narrowed_variant_keeps_every_name() -> None:
    assert OpenPoseCOCO18(width_divisor=8).state_dict().keys() == coco18_expected().keys()
    assert OpenPoseBody25(width_divisor=8).state_dict().keys() == body25_expected().keys()


# --- forward -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("which", "batch", "height", "width"),
    [
        ("coco18", 1, 64, 96),  # released widths, wide input: stride 8 per axis
        ("body25", 2, 96, 64),  # released widths, tall input
        ("coco18_d8", 2, 40, 48),  # sizes that are multiples of 8 but not of 16
        ("body25_d8", 1, 8, 8),  # the smallest input: a 1x1 map
    ],
)
def test_outputs_are_stride_8(request, which: str, batch: int, height: int, width: int) -> None:
    variant = parse_openpose_variant(which)
    model = (request.getfixturevalue(which) if variant.width_divisor == 1
             else prepare_model("openpose", which, None).model).eval()
    pafs_ch, heat_ch = {"coco18": (38, 19), "body25": (52, 26)}[variant.keypoints]
    with torch.no_grad():
        pafs, heatmaps = model(torch.randn(batch, 3, height, width))
    assert tuple(pafs.shape) == (batch, pafs_ch, height // 8, width // 8)
    assert tuple(heatmaps.shape) == (batch, heat_ch, height // 8, width // 8)


@pytest.mark.parametrize(
    ("variant", "names"),
    [
        ("coco18_d8", ["conv5_5_CPM_L1", "conv5_5_CPM_L2"]
         + [f"Mconv7_stage{t}_{b}" for t in range(2, 7) for b in ("L1", "L2")]),
        ("body25_d8", [f"Mconv7_stage{t}_L2" for t in range(4)]
         + ["Mconv7_stage0_L1", "Mconv7_stage1_L1"]),
    ],
)
def test_stage_outputs_in_order_and_forward_is_the_last(variant: str, names: list[str]) -> None:
    model = prepare_model("openpose", variant, None).model.eval()
    x = torch.randn(1, 3, 32, 24)
    with torch.no_grad():
        stages = model.stage_outputs(x)
        pafs, heatmaps = model(x)
    assert list(stages) == names
    assert torch.equal(pafs, stages[model.paf_output])
    assert torch.equal(heatmaps, stages[model.heatmap_output])


def _inputs_of(model: torch.nn.Module, names: list[str],
               x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The input of each named layer in one forward pass (and outputs under 'out:{name}')."""
    seen: dict[str, torch.Tensor] = {}
    handles = []
    for name in names:
        def hook(module, args, output, name=name):
            seen[name] = args[0].detach().clone()
            seen[f"out:{name}"] = output.detach().clone()
        handles.append(model.get_submodule(name).register_forward_hook(hook))
    with torch.no_grad():
        outputs = model.stage_outputs(x)
    for handle in handles:
        handle.remove()
    seen.update(outputs)
    return seen


def test_coco18_stage_input_is_pafs_heatmaps_features() -> None:
    # concat_stage2: bottoms conv5_5_CPM_L1 (38), conv5_5_CPM_L2 (19), conv4_4_CPM.
    model = OpenPoseCOCO18(width_divisor=8).eval()
    seen = _inputs_of(model, ["Mconv1_stage2_L1", "Mconv1_stage2_L2", "conv4_4_CPM"],
                      torch.randn(1, 3, 32, 32))
    features = torch.relu(seen["out:conv4_4_CPM"])
    for branch in ("L1", "L2"):
        given = seen[f"Mconv1_stage2_{branch}"]
        assert torch.equal(given, torch.cat([seen["conv5_5_CPM_L1"], seen["conv5_5_CPM_L2"],
                                             features], dim=1))


def test_body25_stage_inputs_follow_the_prototxt_concats() -> None:
    model = OpenPoseBody25(width_divisor=8).eval()
    seen = _inputs_of(model, ["Mconv1_stage1_L2_0", "Mconv1_stage0_L1_0", "Mconv1_stage1_L1_0",
                              "prelu4_4_CPM", "Mconv2_stage0_L2_0", "Mprelu1_stage0_L2_0",
                              "Mprelu1_stage0_L2_1", "Mprelu1_stage0_L2_2"],
                      torch.randn(1, 3, 32, 32))
    features = seen["out:prelu4_4_CPM"]
    pafs, heat0 = seen["Mconv7_stage3_L2"], seen["Mconv7_stage0_L1"]
    # concat_stage1_L2: [conv4_4_CPM, Mconv7_stage0_L2]
    assert torch.equal(seen["Mconv1_stage1_L2_0"],
                       torch.cat([features, seen["Mconv7_stage0_L2"]], dim=1))
    # concat_stage0_L1: [conv4_4_CPM, Mconv7_stage3_L2]
    assert torch.equal(seen["Mconv1_stage0_L1_0"], torch.cat([features, pafs], dim=1))
    # concat_stage1_L1: [conv4_4_CPM, Mconv7_stage0_L1, Mconv7_stage3_L2]
    assert torch.equal(seen["Mconv1_stage1_L1_0"], torch.cat([features, heat0, pafs], dim=1))
    # Mconv1_stage0_L2_concat: the three chained convs after their in-place PReLUs
    assert torch.equal(seen["Mconv2_stage0_L2_0"], torch.cat(
        [seen[f"out:Mprelu1_stage0_L2_{j}"] for j in range(3)], dim=1))


def test_body25_prelu_slopes_are_used() -> None:
    model = OpenPoseBody25(width_divisor=8).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        before = model.stage_outputs(x)
        model.Mprelu6_stage1_L1.weight.fill_(3.0)  # last heatmap stage only
        after = model.stage_outputs(x)
        model.prelu4_2.weight.fill_(3.0)  # trunk: everything downstream
        trunk = model.stage_outputs(x)
    assert torch.equal(before["Mconv7_stage3_L2"], after["Mconv7_stage3_L2"])
    assert not torch.equal(before["Mconv7_stage1_L1"], after["Mconv7_stage1_L1"])
    assert not torch.equal(after["Mconv7_stage0_L2"], trunk["Mconv7_stage0_L2"])


def test_relu_quirk_changes_only_the_final_heatmaps() -> None:
    cmu = OpenPoseCOCO18(width_divisor=8).eval()
    port = OpenPoseCOCO18(width_divisor=8, relu_on_final_heatmaps=True).eval()
    port.load_state_dict(cmu.state_dict())
    x = torch.randn(2, 3, 32, 40)
    with torch.no_grad():
        (pafs_cmu, heat_cmu), (pafs_port, heat_port) = cmu(x), port(x)
        stages_cmu, stages_port = cmu.stage_outputs(x), port.stage_outputs(x)
    assert heat_cmu.min() < 0, "CMU's final heatmap conv has no ReLU"
    assert torch.equal(pafs_cmu, pafs_port)
    assert torch.equal(heat_port, torch.relu(heat_cmu))
    assert heat_port.min() >= 0
    for name in stages_cmu:
        if name != "Mconv7_stage6_L2":
            assert torch.equal(stages_cmu[name], stages_port[name]), name


@pytest.mark.parametrize(
    ("shape", "fragment"),
    [
        ((1, 3, 36, 32), "multiples of 8; got 36x32"),  # height not a multiple of 8
        ((1, 3, 32, 20), "multiples of 8; got 32x20"),  # width not a multiple of 8
        ((1, 4, 32, 32), "(N, 3, H, W)"),  # an extra channel (CPM's center map)
        ((3, 32, 32), "(N, 3, H, W)"),  # no batch axis
    ],
)
def test_forward_rejects_bad_input(shape: Shape, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        OpenPoseCOCO18(width_divisor=16)(torch.zeros(shape))
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("coco18", OpenPoseVariant("coco18", 1)),  # CMU COCO model as released
        ("body25", OpenPoseVariant("body25", 1)),  # CMU BODY_25 as released
        ("coco18_d8", OpenPoseVariant("coco18", 8)),  # narrowed test/demo network
        ("body25_d32", OpenPoseVariant("body25", 32)),  # narrowest: 96/32 = 3 channels
    ],
)
def test_parse_variant(text: str, expected: OpenPoseVariant) -> None:
    assert parse_openpose_variant(text) == expected
    assert expected.name == text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("coco", "malformed"),  # the keypoint set must be named in full
        ("COCO18", "malformed"),  # no silent case folding
        ("body_25", "malformed"),  # CMU's spelling is not the variant name
        ("coco18_d3", "not one of"),  # 64 / 3 is not whole
        ("coco18_d64", "not one of"),  # BODY_25's 96 / 64 is not whole
        ("mpi15", "malformed"),  # MPI model not supported
    ],
)
def test_parse_variant_rejects(text: str, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        parse_openpose_variant(text)
    assert fragment in str(info.value)


# --- keypoint sets -------------------------------------------------------------------------

@pytest.mark.parametrize(("keypoints", "pafs", "heatmaps"),
                         [(COCO18, 38, 19), (BODY25, 52, 26)])
def test_keypoint_set_fits_the_network(keypoints, pafs: int, heatmaps: int) -> None:
    assert KEYPOINT_SETS[keypoints.name] is keypoints
    assert keypoints.num_keypoints + 1 == heatmaps  # plus background
    assert 2 * len(keypoints.skeleton) == pafs
    assert sorted(c for pair in keypoints.paf_channels for c in pair) == list(range(pafs))


def test_body25_matches_pose_parameters() -> None:
    # poseParameters.cpp: POSE_BODY_25_BODY_PARTS, POSE_BODY_PART_PAIRS, POSE_MAP_INDEX.
    assert BODY25.names[:9] == COCO18.names[:8] + ("mid_hip",)
    assert BODY25.names[8:15] == ("mid_hip", "right_hip", "right_knee", "right_ankle",
                                  "left_hip", "left_knee", "left_ankle")
    assert BODY25.names[19:] == ("left_big_toe", "left_small_toe", "left_heel",
                                 "right_big_toe", "right_small_toe", "right_heel")
    limbs = dict(zip(BODY25.skeleton, BODY25.paf_channels))
    assert limbs[(1, 8)] == (0, 1)  # neck-midhip is the first pair and map
    assert limbs[(1, 0)] == (30, 31)
    assert limbs[(5, 18)] == (28, 29)
    assert limbs[(11, 24)] == (50, 51)
    assert BODY25.skeleton[-6:] == ((14, 19), (19, 20), (14, 21), (11, 22), (22, 23), (11, 24))
    names = BODY25.names
    for i, j in BODY25.flip_pairs:  # every flip pair swaps a left_ and a right_ name
        assert {names[i].split("_")[0], names[j].split("_")[0]} == {"left", "right"}
        assert names[i].split("_", 1)[1] == names[j].split("_", 1)[1]


# --- families: card and checkpoints --------------------------------------------------------

def test_card_describes_cmu_preprocessing_and_outputs() -> None:
    card = prepare_model("openpose", "body25_d8", None).card
    assert (card.family, card.variant, card.paradigm, card.keypoints) == (
        "openpose", "body25_d8", "bottom-up", "body25")
    assert (card.input.height, card.input.width) == (368, 656)  # CMU's 656x368
    assert card.input.color == "BGR"
    # (pixel - 128) / 256 == pixel/256 - 0.5; padding with 128 gives 0 after normalising
    assert card.input.mean == (128.0,) * 3 and card.input.std == (256.0,) * 3
    assert card.input.pad_value == 128.0
    assert [(o.name, o.role, o.stride) for o in card.outputs] == [
        ("pafs", "pafs", 8), ("heatmaps", "heatmaps", 8)]
    assert card.decoder.name == "paf" and dict(card.decoder.extra) == {"preset": "python"}
    assert card.random_init


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"input_size": (368, 650)}, InputError, "multiples of 8"),  # width not /8
        ({"input_size": (0, 368)}, InputError, "positive multiples"),  # empty
        ({"keypoints": "coco17"}, InputError, "does not match"),  # not OpenPose's set
    ],
)
def test_prepare_rejects(kwargs: dict, error: type, fragment: str) -> None:
    with pytest.raises(error) as info:
        prepare_model("openpose", "coco18_d16", None, **kwargs)
    assert fragment in str(info.value)


def test_hrnet_refuses_an_input_size() -> None:
    with pytest.raises(InputError, match="from --variant"):
        prepare_model("hrnet", "w8_128x96", None, input_size=(128, 96))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("368x656", (368, 656)), ("64x96", (64, 96))],  # height first, as in HRNet variants
)
def test_parse_input_size(text: str, expected: tuple[int, int]) -> None:
    assert parse_input_size(text) == expected


@pytest.mark.parametrize("text", ["368", "368X656", "368 x 656", "-8x8", "368x656x3"])
def test_parse_input_size_rejects(text: str) -> None:
    with pytest.raises(InputError, match="HEIGHTxWIDTH"):
        parse_input_size(text)


def _random_state(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {k: torch.rand(v.shape, generator=generator) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("prefix", ["", "module."])  # plain converted file; DataParallel save
def test_flat_caffe_pth_loads_strictly(tmp_path, prefix: str) -> None:
    state = _random_state(OpenPoseBody25(width_divisor=8), seed=1)
    path = tmp_path / "body25.pth"
    torch.save({prefix + k: v for k, v in state.items()}, path)
    prepared = prepare_model("openpose", "body25_d8", path, input_size=(64, 64))
    loaded = prepared.model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    assert prepared.layout == ("official+module." if prefix else "official")
    assert prepared.card.source["checkpoint"] == "body25.pth"
    assert not prepared.card.random_init


def test_pth_of_the_other_variant_names_it(tmp_path) -> None:
    path = tmp_path / "coco.pth"
    torch.save(_random_state(OpenPoseCOCO18(width_divisor=8), seed=2), path)
    with pytest.raises(CheckpointError) as info:
        prepare_model("openpose", "body25_d8", path)
    message = str(info.value)
    assert "missing" in message and "unexpected" in message
    assert "use --variant coco18" in message


def test_pth_of_the_wrong_width_is_a_shape_mismatch(tmp_path) -> None:
    path = tmp_path / "coco_d8.pth"
    torch.save(_random_state(OpenPoseCOCO18(width_divisor=8), seed=3), path)
    with pytest.raises(CheckpointError) as info:
        prepare_model("openpose", "coco18_d4", path)
    assert "conv1_1.weight: checkpoint (8, 3, 3, 3) vs model (16, 3, 3, 3)" in str(info.value)


# --- ONNX ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("variant", "channels"), [("coco18_d8", (38, 19)),
                                                   ("body25_d8", (52, 26))])
def test_onnx_runtime_matches_pytorch(tmp_path, variant: str, channels: tuple[int, int]) -> None:
    prepared = prepare_model("openpose", variant, None, input_size=(64, 96))
    path = export_onnx(prepared.model, prepared.card, tmp_path / f"{variant}.onnx")
    assert read_card(path) == prepared.card
    check_onnx_for_tensorrt(path)  # PRelu, Concat, MaxPool: all in TensorRT 10.3's parser
    for batch in (1, 3):
        feed = np.random.default_rng(batch).standard_normal((batch, 3, 64, 96)).astype(np.float32)
        with torch.no_grad():
            expected = [t.numpy() for t in prepared.model.eval()(torch.from_numpy(feed))]
        with OnnxRuntimeRunner(path) as runner:
            got = runner.infer({"input": feed})
        for name, want, count in zip(("pafs", "heatmaps"), expected, channels):
            assert got[name].shape == want.shape == (batch, count, 8, 12)
            scale = max(1.0, float(np.max(np.abs(want))))
            assert np.max(np.abs(got[name] - want)) <= 1e-5 * scale, name


@pytest.mark.slow
def test_released_size_pth_loads_strictly(tmp_path, coco18: OpenPoseCOCO18) -> None:
    # The 210 MB converted COCO .pth layout at full width (slow: writes and reads it).
    state = _random_state(coco18, seed=4)
    path = tmp_path / "body_pose_model.pth"
    torch.save(state, path)
    prepared = prepare_model("openpose", "coco18", path)
    assert prepared.layout == "official"
    loaded = prepared.model.state_dict()
    assert sum(v.numel() for v in loaded.values()) == COCO18_PARAMS
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
