"""HRNet against facts read from the official model (reference/models.md §1).

The expected key names, shapes, tensor and parameter counts below come from
building the official PoseHighResolutionNet, not from export.models.hrnet.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from edgepose.errors import InputError
from export.models.hrnet import HRNet, HRNetVariant, build_hrnet, parse_hrnet_variant

# models.md §1: sample keys of the official W32 COCO model.
W32_KEY_SHAPES = [
    ("conv1.weight", (64, 3, 3, 3)),
    ("conv2.weight", (64, 64, 3, 3)),
    ("layer1.0.conv1.weight", (64, 64, 1, 1)),
    ("layer1.0.downsample.0.weight", (256, 64, 1, 1)),
    ("transition1.0.0.weight", (32, 256, 3, 3)),
    ("transition1.1.0.0.weight", (64, 256, 3, 3)),
    ("stage2.0.branches.0.0.conv1.weight", (32, 32, 3, 3)),
    ("stage2.0.fuse_layers.0.1.0.weight", (32, 64, 1, 1)),
    ("stage2.0.fuse_layers.1.0.0.0.weight", (64, 32, 3, 3)),
    ("stage4.2.branches.3.3.conv2.weight", (256, 256, 3, 3)),
    ("final_layer.weight", (17, 32, 1, 1)),
    ("final_layer.bias", (17,)),
]
# The reference's 1754 counts every state-dict entry: weights, biases, BN
# running_mean/running_var AND num_batches_tracked (292 BatchNorms, so 1462
# entries without the counters).
W32_STATE_DICT_TENSORS = 1754
W32_BATCHNORMS = 292
PARAMS = {32: 28_536_113, 48: 63_595_745}


@pytest.fixture(scope="module")
def w32() -> HRNet:
    return HRNet(width=32, num_joints=17)


@pytest.mark.parametrize(("key", "shape"), W32_KEY_SHAPES)
def test_w32_key_has_official_shape(w32: HRNet, key: str, shape: tuple[int, ...]) -> None:
    state = w32.state_dict()
    assert key in state
    assert tuple(state[key].shape) == shape


def test_w32_tensor_count_includes_num_batches_tracked(w32: HRNet) -> None:
    state = w32.state_dict()
    counters = [k for k in state if k.endswith(".num_batches_tracked")]
    assert len(state) == W32_STATE_DICT_TENSORS
    assert len(counters) == W32_BATCHNORMS
    assert len(state) - len(counters) == 1462


@pytest.mark.parametrize(
    ("width", "params"),
    [
        (32, PARAMS[32]),  # COCO W32 as released
        (48, PARAMS[48]),  # COCO W48 as released; only the width differs
    ],
)
def test_parameter_count_matches_official(width: int, params: int) -> None:
    model = HRNet(width=width, num_joints=17)
    assert sum(p.numel() for p in model.parameters()) == params


def test_last_stage4_module_fuses_to_branch_0_only(w32: HRNet) -> None:
    keys = w32.state_dict().keys()
    assert any(k.startswith("stage4.2.fuse_layers.0.") for k in keys)
    assert not any(k.startswith("stage4.2.fuse_layers.1.") for k in keys)
    # The earlier stage-4 modules keep all four outputs.
    assert any(k.startswith("stage4.1.fuse_layers.3.") for k in keys)
    assert not any(k.startswith("stage4.3.") for k in keys)


def test_no_dataparallel_prefix(w32: HRNet) -> None:
    assert not any(k.startswith("module.") for k in w32.state_dict())


def test_batchnorm_settings_are_official(w32: HRNet) -> None:
    bns = [m for m in w32.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == W32_BATCHNORMS
    assert {(m.momentum, m.eps) for m in bns} == {(0.1, 1e-5)}


@pytest.mark.parametrize(
    ("variant", "joints", "batch", "expected"),
    [
        ("w8_128x96", 17, 2, (2, 17, 32, 24)),  # small COCO-shaped net
        ("w8_256x256", 16, 1, (1, 16, 64, 64)),  # MPII joint count, square input
        ("w8_64x160", 17, 1, (1, 17, 16, 40)),  # wide input: stride 4 per axis
        ("w32_256x192", 17, 2, (2, 17, 64, 48)),  # the released COCO variant
    ],
)
def test_output_is_quarter_resolution(
    variant: str, joints: int, batch: int, expected: tuple[int, ...]
) -> None:
    v = parse_hrnet_variant(variant)
    model = build_hrnet(v, num_joints=joints).eval()
    with torch.no_grad():
        out = model(torch.randn(batch, 3, v.input_height, v.input_width))
    assert tuple(out.shape) == expected


def _fill_deterministic(state: dict[str, torch.Tensor]) -> None:
    """Weights from a formula (no RNG), so the official model can be given the same ones."""
    for i, (key, value) in enumerate(state.items()):
        if not value.dtype.is_floating_point:
            continue
        t = torch.arange(value.numel(), dtype=torch.float64).reshape(value.shape)
        wave = torch.sin(t * 0.7 + i)
        if key.endswith("running_var"):
            value.copy_(1.0 + 0.5 * wave)
        elif key.endswith(("running_mean", "bias")):
            value.copy_(0.1 * wave)
        elif value.dim() == 4:  # conv weight, scaled by 1/fan-in to keep activations O(1)
            value.copy_(wave / value[0].numel())
        else:  # BN weight
            value.copy_(1.0 + 0.2 * wave)


def _pattern_input(height: int, width: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(
        torch.arange(height, dtype=torch.float64),
        torch.arange(width, dtype=torch.float64),
        indexing="ij",
    )
    return torch.stack([torch.sin(xx * 0.3 + c) * torch.cos(yy * 0.2 - c) for c in range(3)])[None]


# Output statistics of the official PoseHighResolutionNet (commit 6f69e46, W8,
# 5 joints, float64, eval mode) with the weights and input above; computed by
# running the official class, which is not vendored here.
OFFICIAL_W8_SUM = 236.4468787883933
OFFICIAL_W8_SUM_SQUARES = 119.68752502446004
OFFICIAL_W8_INDEX_WEIGHTED_MEAN = 226.280044879749  # catches permuted positions
OFFICIAL_W8_AT_3_5 = [
    -0.21570083559860095,
    -0.023769123036469123,
    0.17746444033990208,
    0.29692957213509563,
    0.28125173985229385,
]


def test_forward_matches_official_numbers() -> None:
    model = HRNet(width=8, num_joints=5).double().eval()
    state = model.state_dict()
    _fill_deterministic(state)
    model.load_state_dict(state)
    with torch.no_grad():
        out = model(_pattern_input(64, 96))
    assert tuple(out.shape) == (1, 5, 16, 24)
    index = torch.arange(out.numel(), dtype=torch.float64).reshape(out.shape)
    assert math.isclose(out.sum().item(), OFFICIAL_W8_SUM, rel_tol=1e-9)
    assert math.isclose((out**2).sum().item(), OFFICIAL_W8_SUM_SQUARES, rel_tol=1e-9)
    assert math.isclose(
        (out * index).sum().item() / out.numel(), OFFICIAL_W8_INDEX_WEIGHTED_MEAN, rel_tol=1e-9
    )
    assert out[0, :, 3, 5].tolist() == pytest.approx(OFFICIAL_W8_AT_3_5, rel=1e-9, abs=1e-12)


def test_final_layer_is_the_output() -> None:
    # With every conv zeroed, the heatmaps are exactly the final bias: the head
    # is wired last and nothing follows it.
    model = HRNet(width=8, num_joints=5).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.zero_()
        model.final_layer.bias.copy_(torch.arange(5.0))
        out = model(torch.randn(1, 3, 64, 64))
    assert torch.equal(out, torch.arange(5.0).view(1, 5, 1, 1).expand(1, 5, 16, 16))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("w32_256x192", HRNetVariant(32, 256, 192)),  # COCO W32
        ("w48_384x288", HRNetVariant(48, 384, 288)),  # COCO W48 large input
        ("w32_256x256", HRNetVariant(32, 256, 256)),  # MPII
        ("w8_128x96", HRNetVariant(8, 128, 96)),  # tiny test net
    ],
)
def test_parse_variant(text: str, expected: HRNetVariant) -> None:
    variant = parse_hrnet_variant(text)
    assert variant == expected
    assert variant.name == text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("w32-256x192", "w32_256x192"),  # wrong separator: message shows the form
        ("W32_256x192", "w32_256x192"),  # upper case is not silently accepted
        ("w32_256", "w32_256x192"),  # size missing
        ("pose_hrnet_w32_256x192", "w32_256x192"),  # file names are not variants
        (" w32_256x192", "w32_256x192"),  # no silent stripping
        ("", "''"),  # empty text is named as such
        ("w0_256x192", "width must be >= 1"),  # zero width
        ("w32_250x192", "multiple of 32; got 250"),  # height not /32
        ("w32_256x200", "multiple of 32; got 200"),  # width not /32
        ("w32_0x192", "multiple of 32; got 0"),  # zero size
    ],
)
def test_parse_variant_rejects(text: str, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        parse_hrnet_variant(text)
    assert fragment in str(info.value)


def test_hrnet_rejects_bad_arguments() -> None:
    with pytest.raises(InputError, match="num_joints=0"):
        HRNet(width=8, num_joints=0)
