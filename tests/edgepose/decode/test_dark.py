"""Tests for edgepose.decode.dark: the patch blur against OpenCV's whole-map blur, and
the fast path against mmpose's whole-map DARK (refine_keypoints_dark with gaussian_blur),
written out here from its formulas one map at a time."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from edgepose.decode import dark
from edgepose.decode.topdown import TopDownDecoder, refine_dark
from edgepose.preprocess import heatmap_to_image


def mmpose_blurred(hm: np.ndarray, kernel: int) -> np.ndarray:
    """mmpose gaussian_blur of one map, before its rescale: zero padding, cv2.GaussianBlur."""
    border = (kernel - 1) // 2
    padded = np.zeros((hm.shape[0] + 2 * border, hm.shape[1] + 2 * border), np.float32)
    padded[border:border + hm.shape[0], border:border + hm.shape[1]] = hm
    blurred = cv2.GaussianBlur(padded, (kernel, kernel), 0)
    return blurred[border:border + hm.shape[0], border:border + hm.shape[1]]


def mmpose_dark(hm: np.ndarray, x: float, y: float, kernel: int) -> tuple[float, float]:
    """mmpose refine_keypoints_dark for one keypoint, in its float32 arithmetic."""
    blurred = mmpose_blurred(hm, kernel)
    blurred = blurred * (np.float32(hm.max()) / blurred.max())
    log = np.log(np.maximum(blurred, np.float32(1e-10)))
    xi, yi = int(x), int(y)
    height, width = hm.shape
    if not (1 < xi < width - 2 and 1 < yi < height - 2):
        return x, y
    v = lambda dy, dx: log[yi + dy, xi + dx]  # noqa: E731
    dx = 0.5 * (v(0, 1) - v(0, -1))
    dy = 0.5 * (v(1, 0) - v(-1, 0))
    dxx = 0.25 * (v(0, 2) - 2 * v(0, 0) + v(0, -2))
    dyy = 0.25 * (v(2, 0) - 2 * v(0, 0) + v(-2, 0))
    dxy = 0.25 * (v(1, 1) - v(-1, 1) - v(1, -1) + v(-1, -1))
    if dxx * dyy - dxy ** 2 == 0:
        return x, y
    offset = -np.linalg.inv(np.array([[dxx, dxy], [dxy, dyy]])) @ np.array([dx, dy])
    return x + float(offset[0]), y + float(offset[1])


def blob(height, width, mx, my, sigma=2.0, amplitude=1.0):
    yy, xx = np.mgrid[0:height, 0:width]
    return (amplitude * np.exp(-((xx - mx) ** 2 + (yy - my) ** 2) / (2 * sigma ** 2))
            ).astype(np.float32)


def argmax_xy(maps: np.ndarray) -> np.ndarray:
    flat = maps.reshape(len(maps), -1)
    index = flat.argmax(axis=1)
    return np.stack([index % maps.shape[2], index // maps.shape[2]], axis=1).astype(np.float32)


@pytest.mark.parametrize("kernel", [3, 5, 7, 11, 17])
def test_patch_blur_equals_opencvs_whole_map_blur(kernel):
    rng = np.random.default_rng(kernel)
    maps = rng.normal(0.3, 1.0, size=(40, 20, 16)).astype(np.float32)
    # Peaks everywhere the taps fit, the map's edges included.
    x = rng.integers(2, 16 - 2, size=40)
    y = rng.integers(2, 20 - 2, size=40)
    x[:4], y[:4] = (2, 13, 2, 13), (2, 17, 17, 2)
    taps, _ = dark._patch_taps(maps, np.arange(40), x, y, kernel)
    for m in range(40):
        whole = mmpose_blurred(maps[m], kernel)
        expected = whole[y[m] + dark._TAPS[:, 0], x[m] + dark._TAPS[:, 1]]
        # float32 OpenCV against float64: rounding only.
        np.testing.assert_allclose(taps[m], expected, rtol=0, atol=2e-6 * np.abs(maps[m]).max())


def test_blur_weights_are_the_ones_gaussianblur_applies():
    # A unit impulse blurred by OpenCV is the outer product of its float32 weights,
    # each product rounded once to float32.
    for kernel in (3, 5, 9, 11, 17, 25):
        impulse = np.zeros((kernel, kernel), np.float32)
        impulse[kernel // 2, kernel // 2] = 1
        blurred = cv2.GaussianBlur(impulse, (kernel, kernel), 0, borderType=cv2.BORDER_CONSTANT)
        weights = dark.blur_weights(kernel)
        assert weights.dtype == np.float64
        np.testing.assert_array_equal(weights, weights.astype(np.float32))
        np.testing.assert_array_equal(blurred, np.outer(weights, weights).astype(np.float32))


@pytest.fixture(params=["patch", "whole map"])
def dark_path(request, monkeypatch):
    """Run the fast path in chunks of 16 maps, or send every map through mmpose's
    whole-map path (as if no patch were clear of the clamp), in chunks of 64."""
    if request.param == "patch":
        monkeypatch.setattr(dark, "_PATCH_CHUNK", 16)
        # Bright maps must all take the patch: the whole-map path would give the same
        # answer, so only this sees the fast path lost.
        monkeypatch.setattr(dark, "_whole_map_logs", None)
    else:
        patch_taps = dark._patch_taps

        def nothing_clear(*args):
            taps, _ = patch_taps(*args)
            return taps, np.zeros(len(taps), dtype=bool)

        monkeypatch.setattr(dark, "_patch_taps", nothing_clear)
    return request.param


@pytest.mark.parametrize("kernel", [5, 11, 17])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_refine_dark_matches_mmpose_on_noisy_blobs_anywhere(kernel, seed, dark_path):
    rng = np.random.default_rng(seed)
    count, height, width = 150, 64, 48  # more than one chunk on either path
    maps = np.stack([blob(height, width, rng.uniform(-1, width), rng.uniform(-1, height),
                          sigma=rng.uniform(1.0, 3.0))
                     + rng.uniform(0, 0.05, size=(height, width)).astype(np.float32)
                     for _ in range(count)])
    coords = argmax_xy(maps)
    expected = np.array([mmpose_dark(maps[m], *coords[m], kernel) for m in range(count)])
    refined = refine_dark(coords[None].copy(), maps[None], kernel)[0]
    np.testing.assert_allclose(refined, expected, rtol=0, atol=1e-4)
    assert np.any(np.abs(expected - coords) > 0.05)  # the step did move points


def test_faint_maps_go_through_mmpose_whole_map_path_beside_bright_ones():
    # Faint maps whose blurred values fall near mmpose's 1e-10 clamp once rescaled
    # interleaved with ordinary ones: each must get its own map's answer.
    rng = np.random.default_rng(7)
    height, width = 32, 32
    # 5e-10: the centre tap blurs to ~2.5e-10, the outer ones under 2e-10.
    amplitudes = [1.0, 1.8e-10, 0.5, 3e-10, 1.0, 1e-9, 2.0, 1.5e-10, 5e-10]
    maps = np.stack([blob(height, width, rng.uniform(6, 26), rng.uniform(6, 26),
                          amplitude=a) for a in amplitudes])
    # A floor of tiny noise far below the faint peaks' tails: their outer taps
    # clamp after the rescale in mmpose, the fast path's test must notice.
    maps += rng.uniform(0, 1e-12, size=maps.shape).astype(np.float32)
    coords = argmax_xy(maps)
    expected = np.array([mmpose_dark(maps[m], *coords[m], 11) for m in range(len(maps))])
    _, reliable = dark._patch_taps(maps, np.arange(len(maps)), coords[:, 0].astype(int),
                                   coords[:, 1].astype(int), 11)
    assert not reliable[[1, 3, 7, 8]].any() and reliable[[0, 2, 4, 6]].all()
    refined = refine_dark(coords[None].copy(), maps[None], 11)[0]
    np.testing.assert_allclose(refined, expected, rtol=0, atol=1e-4)


def test_a_large_value_in_the_patch_keeps_a_faint_peak_off_the_fast_path():
    # A faint peak's taps are ~5e-10, above the 2e-10 line; a 1e-3 value in the
    # patch (at its corner, which no tap's blur reaches) makes float32 rounding of
    # the blur, mmpose's, larger than that: the clamp may bite, the whole-map path
    # must decide.
    height, width = 24, 24
    faint = blob(height, width, 12.2, 11.7, amplitude=1e-9)
    faint[19, 19] = 1e-3
    taps, reliable = dark._patch_taps(faint[None], np.array([0]), np.array([12]),
                                      np.array([12]), 11)
    assert taps.min() > 2e-10 and not reliable[0]
    plain = blob(height, width, 12.2, 11.7, amplitude=1e-9)
    assert dark._patch_taps(plain[None], np.array([0]), np.array([12]), np.array([12]),
                            11)[1][0]
    coords = np.array([[[12.0, 12.0]]], np.float32)
    refine_dark(coords, faint[None, None], 11)
    np.testing.assert_allclose(coords[0, 0], mmpose_dark(faint, 12.0, 12.0, 11), atol=1e-4)


def test_negative_and_flat_maps_with_given_coords_follow_mmpose():
    # refine_dark takes any coords: on maps with no positive value mmpose rescales by
    # a negative or undefined factor; the whole-map path reproduces it or stays put.
    height, width = 20, 20
    maps = np.stack([np.full((height, width), -2.0, np.float32),
                     np.zeros((height, width), np.float32),
                     blob(height, width, 9.6, 10.3) - 3.0])
    coords = np.tile(np.float32([10.0, 10.0]), (3, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no log-of-zero warnings from maps set aside
        refined = refine_dark(coords[None].copy(), maps[None], 11)[0]
    for m in range(3):
        with np.errstate(divide="ignore", invalid="ignore"):
            x, y = mmpose_dark(maps[m], 10.0, 10.0, 11)
        if np.isfinite([x, y]).all():
            np.testing.assert_allclose(refined[m], (x, y), atol=1e-4)
        else:
            np.testing.assert_array_equal(refined[m], (10.0, 10.0))


def test_the_decoder_sends_faint_maps_through_the_whole_map_path_too():
    # TopDownDecoder hands refine_dark_maps its maxima; a faint map needs them.
    height, width = 32, 32
    maps = np.stack([blob(height, width, 14.3, 15.6), blob(height, width, 9.7, 20.2,
                                                            amplitude=2e-10)])
    centers = np.float32([[100, 100]])
    scales = np.float32([[1.0, 1.0]])
    xy, _ = TopDownDecoder("dark", 11).decode(maps[None], centers, scales)
    coords = argmax_xy(maps)
    expected = np.array([mmpose_dark(maps[m], *coords[m], 11) for m in range(2)])
    np.testing.assert_allclose(xy[0], heatmap_to_image(expected[None], centers, scales,
                                                       (width, height))[0], atol=1e-3)
    assert np.abs(expected[1] - coords[1]).max() > 0.05  # the faint map's step counts
