"""The AE map steps' refusals and size limits, which the mutation run found unpinned:
each message names the argument it refuses and the shapes it saw, and sizes of 1 pass.
"""

import re

import numpy as np
import pytest

from edgepose.decode.ae_maps import (
    aggregate_higherhrnet,
    average_flip,
    flip_back_maps,
    resize_bilinear,
)
from edgepose.errors import DecodeError, InputError


def _maps(*shape):
    return np.random.default_rng(sum(shape)).random(shape).astype(np.float32)


@pytest.mark.parametrize("size", [(1, 5), (5, 1), (1, 1)])
def test_resize_to_one_pixel_wide_or_high_is_allowed(size):
    maps = _maps(2, 4, 6)
    out = resize_bilinear(maps, size)
    assert out.shape == (2, size[1], size[0])
    # Bilinear with half-pixel centres keeps a constant map constant, whatever the size.
    np.testing.assert_allclose(resize_bilinear(np.full((1, 4, 6), 0.25, np.float32), size),
                               0.25, rtol=0, atol=1e-7)


@pytest.mark.parametrize("size", [(0, 5), (5, 0), (0, 0), (-1, 3)])
def test_resize_to_nothing_is_refused_naming_the_size(size):
    expected = re.escape(f"size must be (width, height) >= 1, got {size!r}")
    with pytest.raises(InputError, match=f"^{expected}$"):
        resize_bilinear(_maps(2, 4, 6), size)


@pytest.mark.parametrize("call, name", [
    (lambda bad: resize_bilinear(bad, (4, 4)), "maps"),
    (lambda bad: aggregate_higherhrnet(bad, _maps(17, 8, 8)), "output0"),
    (lambda bad: aggregate_higherhrnet(_maps(34, 4, 4), bad), "output1"),
    (lambda bad: flip_back_maps(bad, np.arange(17)), "flipped maps"),
    (lambda bad: average_flip(bad, _maps(17, 4, 4), _maps(17, 4, 4), _maps(17, 4, 4),
                              np.arange(17)), "heatmaps"),
    (lambda bad: average_flip(_maps(17, 4, 4), bad, _maps(17, 4, 4), _maps(17, 4, 4),
                              np.arange(17)), "tags"),
])
def test_each_refusal_names_its_argument(call, name):
    with pytest.raises(DecodeError, match=f"^{name} must be 3-D"):
        call(np.zeros((4, 4), np.float32))


def test_the_channel_count_refusal_shows_both_outputs_counts():
    with pytest.raises(DecodeError, match="^HigherHRNet outputs have 30 and 17 channels; "
                                          r"expected 34 \(heatmaps \+ tags\) and 17"):
        aggregate_higherhrnet(_maps(30, 4, 5), _maps(17, 8, 10))
    with pytest.raises(DecodeError, match="^HigherHRNet outputs have 34 and 16 channels"):
        aggregate_higherhrnet(_maps(34, 4, 5), _maps(16, 8, 10))


def test_the_flip_shape_refusal_lists_every_shape():
    with pytest.raises(DecodeError, match=r"heatmaps \(17, 4, 4\), tags \(17, 4, 4\), "
                                          r"flipped heatmaps \(17, 4, 5\), flipped tags "
                                          r"\(17, 4, 4\)"):
        average_flip(_maps(17, 4, 4), _maps(17, 4, 4), _maps(17, 4, 5), _maps(17, 4, 4),
                     np.arange(17))


def test_float16_maps_are_read_as_float32():
    # An FP16 engine's outputs: OpenCV reads float32 and float64 only.
    maps = _maps(2, 4, 6).astype(np.float16)
    out = resize_bilinear(maps, (12, 8))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, resize_bilinear(maps.astype(np.float32), (12, 8)))


@pytest.mark.parametrize("shape", [(2, 1, 6), (2, 4, 1), (2, 1, 1)])
def test_maps_one_pixel_high_or_wide_are_maps(shape):
    out = resize_bilinear(np.full(shape, 0.5, np.float32), (3, 2))
    assert out.shape == (2, 2, 3)
    np.testing.assert_allclose(out, 0.5, rtol=0, atol=1e-7)
