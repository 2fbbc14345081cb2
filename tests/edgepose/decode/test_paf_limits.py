"""The PAF decoder's bounds: peaks per part, maps resized one channel at a time, frame size.

Each bound must leave the published results alone where it does not bite: the
capped decoder is compared with the uncapped loop reference, and the channel-at-a-
time path with the whole-image path it replaced (kept below as a reference) and
with SciPy's peaks computed by brute force.
"""

import dataclasses

import cv2
import numpy as np
import pytest

from edgepose.decode.paf import (
    ImageMaps,
    PafDecoder,
    PafParams,
    find_peaks,
    resize_maps_to_image,
)
from edgepose.errors import DecodeError, InputError
from edgepose.keypoints import COCO18
from edgepose.preprocess import MAX_FRAME_PIXELS, check_frame

from tests.edgepose.decode import paf_reference as ref  # noqa: E402 - after the code under test

K = COCO18.num_keypoints
PRESETS = {"python": PafParams.python(), "cmu": PafParams.cmu()}
STRIDE = 8
K_PARTS = COCO18.num_keypoints


def _uncapped(params):
    return dataclasses.replace(params, max_peaks_per_part=10 ** 9)


def _scipy_peaks(heatmap, params):
    """(x, y) of the port's peaks by brute force: SciPy's smoothing, 4 neighbours, 0 outside."""
    scipy_ndimage = pytest.importorskip("scipy.ndimage")
    smooth = np.pad(scipy_ndimage.gaussian_filter(heatmap.astype(np.float64), params.sigma,
                                                  truncate=params.truncate), 1)
    centre = smooth[1:-1, 1:-1]
    peak = (centre > params.peak_threshold) & (centre >= smooth[:-2, 1:-1]) \
        & (centre >= smooth[2:, 1:-1]) & (centre >= smooth[1:-1, :-2]) \
        & (centre >= smooth[1:-1, 2:])
    y, x = np.nonzero(peak)
    return np.stack([x, y], axis=1)


def _old_resize(maps, valid, image):
    """The whole-image path this module replaced: every channel at image size at once."""
    out = np.empty((maps.shape[0], image[1], image[0]), np.float32)
    for c, channel in enumerate(maps):
        up = cv2.resize(channel, (channel.shape[1] * STRIDE, channel.shape[0] * STRIDE),
                        interpolation=cv2.INTER_CUBIC)
        out[c] = cv2.resize(up[:valid[1], :valid[0]], image, interpolation=cv2.INTER_CUBIC)
    return out


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("people, seed", [
    (1, 0),    # one person: a peak or two per part
    (12, 1),   # a crowd, still far below 127 peaks per part
    (40, 2),   # a big crowd with parts missing: the most peaks a real frame shows
])
def test_the_cap_changes_nothing_below_it(people, seed, preset):
    params = PRESETS[preset]
    scene = ref.make_scene(COCO18, people, (184, 328), seed, heights=(40, 120), sigma=3.5,
                           paf_width=4.0, missing=0.15, margin=0.3, noise=0.02)
    peaks, rows = PafDecoder(COCO18, params).group(scene.pafs, scene.heatmaps, 184)
    assert 0 < np.diff(peaks.starts).max() < params.max_peaks_per_part
    free_peaks, free_rows = PafDecoder(COCO18, _uncapped(params)).group(
        scene.pafs, scene.heatmaps, 184)
    np.testing.assert_array_equal(peaks.xy, free_peaks.xy)
    np.testing.assert_array_equal(rows, free_rows)
    # And the uncapped decoder is the published algorithm (the loop reference has no cap).
    ref_peaks, ref_rows = ref.decode_reference(scene.pafs, scene.heatmaps, COCO18, 184,
                                               _uncapped(params))
    np.testing.assert_array_equal(peaks.xy, np.reshape(
        [p[:2] for part in ref_peaks for p in part], (-1, 2)))
    np.testing.assert_array_equal(rows[:, :K], ref_rows[:, :K])  # the same parts per person
    np.testing.assert_array_equal(rows[:, K + 1], ref_rows[:, K + 1])  # part counts
    np.testing.assert_allclose(rows[:, K], ref_rows[:, K], rtol=0, atol=1e-6)


