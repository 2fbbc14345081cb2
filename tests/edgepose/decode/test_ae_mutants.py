"""Tests that kill mutants of edgepose/decode/ae.py the other AE tests let survive (issue 25 §5).

Expected values come from the rules of HigherHRNet's lib/core/group.py (MaxPool2d NMS,
torch.topk, the ±0.25 adjust, refine's argmax of heatmap − round(‖tag − mean‖)) or
are computed by hand in each test; none is read off the code under test.
"""

import warnings

import numpy as np
import pytest

from edgepose.decode.ae import AeDecoder, AeParams, adjust, nms, refine, top_k
from edgepose.errors import DecodeError, InputError


def _maps(k=2, h=5, w=6, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).random((k, h, w)).astype(dtype)


# ---------------------------------------------------------------------------
# nms
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kernel", [2, 4, 0, -1, True, 3.0])
def test_nms_refuses_a_kernel_that_is_not_a_positive_odd_integer(kernel):
    # MaxPool2d(kernel, 1, kernel // 2) keeps the map's size only for odd kernels.
    with pytest.raises(InputError, match="positive odd integer"):
        nms(_maps(), kernel)


def test_nms_kernel_1_keeps_every_pixel():
    # A 1 x 1 window holds only the pixel itself: each pixel is its window's maximum.
    maps = _maps()
    out = nms(maps, 1)
    np.testing.assert_array_equal(out, maps)
    assert out.dtype == np.float32


def test_nms_names_the_heatmaps_in_its_refusal():
    with pytest.raises(DecodeError, match="^heatmaps must be 3-D"):
        nms(np.zeros((4, 4), np.float32), 3)


# ---------------------------------------------------------------------------
# top_k
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("k", [0, -1, True, 2.0])
def test_top_k_refuses_a_k_that_is_not_a_positive_integer(k):
    with pytest.raises(InputError, match="positive integer"):
        top_k(_maps(), k)


def test_top_k_of_one_is_the_maximum():
    maps = np.zeros((1, 3, 4), np.float32)
    maps[0, 2, 1] = 0.9
    maps[0, 0, 3] = 0.5
    xy, values, counts = top_k(maps, 1)
    assert xy.tolist() == [[[1, 2]]]
    assert values.tolist() == [[np.float32(0.9)]]
    assert counts.tolist() == [1]


def test_top_k_keeps_the_maps_dtype_and_counts_are_int64():
    # torch.topk returns values in the tensor's dtype; counts are documented int64.
    for dtype in (np.float32, np.float64):
        xy, values, counts = top_k(_maps(dtype=dtype), 3, 0.5)
        assert values.dtype == dtype
        assert counts.dtype == np.int64
        assert xy.dtype == np.int64


def test_top_k_names_the_maps_in_its_refusal():
    with pytest.raises(DecodeError, match="^maps must be 3-D"):
        top_k(np.zeros((4, 4), np.float32), 3)


# ---------------------------------------------------------------------------
# refine (HigherHRNet lib/core/group.py HeatmapParser.refine)
# ---------------------------------------------------------------------------

def _one_person(h=5, w=5, dtype=np.float32):
    """Keypoint 0 found at (1, 1); keypoint 1 missing, its heatmap's best pixel (3, 2).

    All tags 0, so the rounded tag distance is 0 everywhere and refine takes the
    heatmap's argmax. Around (3, 2): right 0.2 > left 0.1 (x + 0.25), down 0.0 <
    up 0.3 (y − 0.25): the refined keypoint is (3 + 0.5 + 0.25, 2 + 0.5 − 0.25).
    """
    heatmaps = np.zeros((2, h, w), dtype)
    heatmaps[0, 1, 1] = 0.8
    heatmaps[1, 2, 3] = 0.7
    heatmaps[1, 2, 4] = 0.2
    heatmaps[1, 2, 2] = 0.1
    heatmaps[1, 1, 3] = 0.3
    tags = np.zeros((2, h, w, 1), dtype)
    xy = np.array([[[1.0, 1.0], [0.0, 0.0]]])
    values = np.array([[0.8, 0.0]])
    return xy, values, heatmaps, tags


def test_refine_places_the_missing_keypoint_at_a_quarter_offset():
    xy, values, heatmaps, tags = _one_person()
    out_xy, out_values = refine(xy, values, heatmaps, tags)
    assert out_xy.dtype == np.float64
    assert out_xy[0, 1].tolist() == [3.75, 2.25]
    assert out_values[0, 1] == pytest.approx(0.7)
    assert out_xy[0, 0].tolist() == [1.0, 1.0]


def test_refine_of_integer_pixels_still_adds_the_quarter_offsets():
    # Without adjust the grouped keypoints are integer pixels; refine returns float64 xy.
    xy, values, heatmaps, tags = _one_person()
    out_xy, _ = refine(xy.astype(np.int64), values, heatmaps, tags)
    assert out_xy.dtype == np.float64
    assert out_xy[0, 1].tolist() == [3.75, 2.25]


