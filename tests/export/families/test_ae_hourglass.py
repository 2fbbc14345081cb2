"""AE stacked hourglass against facts from the official model (reference/models.md §5).

The expected key table below is written from princeton-vl/pose-ae-train
`models/posenet.py` and `models/layers.py` (PoseNet, Hourglass, Conv, Merge) with the
`task/pose.py` configuration, not from export.models.ae_hourglass. The parameter
count is models.md's; the output numbers come from running the official PoseNet
(commit 3c80a16), which is not vendored here.
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
from export.models.ae_hourglass import (
    OUTPUT_NAMES,
    AEHourglass,
    AEHourglassExport,
    AEHourglassVariant,
    build_ae_hourglass,
    parse_ae_variant,
)
from export.models.higherhrnet import HigherHRNet

Shape = tuple[int, ...]

RELEASED_PARAMS = 138_893_840  # models.md §5
# task/pose.py 'inference': nstack 4, inp_dim 256, oup_dim 68, increase 128 (bn False).
RELEASED = dict(nstack=4, inp_dim=256, oup_dim=68, increase=128)


def posenet_expected(nstack: int, inp_dim: int, oup_dim: int, increase: int) -> dict[str, Shape]:
    """Every state-dict entry of the official PoseNet with bn=False: conv weights and biases."""
    out: dict[str, Shape] = {}

    def conv(name: str, cin: int, cout: int, k: int) -> None:
        out[f"{name}.conv.weight"] = (cout, cin, k, k)
        out[f"{name}.conv.bias"] = (cout,)

    def hourglass(prefix: str, depth: int, f: int) -> None:
        nf = f + increase
        conv(f"{prefix}.up1", f, f, 3)
        conv(f"{prefix}.low1", f, nf, 3)
        if depth > 1:
            hourglass(f"{prefix}.low2", depth - 1, nf)
        else:
            conv(f"{prefix}.low2", nf, nf, 3)
        conv(f"{prefix}.low3", nf, f, 3)

    conv("pre.0", 3, 64, 7)
    conv("pre.1", 64, 128, 3)  # pre.2 is the 2x2 max-pool
    conv("pre.3", 128, 128, 3)
    conv("pre.4", 128, inp_dim, 3)
    for s in range(nstack):
        hourglass(f"features.{s}.0", 4, inp_dim)
        conv(f"features.{s}.1", inp_dim, inp_dim, 3)
        conv(f"features.{s}.2", inp_dim, inp_dim, 3)
        conv(f"outs.{s}", inp_dim, oup_dim, 1)
    for s in range(nstack - 1):  # Merge wraps a Conv: merge_*.s.conv.conv.*
        conv(f"merge_features.{s}.conv", inp_dim, inp_dim, 1)
        conv(f"merge_preds.{s}.conv", oup_dim, inp_dim, 1)
    return out


def _shapes(model: nn.Module) -> dict[str, Shape]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def released() -> AEHourglass:
    # Built once on CPU (about 560 MB of float32); never run at 512x512 here.
    return AEHourglass(**RELEASED)


# --- key layout ----------------------------------------------------------------------------

def test_released_state_dict_is_the_official_posenet(released: AEHourglass) -> None:
    assert _shapes(released) == posenet_expected(**RELEASED)
    assert len(released.state_dict()) == 148  # 74 convs: 4 pre, 4 x 16 per stack, 6 merges


def test_released_parameter_count(released: AEHourglass) -> None:
    assert sum(p.numel() for p in released.parameters()) == RELEASED_PARAMS


@pytest.mark.parametrize(
    ("key", "shape"),
    [
        ("pre.0.conv.weight", (64, 3, 7, 7)),  # 7x7 stride-2 stem
        ("features.0.0.low1.conv.weight", (384, 256, 3, 3)),  # +increase per level
        ("features.3.0.low2.low2.low2.low2.conv.weight", (768, 768, 3, 3)),  # the bottom, 768
        ("features.0.0.low2.low2.low2.low3.conv.weight", (640, 768, 3, 3)),
        ("outs.3.conv.weight", (68, 256, 1, 1)),  # 17 heatmaps + 17 tags + 34 unused
        ("merge_preds.2.conv.conv.weight", (256, 68, 1, 1)),
    ],
)
def test_released_key_has_official_shape(released: AEHourglass, key: str, shape: Shape) -> None:
    assert tuple(released.state_dict()[key].shape) == shape


def test_released_has_no_batchnorm_and_the_published_widths(released: AEHourglass) -> None:
    assert not any(isinstance(m, nn.BatchNorm2d) for m in released.modules())
    widths = {m.out_channels for m in released.features[0][0].modules() if isinstance(m, nn.Conv2d)}
    assert widths == {256, 384, 512, 640, 768}
    last_merges = ("merge_features.3", "merge_preds.3")  # the last stack merges nowhere
    assert not any(k.startswith(last_merges) for k in released.state_dict())


# --- forward -------------------------------------------------------------------------------

def _fill_deterministic(state: dict[str, torch.Tensor]) -> None:
    """Weights from a formula (no RNG), by sorted key, so the official model gets the same."""
    for i, key in enumerate(sorted(state)):
        value = state[key]
        t = torch.arange(value.numel(), dtype=torch.float64).reshape(value.shape)
        wave = torch.sin(t * 0.7 + i)
        if key.endswith("bias"):
            value.copy_(0.1 * wave)
        else:  # conv weight, scaled by 1/fan to keep activations O(1)
            value.copy_(wave / value[0].numel())


def _pattern_nhwc(height: int, width: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                            torch.arange(width, dtype=torch.float64), indexing="ij")
    return torch.stack([torch.sin(xx * 0.3 + c) * torch.cos(yy * 0.2 - c) for c in range(3)],
                       dim=-1)[None]


NARROW = dict(nstack=2, inp_dim=16, oup_dim=68, increase=8)
# Official PoseNet(2, 16, 68, increase=8), float64, eval, weights and NHWC input above. Its
# recursion passes no `increase`, so Hourglass's default was set to 8 for this run to
# match every level. (shape, sum, sum of squares, index-weighted mean).
OFFICIAL_NARROW = ((1, 2, 68, 16, 32), -74.90035192924165, 364.2411227749507,
                   -95.74872661029922)
OFFICIAL_NARROW_AT = [  # (index, values): stack 1 heatmaps and tags, stack 0
    ((0, 1, slice(0, 8), 3, 5),
     [-0.02715487513385392, -0.06505812375714952, -0.07390483970326185, -0.07614850431323823,
      -0.052468445017387615, 0.020028413520599073, 0.1027968068805987, 0.12107300908606364]),
    ((0, 1, slice(17, 21), 3, 5),
     [0.06160537448777976, -0.030373620995964686, -0.08069596364389323, -0.07981703883634379]),
    ((0, 0, slice(0, 4), 7, 9),
     [0.10436095463646818, 0.0856030934988444, 0.03783107459044166, -0.009280611171001856]),
]


@pytest.fixture(scope="module")
def narrow_filled() -> AEHourglass:
    model = AEHourglass(**NARROW).double().eval()
    state = model.state_dict()
    _fill_deterministic(state)
    model.load_state_dict(state)
    return model


def test_forward_matches_official_numbers(narrow_filled: AEHourglass) -> None:
    with torch.no_grad():
        out = narrow_filled(_pattern_nhwc(64, 128))
    shape, total, squares, weighted = OFFICIAL_NARROW
    assert tuple(out.shape) == shape
    index = torch.arange(out.numel(), dtype=torch.float64).reshape(out.shape)
    assert math.isclose(out.sum().item(), total, rel_tol=1e-9)
    assert math.isclose((out ** 2).sum().item(), squares, rel_tol=1e-9)
    assert math.isclose((out * index).sum().item() / out.numel(), weighted, rel_tol=1e-9)
    for where, values in OFFICIAL_NARROW_AT:
        assert out[where].tolist() == pytest.approx(values, rel=1e-9, abs=1e-12)


def test_export_wrapper_is_the_last_stack_split(narrow_filled: AEHourglass) -> None:
    nhwc = _pattern_nhwc(64, 128)
    with torch.no_grad():
        stacks = narrow_filled(nhwc)
        heatmaps, tags = AEHourglassExport(narrow_filled)(nhwc.permute(0, 3, 1, 2))
    assert torch.equal(heatmaps, stacks[:, -1, :17])
    assert torch.equal(tags, stacks[:, -1, 17:34])


@pytest.mark.parametrize(
    ("variant", "batch", "size"),
    [
        ("hg4_64_d16", 2, 64),  # the test size: 64 -> 16
        ("hg1_128_d32", 1, 128),  # one stack, no merges: 128 -> 32
    ],
)
def test_output_is_quarter_resolution(variant: str, batch: int, size: int) -> None:
    model = build_ae_hourglass(parse_ae_variant(variant)).eval()
    with torch.no_grad():
        out = model(torch.rand(batch, size, size, 3))
    nstack = parse_ae_variant(variant).nstack
    assert tuple(out.shape) == (batch, nstack, 68, size // 4, size // 4)


@pytest.mark.parametrize(
    ("shape", "fragment"),
    [
        ((1, 3, 64, 64), "NHWC"),  # NCHW fed to the original's NHWC forward
        ((1, 96, 64, 3), "multiples of 64"),  # 96 cannot halve six times
    ],
)
def test_forward_rejects_bad_input(shape: Shape, fragment: str) -> None:
    with pytest.raises(InputError) as info:
        AEHourglass(nstack=1, inp_dim=8, increase=4)(torch.zeros(shape))
    assert fragment in str(info.value)


def test_export_wrapper_needs_room_for_tags() -> None:
    with pytest.raises(InputError, match="oup_dim >= 34"):
        AEHourglassExport(AEHourglass(nstack=1, inp_dim=8, oup_dim=17, increase=4))


# --- variants ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hg4_512", AEHourglassVariant(4, 512, 1)),  # the release
        ("hg4_64_d16", AEHourglassVariant(4, 64, 16)),  # narrow test net
        ("hg2_256_d8", AEHourglassVariant(2, 256, 8)),  # fewer stacks
    ],
)
def test_parse_variant(text: str, expected: AEHourglassVariant) -> None:
    variant = parse_ae_variant(text)
    assert variant == expected and variant.name == text


@pytest.mark.parametrize(
    "text",
    [
        "hg4_500",  # not a multiple of 64
        "hg4_512_d3",  # 256/3 is not a whole width
        "hg0_512",  # no stack
        "ae_512",  # not the hg<stacks> form
    ],
)
def test_parse_variant_rejects(text: str) -> None:
    with pytest.raises(InputError):
        parse_ae_variant(text)


def test_narrow_variant_divides_inp_dim_and_increase() -> None:
    shapes = _shapes(build_ae_hourglass(parse_ae_variant("hg4_64_d16")))
    assert shapes == posenet_expected(nstack=4, inp_dim=16, oup_dim=68, increase=8)


# --- checkpoints ---------------------------------------------------------------------------

def _random_state(model: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {k: torch.rand(v.shape, generator=generator) for k, v in model.state_dict().items()}


def _released_file(state: dict[str, torch.Tensor]) -> dict:
    # train.py save(): Trainer(DataParallel(PoseNet)).state_dict() plus optimizer and epoch.
    return {
        "state_dict": {"model.module." + k: v for k, v in state.items()},
        "optimizer": {"state": {}, "param_groups": [{"lr": 2e-4, "params": [0, 1]}]},
        "epoch": 250,
    }


def _load(path: Path, model: nn.Module) -> str:
    renamed, layout = remap_to_model(read_checkpoint(path), set(model.state_dict()))
    load_strict(model, renamed, source=f"{path} ({layout})")
    return layout


def test_released_layout_loads_strictly(tmp_path: Path) -> None:
    variant = parse_ae_variant("hg4_64_d16")
    state = _random_state(build_ae_hourglass(variant), seed=7)
    path = tmp_path / "checkpoint.pth.tar"
    torch.save(_released_file(state), path)
    model = build_ae_hourglass(variant)
    assert _load(path, model) == "official+model.module."
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_fewer_stacks_are_refused_with_the_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / "hg2.pth.tar"
    torch.save(_released_file(_random_state(build_ae_hourglass(parse_ae_variant("hg2_64_d16")),
                                            seed=8)), path)
    with pytest.raises(CheckpointError) as info:
        _load(path, build_ae_hourglass(parse_ae_variant("hg4_64_d16")))
    message = str(info.value)
    assert "missing" in message and "features.2.0.up1.conv.weight" in message


def test_another_family_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "higherhrnet.pth"
    torch.save(_random_state(HigherHRNet(width=8), seed=9), path)
    with pytest.raises(CheckpointError, match="wrong model family"):
        _load(path, build_ae_hourglass(parse_ae_variant("hg4_64_d16")))


# --- ONNX ----------------------------------------------------------------------------------

def test_onnx_runtime_matches_pytorch(tmp_path: Path) -> None:
    variant = parse_ae_variant("hg4_64_d16")
    model = AEHourglassExport(build_ae_hourglass(variant)).eval()
    size = variant.input_size
    path = tmp_path / "ae_hg4_64_d16.onnx"
    # Batch 2 as the example: torch.export specialises axes of size 1.
    example = torch.rand(2, 3, size, size)
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
        feed = np.random.default_rng(batch).uniform(0.0, 1.0, (batch, 3, size, size))
        feed = feed.astype(np.float32)
        with torch.no_grad():
            wants = [t.numpy() for t in model(torch.from_numpy(feed))]
        gots = session.run(list(OUTPUT_NAMES), {"input": feed})
        for name, got, want in zip(OUTPUT_NAMES, gots, wants):
            assert got.shape == want.shape == (batch, 17, size // 4, size // 4)
            scale = max(1.0, float(np.max(np.abs(want))))
            assert np.max(np.abs(got - want)) <= 1e-5 * scale, name
