"""Every TensorRT name the engine builder and its test double use exists in the real bindings.

The tables come from tensorrt-cu12-bindings 10.3.0 (JetPack 6's TensorRT) and
tensorrt-cu13-bindings 11.4.0.106, downloaded once into a cache outside the repo
(tests/trt_wheels.py); the tests skip, saying why, when neither cache nor registry
can provide them.
"""

import ast
from pathlib import Path

import pytest

import export.engine.tensorrt as tensorrt_build
from export.engine.tensorrt import TENSORRT_NAMES_AVOIDED, TENSORRT_NAMES_USED
from tests.export.engine.trt_double import offered_names
from tests.trt_wheels import WHEELS, WheelUnavailable, name_table

MAJOR = {"10.3": 10, "11.4": 11}
DOUBLE_VERSION = {"10.3": "10.3.0", "11.4": "11.4.0.106"}


@pytest.fixture(scope="module", params=sorted(WHEELS))
def table(request):
    try:
        return name_table(request.param)
    except WheelUnavailable as exc:
        pytest.skip(f"TensorRT {request.param} bindings wheel unavailable (cache "
                    f"~/.cache/edgepose/trt-wheels or EDGEPOSE_TRT_WHEELS, then PyPI): {exc}")


def _label(table):
    return next(label for label, (package, version) in WHEELS.items()
                if table.label == f"{package}=={version}")


def test_every_name_the_builder_uses_is_in_the_bindings(table):
    major = MAJOR[_label(table)]
    used = sorted(name for name, majors in TENSORRT_NAMES_USED.items() if major in majors)
    missing = [name for name in used if name not in table]
    assert used and missing == [], f"absent from {table.label}: {missing}"


def test_names_used_on_one_version_only_are_really_absent_or_deprecated_on_the_other(table):
    """The version branch exists for a reason: SAME_COMPUTE_CAPABILITY is not in 10.3."""
    if MAJOR[_label(table)] == 10:
        assert "SAME_COMPUTE_CAPABILITY" not in table
    else:
        # 11 keeps STRONGLY_TYPED but deprecates it; we skip it there, it must still exist
        # so that building with 11 never depends on it.
        assert "STRONGLY_TYPED" in table


def test_the_tables_tell_apart_what_11_removed(table):
    """Sanity of the name-table method itself: removed names vanish from 11.4 only."""
    removed_in_11 = ("FP16", "int8_calibrator", "platform_has_fast_fp16", "EXPLICIT_BATCH",
                     "OBEY_PRECISION_CONSTRAINTS", "set_calibration_profile")
    present = {name: name in table for name in removed_in_11}
    expected = MAJOR[_label(table)] == 10
    assert present == dict.fromkeys(removed_in_11, expected)


def test_weak_typing_names_are_never_used():
    assert not set(TENSORRT_NAMES_AVOIDED) & set(TENSORRT_NAMES_USED)
    source = Path(tensorrt_build.__file__).read_text()
    attributes = {node.attr for node in ast.walk(ast.parse(source))
                  if isinstance(node, ast.Attribute)}
    keywords = {node.arg for node in ast.walk(ast.parse(source)) if isinstance(node, ast.keyword)}
    assert not set(TENSORRT_NAMES_AVOIDED) & (attributes | keywords)


def test_the_double_offers_only_real_names(table):
    label = _label(table)
    offered = offered_names(DOUBLE_VERSION[label])
    assert sorted(name for name in offered if name not in table) == []


# The lean 11.4 bindings import without a GPU and share some builder-side classes with
# the full ones; where they do, check our names on their real owners.
LEAN_OWNERS = {
    "Logger": ("VERBOSE", "WARNING"),
    "IProgressMonitor": ("phase_start", "step_complete", "phase_finish"),
    "HardwareCompatibilityLevel": ("AMPERE_PLUS", "SAME_COMPUTE_CAPABILITY"),
    "DeviceType": ("DLA",),
    "MemoryPoolType": ("WORKSPACE",),
    "BuilderFlag": ("VERSION_COMPATIBLE", "GPU_FALLBACK"),
    "ITimingCache": ("serialize",),
}


def test_names_sit_on_their_owners_in_the_11_4_lean_bindings():
    try:
        import tensorrt_lean as lean
    except Exception as exc:  # noqa: BLE001 - the wheels fail in several ways without libraries
        pytest.skip(f"tensorrt_lean is not importable ({type(exc).__name__}: {exc})")
    if not str(getattr(lean, "__version__", "")).startswith("11.4"):
        pytest.skip(f"tensorrt_lean {getattr(lean, '__version__', '?')} is not 11.4")
    missing = [f"{owner}.{name}" for owner, names in LEAN_OWNERS.items()
               for name in names if not hasattr(getattr(lean, owner, None), name)]
    assert missing == []
    assert {n for names in LEAN_OWNERS.values() for n in names} <= set(TENSORRT_NAMES_USED)
    assert not {"FP16", "INT8", "BF16", "FP8"} & set(dir(lean.BuilderFlag))
