"""Stacked Hourglass models against the two released ports (reference/models.md §4).

The expected key tables below were read off princeton-vl/pytorch_stacked_hourglass
(models/posenet.py, models/layers.py) and bearpaw/pytorch-pose
(pose/models/hourglass.py): module nesting, widths and which shortcut convs exist.
The Princeton 8-stack counts are models.md's; the bearpaw counts were obtained by
building bearpaw's own classes outside this repository. The forward references are
functional re-implementations of the original forward passes driven by the state
dict alone, not by export.models.hourglass.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from edgepose.backends.onnxruntime import OnnxRuntimeRunner
from edgepose.card import DecoderSpec, InputSpec, ModelCard, OutputSpec
from edgepose.errors import CheckpointError, InputError
from export.checkpoints import load_strict, read_checkpoint, remap_to_model
from export.onnx_files.lint import check_onnx_for_tensorrt
from export.models.hourglass import (
    BEARPAW_MEAN,
    HourglassNet,
    HourglassVariant,
    LastStack,
    PoseNet,
    Residual,
    build_hourglass,
    parse_hourglass_variant,
)
from export.onnx import export_onnx, read_card

Shape = tuple[int, ...]

# models.md §4: the released original_8hg checkpoint.
PRINCETON_8_TENSORS = 2752
PRINCETON_8_PARAMS = 32_819_328
PRINCETON_SAMPLE_KEYS = [
    ("pre.0.conv.weight", (64, 3, 7, 7)),
    ("hgs.0.0.up1.conv1.conv.weight", (128, 256, 1, 1)),
    ("features.0.1.conv.weight", (256, 256, 1, 1)),
    ("outs.0.conv.weight", (16, 256, 1, 1)),
    ("merge_preds.0.conv.conv.weight", (256, 16, 1, 1)),
]
# bearpaw hg(num_stacks=S, num_blocks=1, num_classes=16), counted on bearpaw's classes.
BEARPAW_COUNTS = {(8, 1): (2526, 25_594_624), (2, 1): (684, 6_730_912)}
BEARPAW_SAMPLE_KEYS = [
    ("conv1.weight", (64, 3, 7, 7)),
    ("layer1.0.downsample.0.weight", (128, 64, 1, 1)),
    ("layer2.0.conv1.weight", (128, 128, 1, 1)),  # planes = the running inplanes, 128
    ("layer2.0.downsample.0.weight", (256, 128, 1, 1)),
    ("layer3.0.conv1.weight", (128, 256, 1, 1)),  # no shortcut conv: 256 in and out
    ("hg.0.hg.0.0.0.conv1.weight", (128, 256, 1, 1)),
    ("hg.0.hg.0.3.0.conv3.weight", (256, 128, 1, 1)),  # the innermost level's 4th group
    ("res.0.0.conv3.weight", (256, 128, 1, 1)),
    ("fc.0.0.weight", (256, 256, 1, 1)),
    ("fc.0.1.running_var", (256,)),
    ("score.0.weight", (16, 256, 1, 1)),
    ("fc_.0.weight", (256, 256, 1, 1)),
    ("score_.0.weight", (256, 16, 1, 1)),
]


# --- expected key tables (from the original code's structure) ------------------------------

def _bn(out: dict[str, Shape], prefix: str, c: int) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        out[f"{prefix}.{name}"] = (c,)
    out[f"{prefix}.num_batches_tracked"] = ()


def _p_conv(out: dict[str, Shape], prefix: str, cin: int, cout: int, k: int,
            bn: bool = False) -> None:
    """layers.Conv: `conv` with bias, optional `bn`."""
    out[f"{prefix}.conv.weight"] = (cout, cin, k, k)
    out[f"{prefix}.conv.bias"] = (cout,)
    if bn:
        _bn(out, f"{prefix}.bn", cout)


def _p_residual(out: dict[str, Shape], prefix: str, cin: int, cout: int) -> None:
    mid = cout // 2
    _bn(out, f"{prefix}.bn1", cin)
    _p_conv(out, f"{prefix}.conv1", cin, mid, 1)
    _bn(out, f"{prefix}.bn2", mid)
    _p_conv(out, f"{prefix}.conv2", mid, mid, 3)
    _bn(out, f"{prefix}.bn3", mid)
    _p_conv(out, f"{prefix}.conv3", mid, cout, 1)
    _p_conv(out, f"{prefix}.skip_layer", cin, cout, 1)  # built even when cin == cout


def _p_hourglass(out: dict[str, Shape], prefix: str, n: int, f: int) -> None:
    _p_residual(out, f"{prefix}.up1", f, f)
    _p_residual(out, f"{prefix}.low1", f, f)
    if n > 1:
        _p_hourglass(out, f"{prefix}.low2", n - 1, f)
    else:
        _p_residual(out, f"{prefix}.low2", f, f)
    _p_residual(out, f"{prefix}.low3", f, f)


def princeton_expected(nstack: int, d: int = 1) -> dict[str, Shape]:
    stem, mid, f, k = 64 // d, 128 // d, 256 // d, 16
    out: dict[str, Shape] = {}
    _p_conv(out, "pre.0", 3, stem, 7, bn=True)
    _p_residual(out, "pre.1", stem, mid)
    _p_residual(out, "pre.3", mid, mid)  # pre.2 is the max-pool
    _p_residual(out, "pre.4", mid, f)
    for i in range(nstack):
        _p_hourglass(out, f"hgs.{i}.0", 4, f)
    for i in range(nstack):
        _p_residual(out, f"features.{i}.0", f, f)
        _p_conv(out, f"features.{i}.1", f, f, 1, bn=True)
    for i in range(nstack):
        _p_conv(out, f"outs.{i}", f, k, 1)
    for i in range(nstack - 1):
        _p_conv(out, f"merge_features.{i}.conv", f, f, 1)
    for i in range(nstack - 1):
        _p_conv(out, f"merge_preds.{i}.conv", k, f, 1)
    return out


def _b_conv(out: dict[str, Shape], name: str, cin: int, cout: int, k: int) -> None:
    out[f"{name}.weight"] = (cout, cin, k, k)
    out[f"{name}.bias"] = (cout,)


def _b_bottleneck(out: dict[str, Shape], prefix: str, cin: int, planes: int) -> None:
    _bn(out, f"{prefix}.bn1", cin)
    _b_conv(out, f"{prefix}.conv1", cin, planes, 1)
    _bn(out, f"{prefix}.bn2", planes)
    _b_conv(out, f"{prefix}.conv2", planes, planes, 3)
    _bn(out, f"{prefix}.bn3", planes)
    _b_conv(out, f"{prefix}.conv3", planes, 2 * planes, 1)
    if cin != 2 * planes:
        _b_conv(out, f"{prefix}.downsample.0", cin, 2 * planes, 1)


def bearpaw_expected(stacks: int, blocks: int, d: int = 1) -> dict[str, Shape]:
    stem, planes, k = 64 // d, 128 // d, 16
    ch = 2 * planes
    out: dict[str, Shape] = {}
    _b_conv(out, "conv1", 3, stem, 7)
    _bn(out, "bn1", stem)
    _b_bottleneck(out, "layer1.0", stem, stem)
    # _make_residual(block, self.inplanes, 1): layer2's planes is the running inplanes
    _b_bottleneck(out, "layer2.0", 2 * stem, 2 * stem)
    _b_bottleneck(out, "layer3.0", 4 * stem, planes)
    for i in range(stacks):
        for level in range(4):
            for j in range(4 if level == 0 else 3):
                for b in range(blocks):
                    _b_bottleneck(out, f"hg.{i}.hg.{level}.{j}.{b}", ch, planes)
    for i in range(stacks):
        for b in range(blocks):
            _b_bottleneck(out, f"res.{i}.{b}", ch, planes)
    for i in range(stacks):
        _b_conv(out, f"fc.{i}.0", ch, ch, 1)
        _bn(out, f"fc.{i}.1", ch)
    for i in range(stacks):
        _b_conv(out, f"score.{i}", ch, k, 1)
    for i in range(stacks - 1):
        _b_conv(out, f"fc_.{i}", ch, ch, 1)
    for i in range(stacks - 1):
        _b_conv(out, f"score_.{i}", k, ch, 1)
    return out


def _shapes(model: torch.nn.Module) -> dict[str, Shape]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _randomize(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Random weights with BN statistics far from identity, loaded into `model`."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in model.state_dict().items():
        if not value.is_floating_point():
            state[key] = value.clone()
        elif key.endswith("running_var") or (key.endswith(".weight") and value.dim() == 1):
            state[key] = 0.5 + torch.rand(value.shape, generator=generator)
        elif value.dim() == 1:
            state[key] = 0.1 * torch.randn(value.shape, generator=generator)
        else:
            fan_in = value[0].numel()
            state[key] = torch.randn(value.shape, generator=generator) / fan_in ** 0.5
    model.load_state_dict(state)
    return state


@pytest.fixture(scope="module")
def princeton8() -> PoseNet:
    return build_hourglass("princeton_s8")


# --- key layout ----------------------------------------------------------------------------

def test_princeton_8_stack_is_the_released_layout(princeton8: PoseNet) -> None:
    assert _shapes(princeton8) == princeton_expected(8)
    assert list(princeton8.state_dict()) == list(princeton_expected(8))  # same order too
    assert len(princeton8.state_dict()) == PRINCETON_8_TENSORS
    assert _params(princeton8) == PRINCETON_8_PARAMS


@pytest.mark.parametrize(("key", "shape"), PRINCETON_SAMPLE_KEYS)
def test_princeton_key_has_the_released_shape(princeton8: PoseNet, key: str,
                                              shape: Shape) -> None:
    assert tuple(princeton8.state_dict()[key].shape) == shape


@pytest.mark.slow
def test_princeton_8_stack_runs_at_256(princeton8: PoseNet) -> None:
    # The one full-size forward: (N, 256, 256, 3) NHWC in, every stack at 64x64 out.
    with torch.no_grad():
        out = princeton8.eval()(torch.rand(1, 256, 256, 3))
    assert tuple(out.shape) == (1, 8, 16, 64, 64)


@pytest.mark.parametrize("stacks", [2, 8])
def test_bearpaw_is_the_released_layout(stacks: int) -> None:
    model = build_hourglass(f"bearpaw_s{stacks}_b1")
    assert _shapes(model) == bearpaw_expected(stacks, 1)
    tensors, params = BEARPAW_COUNTS[(stacks, 1)]
    assert len(model.state_dict()) == tensors
    assert _params(model) == params
    for key, shape in BEARPAW_SAMPLE_KEYS:
        assert tuple(model.state_dict()[key].shape) == shape, key


def test_princeton_2_stack_and_narrow_variants_keep_the_names() -> None:
    assert _shapes(build_hourglass("princeton_s2")) == princeton_expected(2)
    assert _shapes(build_hourglass("princeton_s2_d8")) == princeton_expected(2, 8)
    assert _shapes(build_hourglass("bearpaw_s2_b2_d8")) == bearpaw_expected(2, 2, 8)


# --- forward against functional references --------------------------------------------------

def _bn_f(sd, prefix: str, x: torch.Tensor) -> torch.Tensor:
    return F.batch_norm(x, sd[f"{prefix}.running_mean"], sd[f"{prefix}.running_var"],
                        sd[f"{prefix}.weight"], sd[f"{prefix}.bias"], training=False, eps=1e-5)


def _conv_f(sd, name: str, x: torch.Tensor, stride: int = 1) -> torch.Tensor:
    weight = sd[f"{name}.weight"]
    return F.conv2d(x, weight, sd[f"{name}.bias"], stride=stride,
                    padding=(weight.shape[-1] - 1) // 2)


def _p_residual_f(sd, p: str, x: torch.Tensor) -> torch.Tensor:
    out = _conv_f(sd, f"{p}.conv1.conv", F.relu(_bn_f(sd, f"{p}.bn1", x)))
    out = _conv_f(sd, f"{p}.conv2.conv", F.relu(_bn_f(sd, f"{p}.bn2", out)))
    out = _conv_f(sd, f"{p}.conv3.conv", F.relu(_bn_f(sd, f"{p}.bn3", out)))
    # layers.Residual: need_skip only when inp_dim != out_dim
    residual = _conv_f(sd, f"{p}.skip_layer.conv", x) if out.shape[1] != x.shape[1] else x
    return out + residual


def _p_hourglass_f(sd, p: str, n: int, x: torch.Tensor) -> torch.Tensor:
    up1 = _p_residual_f(sd, f"{p}.up1", x)
    low1 = _p_residual_f(sd, f"{p}.low1", F.max_pool2d(x, 2, 2))
    low2 = (_p_hourglass_f(sd, f"{p}.low2", n - 1, low1) if n > 1
            else _p_residual_f(sd, f"{p}.low2", low1))
    low3 = _p_residual_f(sd, f"{p}.low3", low2)
    return up1 + F.interpolate(low3, scale_factor=2, mode="nearest")


def princeton_forward(sd, nstack: int, imgs: torch.Tensor) -> torch.Tensor:
    """posenet.PoseNet.forward on NHWC images, from the state dict."""
    x = imgs.permute(0, 3, 1, 2)
    x = F.relu(_bn_f(sd, "pre.0.bn", _conv_f(sd, "pre.0.conv", x, stride=2)))
    x = _p_residual_f(sd, "pre.1", x)
    x = F.max_pool2d(x, 2, 2)
    x = _p_residual_f(sd, "pre.4", _p_residual_f(sd, "pre.3", x))
    preds_all = []
    for i in range(nstack):
        hg = _p_hourglass_f(sd, f"hgs.{i}.0", 4, x)
        feature = _p_residual_f(sd, f"features.{i}.0", hg)
        feature = F.relu(_bn_f(sd, f"features.{i}.1.bn",
                               _conv_f(sd, f"features.{i}.1.conv", feature)))
        preds = _conv_f(sd, f"outs.{i}.conv", feature)
        preds_all.append(preds)
        if i < nstack - 1:
            x = (x + _conv_f(sd, f"merge_preds.{i}.conv.conv", preds)
                 + _conv_f(sd, f"merge_features.{i}.conv.conv", feature))
    return torch.stack(preds_all, 1)


def _b_bottleneck_f(sd, p: str, x: torch.Tensor) -> torch.Tensor:
    out = _conv_f(sd, f"{p}.conv1", F.relu(_bn_f(sd, f"{p}.bn1", x)))
    out = _conv_f(sd, f"{p}.conv2", F.relu(_bn_f(sd, f"{p}.bn2", out)))
    out = _conv_f(sd, f"{p}.conv3", F.relu(_bn_f(sd, f"{p}.bn3", out)))
    residual = _conv_f(sd, f"{p}.downsample.0", x) if f"{p}.downsample.0.weight" in sd else x
    return out + residual


def _b_group_f(sd, p: str, blocks: int, x: torch.Tensor) -> torch.Tensor:
    for b in range(blocks):
        x = _b_bottleneck_f(sd, f"{p}.{b}", x)
    return x


def _b_hourglass_f(sd, p: str, n: int, blocks: int, x: torch.Tensor) -> torch.Tensor:
    """Hourglass._hour_glass_forward: level n uses hg[n-1]; hg[0][3] is the bottom."""
    level = f"{p}.hg.{n - 1}"
    up1 = _b_group_f(sd, f"{level}.0", blocks, x)
    low1 = _b_group_f(sd, f"{level}.1", blocks, F.max_pool2d(x, 2, stride=2))
    low2 = (_b_hourglass_f(sd, p, n - 1, blocks, low1) if n > 1
            else _b_group_f(sd, f"{level}.3", blocks, low1))
    low3 = _b_group_f(sd, f"{level}.2", blocks, low2)
    return up1 + F.interpolate(low3, scale_factor=2)


def bearpaw_forward(sd, stacks: int, blocks: int, x: torch.Tensor) -> list[torch.Tensor]:
    """HourglassNet.forward, from the state dict."""
    x = F.relu(_bn_f(sd, "bn1", _conv_f(sd, "conv1", x, stride=2)))
    x = _b_bottleneck_f(sd, "layer1.0", x)
    x = F.max_pool2d(x, 2, stride=2)
    x = _b_bottleneck_f(sd, "layer3.0", _b_bottleneck_f(sd, "layer2.0", x))
    out = []
    for i in range(stacks):
        y = _b_hourglass_f(sd, f"hg.{i}", 4, blocks, x)
        y = _b_group_f(sd, f"res.{i}", blocks, y)
        y = F.relu(_bn_f(sd, f"fc.{i}.1", _conv_f(sd, f"fc.{i}.0", y)))
        score = _conv_f(sd, f"score.{i}", y)
        out.append(score)
        if i < stacks - 1:
            x = x + _conv_f(sd, f"fc_.{i}", y) + _conv_f(sd, f"score_.{i}", score)
    return out


def _close(got: torch.Tensor, want: torch.Tensor) -> None:
    scale = max(1.0, float(want.abs().max()))
    assert got.shape == want.shape
    assert float((got - want).abs().max()) <= 1e-4 * scale


def test_princeton_forward_is_the_original_graph() -> None:
    model = build_hourglass("princeton_s2_d8").eval()
    state = _randomize(model, seed=1)
    imgs = torch.rand(2, 64, 128, 3)
    with torch.no_grad():
        got = model(imgs)
        want = princeton_forward(state, 2, imgs)
        last = LastStack(model).eval()(imgs.permute(0, 3, 1, 2).contiguous())
    assert tuple(got.shape) == (2, 2, 16, 16, 32)
    _close(got, want)
    # The NHWC permute is a strided view: conv kernels may sum in another order.
    _close(last, got[:, -1])


@pytest.mark.parametrize("blocks", [1, 2])
def test_bearpaw_forward_is_the_original_graph(blocks: int) -> None:
    model = build_hourglass(f"bearpaw_s2_b{blocks}_d8").eval()
    state = _randomize(model, seed=2)
    x = torch.rand(2, 3, 128, 64)[:blocks] - torch.tensor(BEARPAW_MEAN)[:, None, None]
    with torch.no_grad():
        got = model(x)
        want = bearpaw_forward(state, 2, blocks, x)
        last = LastStack(model).eval()(x)
    assert len(got) == 2 and tuple(got[0].shape) == (blocks, 16, 32, 16)
    for g, w in zip(got, want):
        _close(g, w)
    assert torch.equal(last, got[-1])


def test_same_width_residual_ignores_its_skip_layer() -> None:
    x = torch.randn(1, 8, 4, 4)
    same, wider = Residual(8, 8).eval(), Residual(8, 16).eval()
    with torch.no_grad():
        before = (same(x), wider(x))
        for block in (same, wider):
            block.skip_layer.conv.weight.add_(1.0)
        after = (same(x), wider(x))
    assert torch.equal(before[0], after[0])  # need_skip False: identity shortcut
    assert not torch.equal(before[1], after[1])


@pytest.mark.parametrize(
    ("make", "shape", "fragment"),
    [
        (lambda: PoseNet(1, width_divisor=32), (1, 3, 64, 64), "NHWC"),  # NCHW to forward
        (lambda: PoseNet(1, width_divisor=32), (1, 96, 64, 3), "multiples of 64"),  # 96 high
        (lambda: LastStack(PoseNet(1, width_divisor=32)), (1, 64, 64, 3), "(N, 3, H, W)"),
        (lambda: HourglassNet(1, width_divisor=32), (1, 3, 64, 32), "multiples of 64"),
        (lambda: HourglassNet(1, width_divisor=32), (1, 1, 64, 64), "(N, 3, H, W)"),  # gray
    ],
)
def test_forward_rejects_bad_input(make, shape: Shape, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        make()(torch.zeros(shape))
    assert fragment in str(info.value)


def test_constructor_arguments_are_checked() -> None:
    with pytest.raises(InputError, match="no effect"):
        PoseNet(2, bn=True)
    with pytest.raises(InputError, match="at least one"):
        PoseNet(0)
    with pytest.raises(InputError, match="not one of"):
        HourglassNet(2, width_divisor=3)
    with pytest.raises(InputError, match="PoseNet or HourglassNet"):
        LastStack(torch.nn.Identity())


def test_increase_widens_only_the_outer_level() -> None:
    # posenet.py builds Hourglass(4, inp_dim, bn, increase), which builds its inner levels
    # as Hourglass(n-1, nf, bn=bn): the increase is not passed down.
    state = PoseNet(1, inp_dim=256, increase=128, width_divisor=32).state_dict()
    assert tuple(state["hgs.0.0.low1.conv3.conv.weight"].shape) == (12, 6, 1, 1)  # 8 -> 12
    assert tuple(state["hgs.0.0.low2.up1.conv3.conv.weight"].shape) == (12, 6, 1, 1)
    assert tuple(state["hgs.0.0.low2.low1.conv3.conv.weight"].shape) == (12, 6, 1, 1)
    assert tuple(state["hgs.0.0.low3.conv3.conv.weight"].shape) == (8, 4, 1, 1)  # back to 8


# --- variants ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("princeton_s8", HourglassVariant("princeton", 8)),  # original_8hg
        ("princeton_s2", HourglassVariant("princeton", 2)),  # original_2hg
        ("bearpaw_s8_b1", HourglassVariant("bearpaw", 8, 1)),  # hg_s8_b1
        ("bearpaw_s2_b1", HourglassVariant("bearpaw", 2, 1)),  # hg_s2_b1
        ("princeton_s2_d8", HourglassVariant("princeton", 2, 1, 8)),  # narrow test network
        ("bearpaw_s1_b3_d32", HourglassVariant("bearpaw", 1, 3, 32)),  # narrowest
    ],
)
def test_parse_variant(text: str, expected: HourglassVariant) -> None:
    assert parse_hourglass_variant(text) == expected
    assert expected.name == text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("princeton_8", "malformed"),  # the stack count is spelled s8
        ("bearpaw_s8", "malformed"),  # bearpaw names its blocks
        ("princeton_s8_b1", "malformed"),  # Princeton has no block count
        ("hg_s2_b1", "malformed"),  # bearpaw's folder name is not the variant
        ("princeton_s0", "malformed"),  # no stacks
        ("bearpaw_s2_b1_d3", "not one of"),  # 64 / 3 is not whole
        ("Princeton_s8", "malformed"),  # no silent case folding
    ],
)
def test_parse_variant_rejects(text: str, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        parse_hourglass_variant(text)
    assert fragment in str(info.value)


# --- checkpoints in the released layouts ------------------------------------------------------

def _optimizer_state(state: dict[str, torch.Tensor]) -> dict:
    return {"state": {0: {"step": torch.tensor(3.0)}},
            "param_groups": [{"lr": 2.5e-4, "params": list(range(len(state)))}]}


def _save_princeton(path, state: dict[str, torch.Tensor]):
    # train.py saves {'state_dict': net.state_dict(), 'optimizer': ..., 'epoch': ...} of a
    # Trainer holding DataParallel(PoseNet) as `model`: keys `model.module.`.
    torch.save({"state_dict": {f"model.module.{k}": v for k, v in state.items()},
                "optimizer": _optimizer_state(state), "epoch": 180}, path)
    return path


def _save_bearpaw(path, state: dict[str, torch.Tensor]):
    # example/main.py save_checkpoint of DataParallel(hg): keys `module.`.
    torch.save({"epoch": 220, "arch": "hg",
                "state_dict": {f"module.{k}": v for k, v in state.items()},
                "best_acc": torch.tensor(0.8878), "optimizer": _optimizer_state(state)}, path)
    return path


def _load(model: torch.nn.Module, path) -> str:
    renamed, layout = remap_to_model(read_checkpoint(path), set(model.state_dict()))
    load_strict(model, renamed, source=f"{path} ({layout})")
    return layout


def test_princeton_checkpoint_loads_strictly(tmp_path) -> None:
    state = _randomize(build_hourglass("princeton_s2_d8"), seed=3)
    path = _save_princeton(tmp_path / "checkpoint.pt", state)
    model = build_hourglass("princeton_s2_d8")
    assert _load(model, path) == "official+model.module."
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_bearpaw_checkpoint_loads_strictly(tmp_path) -> None:
    state = _randomize(build_hourglass("bearpaw_s2_b1_d8"), seed=4)
    path = _save_bearpaw(tmp_path / "model_best.pth.tar", state)
    model = build_hourglass("bearpaw_s2_b1_d8")
    assert _load(model, path) == "official+module."
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_bearpaw_checkpoint_without_batch_counters_loads(tmp_path) -> None:
    # Files saved before PyTorch 0.4.1 have no num_batches_tracked.
    state = _randomize(build_hourglass("bearpaw_s2_b1_d8"), seed=5)
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    path = _save_bearpaw(tmp_path / "model_best.pth.tar", old)
    model = build_hourglass("bearpaw_s2_b1_d8")
    _load(model, path)
    assert torch.equal(model.state_dict()["fc.1.0.weight"], state["fc.1.0.weight"])


def test_bearpaw_file_into_the_princeton_net_lists_the_keys(tmp_path) -> None:
    state = _randomize(build_hourglass("bearpaw_s2_b1_d8"), seed=6)
    path = _save_bearpaw(tmp_path / "model_best.pth.tar", state)
    with pytest.raises(CheckpointError) as info:
        _load(build_hourglass("princeton_s2_d8"), path)
    message = str(info.value)
    assert "missing" in message and "pre.0.conv.weight" in message
    assert "unexpected" in message and "conv1.weight" in message
    assert "wrong model family" in message


def test_two_stack_file_into_the_eight_stack_variant_is_refused(tmp_path) -> None:
    state = _randomize(build_hourglass("princeton_s2_d8"), seed=7)
    path = _save_princeton(tmp_path / "checkpoint.pt", state)
    with pytest.raises(CheckpointError) as info:
        _load(build_hourglass("princeton_s8_d8"), path)
    assert "missing" in str(info.value) and "hgs.2.0.up1.bn1.weight" in str(info.value)


# --- ONNX ----------------------------------------------------------------------------------

def _card(variant: str, size: int) -> ModelCard:
    """What an hourglass card states: Princeton RGB/255; bearpaw RGB/255 minus the mean."""
    mean = (0.0,) * 3 if variant.startswith("princeton") else tuple(255 * m for m in BEARPAW_MEAN)
    source = variant.split("_")[0]
    return ModelCard(
        family="hourglass", variant=variant, paradigm="top-down", keypoints="mpii16",
        input=InputSpec(name="input", height=size, width=size, layout="NCHW", color="RGB",
                        mean=mean, std=(255.0,) * 3),
        outputs=(OutputSpec(name="heatmaps", role="heatmaps", stride=4),),
        # The card's refine names TopDownDecoder's methods; the hourglass refinement is
        # named by its source (HourglassDecoder's refine) in extra.
        decoder=DecoderSpec(name="hourglass", refine="none", extra={"source": source}),
        source={"format": "random-init"},
    )


@pytest.mark.parametrize("variant", ["princeton_s2_d8", "bearpaw_s2_b1_d8"])
def test_onnx_runtime_matches_pytorch(tmp_path, variant: str) -> None:
    model = build_hourglass(variant)
    _randomize(model, seed=8)
    wrapper = LastStack(model).eval()
    card = _card(variant, 64)
    path = export_onnx(wrapper, card, tmp_path / f"{variant}.onnx")
    assert read_card(path) == card
    check_onnx_for_tensorrt(path)
    with OnnxRuntimeRunner(path) as runner:
        for batch in (1, 3):
            feed = np.random.default_rng(batch).uniform(-0.5, 1.0, (batch, 3, 64, 64))
            feed = feed.astype(np.float32)
            with torch.no_grad():
                want = wrapper(torch.from_numpy(feed)).numpy()
            got = runner.infer({"input": feed})["heatmaps"]
            assert got.shape == want.shape == (batch, 16, 16, 16)
            scale = max(1.0, float(np.max(np.abs(want))))
            assert np.max(np.abs(got - want)) <= 1e-4 * scale