@pytest.mark.parametrize("where", [-100.0, 1000.0, 5.0])
def test_refine_ignores_the_xy_of_missing_keypoints(where):
    # Only found keypoints' pixels give the mean tag; a missing keypoint's xy is not read.
    xy, values, heatmaps, tags = _one_person()
    xy[0, 1] = where
    out_xy, out_values = refine(xy, values, heatmaps, tags)
    assert out_xy[0, 1].tolist() == [3.75, 2.25]
    assert out_values[0, 1] == pytest.approx(0.7)


def test_refine_on_a_map_narrower_than_four_pixels():
    # 8 x 3 maps. Keypoint 1's best pixel (2, 2): right (clamped: itself, 0.7) > left
    # 0.2 → x + 0.25; down 0 = up 0 → tie → y − 0.25.
    heatmaps = np.zeros((2, 8, 3), np.float32)
    heatmaps[0, 1, 1] = 0.8
    heatmaps[1, 2, 2] = 0.7
    heatmaps[1, 2, 1] = 0.2
    tags = np.zeros((2, 8, 3, 1), np.float32)
    xy = np.array([[[1.0, 1.0], [0.0, 0.0]]])
    values = np.array([[0.8, 0.0]])
    out_xy, out_values = refine(xy, values, heatmaps, tags)
    assert out_xy[0, 1].tolist() == [2.75, 2.25]
    assert out_values[0, 1] == pytest.approx(0.7)


