"""ONNX → engine logic around the TensorRT calls, run on the CPU with a recording double.

What the double cannot show (that TensorRT accepts these calls) is covered by the
name tables in test_tensorrt_contract.py; what it does show: which calls are made,
with which arguments, on TensorRT 10.3 and 11.4, and what lands on disk.
"""

import hashlib
import json
import sys
import types

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import export.engine.tensorrt as tensorrt_build
from edgepose.card import DecoderSpec, InputSpec, ModelCard, OutputSpec
from edgepose.errors import InputError, MissingDependencyError, ModelFileError
from edgepose.sidecar import read_sidecar, sidecar_path
from export.onnx_files.lint import LintError
from export.onnx import embed_card
from export.engine.tensorrt import (TENSORRT_NAMES_USED, BuildConfig, EngineBuildError, _PhaseBars,
                                    _progress_monitor, _version_api, build_engine,
                                    describe_parser_error, parse_batch_range, parse_size,
                                    profile_shapes)
from tests.export.engine.trt_double import make_tensorrt, peek

V10, V11 = "10.3.0", "11.4.0.106"
REAL_DEVICE_IDENTITY = tensorrt_build._device_identity
DEVICE = ("NVIDIA Jetson AGX Orin", "8.7")


def _card(**input_changes):
    spec = dict(name="input", height=8, width=8)
    spec.update(input_changes)
    return ModelCard(family="hrnet", variant="tiny_8x8", paradigm="top-down", keypoints="coco17",
                     input=InputSpec(**spec), outputs=(OutputSpec("heatmaps", "heatmaps", 4),),
                     decoder=DecoderSpec("topdown"), precision="fp16",
                     source={"format": "random-init"})


