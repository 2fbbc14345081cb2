"""Every decoder returns empty results of the right shapes for a frame with no people,
and refuses malformed maps, centers and scales with an edgepose error naming the
expected shapes instead of a numpy traceback."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.decode.ae import AeDecoder, AeParams
from edgepose.decode.cpm import CpmDecoder
from edgepose.decode.hourglass import HourglassDecoder
from edgepose.decode.topdown import TopDownDecoder, average_flip, get_max_preds
from edgepose.errors import DecodeError, InputError
from edgepose.keypoints import COCO17

K, H, W = 17, 16, 12


def _maps(n, k=K, h=H, w=W, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).random((n, k, h, w)).astype(dtype)


def _centers(n):
    return np.full((n, 2), 50.0)


def _scales(n):
    return np.ones((n, 2))


# ---------------------------------------------------------------------------------------------
# No people: empty results, not a crash.

@pytest.mark.parametrize("decoder, channels, scales", [
    (TopDownDecoder("none"), K, (0, 2)),        # plain argmax
    (TopDownDecoder("shift"), K, (0, 2)),       # HRNet's quarter pixel
    (TopDownDecoder("dark"), K, (0, 2)),        # DARK blurs per map: zero maps to blur
    (CpmDecoder(8), K + 1, (0, 2)),             # the background map is dropped first
    (HourglassDecoder("princeton"), K, (0, 2)),
    (HourglassDecoder("bearpaw"), K, (0, 2)),
    (HourglassDecoder("princeton"), K, (0,)),   # MPII scales, one number per person
])
def test_a_decode_of_no_people_is_empty(decoder, channels, scales):
    xy, scores = decoder.decode(_maps(0, channels), np.zeros((0, 2)), np.zeros(scales))
    assert xy.shape == (0, K, 2) and xy.dtype == np.float32
    assert scores.shape == (0, K) and scores.dtype == np.float32


def test_the_topdown_steps_take_no_people():
    coords, scores = get_max_preds(_maps(0))
    assert coords.shape == (0, K, 2) and scores.shape == (0, K)
    merged = average_flip(_maps(0), _maps(0), COCO17.flip_permutation())
    assert merged.shape == (0, K, H, W)


@pytest.mark.parametrize("params", [
    AeParams.preset("pose-ae-train"),
    AeParams.preset("higherhrnet"),
])
def test_an_ae_frame_without_peaks_has_no_people(params):
    # All maps at 0: no value above the detection threshold.
    heatmaps = np.zeros((K, H, W), np.float32)
    xy, scores, person_scores = AeDecoder(params).decode(heatmaps, np.zeros((K, H, W, 1),
                                                                            np.float32))
    assert xy.shape == (0, K, 2) and xy.dtype == np.float32
    assert scores.shape == (0, K) and scores.dtype == np.float32
    assert person_scores.shape == (0,) and person_scores.dtype == np.float32


# ---------------------------------------------------------------------------------------------
# Refusals: (decode call, error, pattern naming what was expected).

def _nan(n=2, k=K):
    maps = _maps(n, k)
    maps[1, 3, 4, 5] = np.nan
    return maps


TOP_DOWN = [TopDownDecoder("shift"), HourglassDecoder("princeton")]


@pytest.mark.parametrize("decoder", TOP_DOWN, ids=["topdown", "hourglass"])
@pytest.mark.parametrize("heatmaps, centers, scales, error, message", [
    (_maps(2)[0], _centers(2), _scales(2), DecodeError,
     r"heatmaps must be 4-D \(N, K, H, W\), got shape \(17, 16, 12\)"),  # one crop, no batch axis
    (_maps(2, dtype=np.float64).astype(np.int32), _centers(2), _scales(2), DecodeError,
     r"float array \(N, K, H, W\), got dtype int32"),                    # a quantised output
    (_maps(2) > 0.5, _centers(2), _scales(2), DecodeError,
     r"float array \(N, K, H, W\), got dtype bool"),                     # a mask, not maps
    (_maps(2, k=0), _centers(2), _scales(2), DecodeError,
     r"K, H, W >= 1 \(N, K, H, W\), got shape \(2, 0, 16, 12\)"),        # no keypoint channels
    (_maps(2, w=0), _centers(2), _scales(2), DecodeError,
     r"K, H, W >= 1"),                                                    # empty maps
    (_nan(), _centers(2), _scales(2), DecodeError,
     r"1 NaN/inf values \(first at person 1, keypoint 3, y=4, x=5\); expected finite"),
    (_maps(2), np.zeros((2, 3)), _scales(2), InputError,
     r"centers must have shape \(N, 2\)"),                                # (x, y, score) rows
    (_maps(2), _centers(1), _scales(1), DecodeError,
     r"heatmaps hold 2 people but centers hold 1"),                       # boxes of another frame
    (_maps(0), _centers(2), _scales(2), DecodeError,
     r"heatmaps hold 0 people but centers hold 2"),                       # crops skipped, boxes not
    (_maps(2), np.full((2, 2), np.nan), _scales(2), InputError,
     r"centers must be finite"),                                          # a NaN box
    (_maps(2), _centers(2), np.zeros((2, 2)), InputError,
     r"scales\[:, 0\] positive"),                                         # a zero-sized box
])
def test_top_down_decoders_refuse(decoder, heatmaps, centers, scales, error, message):
    with pytest.raises(error, match=message):
        decoder.decode(heatmaps, centers, scales)


@pytest.mark.parametrize("maps, centers, scales, error, message", [
    (_maps(2, k=1), _centers(2), _scales(2), DecodeError,
     r"keypoint maps plus a background map, got 1 channel"),   # the background alone
    (_maps(2)[0], _centers(2), _scales(2), DecodeError,
     r"belief maps must be 4-D \(N, K, H, W\)"),                # no batch axis
    (_maps(2).astype(np.int8), _centers(2), _scales(2), DecodeError,
     r"belief maps must be a float array"),                     # a quantised output
    (_nan(k=K + 1), _centers(2), _scales(2), DecodeError,
     r"NaN/inf values"),
    (_maps(2, k=K + 1), _centers(1), _scales(2), DecodeError,
     r"belief maps hold 2 people but centers hold 1; expected centers \(2, 2\)"),
    (_maps(2, k=K + 1), _centers(2), _scales(1), DecodeError,
     r"belief maps hold 2 people but scales hold 1; expected scales \(2, 2\)"),
    (_maps(2, k=K + 1), _centers(2), np.ones(2), InputError,
     r"scales must have shape \(N, 2\), got \(2,\)"),           # MPII scales are the hourglass's
])
def test_cpm_refuses(maps, centers, scales, error, message):
    with pytest.raises(error, match=message):
        CpmDecoder(8).decode(maps, centers, scales)


@pytest.mark.parametrize("heatmaps, tags, message", [
    (_maps(1), _maps(1), r"heatmaps must be 3-D \(K, H, W\), the maps of one frame, "
                         r"got shape \(1, 17, 16, 12\)"),          # a batch: AE decodes one frame
    (_maps(1)[0], _maps(1)[0][:, :8], r"tags have shape \(17, 8, 12, 1\) but heatmaps "
                                      r"\(17, 16, 12\); expected tags \(K, H, W\)"),  # unresized
    (_maps(1)[0].astype(np.int32), _maps(1)[0], r"heatmaps must be a float array "
                                                r"3-D \(K, H, W\), got dtype int32"),
    (_maps(1)[0], _maps(1)[0][..., None, None], r"tags must be 3-D \(K, H, W\) or 4-D "
                                                r"\(K, H, W, D\)"),  # one axis too many
    (_maps(1)[0], _nan()[1], r"tags hold 1 NaN/inf values \(first at \(3, 4, 5, 0\)\)"),
    (_nan()[1], _maps(1)[0], r"heatmaps hold 1 NaN/inf values"),
    (_maps(1, k=16)[0], _maps(1, k=16)[0], r"the maps have 16 keypoints but "
                                           r"AeParams\.joint_order"),  # not COCO's 17
    (np.zeros((K, 0, W), np.float32), np.zeros((K, 0, W), np.float32),
     r"heatmaps must have H, W >= 1"),
])
def test_ae_refuses(heatmaps, tags, message):
    with pytest.raises(DecodeError, match=message):
        AeDecoder().decode(heatmaps, tags)
