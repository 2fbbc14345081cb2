"""Buffer planning: dtype table, profile checks, sizes for the largest profile shape."""

import numpy as np
import pytest

from edgepose.backends.buffers import (NO_NUMPY_TYPE, TENSORRT_TO_NUMPY, ProfileRange,
                                       TensorDesc, check_input_shape, nbytes, numpy_dtype,
                                       plan_buffers)
from edgepose.errors import InputError, ModelFileError

F32 = np.dtype(np.float32)
PROFILE = ProfileRange((1, 3, 256, 192), (4, 3, 256, 192), (8, 3, 256, 192))
INPUT = TensorDesc("input", True, F32, (-1, 3, 256, 192), PROFILE)


def _never_called(_):
    raise AssertionError("output shapes were asked for although every output is static")


@pytest.mark.parametrize("name, dtype", [
    ("FLOAT", np.float32),  # FP32 I/O, the common case
    ("HALF", np.float16),   # FP16 I/O
    ("INT8", np.int8),      # raw quantised I/O
    ("INT32", np.int32),    # index outputs
    ("INT64", np.int64),    # ONNX-style shapes and indices
    ("BOOL", np.bool_),     # masks
    ("UINT8", np.uint8),    # image bytes in
])
def test_tensorrt_types_map_to_numpy(name, dtype):
    assert numpy_dtype(name, "t") == np.dtype(dtype)


@pytest.mark.parametrize("name", ["BF16", "FP8", "INT4", "FP4"])  # numpy has no such dtype
def test_types_numpy_cannot_hold_are_refused_by_name(name):
    with pytest.raises(ModelFileError, match=rf"tensor 'heatmaps' is {name}.*FP32 or FP16"):
        numpy_dtype(name, "heatmaps")


def test_an_unknown_type_is_refused_with_the_supported_list():
    with pytest.raises(ModelFileError, match="FLOAT"):
        numpy_dtype("FP128", "x")


def test_the_two_tables_do_not_overlap():
    assert not set(TENSORRT_TO_NUMPY) & set(NO_NUMPY_TYPE)


@pytest.mark.parametrize("shape", [
    (1, 3, 256, 192),  # profile minimum
    (5, 3, 256, 192),  # inside
    (8, 3, 256, 192),  # profile maximum
])
def test_shapes_inside_the_profile_pass(shape):
    assert check_input_shape(INPUT, shape) == shape


@pytest.mark.parametrize("shape, message", [
    ((16, 3, 256, 192), r"^batch 16 is outside this engine's profile 1\.\.8"),   # too many people
    ((0, 3, 256, 192), r"^batch 0 is outside this engine's profile 1\.\.8"),     # empty batch
    ((2, 3, 256, 200), r"input 'input' axis 3 is 200, outside .* 192\.\.192"),  # wrong width
    ((3, 256, 192), r"shape \(3, 256, 192\); this engine takes 4 axes, "
                    r"shape \(1\.\.8, 3, 256, 192\)"),                           # batch axis missing
])
def test_shapes_outside_the_profile_name_the_range(shape, message):
    with pytest.raises(InputError, match=message):
        check_input_shape(INPUT, shape)


def test_a_static_input_admits_only_its_shape():
    static = TensorDesc("input", True, F32, (1, 3, 64, 48))
    assert check_input_shape(static, (1, 3, 64, 48)) == (1, 3, 64, 48)
    with pytest.raises(InputError, match=r"batch 2 is outside this engine's profile 1\.\.1"):
        check_input_shape(static, (2, 3, 64, 48))


def test_buffers_are_sized_for_the_profile_maximum_per_dtype():
    tensors = [
        INPUT,
        TensorDesc("heatmaps", False, np.dtype(np.float16), (8, 17, 64, 48)),
        TensorDesc("ids", False, np.dtype(np.int64), (8, 17)),
    ]
    plans = plan_buffers(tensors, _never_called)
    assert [p.name for p in plans] == ["input", "heatmaps", "ids"]
    assert [p.max_shape for p in plans] == [(8, 3, 256, 192), (8, 17, 64, 48), (8, 17)]
    assert [p.nbytes for p in plans] == [8 * 3 * 256 * 192 * 4, 8 * 17 * 64 * 48 * 2, 8 * 17 * 8]
    assert [p.is_input for p in plans] == [True, False, False]


def test_runtime_output_axes_are_resolved_at_the_largest_input_shapes():
    asked = []

    def output_shapes(inputs):
        asked.append(dict(inputs))
        return {"heatmaps": (inputs["input"][0], 17, 64, 48)}

    tensors = [INPUT, TensorDesc("heatmaps", False, F32, (-1, 17, 64, 48))]
    plans = plan_buffers(tensors, output_shapes)
    assert asked == [{"input": (8, 3, 256, 192)}]
    assert plans[1].max_shape == (8, 17, 64, 48)
    assert plans[1].nbytes == nbytes(F32, (8, 17, 64, 48))


def test_a_data_dependent_output_is_refused():
    tensors = [INPUT, TensorDesc("boxes", False, F32, (-1, 4))]
    with pytest.raises(ModelFileError, match="'boxes' has shape \\(-1, 4\\).*data-dependent"):
        plan_buffers(tensors, lambda inputs: {"boxes": (-1, 4)})


def test_a_dynamic_input_without_a_profile_is_refused():
    tensors = [TensorDesc("input", True, F32, (-1, 3, 8, 8))]
    with pytest.raises(ModelFileError, match="no optimisation profile"):
        plan_buffers(tensors, _never_called)


@pytest.mark.parametrize("low, opt, high, message", [
    ((1, 3), (2, 3), (4,), "differ in rank"),  # malformed sidecar/engine
    ((4, 3), (4, 3), (2, 3), "is empty"),      # min above max
])
def test_malformed_profiles_are_refused(low, opt, high, message):
    with pytest.raises(ModelFileError, match=message):
        ProfileRange(low, opt, high)