def _write_onnx(path, *, card=None, height=8, batch="batch"):
    """input (N, 3, H, 8) → 1x1 Conv, stride 4 → heatmaps (N, 2, H/4, 2), card embedded."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, height, 8])
    y = helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [batch, 2, 2, 2])
    w = numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "w")
    conv = helper.make_node("Conv", ["input", "w"], ["heatmaps"], name="head", strides=[4, 4])
    model = helper.make_model(helper.make_graph([conv], "tiny", [x], [y], initializer=[w]),
                              opset_imports=[helper.make_opsetid("", 17)])
    embed_card(model, card or _card())
    onnx.save(model, str(path))
    return path


@pytest.fixture
def onnx_path(tmp_path):
    return _write_onnx(tmp_path / "tiny.onnx")


@pytest.fixture(autouse=True)
def device(monkeypatch):
    monkeypatch.setattr(tensorrt_build, "_device_identity", lambda: DEVICE)


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def _flags_set(trt):
    return [str(args[0]) for args, _ in trt._recorder.calls("IBuilderConfig", "set_flag")]


# ---- text options -------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("1:4:8", (1, 4, 8)),
    ("8", (1, 8, 8)),          # a single number is the maximum, tuned for it
    (" 2:2:2 ", (2, 2, 2)),    # a fixed batch
    ("1", (1, 1, 1)),
])
def test_batch_ranges(text, expected):
    assert parse_batch_range(text) == expected


@pytest.mark.parametrize("text, reason", [
    ("0:1:2", "min below 1"),
    ("4:2:8", "opt below min"),
    ("1:8:4", "max below opt"),
    ("1:8", "two numbers are ambiguous"),
    ("1:4:8:16", "four numbers"),
    ("a:b:c", "not numbers"),
    ("-1:2:3", "negative"),
    ("", "empty"),
])
def test_bad_batch_ranges_say_what_is_expected(text, reason):
    with pytest.raises(InputError, match="MIN:OPT:MAX|1 <= min <= opt <= max"):
        parse_batch_range(text)


@pytest.mark.parametrize("text, expected", [
    ("2GiB", 2 * 2**30),
    ("512MiB", 512 * 2**20),
    ("1073741824", 2**30),     # plain bytes
    ("1.5GiB", 3 * 2**29),
    ("2GB", 2 * 10**9),        # SI units are powers of 1000
    ("64 kib", 64 * 1024),     # case and spaces do not matter
])
def test_sizes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text, match", [
    ("2G", "GiB \\(2\\^30 bytes\\) or GB"),  # ambiguous unit: say both meanings
    ("lots", "malformed"),
    ("0", "positive whole number"),
    ("1.3B", "positive whole number"),     # fractions of a byte
    ("-5MiB", "malformed"),
    ("", "malformed"),
])
def test_bad_sizes_say_what_is_expected(text, match):
    with pytest.raises(InputError, match=match):
        parse_size(text)


# ---- BuildConfig --------------------------------------------------------------------------

def test_build_config_defaults_and_path_coercion(tmp_path):
    config = BuildConfig(timing_cache=str(tmp_path / "t.cache"))
    assert config.batch == (1, 1, 1) and config.opt_level == 3 and config.workspace is None
    assert config.timing_cache == tmp_path / "t.cache"
    assert BuildConfig(batch=[1, 2, 4]).batch == (1, 2, 4)


@pytest.mark.parametrize("changes, match", [
    (dict(batch=(0, 1, 1)), "1 <= min"),
    (dict(batch=(2, 1, 4)), "1 <= min"),
    (dict(batch=(1, 2)), "three integers"),
    (dict(batch=(1.0, 2, 3)), "three integers"),
    (dict(batch=(True, 2, 3)), "three integers"),
    (dict(workspace=0), "positive number of bytes"),
    (dict(workspace=1.5), "positive number of bytes"),
    (dict(opt_level=6), "from 0 to 5"),
    (dict(opt_level="3"), "from 0 to 5"),
    (dict(hardware_compatibility="ampere"), "one of"),
    (dict(dla_core=-1), "core index"),
    (dict(dla_core=True), "core index"),
    (dict(version_compatible="yes"), "True or False"),
    (dict(timing_cache=3), "file path"),
])
def test_build_config_rejects_bad_values(changes, match):
    with pytest.raises(InputError, match=match):
        BuildConfig(**changes)


# ---- optimisation profile -----------------------------------------------------------------

def test_profile_takes_the_batch_range_on_axis_0_only():
    shapes = profile_shapes(_card(), {"input": (None, 3, 8, 8)}, (1, 4, 8))
    assert shapes == {"input": ((1, 3, 8, 8), (4, 3, 8, 8), (8, 3, 8, 8))}


def test_every_input_gets_the_batch_range_and_nhwc_is_read_by_layout():
    card = _card(layout="NHWC", height=6, width=4)
    shapes = profile_shapes(card, {"input": (None, 6, 4, 3), "center_map": (None, 1, 6, 4)},
                            (2, 2, 3))
    assert shapes["center_map"] == ((2, 1, 6, 4), (2, 1, 6, 4), (3, 1, 6, 4))
    assert shapes["input"][2] == (3, 6, 4, 3)


def test_a_fixed_batch_needs_the_matching_range():
    assert profile_shapes(_card(), {"input": (1, 3, 8, 8)}, (1, 1, 1))["input"][0] == (1, 3, 8, 8)
    with pytest.raises(InputError, match="fixed batch of 1 .* --batch 1:1:1"):
        profile_shapes(_card(), {"input": (1, 3, 8, 8)}, (1, 4, 8))


@pytest.mark.parametrize("shapes, match", [
    ({"input": (None, 3, None, 8)}, "dynamic on axis \\[2\\]"),   # only axis 0 may be dynamic
    ({"input": (None, 3, 16, 8)}, "card says NCHW \\(N, 3, 8, 8\\)"),  # graph and card disagree
    ({"image": (None, 3, 8, 8)}, "names input 'input'"),          # card names another input
    ({"input": ()}, "scalar"),
])
def test_profile_refuses_graphs_that_disagree_with_the_card(shapes, match):
    with pytest.raises(ModelFileError, match=match):
        profile_shapes(_card(), shapes, (1, 1, 1))


# ---- parser errors and progress -----------------------------------------------------------

def test_parser_errors_name_node_and_operator():
    line = describe_parser_error(7, "conv_7", "Conv", "weights must be initializers",
                                 "ErrorCode.UNSUPPORTED_NODE")
    assert line == "node 'conv_7' (Conv, #7): weights must be initializers [UNSUPPORTED_NODE]"
    assert describe_parser_error(-1, "", "", "bad protobuf", "ErrorCode.INVALID_GRAPH") == \
        "graph: bad protobuf [INVALID_GRAPH]"


class _Bar:
    def __init__(self, **kwargs):
        self.kwargs, self.n, self.closed = kwargs, 0, False

    def update(self, amount):
        self.n += amount

    def close(self):
        self.closed = True


def test_phase_bars_nest_and_close():
    made = []
    bars = _PhaseBars(lambda **kw: made.append(_Bar(**kw)) or made[-1])
    bars.start("build", None, 2)
    bars.start("tactics", "build", 3)
    assert [(b.kwargs["desc"], b.kwargs["position"], b.kwargs["leave"]) for b in made] == [
        ("build", 0, True), ("tactics", 1, False)]
    for step in range(3):
        assert bars.step("tactics", step) is True
    assert made[1].n == 3
    bars.finish("tactics")
    assert made[1].closed and not made[0].closed
    bars.close()
    assert made[0].closed


def test_phase_bars_log_without_tqdm(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    bars = _PhaseBars.default()
    with caplog.at_level("INFO", logger="export.engine.tensorrt"):
        bars.start("Building engine", None, 4)
        assert bars.step("Building engine", 0) is True
        bars.finish("Building engine")
    assert "Building engine (4 steps)" in caplog.text


def test_a_failing_progress_bar_never_stops_the_build():
    class Broken(_PhaseBars):
        def step(self, phase, step):
            raise RuntimeError("terminal gone")

        def start(self, phase, parent, steps):
            raise RuntimeError("terminal gone")

    monitor = _progress_monitor(make_tensorrt(V10), Broken(None))
    monitor.phase_start("p", None, 1)
    assert monitor.step_complete("p", 0) is True


# ---- version branching --------------------------------------------------------------------

def test_tensorrt_10_creates_strongly_typed_networks_with_the_flag():
    trt = make_tensorrt(V10)
    api = _version_api(trt)
    assert api.network_flags == 1 << int(peek(trt, "NetworkDefinitionCreationFlag",
                                              "STRONGLY_TYPED")) != 0
    assert set(api.hardware_levels) == {"ampere_plus"}  # 10.3 lacks SAME_COMPUTE_CAPABILITY


def test_tensorrt_11_is_always_strongly_typed_and_gets_no_deprecated_flag():
    trt = make_tensorrt(V11)
    api = _version_api(trt)
    assert api.network_flags == 0
    assert set(api.hardware_levels) == {"ampere_plus", "same_compute_capability"}
    assert "NetworkDefinitionCreationFlag" not in trt._recorder.names()


@pytest.mark.parametrize("version", ["8.6.1", "10.2.0", "9.3.0.post12"])
def test_tensorrt_older_than_10_3_is_refused(version):
    with pytest.raises(EngineBuildError, match=f"TensorRT {version}; edgepose builds with "
                                               "TensorRT 10.3 or newer"):
        _version_api(make_tensorrt(version))


def test_missing_or_stub_tensorrt_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(MissingDependencyError, match="edgepose\\[trt\\]"):
        tensorrt_build._load_tensorrt()
    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    with pytest.raises(MissingDependencyError, match="edgepose\\[trt\\]"):
        tensorrt_build._load_tensorrt()


# ---- build_engine end to end with the double ----------------------------------------------

@pytest.mark.parametrize("version", [V10, V11])
def test_build_writes_plan_and_sidecar(onnx_path, tmp_path, version):
    trt = make_tensorrt(version)
    out = tmp_path / "tiny.engine"
    config = BuildConfig(batch=(1, 4, 8), workspace=2**30, opt_level=5)
    assert build_engine(onnx_path, out, config, trt=trt) == out

    plan = out.read_bytes()
    assert plan == trt._scenario.plan
    card, info = read_sidecar(out)
    assert info.plan_sha256 == hashlib.sha256(plan).hexdigest()
    assert (info.tensorrt_version, info.device, info.compute_capability) == (version, *DEVICE)
    assert card.precision == "fp16"  # the ONNX card's precision, untouched
    assert (card.family, card.variant, card.input.height) == ("hrnet", "tiny_8x8", 8)
    assert info.profiles == ({"input": {"min": [1, 3, 8, 8], "opt": [4, 3, 8, 8],
                                        "max": [8, 3, 8, 8]}},)
    assert (info.version_compatible, info.hardware_compatibility) == (False, "none")
    assert info.extra == {"strongly_typed": True, "builder_flags": [],
                          "builder_optimization_level": 5, "workspace_bytes": 2**30,
                          "dla_core": None}
    assert _files(tmp_path) == ["tiny.engine", "tiny.engine.json", "tiny.onnx"]

    record = trt._recorder
    assert record.calls("OnnxParser", "parse_from_file") == [((str(onnx_path),), {})]
    assert record.calls("IOptimizationProfile", "set_shape") == [
        (("input", (1, 3, 8, 8), (4, 3, 8, 8), (8, 3, 8, 8)), {})]
    assert [str(a[0]) for a, _ in record.calls("IBuilderConfig", "set_memory_pool_limit")] == [
        "MemoryPoolType.WORKSPACE"]
    assert record.calls("IBuilderConfig", "set_memory_pool_limit")[0][0][1] == 2**30
    assert record.sets("IBuilderConfig", "builder_optimization_level") == [5]
    assert len(record.calls("IBuilderConfig", "add_optimization_profile")) == 1
    assert _flags_set(trt) == []  # no precision flag, ever; nothing else asked for


@pytest.mark.parametrize("version, flags", [(V10, "strongly typed flag"), (V11, "no flags")])
def test_networks_are_strongly_typed_by_version(onnx_path, tmp_path, version, flags):
    trt = make_tensorrt(version)
    build_engine(onnx_path, tmp_path / "m.engine", BuildConfig(), trt=trt)
    ((created, _),) = trt._recorder.calls("Builder", "create_network")
    strongly_typed = peek(trt, "NetworkDefinitionCreationFlag", "STRONGLY_TYPED")
    assert created == ((1 << int(strongly_typed),) if version == V10 else (0,))
    assert ("STRONGLY_TYPED" in trt._recorder.names()) == (version == V10)


@pytest.mark.parametrize("version", [V10, V11])
def test_no_precision_flag_is_ever_set(onnx_path, tmp_path, version):
    trt = make_tensorrt(version, num_dla_cores=2)
    config = BuildConfig(version_compatible=True, hardware_compatibility="ampere_plus",
                         dla_core=0, timing_cache=tmp_path / "t.cache", verbose=True)
    build_engine(onnx_path, tmp_path / "m.engine", config, trt=trt)
    assert _flags_set(trt) == ["BuilderFlag.VERSION_COMPATIBLE", "BuilderFlag.GPU_FALLBACK"]
    assert not {"FP16", "INT8", "EXCLUDE_LEAN_RUNTIME"} & trt._recorder.names()


def test_version_compatible_hardware_compatible_and_dla(onnx_path, tmp_path):
    trt = make_tensorrt(V10, num_dla_cores=2)
    out = tmp_path / "m.engine"
    build_engine(onnx_path, out, BuildConfig(version_compatible=True, dla_core=1,
                                             hardware_compatibility="ampere_plus"), trt=trt)
    record = trt._recorder
    assert [str(v) for v in record.sets("IBuilderConfig", "hardware_compatibility_level")] == [
        "HardwareCompatibilityLevel.AMPERE_PLUS"]
    assert [str(v) for v in record.sets("IBuilderConfig", "default_device_type")] == [
        "DeviceType.DLA"]
    assert record.sets("IBuilderConfig", "DLA_core") == [1]
    _, info = read_sidecar(out)
    assert (info.version_compatible, info.hardware_compatibility) == (True, "ampere_plus")
    assert info.extra["builder_flags"] == ["VERSION_COMPATIBLE", "GPU_FALLBACK"]
    assert info.extra["dla_core"] == 1


def test_same_compute_capability_needs_a_tensorrt_that_has_it(onnx_path, tmp_path):
    config = BuildConfig(hardware_compatibility="same_compute_capability")
    trt11 = make_tensorrt(V11)
    build_engine(onnx_path, tmp_path / "a.engine", config, trt=trt11)
    levels = trt11._recorder.sets("IBuilderConfig", "hardware_compatibility_level")
    assert [str(v) for v in levels] == ["HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY"]

    trt10 = make_tensorrt(V10)
    with pytest.raises(InputError, match="not offered by TensorRT 10.3.0.*'ampere_plus'"):
        build_engine(onnx_path, tmp_path / "b.engine", config, trt=trt10)
    assert "Builder" not in trt10._recorder.names()  # refused before any build work
    assert not (tmp_path / "b.engine").exists()


def test_a_dla_core_the_device_lacks_is_refused(onnx_path, tmp_path):
    with pytest.raises(InputError, match="DLA core 0 requested but this device has 0"):
        build_engine(onnx_path, tmp_path / "m.engine", BuildConfig(dla_core=0),
                     trt=make_tensorrt(V10))
    assert _files(tmp_path) == ["tiny.onnx"]


def test_timing_cache_is_loaded_strictly_and_saved_atomically(onnx_path, tmp_path, monkeypatch):
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"OLD")
    atomic_writes = []
    real_write = tensorrt_build.write_bytes_atomic
    monkeypatch.setattr(tensorrt_build, "write_bytes_atomic",
                        lambda path, data: atomic_writes.append(path) or real_write(path, data))
    trt = make_tensorrt(V10)
    build_engine(onnx_path, tmp_path / "m.engine", BuildConfig(timing_cache=cache), trt=trt)

    assert trt._recorder.calls("IBuilderConfig", "create_timing_cache") == [((b"OLD",), {})]
    ((_, kwargs),) = trt._recorder.calls("IBuilderConfig", "set_timing_cache")
    assert kwargs == {"ignore_mismatch": False}
    assert cache.read_bytes() == b"OLD+timings"  # what the builder's cache serialised to
    assert atomic_writes == [cache]
    assert _files(tmp_path) == ["m.engine", "m.engine.json", "timing.cache", "tiny.onnx"]


def test_a_new_timing_cache_starts_empty(onnx_path, tmp_path):
    cache = tmp_path / "new.cache"
    trt = make_tensorrt(V11)
    build_engine(onnx_path, tmp_path / "m.engine", BuildConfig(timing_cache=cache), trt=trt)
    assert trt._recorder.calls("IBuilderConfig", "create_timing_cache") == [((b"",), {})]
    assert cache.read_bytes() == b"+timings"


def test_a_timing_cache_from_another_gpu_is_refused_and_kept(onnx_path, tmp_path):
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"FROM-ANOTHER-GPU")
    with pytest.raises(InputError, match="another GPU or TensorRT version"):
        build_engine(onnx_path, tmp_path / "m.engine", BuildConfig(timing_cache=cache),
                     trt=make_tensorrt(V10, timing_cache_compatible=False))
    assert cache.read_bytes() == b"FROM-ANOTHER-GPU"
    assert _files(tmp_path) == ["timing.cache", "tiny.onnx"]


@pytest.mark.parametrize("version", [V10, V11])
def test_parser_errors_are_reported_and_nothing_is_written(onnx_path, tmp_path, version):
    errors = [(0, "head", "Conv", "kernel weights must be an initializer", "UNSUPPORTED_NODE"),
              (-1, "", "", "graph has no outputs", "INVALID_GRAPH")]
    trt = make_tensorrt(version, parse_errors=errors)
    with pytest.raises(EngineBuildError) as caught:
        build_engine(onnx_path, tmp_path / "m.engine", BuildConfig(), trt=trt)
    message = str(caught.value)
    assert "node 'head' (Conv, #0): kernel weights must be an initializer [UNSUPPORTED_NODE]" \
        in message
    assert "graph: graph has no outputs [INVALID_GRAPH]" in message
    assert "build_serialized_network" not in trt._recorder.names()
    assert _files(tmp_path) == ["tiny.onnx"]


def test_a_failed_build_writes_nothing(onnx_path, tmp_path):
    cache = tmp_path / "timing.cache"
    cache.write_bytes(b"OLD")
    with pytest.raises(EngineBuildError, match="rerun with --verbose"):
        build_engine(onnx_path, tmp_path / "m.engine", BuildConfig(timing_cache=cache),
                     trt=make_tensorrt(V10, build_fails=True))
    assert cache.read_bytes() == b"OLD"
    assert _files(tmp_path) == ["timing.cache", "tiny.onnx"]


def test_a_failing_sidecar_write_leaves_no_plan(onnx_path, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tensorrt_build, "write_sidecar", fail)
    old = tmp_path / "m.engine"
    old.write_bytes(b"previous plan")
    with pytest.raises(OSError, match="disk full"):
        build_engine(onnx_path, old, BuildConfig(), trt=make_tensorrt(V10))
    assert old.read_bytes() == b"previous plan"
    assert _files(tmp_path) == ["m.engine", "tiny.onnx"]


def test_lint_runs_before_tensorrt(tmp_path):
    path = _write_onnx(tmp_path / "dynamic.onnx", height="h")
    trt = make_tensorrt(V10)
    with pytest.raises(LintError, match="axis 2 is dynamic"):
        build_engine(path, tmp_path / "m.engine", BuildConfig(), trt=trt)
    assert trt._recorder.events == []


@pytest.mark.parametrize("case, match", [
    ("same path", "would overwrite its ONNX file"),
    ("missing folder", "folder .* does not exist"),
    ("missing onnx", "does not exist"),
    ("not a config", "expected a BuildConfig"),
])
def test_unusable_paths_and_arguments_fail_before_tensorrt(onnx_path, tmp_path, case, match):
    trt = make_tensorrt(V10)
    onnx_in, out, config = onnx_path, tmp_path / "m.engine", BuildConfig()
    if case == "same path":
        out = onnx_path
    elif case == "missing folder":
        out = tmp_path / "absent" / "m.engine"
    elif case == "missing onnx":
        onnx_in = tmp_path / "absent.onnx"
    else:
        config = {"batch": (1, 1, 1)}
    with pytest.raises(InputError, match=match):
        build_engine(onnx_in, out, config, trt=trt)
    assert trt._recorder.events == []


def test_an_onnx_without_card_is_refused(tmp_path):
    model = onnx.load(str(_write_onnx(tmp_path / "a.onnx")))
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "nocard.onnx"))
    with pytest.raises(ModelFileError, match="carries no edgepose model card"):
        build_engine(tmp_path / "nocard.onnx", tmp_path / "m.engine", BuildConfig(),
                     trt=make_tensorrt(V10))


def test_an_onnx_whose_card_disagrees_with_its_graph_is_refused(tmp_path):
    path = _write_onnx(tmp_path / "m.onnx", card=_card(height=16))
    with pytest.raises(ModelFileError, match="card says NCHW"):
        build_engine(path, tmp_path / "m.engine", BuildConfig(), trt=make_tensorrt(V10))


def test_verbose_selects_the_logger_severity(onnx_path, tmp_path):
    for verbose, severity in ((True, "Logger.VERBOSE"), (False, "Logger.WARNING")):
        trt = make_tensorrt(V10)
        build_engine(onnx_path, tmp_path / "m.engine", BuildConfig(verbose=verbose), trt=trt)
        ((args, _),) = trt._recorder.calls("Logger", "__init__")
        assert str(args[0]) == severity


def test_progress_goes_through_a_tensorrt_progress_monitor(onnx_path, tmp_path):
    trt = make_tensorrt(V10)
    build_engine(onnx_path, tmp_path / "m.engine", BuildConfig(), trt=trt, progress=True)
    (monitor,) = trt._recorder.sets("IBuilderConfig", "progress_monitor")
    assert isinstance(monitor, peek(trt, "IProgressMonitor"))
    assert len(trt._recorder.calls("IProgressMonitor", "step_complete")) == 5

    quiet = make_tensorrt(V10)
    build_engine(onnx_path, tmp_path / "m.engine", BuildConfig(), trt=quiet, progress=False)
    assert quiet._recorder.sets("IBuilderConfig", "progress_monitor") == []


@pytest.mark.parametrize("version", [V10, V11])
def test_the_names_a_build_touches_are_exactly_those_listed(onnx_path, tmp_path, version):
    """TENSORRT_NAMES_USED (checked against the real bindings) must not drift from the code."""
    touched = set()
    everything = BuildConfig(batch=(1, 2, 4), workspace=2**28, timing_cache=tmp_path / "t.cache",
                             opt_level=4, version_compatible=True, dla_core=0, verbose=True,
                             hardware_compatibility="same_compute_capability" if version == V11
                             else "ampere_plus")
    trt = make_tensorrt(version, num_dla_cores=1)
    build_engine(onnx_path, tmp_path / "m.engine", everything, trt=trt)
    touched |= trt._recorder.names()
    failing = make_tensorrt(version, parse_errors=[(0, "head", "Conv", "bad", "INVALID_NODE")])
    with pytest.raises(EngineBuildError):
        build_engine(onnx_path, tmp_path / "m.engine", BuildConfig(), trt=failing)
    touched |= failing._recorder.names()
    major = int(version.split(".")[0])
    listed = {name for name, majors in TENSORRT_NAMES_USED.items() if major in majors}
    assert touched == listed


def test_device_identity_comes_from_the_cuda_layer(monkeypatch):
    from edgepose.cuda.base import DeviceInfo
    from edgepose.errors import CudaError

    class FakeCuda:
        def __init__(self, devices):
            self.devices = devices

        def require_device(self, index=0):
            if not self.devices:
                raise CudaError("no CUDA device is visible")
            return self.devices[index]

    orin = DeviceInfo(0, "Orin", "8.7", integrated=True, can_map_host_memory=True)
    monkeypatch.setattr(tensorrt_build, "get_cuda", lambda: FakeCuda([orin]))
    assert REAL_DEVICE_IDENTITY() == ("Orin", "8.7")
    monkeypatch.setattr(tensorrt_build, "get_cuda", lambda: FakeCuda([]))
    with pytest.raises(CudaError, match="no CUDA device"):
        REAL_DEVICE_IDENTITY()


def test_sidecar_is_valid_json_beside_the_plan(onnx_path, tmp_path):
    out = tmp_path / "m.plan"
    build_engine(onnx_path, out, BuildConfig(), trt=make_tensorrt(V11))
    data = json.loads(sidecar_path(out).read_text())
    assert data["engine"]["tensorrt_version"] == V11 and data["schema"] == 1