def test_refine_leaves_a_person_without_keypoints_alone_without_warnings():
    import warnings
    xy, values, heatmaps, tags = _one_person()
    # Pixel (0, 0) of both maps > 0: a person whose mean tag were taken (NaN) would get
    # keypoints there.
    heatmaps[:, 0, 0] = 0.05
    xy = np.concatenate([xy, np.zeros((1, 2, 2))])
    values = np.concatenate([values, np.zeros((1, 2))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out_xy, out_values = refine(xy, values, heatmaps, tags)
    assert out_xy[1].tolist() == [[0, 0], [0, 0]] and out_values[1].tolist() == [0, 0]
    assert out_xy[0, 1].tolist() == [3.75, 2.25]


def test_refine_takes_the_mean_tag_and_distance_in_float32_like_the_sources():
    # HigherHRNet: tags are float32 (torch), np.mean of float32 tags is float32, and
    # np.linalg.norm of the float32 difference is float32. Found tags 0, 0, 1: mean
    # m = float32(1/3) = 0xAAAAAB·2**-25 (odd mantissa), so p = m + 0.5 + 2**-25 is a
    # float32 whose float32 difference p − m rounds (tie to even) to exactly 0.5:
    # round(0.5) = 0, score 0.9 − 0. In float64 the distance is above 0.5 (round 1,
    # score −0.1) and the pixel whose tag equals m (score 0.5) would win instead.
    m = np.float32(1) / np.float32(3)
    p = np.float32(np.float64(m) + 0.5 + 2.0 ** -25)
    assert np.float64(p) == np.float64(m) + 0.5 + 2.0 ** -25  # exact float32
    assert np.rint(np.abs(p - m)) == 0 and np.rint(np.float64(p) - 1 / 3) == 1
    k, h, w = 4, 5, 5
    heatmaps = np.zeros((k, h, w), np.float32)
    tags = np.zeros((k, h, w, 1), np.float32)
    for joint in range(3):
        heatmaps[joint, 0, joint] = 0.8
    tags[2, 0, 2] = 1.0
    heatmaps[3, 1, 1] = 0.5
    tags[3, 1, 1] = m
    heatmaps[3, 3, 3] = 0.9
    tags[3, 3, 3] = p
    tags[3, heatmaps[3] == 0] = 10.0
    xy = np.array([[[0, 0], [1, 0], [2, 0], [0, 0]]], np.float64)
    values = np.array([[0.8, 0.8, 0.8, 0.0]], np.float32)
    out_xy, out_values = refine(xy, values, heatmaps, tags)
    # (3, 3): right 0 = left 0 and down 0 = up 0: ties move −0.25 each.
    assert out_xy[0, 3].tolist() == [3.25, 3.25]
    assert out_values[0, 3] == np.float32(0.9)


def test_refine_keeps_float64_heatmap_values_apart():
    # float64 heatmaps with float32 tags: the two candidate values differ below float32's
    # resolution; the later pixel is higher and must win (argmax of heatmap − 0).
    xy, values, heatmaps, tags = _one_person(dtype=np.float64)
    tags = tags.astype(np.float32)
    heatmaps[1] = 0
    heatmaps[1, 1, 1] = 0.5
    heatmaps[1, 3, 3] = 0.5 + 1e-12
    assert np.float32(heatmaps[1, 1, 1]) == np.float32(heatmaps[1, 3, 3])
    out_xy, out_values = refine(xy, values, heatmaps, tags)
    assert out_xy[0, 1].tolist() == [3.25, 3.25]
    assert out_values[0, 1] == 0.5 + 1e-12


def test_refine_names_its_maps_in_its_refusals():
    xy, values, heatmaps, tags = _one_person()
    with pytest.raises(DecodeError, match="^heatmaps must be 3-D"):
        refine(xy, values, heatmaps[0], tags)
    with pytest.raises(DecodeError, match="^tags must be 4-D"):
        refine(xy, values, heatmaps, tags[..., 0])


# ---------------------------------------------------------------------------
# adjust (HigherHRNet HeatmapParser.adjust)
# ---------------------------------------------------------------------------

def _adjust_case():
    """Keypoint 0 found at pixel (3, 2) of a 5 x 6 map; keypoint 1 missing.

    Neighbours of (3, 2): right 0.4 > left 0.1 → x + 0.25; down 0.2 > up 0.1 → y + 0.25.
    """
    heatmaps = np.zeros((2, 5, 6), np.float32)
    heatmaps[0, 2, 3] = 0.9
    heatmaps[0, 2, 4] = 0.4
    heatmaps[0, 2, 2] = 0.1
    heatmaps[0, 3, 3] = 0.2
    heatmaps[0, 1, 3] = 0.1
    xy = np.array([[[3, 2], [0, 0]]], np.int64)
    values = np.array([[0.9, 0.0]], np.float32)
    return xy, values, heatmaps


def test_adjust_of_integer_pixels_returns_float_quarter_offsets():
    xy, values, heatmaps = _adjust_case()
    out = adjust(xy, values, heatmaps)
    assert out.dtype == np.float64
    assert out[0, 0].tolist() == [3.75, 2.75]
    assert out[0, 1].tolist() == [0, 0]


@pytest.mark.parametrize("missing", [(-100, -100), (1000, 1000), (7, -3), (-3, 7)])
def test_adjust_leaves_missing_keypoints_as_they_are(missing):
    xy, values, heatmaps = _adjust_case()
    xy[0, 1] = missing
    out = adjust(xy, values, heatmaps)
    assert out[0, 1].tolist() == list(missing)
    assert out[0, 0].tolist() == [3.75, 2.75]


def test_adjust_names_the_heatmaps_in_its_refusal():
    xy, values, heatmaps = _adjust_case()
    with pytest.raises(DecodeError, match="^heatmaps must be 3-D"):
        adjust(xy, values, heatmaps[0])


# ---------------------------------------------------------------------------
# AeDecoder
# ---------------------------------------------------------------------------

def test_decoder_refuses_params_that_are_not_ae_params_naming_their_type():
    with pytest.raises(InputError, match="got str"):
        AeDecoder("higherhrnet")


def test_decoder_refuses_tags_with_no_dimensions():
    with pytest.raises(DecodeError, match="D = 0"):
        AeDecoder(AeParams(joint_order=(0, 1))).decode(np.zeros((2, 4, 4), np.float32),
                                                        np.zeros((2, 4, 4, 0), np.float32))


def test_person_score_is_the_float32_mean_of_the_scores():
    # The sources: ``i[:, 2].mean()`` over a person's float32 scores (numpy sums float32
    # in float32). Values whose float32 mean differs from the float64 mean rounded to
    # float32 are searched for, then put as the only peak of each keypoint's map (all
    # tags 0: one person, every keypoint found, nothing to refine).
    k = 3
    rng = np.random.default_rng(1)
    for _ in range(10000):
        peaks = rng.uniform(0.2, 1.0, k).astype(np.float32)
        if peaks.mean() != np.float32(peaks.astype(np.float64).mean()):
            break
    else:
        pytest.fail("no float32 example found")
    heatmaps = np.zeros((k, 9, 9), np.float32)
    for joint in range(k):
        heatmaps[joint, 2 + 2 * joint, 4] = peaks[joint]
    tags = np.zeros((k, 9, 9), np.float32)
    params = AeParams(joint_order=tuple(range(k)), nms_kernel=3)
    xy, scores, person_scores = AeDecoder(params).decode(heatmaps, tags)
    assert scores.tolist() == [peaks.tolist()]
    assert person_scores.tolist() == [peaks.mean()]


@pytest.mark.parametrize("dtype, threshold", [(np.float16, 1e5), (np.float32, 1e300),
                                              (np.float16, -1e5)])
def test_above_a_threshold_beyond_the_dtype_warns_nothing(dtype, threshold):
    # The threshold overflows the maps' dtype on the way to the comparison: that is
    # expected, and must not reach the user as a RuntimeWarning.
    from edgepose.decode.ae_match import above

    values = np.array([0.0, 1.0, -1.0, np.inf, -np.inf], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = above(values, threshold)
    assert result.tolist() == (values.astype(np.float64) > threshold).tolist()


def test_a_joint_order_that_is_no_permutation_names_the_range():
    from edgepose.decode.ae_match import check_joint_order

    with pytest.raises(DecodeError, match=r"^the maps have 17 keypoints but AeParams.joint_order "
                                          r"\(0, 1\) is not a permutation of 0\.\.16; pass "
                                          r"joint_order=tuple\(range\(17\)\)"):
        check_joint_order((0, 1), 17)
