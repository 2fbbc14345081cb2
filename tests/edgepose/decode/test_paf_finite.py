"""PafDecoder refuses NaN/inf heatmaps without a pass of its own: the peak search reads
every value of the part maps (its row maxima and minimum), the background channel is
checked apart. Each case puts one bad value where a partial read would miss it."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.decode import paf_peaks
from edgepose.decode.paf import ImageMaps, PafDecoder, PafParams, find_peaks
from edgepose.errors import DecodeError
from edgepose.keypoints import COCO18

K = COCO18.num_keypoints


def _maps(size=(20, 30)):
    rng = np.random.default_rng(1)
    pafs = rng.uniform(-0.5, 0.5, size=(38, *size)).astype(np.float32)
    heatmaps = rng.uniform(0, 0.05, size=(K + 1, *size)).astype(np.float32)
    heatmaps[:, 5, 7] = 0.9  # a peak in every part: the search does real work
    return pafs, heatmaps


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("channel, y, x", [(0, 0, 0), (7, 19, 29), (17, 10, 3), (K, 12, 8)],
                         ids=["first part, corner", "a part, last pixel", "last part",
                              "background"])
def test_a_bad_heatmap_value_anywhere_is_refused_with_its_location(value, channel, y, x):
    pafs, heatmaps = _maps()
    heatmaps[channel, y, x] = value
    with pytest.raises(DecodeError, match=rf"^heatmaps hold 1 NaN/inf values \(first at "
                                          rf"channel {channel}, y={y}, x={x}\)"):
        PafDecoder(COCO18).decode(pafs, heatmaps, 100)


def test_a_bad_value_in_a_later_band_of_a_tall_map_is_refused(monkeypatch):
    # Bands of 16 rows: the bad value sits in the last band, far below any peak.
    monkeypatch.setattr(paf_peaks, "_BAND_PIXELS", 16 * 30)
    pafs, heatmaps = _maps(size=(70, 30))
    heatmaps[3, 69, 29] = -np.inf
    with pytest.raises(DecodeError, match=r"first at channel 3, y=69, x=29\)"):
        PafDecoder(COCO18).decode(pafs, heatmaps, 100)


def test_find_peaks_alone_refuses_a_bad_map():
    heatmaps = _maps()[1][:K]
    heatmaps[4, 2, 2] = np.nan
    with pytest.raises(DecodeError, match=r"first at channel 4, y=2, x=2\)"):
        find_peaks(heatmaps, PafParams())


def test_unchecked_image_maps_with_a_bad_value_are_refused_by_the_search():
    # check=False (resize_maps_to_image's) skips the per-channel check; the search
    # still refuses, naming the channel it was reading.
    network = np.full((K, 4, 5), 0.01, np.float32)
    network[6, 1, 1] = np.nan
    maps = ImageMaps(network, 8, (40, 32), (40, 32), name="heatmaps", check=False)
    with pytest.raises(DecodeError, match=r"^heatmaps hold NaN/inf values \(channel 6\)"):
        find_peaks(maps, PafParams())


def test_finite_heatmaps_are_not_refused():
    pafs, heatmaps = _maps()
    xy, scores, _ = PafDecoder(COCO18).decode(pafs, heatmaps, 100)
    assert np.isfinite(xy).all() and np.isfinite(scores).all()


def test_the_decoder_does_not_read_the_part_heatmaps_a_second_time(monkeypatch):
    # The finiteness of the part maps comes with the peak search; a whole-array check
    # would read 18 more megabytes a frame at 368x656.
    from edgepose.decode import maps, paf, paf_image_maps

    seen = []
    real = maps.all_finite
    for module in (maps, paf, paf_image_maps):  # check_finite's, the decoder's, ImageMaps'
        monkeypatch.setattr(module, "all_finite",
                            lambda array: seen.append(array.shape) or real(array))
    pafs, heatmaps = _maps()
    PafDecoder(COCO18).decode(pafs, heatmaps, 100)
    assert (38, 20, 30) in seen and (1, 20, 30) in seen  # the PAFs, the background
    assert not [shape for shape in seen if shape[0] in (K, K + 1)]


@pytest.mark.parametrize("heatmaps, match", [
    (np.zeros((20, 30), np.float32), r"^heatmaps must be 3-D"),
    (np.zeros((K + 1, 20, 30), np.int32), r"^heatmaps must be a float array"),
])
def test_heatmaps_that_are_not_maps_are_named_in_the_refusal(heatmaps, match):
    with pytest.raises(DecodeError, match=match):
        PafDecoder(COCO18).decode(_maps()[0], heatmaps, 100)
