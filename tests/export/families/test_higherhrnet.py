"""HigherHRNet against facts from the official model (reference/models.md §6).

Head key names and shapes are written out below from
HRNet/HigherHRNet-Human-Pose-Estimation `lib/models/pose_higher_hrnet.py`
(_make_final_layers, _make_deconv_layers) with the DECONV section of
`experiments/coco/higher_hrnet/w32_512_adam_lr1e-3.yaml`, not from
export.models.higherhrnet. The W32 parameter count is models.md's; the W48 count,
the tensor count and the output numbers come from building and running the
official PoseHigherResolutionNet (commit aa23881), which is not vendored here.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from edgepose.errors import CheckpointError, InputError
from export.checkpoints import load_strict, read_checkpoint, remap_to_model
from export.onnx_files.lint import check_onnx_for_tensorrt
from export.models.higherhrnet import (
    OUTPUT_NAMES,
    HigherHRNet,
    HigherHRNetVariant,
    build_higherhrnet,
    parse_higherhrnet_variant,
)
from export.models.hrnet import HRNet

Shape = tuple[int, ...]

W32_PARAMS = 28_645_331  # models.md §6
# Official class built with the w48_640 yaml: the backbone's 63,595,745 less its unused
# top-down head (833), plus final_layers (1,666 + 833), the deconv (82·48·16 + 96) and
# four 48-wide BasicBlocks (4 · 41,664).
W48_PARAMS = 63_827_139
# Every state-dict entry of the official W32 model, BN counters included: the top-down
# HRNet's 1754 less final_layer's 2, plus 58 in the head.
W32_TENSORS = 1810
# models.md §1/§6: backbone keys keep the top-down HRNet names.
BACKBONE_KEY_SHAPES = [
    ("conv1.weight", (64, 3, 3, 3)),
    ("layer1.0.downsample.0.weight", (256, 64, 1, 1)),
    ("transition1.1.0.0.weight", (64, 256, 3, 3)),
    ("stage2.0.fuse_layers.0.1.0.weight", (32, 64, 1, 1)),
    ("stage4.2.branches.3.3.conv2.weight", (256, 256, 3, 3)),
]


def head_expected(width: int, joints: int) -> dict[str, Shape]:
    """final_layers and deconv_layers of the official net (FINAL_CONV_KERNEL 1, one deconv)."""
    out: dict[str, Shape] = {}

    def bn(prefix: str) -> None:
        for part in ("weight", "bias", "running_mean", "running_var"):
            out[f"{prefix}.{part}"] = (width,)
        out[f"{prefix}.num_batches_tracked"] = ()

    # WITH_AE_LOSS [True, False], TAG_PER_JOINT: 17 heatmaps + 17 tags, then 17 heatmaps.
    out["final_layers.0.weight"] = (2 * joints, width, 1, 1)
    out["final_layers.0.bias"] = (2 * joints,)
    out["final_layers.1.weight"] = (joints, width, 1, 1)
    out["final_layers.1.bias"] = (joints,)
    # ConvTranspose2d weights are (in, out, k, k); CAT_OUTPUT adds the 2K first-output maps.
    out["deconv_layers.0.0.0.weight"] = (width + 2 * joints, width, 4, 4)
    bn("deconv_layers.0.0.1")
    for block in range(1, 5):  # each BasicBlock sits alone in its own Sequential
        for conv in (1, 2):
            out[f"deconv_layers.0.{block}.0.conv{conv}.weight"] = (width, width, 3, 3)
            bn(f"deconv_layers.0.{block}.0.bn{conv}")
    return out


def _shapes(model: nn.Module) -> dict[str, Shape]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def w32() -> HigherHRNet:
    return HigherHRNet(width=32, num_joints=17)


# --- key layout ----------------------------------------------------------------------------

def test_w32_head_keys_are_official(w32: HigherHRNet) -> None:
    head = {k: v for k, v in _shapes(w32).items()
            if k.startswith(("final_layers.", "deconv_layers."))}
    assert head == head_expected(32, 17)


def test_w32_keeps_the_backbone_and_drops_the_topdown_head(w32: HigherHRNet) -> None:
    shapes = _shapes(w32)
    backbone = {k: v for k, v in _shapes(HRNet(width=32)).items()
                if not k.startswith("final_layer.")}
    assert {k: v for k, v in shapes.items() if k in backbone} == backbone
    assert set(shapes) == set(backbone) | set(head_expected(32, 17))
    assert not any(k.startswith("final_layer.") for k in shapes)
    assert len(shapes) == W32_TENSORS


@pytest.mark.parametrize(("key", "shape"), BACKBONE_KEY_SHAPES)
def test_w32_backbone_key_has_official_shape(w32: HigherHRNet, key: str, shape: Shape) -> None:
    assert tuple(w32.state_dict()[key].shape) == shape


@pytest.mark.parametrize(
    ("width", "params"),
    [
        (32, W32_PARAMS),  # pose_higher_hrnet_w32_512/640
        (48, W48_PARAMS),  # pose_higher_hrnet_w48_640: deconv branch 48 wide too
    ],
)
def test_parameter_count_matches_official(width: int, params: int) -> None:
    model = HigherHRNet(width=width)
    assert sum(p.numel() for p in model.parameters()) == params


def test_deconv_is_k4_s2_p1_without_bias(w32: HigherHRNet) -> None:
    deconv = w32.deconv_layers[0][0][0]
    assert isinstance(deconv, nn.ConvTranspose2d)
    assert (deconv.kernel_size, deconv.stride, deconv.padding, deconv.output_padding) == (
        (4, 4), (2, 2), (1, 1), (0, 0))
    assert deconv.bias is None
    bns = [m for m in w32.deconv_layers.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 9 and {(m.momentum, m.eps) for m in bns} == {(0.1, 1e-5)}


def test_init_weights_covers_the_deconv() -> None:
    model = HigherHRNet(width=8)
    model.init_weights()
    weight = model.deconv_layers[0][0][0].weight
    assert float(weight.detach().std()) == pytest.approx(0.001, rel=0.2)


# --- forward -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("height", "width", "batch"),
    [
        (128, 128, 2),  # the w8_128 test size
        (64, 192, 1),  # landscape: strides apply per axis
    ],
)
def test_outputs_are_quarter_and_half_resolution(height: int, width: int, batch: int) -> None:
    model = HigherHRNet(width=8).eval()
    with torch.no_grad():
        maps_tags, maps_hr = model(torch.randn(batch, 3, height, width))
    assert tuple(maps_tags.shape) == (batch, 34, height // 4, width // 4)
    assert tuple(maps_hr.shape) == (batch, 17, height // 2, width // 2)


def _fill_deterministic(state: dict[str, torch.Tensor]) -> None:
    """Weights from a formula (no RNG), by sorted key, so the official model gets the same."""
    for i, key in enumerate(sorted(state)):
        value = state[key]
        if not value.dtype.is_floating_point:
            continue
        t = torch.arange(value.numel(), dtype=torch.float64).reshape(value.shape)
        wave = torch.sin(t * 0.7 + i)
        if key.endswith("running_var"):
            value.copy_(1.0 + 0.5 * wave)
        elif key.endswith(("running_mean", "bias")):
            value.copy_(0.1 * wave)
        elif value.dim() == 4:  # conv weight, scaled by 1/fan to keep activations O(1)
            value.copy_(wave / value[0].numel())
        else:  # BN weight
            value.copy_(1.0 + 0.2 * wave)


def _pattern_input(height: int, width: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                            torch.arange(width, dtype=torch.float64), indexing="ij")
    return torch.stack([torch.sin(xx * 0.3 + c) * torch.cos(yy * 0.2 - c) for c in range(3)])[None]


# Official PoseHigherResolutionNet (aa23881), W8, 5 joints, float64, eval mode, weights and
# input above: (shape, sum, sum of squares, index-weighted mean, values at [0, :, 3, 5]).
OFFICIAL_W8 = {
    "heatmaps_tags": ((1, 10, 16, 32), 215.1908532287949, 1376.3733268255185,
                      -244.45064953867077,
                      [0.5468715078645583, 0.71386110674313, 0.5618458702651451,
                       0.15975833061331374, -0.3122176933458033, -0.6433845563685748,
                       -0.6865619237699232, -0.42346000767098496, 0.027623918196067437,
                       0.4649990848596791]),
    "heatmaps_hr": ((1, 5, 32, 64), -157.27767732637136, 220.61589277350862, 340.8834038378725,
                    [-0.19896030117460628, -0.14526069541658954, -0.025493364343987593,
                     0.10511419824356823, 0.18675223034144045]),
}


def test_forward_matches_official_numbers() -> None:
    model = HigherHRNet(width=8, num_joints=5).double().eval()
    state = model.state_dict()
    _fill_deterministic(state)
    model.load_state_dict(state)
    with torch.no_grad():
        outputs = dict(zip(OUTPUT_NAMES, model(_pattern_input(64, 128))))
    for name, (shape, total, squares, weighted, at_3_5) in OFFICIAL_W8.items():
        out = outputs[name]
        assert tuple(out.shape) == shape, name
        index = torch.arange(out.numel(), dtype=torch.float64).reshape(out.shape)
        assert math.isclose(out.sum().item(), total, rel_tol=1e-9), name
        assert math.isclose((out ** 2).sum().item(), squares, rel_tol=1e-9), name
        assert math.isclose((out * index).sum().item() / out.numel(), weighted, rel_tol=1e-9), name
        assert out[0, :, 3, 5].tolist() == pytest.approx(at_3_5, rel=1e-9, abs=1e-12), name


def test_high_resolution_branch_sees_the_first_output() -> None:
    # CAT_OUTPUT: changing only final_layers.0 must change heatmaps_hr too.
    model = HigherHRNet(width=8).eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, before = model(x)
        model.final_layers[0].bias.add_(1.0)
        _, after = model(x)
    assert not torch.equal(before, after)


@pytest.mark.parametrize(
    ("shape", "fragment"),
    [
        ((1, 4, 64, 64), "(N, 3, H, W)"),  # an extra channel
        ((1, 3, 64, 80), "multiples of 32"),  # width not divisible down to 1/32
    ],
)
def test_forward_rejects_bad_input(shape: Shape, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        HigherHRNet(width=8)(torch.zeros(shape))
    assert fragment in str(info.value)


# --- variants ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("w32_512", HigherHRNetVariant(32, 512)),  # pose_higher_hrnet_w32_512
        ("w32_640", HigherHRNetVariant(32, 640)),  # pose_higher_hrnet_w32_640
        ("w48_640", HigherHRNetVariant(48, 640)),  # pose_higher_hrnet_w48_640
        ("w8_128", HigherHRNetVariant(8, 128)),  # narrow test net
    ],
)
def test_parse_variant(text: str, expected: HigherHRNetVariant) -> None:
    variant = parse_higherhrnet_variant(text)
    assert variant == expected and variant.name == text


@pytest.mark.parametrize(
    "text",
    [
        "w32_512x512",  # top-down style size: HigherHRNet variants are square
        "w32-512",  # wrong separator
        "w32_500",  # not a multiple of 64
        "w0_512",  # no width
    ],
)
def test_parse_variant_rejects(text: str) -> None:
    with pytest.raises(InputError):
        parse_higherhrnet_variant(text)


def test_build_uses_the_width() -> None:
    model = build_higherhrnet(parse_higherhrnet_variant("w8_128"))
    assert tuple(model.state_dict()["deconv_layers.0.0.0.weight"].shape) == (42, 8, 4, 4)


# --- checkpoints ---------------------------------------------------------------------------

def _random_state(model: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {k: (torch.rand(v.shape, generator=generator) if v.dtype.is_floating_point
                else torch.full_like(v, seed)) for k, v in model.state_dict().items()}


def _official(state: dict[str, torch.Tensor]) -> object:
    return state  # pose_higher_hrnet_w32_512.pth is a plain state dict


def _mmpose_0x(state: dict[str, torch.Tensor]) -> object:
    # higher_hrnet32_coco_512x512-8ae85183_20200713.pth: {meta, state_dict}, AssociativeEmbedding
    # keeps the backbone under `backbone.` and AEHigherResolutionHead under `keypoint_head.`.
    head = ("final_layers.", "deconv_layers.")
    renamed = {("keypoint_head." if k.startswith(head) else "backbone.") + k: v
               for k, v in state.items()}
    return {"meta": {"epoch": 300, "mmpose_version": "0.1.0"}, "state_dict": renamed}


def _load(path: Path, model: nn.Module) -> str:
    renamed, layout = remap_to_model(read_checkpoint(path), set(model.state_dict()))
    load_strict(model, renamed, source=f"{path} ({layout})")
    return layout


@pytest.mark.parametrize(
    ("writer", "layout"),
    [
        (_official, "official"),  # the HigherHRNet release
        (_mmpose_0x, "mmpose-0.x"),  # mmpose model zoo: same names, prefixed
    ],
)
def test_released_layouts_load_strictly(tmp_path: Path, writer, layout: str) -> None:
    state = _random_state(HigherHRNet(width=8), seed=3)
    path = tmp_path / "higherhrnet.pth"
    torch.save(writer(state), path)
    model = HigherHRNet(width=8)
    assert _load(path, model) == layout
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_topdown_hrnet_checkpoint_is_refused_with_the_diff(tmp_path: Path) -> None:
    path = tmp_path / "pose_hrnet.pth"
    torch.save(_random_state(HRNet(width=8), seed=4), path)
    with pytest.raises(CheckpointError) as info:
        _load(path, HigherHRNet(width=8))
    message = str(info.value)
    assert "missing" in message and "final_layers.0.weight" in message
    assert "unexpected 2 keys" in message and "final_layer.weight" in message


def test_wrong_width_is_refused_with_shapes(tmp_path: Path) -> None:
    path = tmp_path / "w8.pth"
    torch.save(_random_state(HigherHRNet(width=8), seed=5), path)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        _load(path, HigherHRNet(width=16))


# --- ONNX ----------------------------------------------------------------------------------

# 32 s on 2 cores; test_seed_families exports the same variant through export_model, whose
# check runs ONNX Runtime against PyTorch at two batch sizes, in the default run.
@pytest.mark.slow
def test_onnx_runtime_matches_pytorch(tmp_path: Path) -> None:
    variant = parse_higherhrnet_variant("w8_128")
    model = build_higherhrnet(variant).eval()
    size = variant.input_size
    path = tmp_path / "higherhrnet_w8_128.onnx"
    # Batch 2 as the example: torch.export specialises axes of size 1.
    example = torch.randn(2, 3, size, size)
    with torch.no_grad():
        torch.onnx.export(model, (example,), str(path), dynamo=True, opset_version=17,
                          input_names=["input"], output_names=list(OUTPUT_NAMES),
                          dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=64)},),
                          external_data=False, verbose=False)
    check_onnx_for_tensorrt(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == list(OUTPUT_NAMES)
    for batch in (1, 2):
        feed = np.random.default_rng(batch).standard_normal((batch, 3, size, size))
        feed = feed.astype(np.float32)
        with torch.no_grad():
            wants = [t.numpy() for t in model(torch.from_numpy(feed))]
        gots = session.run(list(OUTPUT_NAMES), {"input": feed})
        for name, got, want, stride, channels in zip(OUTPUT_NAMES, gots, wants, (4, 2), (34, 17)):
            assert got.shape == want.shape == (batch, channels, size // stride, size // stride)
            scale = max(1.0, float(np.max(np.abs(want))))
            assert np.max(np.abs(got - want)) <= 1e-5 * scale, name