def _dots(count, size, rng):
    """One heatmap of `count` separated Gaussian dots of distinct heights in (0.2, 1)."""
    heatmap = np.zeros(size, np.float32)
    side = int(np.ceil(np.sqrt(count)))
    step = (size[0] // side, size[1] // side)
    patch = np.exp(-(np.arange(-4, 5) ** 2)[:, None] / 4.5 - (np.arange(-4, 5) ** 2) / 4.5)
    for n, height in enumerate(rng.permutation(np.linspace(0.2, 1.0, count))):
        cy, cx = (n // side) * step[0] + step[0] // 2, (n % side) * step[1] + step[1] // 2
        heatmap[cy - 4:cy + 5, cx - 4:cx + 5] += height * patch
    return heatmap


@pytest.mark.parametrize("heatmap, why", [
    # Taller than a band of rows, so the cap is also applied across bands.
    (_dots(400, (600, 200), np.random.default_rng(0)), "distinct"),  # 400 peaks, all different
    (np.full((300, 40), 0.5, np.float32), "plateau"),                # 12,000 tied peaks
])
def test_many_peaks_keep_the_strongest_up_to_the_cap(heatmap, why):
    params = PafParams()
    expected = _scipy_peaks(heatmap, params)
    assert len(expected) > params.max_peaks_per_part, why
    scores = heatmap[expected[:, 1], expected[:, 0]].astype(np.float64)
    # Highest first, ties in row-major order, then listed row-major as every part is.
    kept = np.sort(np.argsort(-scores, kind="stable")[:params.max_peaks_per_part])
    peaks = find_peaks(np.stack([heatmap, np.zeros_like(heatmap)]), params)
    np.testing.assert_array_equal(np.diff(peaks.starts), [params.max_peaks_per_part, 0])
    np.testing.assert_array_equal(peaks.xy, expected[kept])
    np.testing.assert_array_equal(peaks.scores, scores[kept])


def test_a_frame_full_of_peaks_is_grouped_within_the_cap():
    rng = np.random.default_rng(3)
    heatmaps = np.stack([_dots(300, (200, 300), rng) for _ in range(K)])
    pafs = rng.uniform(-1, 1, (2 * len(COCO18.skeleton), 200, 300)).astype(np.float32)
    decoder = PafDecoder(COCO18, PafParams.cmu())
    peaks, rows = decoder.group(pafs, heatmaps, 200)
    assert np.diff(peaks.starts).tolist() == [127] * K
    assert rows.shape[1] == K + 2 and (rows[:, :K] < len(peaks)).all()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_channel_at_a_time_equals_the_whole_image_path(preset):
    # A 1000x800 frame fitted into a 368x656 input: 46x82 maps, 460x368 of them valid.
    params = PRESETS[preset]
    valid, image = (460, 368), (1000, 800)
    scene = ref.make_scene(COCO18, 6, (46, 58), 5, heights=(10, 30), sigma=1.0,
                           paf_width=1.0, missing=0.1, margin=0.2, noise=0.02)
    pafs = np.zeros((38, 46, 82), np.float32)
    heatmaps = np.zeros((19, 46, 82), np.float32)
    pafs[:, :, :58], heatmaps[:, :, :58] = scene.pafs, scene.heatmaps
    whole_pafs, whole_heatmaps = _old_resize(pafs, valid, image), _old_resize(heatmaps, valid,
                                                                               image)
    decoder = PafDecoder(COCO18, params)
    old_peaks, old_rows = decoder.group(whole_pafs, whole_heatmaps, image[1])
    new_peaks, new_rows = decoder.group(ImageMaps(pafs, STRIDE, valid, image),
                                        ImageMaps(heatmaps, STRIDE, valid, image), image[1])
    assert len(new_rows) >= 3
    for field in ("xy", "scores", "parts", "starts"):
        np.testing.assert_array_equal(getattr(new_peaks, field), getattr(old_peaks, field))
    np.testing.assert_array_equal(new_rows, old_rows)
    for k in (0, 1, 4):  # the brute-force peaks of a few parts, as a check on both
        np.testing.assert_array_equal(new_peaks.xy[new_peaks.of_part(k)],
                                      _scipy_peaks(whole_heatmaps[k], params))


def test_image_maps_are_the_resized_channels_bit_for_bit():
    maps = np.random.default_rng(0).random((5, 12, 20)).astype(np.float32)
    lazy = ImageMaps(maps, STRIDE, (150, 90), (211, 127))
    whole = _old_resize(maps, (150, 90), (211, 127))
    assert lazy.shape == whole.shape == (5, 127, 211) and len(lazy[1:3]) == 2
    # All kept first: a channel handed out must not share the scratch the next one uses.
    channels = [lazy[c] for c in (0, 1, 2, 3, 4, 0)]
    for c, channel in zip((0, 1, 2, 3, 4, 0), channels):
        np.testing.assert_array_equal(channel, whole[c])
    np.testing.assert_array_equal(lazy[1:3][1], whole[2])
    np.testing.assert_array_equal(resize_maps_to_image(maps, STRIDE, (150, 90), (211, 127)),
                                  whole)


def _overflowing():
    # ±3e38 in a checkerboard: the cubic kernel's negative lobes overflow float32.
    return np.where(np.indices((4, 6)).sum(axis=0) % 2 == 0, 3e38, -3e38)[None].astype(
        np.float32)


@pytest.mark.parametrize("maps, match", [
    (np.full((2, 4, 6), np.nan, np.float32), r"maps hold 48 NaN/inf values \(first at channel "
                                             r"0, y=0, x=0\)"),     # NaN out of the network
    (_overflowing(), r"maps resized to the image hold NaN/inf values \(first at channel 0"),
    (np.zeros((2, 4, 6), np.int32), r"maps must be a float array"),  # not a network output
    (np.zeros((2, 3, 6), np.float32), r"cover 24x48 input pixels, less than the 30x40"),
])
def test_image_maps_refuse_what_the_decoder_would(maps, match):
    with pytest.raises(DecodeError, match=match):
        ImageMaps(maps, STRIDE, (40, 30), (80, 60))[0]


@pytest.mark.parametrize("value, match", [
    (0, r"max_peaks_per_part must be an integer >= 1, got 0"),       # nothing would be kept
    (12.5, r"max_peaks_per_part must be an integer >= 1, got 12.5"),  # not a count
    (True, r"max_peaks_per_part must be an integer >= 1, got True"),  # a flag, not a count
])
def test_the_cap_must_be_a_positive_count(value, match):
    with pytest.raises(InputError, match=match):
        PafParams(max_peaks_per_part=value)


def test_both_presets_cap_at_cmus_max_people():
    assert PafParams.python().max_peaks_per_part == PafParams.cmu().max_peaks_per_part == 127


@pytest.mark.parametrize("height, width, refused", [
    (4096, 8192, False),   # exactly the limit (2**25 pixels): accepted
    (4097, 8192, True),    # one row more
    (20000, 20000, True),  # the frame that used to end in a 56 GiB allocation
])
def test_frames_above_the_pixel_limit_are_refused_before_any_work(height, width, refused):
    assert MAX_FRAME_PIXELS == 2 ** 25
    # np.zeros maps untouched pages: even the 20000x20000 frame costs nothing here.
    frame = np.zeros((height, width, 3), np.uint8)
    if not refused:
        check_frame(frame)
        return
    with pytest.raises(InputError, match=rf"frame of {width}x{height} = {height * width} pixels "
                                         rf"is above the limit of {MAX_FRAME_PIXELS} pixels"):
        check_frame(frame)


def test_image_maps_keep_one_upsampling_buffer_and_decode_through_scratch(monkeypatch):
    # A fresh megabyte per channel costs page faults worth more than the resize: the
    # upsampled channel stays in one buffer, and the decoder hands resize a scratch
    # buffer per role instead of letting it allocate.
    maps = np.random.default_rng(1).random((4, 12, 20)).astype(np.float32)
    lazy = ImageMaps(maps, STRIDE, (150, 90), (211, 127))
    lazy[0]
    kept = lazy._upsampled
    lazy[3]
    assert lazy._upsampled is kept

    outs = []
    real = ImageMaps.resize

    def spy(self, channel, out=None):
        outs.append(out)
        return real(self, channel, out=out)

    monkeypatch.setattr(ImageMaps, "resize", spy)
    scene = ref.make_scene(COCO18, 4, (15, 20), 3, heights=(5, 12), sigma=1.0, paf_width=1.0)
    image = valid = (160, 120)
    decoder = PafDecoder(COCO18, PafParams.python())
    peaks, rows = decoder.group(ImageMaps(scene.pafs, STRIDE, valid, image),
                                ImageMaps(scene.heatmaps, STRIDE, valid, image), image[1])
    assert len(rows) >= 2 and len(outs) > K_PARTS
    assert all(out is not None for out in outs)
    assert len({out.__array_interface__["data"][0] for out in outs}) == 3  # heatmap, x, y
