"""The shared map helpers of edgepose.decode.maps, against hand-worked expectations."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from edgepose.decode.maps import (
    all_finite,
    check_finite,
    check_permutation,
    flip_back,
    resize_channels,
)
from edgepose.errors import DecodeError, InputError


def test_huge_but_finite_float32_maps_pass_silently() -> None:
    # 18 × 3e38 overflows a float32 sum; a finite map must neither be refused nor warn.
    maps = np.full((1, 2, 3, 3), 3e38, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_finite(maps, "heatmaps", ("person", "keypoint"))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "one row"])
@pytest.mark.parametrize("bad", [None, np.nan, np.inf, -np.inf])
def test_all_finite_sees_every_kind_of_bad_value_in_any_layout(dtype, layout, bad) -> None:
    maps = np.random.default_rng(0).normal(size=(3, 7, 9)).astype(dtype)
    if layout == "strided":
        maps = maps[:, ::2, 1::3]  # OpenCV cannot take it whole: numpy's sum does
    elif layout == "one row":
        maps = maps[0, 0]
    if bad is not None:
        maps[(-1,) * maps.ndim] = bad  # the last value: a sum that stopped early misses it
    assert all_finite(maps) is (bad is None)


@pytest.mark.parametrize("values, dtype, finite", [
    ((3e38, 3e38), np.float32, True),        # a float64 sum holds them
    ((1.7e308, 1.7e308), np.float64, False),  # overflows: a false alarm, without a warning
    ((np.inf, -np.inf), np.float32, False),   # inf - inf: NaN, without a warning
])
def test_all_finite_neither_warns_on_overflow_nor_on_inf_minus_inf(values, dtype,
                                                                     finite) -> None:
    # Strided maps go through numpy's sum, where both would warn.
    maps = np.zeros((2, 4, 6), dtype)
    maps[0, 0, 0], maps[1, 2, 4] = values
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert all_finite(maps[:, :, ::2]) is finite


def test_all_finite_sums_float16_wider_than_float16() -> None:
    # 3000 x 100 is past float16's 65504: summed in float16 it would be a false alarm.
    assert all_finite(np.full((3, 2000), 100.0, np.float16)[:, ::2])


def test_all_finite_overflows_only_to_a_false_alarm_that_check_finite_clears() -> None:
    # Two float64 maxima overflow any sum: all_finite may say no, the scan then finds
    # nothing bad and check_finite passes.
    maps = np.full((1, 2, 2), 1.7e308)
    assert not all_finite(maps)
    check_finite(maps, "heatmaps", ("channel",))


def test_check_finite_names_the_first_bad_pixel() -> None:
    maps = np.zeros((2, 3, 4, 5), np.float32)
    maps[1, 2, 3, 1] = np.inf
    maps[1, 2, 3, 4] = np.nan
    with pytest.raises(DecodeError, match=r"hold 2 NaN/inf values \(first at person 1, "
                                          r"keypoint 2, y=3, x=1\)"):
        check_finite(maps, "heatmaps", ("person", "keypoint"))


def test_a_float_permutation_is_refused_even_when_its_values_are_a_permutation() -> None:
    # Float indices cannot index channels: accepting [1., 0., 2.] would fail later, obscurely.
    with pytest.raises(InputError, match="permutation of 0..2"):
        flip_back(np.zeros((1, 3, 2, 2), np.float32), np.array([1.0, 0.0, 2.0]))


@pytest.mark.parametrize(
    ("permutation", "shown"),
    [
        ([0, 0, 2], "0..2 (shape (3,)), got [0, 0, 2];"),
        # Up to 32 entries the message lists them, beyond that only the shape.
        ([1] + list(range(1, 32)), "0..31 (shape (32,)), got [1, 1, 2, 3,"),
        ([1] + list(range(1, 33)), "0..32 (shape (33,)), got (33,);"),
    ],
)
def test_permutation_message_shows_the_range_and_the_offender(permutation, shown) -> None:
    with pytest.raises(InputError) as info:
        check_permutation(np.array(permutation), len(permutation))
    assert shown in str(info.value)


def test_resize_channels_uses_the_interpolation_it_is_given() -> None:
    # Nearest at exactly ×2 repeats each source pixel as a 2x2 block (bilinear would
    # blend them); 5 channels, more than one cv2.resize call takes at once.
    maps = np.arange(5 * 2 * 2, dtype=np.float32).reshape(5, 2, 2)
    got = resize_channels(maps, (4, 4), cv2.INTER_NEAREST)
    expected = maps.repeat(2, axis=1).repeat(2, axis=2)
    np.testing.assert_array_equal(got, expected)
