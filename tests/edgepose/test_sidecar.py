"""The engine sidecar (edgepose/sidecar.py): what it records, and the plans it refuses.

The rules come from TensorRT's documentation: a plan runs only on the TensorRT version
that built it unless built version-compatible, and then only on the same or a newer
release; hardware compatibility "ampere_plus" covers compute capability 8.0 and above,
anything else only the building GPU's compute capability.
"""

import json

import pytest

from edgepose.errors import CardError, ModelFileError
from edgepose.sidecar import (EngineInfo, check_plan, read_sidecar, sha256_of_bytes,
                              sidecar_path, write_sidecar)
from tests.calib.tiny import topdown_card

PLAN = b"serialised plan"


def _info(**overrides) -> EngineInfo:
    fields = dict(tensorrt_version="10.3.0.30", device="Orin", compute_capability="8.7",
                  plan_sha256=sha256_of_bytes(PLAN))
    fields.update(overrides)
    return EngineInfo(**fields)


def _check(info: EngineInfo, runtime: str = "10.3.0.30", cc: str = "8.7",
           plan: bytes = PLAN) -> None:
    check_plan(plan, info, engine_path="m.engine", runtime_version=runtime, compute_capability=cc)


def test_the_sidecar_sits_beside_the_engine_and_reads_back(tmp_path):
    engine = tmp_path / "pose.engine"
    profiles = ({"input": {"min": [1, 3, 64, 48], "opt": [4, 3, 64, 48], "max": [8, 3, 64, 48]}},)
    info = _info(profiles=profiles, extra={"builder_optimization_level": 3})
    path = write_sidecar(engine, topdown_card(), info)
    assert path == sidecar_path(engine) == tmp_path / "pose.engine.json"
    on_disk = json.loads(path.read_text())
    assert on_disk["family"] == "tiny"
    assert on_disk["engine"]["builder_optimization_level"] == 3    # extra keys kept flat
    card, read = read_sidecar(engine)
    assert read == info
    assert card.with_updates(engine=None) == topdown_card()


def test_an_engine_without_its_sidecar_or_engine_block_is_refused(tmp_path):
    engine = tmp_path / "pose.engine"
    with pytest.raises(ModelFileError, match="has no sidecar pose.engine.json"):
        read_sidecar(engine)
    sidecar_path(engine).write_text(topdown_card().to_json())
    with pytest.raises(ModelFileError, match="has no 'engine' block"):
        read_sidecar(engine)


def test_an_engine_block_missing_what_the_runtime_checks_is_refused():
    with pytest.raises(CardError, match="lacks compute_capability, plan_sha256"):
        EngineInfo.from_dict({"tensorrt_version": "10.3.0", "device": "x"})
    with pytest.raises(CardError, match="hardware_compatibility"):
        _info(hardware_compatibility="any_gpu")


def test_the_plan_it_was_written_for_passes():
    _check(_info())


def test_a_changed_plan_is_refused():
    with pytest.raises(ModelFileError, match="plan sha256"):
        _check(_info(), plan=PLAN + b"!")


@pytest.mark.parametrize("built, runtime, compatible, refused", [
    ("10.3.0.30", "10.3.0.30", False, False),
    ("10.3.0.30", "10.3.0.31", False, True),     # an ordinary plan: that exact build only
    ("10.3.0.30", "10.10.0.1", True, False),     # 10.10 is newer than 10.3 (not as text)
    ("10.10.0.1", "10.3.0.30", True, True),      # and never backwards
    ("10.3.0", "11.4.0", True, False),
    ("11.4.0", "10.3.0", True, True),
])
def test_version_rules(built, runtime, compatible, refused):
    info = _info(tensorrt_version=built, version_compatible=compatible)
    if refused:
        with pytest.raises(ModelFileError, match=f"TensorRT {built}"):
            _check(info, runtime=runtime)
    else:
        _check(info, runtime=runtime)


@pytest.mark.parametrize("hardware, built_cc, device_cc, refused", [
    ("none", "8.7", "8.7", False),
    ("none", "8.7", "8.6", True),
    ("same_compute_capability", "8.6", "8.9", True),
    ("ampere_plus", "8.6", "9.0", False),
    ("ampere_plus", "8.6", "8.0", False),
    ("ampere_plus", "8.6", "7.5", True),
])
def test_hardware_rules(hardware, built_cc, device_cc, refused):
    info = _info(hardware_compatibility=hardware, compute_capability=built_cc)
    if refused:
        with pytest.raises(ModelFileError, match=f"this GPU is {device_cc}"):
            _check(info, cc=device_cc)
    else:
        _check(info, cc=device_cc)
