"""The runtime's TensorRT names exist on the real TensorRT 11 lean bindings.

`tensorrt-lean-cu13==11.4.0.106` imports without a GPU, so this runs on CPU CI.
Nothing here creates a Runtime: without a GPU that can crash the process. The
unit tests' double exposes exactly TENSORRT_RUNTIME_NAMES, so together the two
tests tie the runner's TensorRT use to the real API.
"""

import logging

import numpy as np
import pytest

from edgepose.backends.buffers import NO_NUMPY_TYPE, TENSORRT_TO_NUMPY
from edgepose.backends.tensorrt import (_SEVERITY_LEVELS, TENSORRT_RUNTIME_NAMES,
                                        _make_logger)


def _lean():
    try:
        import tensorrt_lean
    except Exception as exc:  # noqa: BLE001 - the wheels fail in several ways without their libraries
        pytest.skip(f"tensorrt_lean is not importable ({type(exc).__name__}: {exc}); "
                    "pip install tensorrt-lean-cu13==11.4.0.106")
    if not hasattr(tensorrt_lean, "Runtime"):
        pytest.skip("tensorrt_lean imported as an empty namespace (a stub package?)")
    return tensorrt_lean


@pytest.fixture(scope="module")
def trt():
    return _lean()


def test_it_is_the_11_4_lean_runtime(trt):
    assert trt.__name__ == "tensorrt_lean"
    assert trt.__version__.startswith("11.4"), trt.__version__


# "module", not "tensorrt": tests/conftest.py reads a keyword "tensorrt" as the marker.
@pytest.mark.parametrize("owner", sorted(TENSORRT_RUNTIME_NAMES),
                         ids=lambda owner: "module" if owner == "tensorrt" else owner)
def test_every_runtime_name_exists(trt, owner):
    target = trt if owner == "tensorrt" else getattr(trt, owner, None)
    assert target is not None, f"tensorrt_lean has no {owner}"
    missing = [name for name in TENSORRT_RUNTIME_NAMES[owner] if not hasattr(target, name)]
    assert not missing, f"{owner} lacks {missing} in tensorrt_lean {trt.__version__}"


@pytest.mark.parametrize("owner, name", [
    ("ICudaEngine", "device_memory_size"),                  # 11.x: use device_memory_size_v2
    ("ICudaEngine", "get_device_memory_size_for_profile"),  # 11.x: the _v2 form
    ("ICudaEngine", "get_binding_shape"),                   # binding API, gone since 10.0
    ("IExecutionContext", "execute_async_v2"),              # gone since 10.0: execute_async_v3
    ("IExecutionContext", "set_binding_shape"),             # gone since 10.0: set_input_shape
])
def test_names_gone_from_tensorrt_11_are_absent_and_unused(trt, owner, name):
    assert not hasattr(getattr(trt, owner), name)
    assert name not in TENSORRT_RUNTIME_NAMES.get(owner, ())


def test_every_tensorrt_data_type_is_mapped_or_refused(trt):
    members = set(trt.DataType.__members__)
    unhandled = members - set(TENSORRT_TO_NUMPY) - set(NO_NUMPY_TYPE)
    assert not unhandled, f"DataType members neither mapped to numpy nor refused: {unhandled}"
    assert set(TENSORRT_TO_NUMPY) <= members


@pytest.mark.parametrize("name", sorted(TENSORRT_TO_NUMPY))
def test_the_numpy_table_agrees_with_tensorrts_own(trt, name):
    member = getattr(trt.DataType, name)
    assert member.name == name  # the runner reads get_tensor_dtype(...).name
    assert np.dtype(trt.nptype(member)) == TENSORRT_TO_NUMPY[name]


def test_the_tensor_io_modes_compare_as_the_runner_compares_them(trt):
    assert trt.TensorIOMode.INPUT == trt.TensorIOMode.INPUT
    assert trt.TensorIOMode.INPUT != trt.TensorIOMode.OUTPUT


def test_every_log_severity_has_a_logging_level(trt):
    assert set(trt.ILogger.Severity.__members__) == set(_SEVERITY_LEVELS)


def test_the_logging_bridge_subclasses_the_real_ilogger(trt, caplog):
    logger = _make_logger(trt)
    assert isinstance(logger, trt.ILogger)
    with caplog.at_level(logging.DEBUG, logger="edgepose.backends.tensorrt"):
        logger.log(trt.ILogger.Severity.ERROR, "bad plan")
        logger.log(trt.ILogger.Severity.INFO, "loaded")
    assert logger.errors == ["bad plan"]
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, "TensorRT: bad plan"), (logging.DEBUG, "TensorRT: loaded")]
