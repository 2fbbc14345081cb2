"""AE grouping against an independent loop reference (tests/edgepose/decode/ae_reference.py).

The reference follows the algorithm one keypoint, detection and person at a
time; the vectorised decoder must return exactly its people on synthetic
heatmap + tag maps, for the pose-ae-train and the HigherHRNet presets. The
presets' constants are checked against numbers read off the sources.
"""

import dataclasses
import importlib.util
import itertools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgepose.decode import ae as ae_module
from edgepose.decode.ae import COCO_JOINT_ORDER, AeDecoder, AeParams, adjust, nms, refine, top_k
from edgepose.decode.ae_match import above, assign, match_by_tag, match_cost, tag_distance
from edgepose.decode.ae_maps import (aggregate_higherhrnet, average_flip, flip_back_maps,
                                     resize_bilinear)
from edgepose.errors import DecodeError, InputError, MissingDependencyError
from edgepose.keypoints import COCO17

from tests.edgepose.decode import ae_reference as ref  # noqa: E402 - after the code under test

K = 17
PRESETS = {"pose-ae-train": AeParams.preset("pose-ae-train"),
           "higherhrnet": AeParams.preset("higherhrnet")}


def _assert_same(result, expected):
    xy, scores, person_scores = result
    rxy, rscores, rperson = expected
    assert xy.shape == rxy.shape and scores.shape == rscores.shape
    np.testing.assert_array_equal(xy, rxy.astype(np.float32))  # quarter pixels: exact
    np.testing.assert_array_equal(scores, rscores.astype(np.float32))
    np.testing.assert_allclose(person_scores, rperson, rtol=1e-6, atol=0)


# ---------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------

def test_pose_ae_train_preset_is_the_sources_constants():
    # utils/group.py HeatmapParser: MaxPool2d(3, 1, 1); ignore_too_much True;
    # max_num_people 30 (also topk's k); use_detection_val True; tag_val 1.
    # test.py: HeatmapParser(detection_val=0.1); np.minimum(dets, 1); refine sets
    # keypoints[i, 2] = 1; diff = (... ** 2).mean(axis=2) ** 0.5.
    # partOrder = [i-1 for i in [1,2,3,4,5,6,7,12,13,8,9,10,11,14,15,16,17]].
    expected = dict(nms_kernel=3, top_k=30, detection_threshold=0.1, tag_threshold=1.0,
                    max_people=30,
                    joint_order=tuple(i - 1 for i in [1, 2, 3, 4, 5, 6, 7, 12, 13, 8, 9, 10,
                                                      11, 14, 15, 16, 17]),
                    tag_distance="rms", use_detection_val=True, ignore_too_much=True,
                    adjust=True, refine=True, refined_score=1.0, heatmap_max=1.0,
                    # The solver's choice among equal costs and people keyed by tag[0].
                    ties="official")
    assert dataclasses.asdict(AeParams.preset("pose-ae-train")) == expected


def test_higherhrnet_preset_is_the_sources_constants():
    # w32_512_adam_lr1e-3.yaml: NMS_KERNEL 5, NMS_PADDING 2, DETECTION_THRESHOLD 0.1,
    # MAX_NUM_PEOPLE 30; lib/config/default.py: TAG_THRESHOLD 1., USE_DETECTION_VAL True,
    # IGNORE_TOO_MUCH False, ADJUST True, REFINE True; group.py: np.linalg.norm(ord=2),
    # refine keeps keypoints[i, 2] = ans[i, 2]; the same joint_order as pose-ae-train.
    expected = dict(nms_kernel=5, top_k=30, detection_threshold=0.1, tag_threshold=1.0,
                    max_people=30,
                    joint_order=(0, 1, 2, 3, 4, 5, 6, 11, 12, 7, 8, 9, 10, 13, 14, 15, 16),
                    tag_distance="l2", use_detection_val=True, ignore_too_much=False,
                    adjust=True, refine=True, refined_score=None, heatmap_max=None,
                    ties="official")
    assert dataclasses.asdict(AeParams.preset("higherhrnet")) == expected
    assert COCO_JOINT_ORDER == expected["joint_order"]


@pytest.mark.parametrize("changes, reason", [
    (dict(nms_kernel=4), "an even window has no centre"),
    (dict(nms_kernel=0), "no window"),
    (dict(top_k=0), "no candidates"),
    (dict(max_people=True), "a bool is not a count"),
    (dict(detection_threshold=-0.1), "value 0 must mean a missing keypoint"),
    (dict(tag_threshold=math.nan), "not finite"),
    (dict(joint_order=(0, 1, 1)), "a keypoint twice"),
    (dict(joint_order=[0, 1, 2]), "a list is not frozen"),
    (dict(tag_distance="cosine"), "unknown distance"),
    (dict(refine=1), "not a bool"),
    (dict(refined_score=math.inf), "not finite"),
    (dict(ties="munkres"), "unknown tie rule"),
    (dict(max_people=0), "no people"),
    (dict(top_k=2.0), "a float is not a count"),
    (dict(tag_threshold=-1e-9), "a distance is >= 0"),
    (dict(detection_threshold=math.inf), "not finite"),
    (dict(detection_threshold="0.1"), "not a number"),
    (dict(detection_threshold=False), "a bool is not a number"),
    (dict(heatmap_max=math.nan), "not finite"),
    (dict(joint_order=()), "no keypoints"),
    (dict(joint_order=(0, -1)), "a negative index"),
    (dict(joint_order=(0, True)), "a bool is not an index"),
    (dict(joint_order=(0, 1.0)), "a float is not an index"),
    (dict(use_detection_val=None), "not a bool"),
    (dict(ignore_too_much=0), "not a bool"),
    (dict(adjust="yes"), "not a bool"),
    (dict(detection_threshold=None), "only refined_score and heatmap_max may be None"),
    (dict(tag_threshold=None), "only refined_score and heatmap_max may be None"),
])
def test_params_reject(changes, reason):
    with pytest.raises(InputError, match="AeParams"):
        AeParams(**changes)


def test_params_messages_say_which_may_be_none():
    with pytest.raises(InputError, match=r"refined_score must be a finite number >= -inf or "
                                         r"None, got inf"):
        AeParams(refined_score=math.inf)
    with pytest.raises(InputError, match=r"tag_threshold must be a finite number >= 0, got "
                                         r"-1\.0$"):
        AeParams(tag_threshold=-1.0)


@pytest.mark.parametrize("changes", [
    dict(nms_kernel=1), dict(top_k=1), dict(max_people=1), dict(detection_threshold=0.0),
    dict(detection_threshold=0), dict(tag_threshold=0.0), dict(refined_score=-3.5),
    dict(refined_score=0), dict(heatmap_max=-1.0), dict(heatmap_max=None),
    dict(joint_order=(0,)), dict(joint_order=(2, 0, 1)), dict(tag_distance="rms"),
    dict(ties="most-joins"), dict(use_detection_val=False, ignore_too_much=True,
                                  adjust=False, refine=False),
])
def test_params_accept_the_edges(changes):
    params = AeParams(**changes)
    assert all(getattr(params, name) == value for name, value in changes.items())


def test_unknown_preset():
    with pytest.raises(InputError, match="pose-ae-train"):
        AeParams.preset("openpose")


# ---------------------------------------------------------------------------
# Steps against hand-made cases and the reference
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nms_matches_reference(kernel, dtype):
    rng = np.random.default_rng(kernel)
    maps = rng.random((4, 23, 31)).astype(dtype)
    maps[0, 5:8, 5:8] = 2.0  # a plateau: every pixel of it is its window's maximum
    maps[1] -= 1.5  # negative maxima survive (-inf padding, not 0)
    np.testing.assert_array_equal(nms(maps, kernel), ref.nms_reference(maps, kernel))
    assert (nms(maps, kernel)[0, 5:8, 5:8] == 2.0).all()


def test_nms_window_reaches_two_pixels_with_kernel_5():
    maps = np.zeros((1, 7, 7), np.float32)
    maps[0, 3, 3], maps[0, 3, 5] = 1.0, 0.9  # two apart
    assert nms(maps, 3)[0, 3, 5] == np.float32(0.9)
    assert nms(maps, 5)[0, 3, 5] == 0


def test_top_k_matches_reference_with_ties():
    rng = np.random.default_rng(3)
    maps = np.round(rng.random((3, 9, 11)), 1).astype(np.float32)  # many equal values
    tags = np.zeros((3, 9, 11, 1), np.float32)
    xy, values, counts = top_k(maps, 7)
    expected = ref.candidates_reference(maps, tags, 7)
    for joint in range(3):
        assert counts[joint] == 7
        assert [tuple(p) for p in xy[joint].tolist()] == [c[:2] for c in expected[joint]]
        np.testing.assert_array_equal(values[joint], [c[2] for c in expected[joint]])


def test_top_k_threshold_leaves_empty_slots():
    maps = np.zeros((2, 4, 4), np.float32)
    maps[0, 1, 2], maps[0, 3, 0] = 0.5, 0.7
    xy, values, counts = top_k(maps, 3, threshold=0.1)
    assert counts.tolist() == [2, 0]
    assert xy[0].tolist() == [[0, 3], [2, 1], [0, 0]]
    np.testing.assert_array_equal(values, np.float32([[0.7, 0.5, 0], [0, 0, 0]]))


def test_tag_distances():
    tags = np.array([[3.0, 4.0], [1.0, 1.0]])
    means = np.array([[0.0, 0.0]])
    np.testing.assert_allclose(tag_distance(tags, means, "l2")[:, 0], [5.0, math.sqrt(2)])
    np.testing.assert_allclose(tag_distance(tags, means, "rms")[:, 0],
                               [5.0 / math.sqrt(2), 1.0])
    one = np.array([[2.5]])
    assert tag_distance(one, np.zeros((1, 1)), "rms") == tag_distance(one, np.zeros((1, 1)),
                                                                       "l2")


def test_match_cost_rounds_half_to_even():
    distance = np.array([[0.49, 0.5, 1.5, 2.5]])
    np.testing.assert_allclose(match_cost(distance, np.array([0.3]), True),
                               [[-0.3, -0.3, 199.7, 199.7]])
    assert match_cost(distance, np.array([0.3]), False) is distance


@pytest.mark.parametrize("x, y, row, expected, reason", [
    (2, 1, [0, 0.1, 0.5, 0.4, 0], (2.75, 1.25), "right neighbour larger: +0.25"),
    (2, 1, [0, 0.4, 0.5, 0.1, 0], (2.25, 1.25), "left neighbour larger: -0.25"),
    (2, 1, [0, 0.4, 0.5, 0.4, 0], (2.25, 1.25), "a tie moves -0.25 (strict >)"),
    (0, 1, [0.5, 0.4, 0, 0, 0], (0.25, 1.25), "left border: the pixel is its own left (0.4 < 0.5)"),
    (4, 1, [0, 0, 0, 0.3, 0.5], (4.75, 1.25), "right border: itself (0.5) > 0.3 moves +0.25"),
])
def test_adjust_cases(x, y, row, expected, reason):
    maps = np.zeros((1, 3, 5), np.float32)
    maps[0, 1] = row
    maps[0, 0, x] = maps[0, 2, x] = 0.1  # equal vertical neighbours: y moves -0.25 + 0.5
    out = adjust(np.array([[[x, y]]], float), np.array([[0.5]]), maps)
    assert tuple(out[0, 0]) == expected, reason


def test_adjust_leaves_missing_keypoints():
    maps = np.ones((2, 4, 4), np.float32)
    out = adjust(np.array([[[1, 2], [0, 0]]], float), np.array([[0.4, 0.0]]), maps)
    assert out[0, 1].tolist() == [0, 0] and out[0, 0].tolist() == [1.25, 2.25]


def test_refine_fills_from_the_mean_tag():
    maps = np.zeros((2, 8, 8), np.float32)
    tags = np.zeros((2, 8, 8, 1), np.float32)
    maps[0, 2, 3] = 0.8
    tags[0, 2, 3] = 5.0  # the found keypoint: tag 5
    maps[1, 6, 1], tags[1, 6, 1] = 0.3, 5.2  # the person's, weaker
    maps[1, 1, 6], tags[1, 1, 6] = 0.9, 9.0  # another person's, stronger but round(4) away
    xy = np.array([[[3.25, 2.25], [0, 0]]])
    values = np.array([[0.8, 0.0]])
    for score, kept in ((None, np.float32(0.3)), (1.0, 1.0)):
        new_xy, new_values = refine(xy, values, maps, tags, score)
        # (1, 6) + 0.5, and both neighbour pairs are equal (0, 0): -0.25 each.
        assert new_xy[0, 1].tolist() == [1.25, 6.25]
        assert new_values[0].tolist() == [pytest.approx(0.8), kept]
        assert new_xy[0, 0].tolist() == [3.25, 2.25]  # found keypoints untouched
    np.testing.assert_array_equal(xy[0, 1], [0, 0])  # inputs not modified


def test_refine_needs_a_positive_heatmap():
    maps = np.zeros((2, 5, 5), np.float32)
    maps[0, 1, 1] = 0.5
    tags = np.zeros((2, 5, 5, 2), np.float32)
    xy, values = refine(np.array([[[1.25, 1.25], [0, 0]]]), np.array([[0.5, 0]]), maps, tags)
    assert values[0, 1] == 0 and xy[0, 1].tolist() == [0, 0]


def test_refine_probes_the_maximum_of_each_block():
    # 4x4 blocks of a 9x10 map (the last row and columns left out), each with its
    # largest value put by hand at a known pixel.
    heatmap = np.zeros((9, 10), np.float32)
    expected = []
    for by, bx, (dy, dx) in [(0, 0, (3, 1)), (0, 1, (0, 2)), (1, 0, (2, 0)), (1, 1, (1, 3))]:
        y, x = 4 * by + dy, 4 * bx + dx
        heatmap[y, x] = 1 + by + bx
        expected.append(y * 10 + x)
    heatmap[8, 9] = 9  # outside every block
    assert sorted(ae_module._block_maxima(heatmap).tolist()) == sorted(expected)
    assert ae_module._block_maxima(np.zeros((3, 9), np.float32)).tolist() == list(range(27))


@pytest.mark.parametrize("size", [(3, 5), (16, 20), (40, 36)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_refine_matches_the_reference_on_tied_scores(size, dtype):
    # Heatmap values and tags on coarse grids: heatmap − round(distance) ties exactly at
    # many pixels, so the first maximum in row-major order decides; peaks repeat the same
    # value in several places, low ones sit below other people's bounds, and some people
    # are far from every tag (their best scores are negative).
    rng = np.random.default_rng(31)
    count, people = 5, 9
    for _ in range(6):
        maps = (rng.integers(0, 5, (count, *size)) / 4).astype(np.float32)
        maps[rng.random(maps.shape) < 0.7] = 0.0
        tags = rng.integers(-3, 4, (count, *size, 2)).astype(dtype) * 0.5
        values = np.where(rng.random((people, count)) < 0.5, 0.0, 0.6)
        values[:, 0] = 0.6  # every person has a found keypoint to take a mean tag from
        xy = np.stack([rng.integers(0, size[1], (people, count)),
                       rng.integers(0, size[0], (people, count))], axis=2).astype(float)
        xy[values == 0] = 0
        tags[0, xy[-2:, 0, 1].astype(int), xy[-2:, 0, 0].astype(int)] = 40  # far from all
        for score in (None, 1.0):
            new_xy, new_values = refine(xy, values, maps, tags, score)
            for n in range(people):
                expected_xy, expected_values = xy[n].copy(), values[n].copy()
                ref.refine_person_reference(expected_xy, expected_values, maps, tags, score)
                np.testing.assert_array_equal(new_xy[n], expected_xy)
                np.testing.assert_array_equal(new_values[n], expected_values)


# ---------------------------------------------------------------------------
# Whole decode against the loop reference
# ---------------------------------------------------------------------------

def _scene(name):
    if name == "0 people":
        return ref.make_scene(0, (64, 64), seed=0)
    if name == "1 person":
        return ref.make_scene(1, (64, 64), seed=1, heights=(40, 50))
    if name == "5 people, missing keypoints":
        return ref.make_scene(5, (64, 80), seed=2, heights=(25, 50), missing=0.25)
    if name == "30 people, noise":
        return ref.make_scene(30, (96, 96), seed=3, heights=(20, 70), missing=0.1, noise=0.05)
    if name == "35 people, one tag dimension":
        return ref.make_scene(35, (96, 96), seed=4, heights=(20, 50), dims=1, noise=0.02)
    if name == "identical tags":
        rng = np.random.default_rng(5)
        xy, visible = ref.sample_people(rng, 4, (64, 64), (25, 40), missing=0.1)
        person_tags = np.array([[1.0, 1.0], [1.0, 1.0], [4.0, 4.0], [4.0, 4.0]])
        return ref.draw_scene(xy, visible, person_tags, (64, 64), rng, tag_noise=0.0)
    if name == "ignore_too_much limit":
        # 20 people with a nose, 12 more with only a left eye among the first two
        # keypoints: 20 people after the noses, 30 or more after the eyes (top_k takes 30
        # eyes); pose-ae-train then ignores every later keypoint.
        rng = np.random.default_rng(6)
        xy, visible = ref.sample_people(rng, 32, (96, 96), (20, 40))
        visible[20:, 0] = False
        tags = (rng.permutation(32) * 3.0)[:, None] + np.zeros((1, 2))
        return ref.draw_scene(xy, visible, tags, (96, 96), rng)
    raise KeyError(name)


SCENES = ["0 people", "1 person", "5 people, missing keypoints", "30 people, noise",
          "35 people, one tag dimension", "identical tags", "ignore_too_much limit"]


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("scene_name", SCENES)
def test_decode_matches_the_sources_with_munkres(preset, scene_name):
    # The sources' matching with their solver, the `munkres` package: keys, padding,
    # thresholds and the solver's choice among equal-cost assignments (crowded scenes
    # have many) are checked on every scene.
    pytest.importorskip("munkres")
    scene = _scene(scene_name)
    params = PRESETS[preset]
    result = AeDecoder(params).decode(scene.heatmaps, scene.tags)
    _assert_same(result, ref.decode_reference(scene.heatmaps, scene.tags, params))


@pytest.mark.parametrize("ties", ["official", "most-joins"])
@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_decode_matches_reference_on_random_maps(preset, dtype, ties):
    # Noise maps: many peaks per keypoint, tags that round to the same distances from
    # several people (exact ties in the Hungarian cost), more detections than people.
    # 'official' against the sources' matching with `munkres`, 'most-joins' against the
    # reference's own tie-break.
    if ties == "official":
        pytest.importorskip("munkres")
    rng = np.random.default_rng(8)
    params = dataclasses.replace(PRESETS[preset], ties=ties)
    for _ in range(4):
        heatmaps = rng.random((K, 7, 9)).astype(np.float32)
        tags = rng.normal(size=(K, 7, 9, 2)).astype(dtype)
        result = AeDecoder(params).decode(heatmaps, tags)
        _assert_same(result, ref.decode_reference(heatmaps, tags, params))


@pytest.mark.parametrize("changes", [
    dict(adjust=False, refine=False),
    dict(use_detection_val=False, tag_threshold=2.5),
    dict(max_people=4, top_k=8),
    dict(max_people=4, ignore_too_much=True),
])
def test_decode_matches_reference_off_preset(changes):
    scene = _scene("5 people, missing keypoints")
    params = dataclasses.replace(AeParams.higherhrnet(), **changes)
    result = AeDecoder(params).decode(scene.heatmaps, scene.tags)
    _assert_same(result, ref.decode_reference(scene.heatmaps, scene.tags, params))


def test_ignore_too_much_stops_at_max_people():
    scene = _scene("ignore_too_much limit")
    found = {}
    for preset, params in PRESETS.items():
        found[preset] = AeDecoder(params).group(scene.heatmaps, scene.tags)[3]
    # pose-ae-train: 30 or more people after the eyes, every later keypoint ignored.
    assert len(found["pose-ae-train"]) >= 30
    assert (found["pose-ae-train"][:, 2:] == 0).all()
    # HigherHRNet keeps matching: the people get their other keypoints.
    assert len(found["higherhrnet"]) >= 30
    assert (found["higherhrnet"][:, 2:] > 0).sum() > 20 * 10


def test_top_k_limits_candidates_per_keypoint():
    scene = _scene("35 people, one tag dimension")
    params = dataclasses.replace(AeParams.higherhrnet(), refine=False)
    _, _, _, values = AeDecoder(params).group(scene.heatmaps, scene.tags)
    assert ((values > 0).sum(axis=0) <= 30).all()
    assert ((values > 0).sum(axis=0) == 30).any()


def _known_people(dims, person_tags=None):
    """Six people on a grid, far apart, keypoints 0.1 to 0.4 px off their pixel, with tags
    0, 2, 4, ... unless given."""
    rng = np.random.default_rng(11)
    size = (128, 128)
    tops = [(20, 10), (64, 10), (108, 10), (20, 70), (64, 70), (108, 70)]
    xy = np.array([[(left + tx * 45, top + ty * 45) for tx, ty in ref.COCO17_TEMPLATE]
                   for left, top in tops])
    xy = np.round(xy) + rng.choice([-1, 1], xy.shape) * rng.uniform(0.1, 0.4, xy.shape)
    if person_tags is None:
        person_tags = (np.arange(6) * 2.0)[:, None] + np.zeros((1, dims))
    return ref.draw_scene(xy, np.ones((6, K), bool), person_tags, size, rng, sigma=1.5,
                          tag_noise=0.05)


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("dims", [1, 2])
def test_known_people_come_out(preset, dims):
    scene = _known_people(dims)
    xy, scores, person_scores = AeDecoder(PRESETS[preset]).decode(scene.heatmaps, scene.tags)
    assert xy.shape == (6, K, 2) and (scores > 0.5).all()
    # Right grouping: each decoded person is one true person, every keypoint its own.
    truth = scene.xy + 0.5  # the sources' half pixel
    owner = np.argmin(np.linalg.norm(xy[:, None] - truth[None], axis=3), axis=1)  # (N, K)
    assert sorted(owner[:, 0].tolist()) == list(range(6))
    assert (owner == owner[:, :1]).all()
    # Within the adjust step: a quarter pixel from the peak pixel, toward the true point.
    error = np.abs(xy - truth[owner[:, 0]])
    assert error.max() <= 0.25
    np.testing.assert_allclose(person_scores, scores.mean(axis=1), rtol=1e-6)


def test_identical_tags_join_into_one_person():
    # Upper body of one person and lower body of another, with the same tag: grouping by
    # tag alone makes them one complete person.
    rng = np.random.default_rng(12)
    xy = np.array([[(20 + tx * 40, 8 + ty * 40) for tx, ty in ref.COCO17_TEMPLATE],
                   [(90 + tx * 40, 15 + ty * 40) for tx, ty in ref.COCO17_TEMPLATE]])
    visible = np.zeros((2, K), bool)
    visible[0, :9] = True
    visible[1, 9:] = True
    scene = ref.draw_scene(xy, visible, np.array([[2.0, 2.0], [2.0, 2.0]]), (64, 128), rng,
                           tag_noise=0.0)
    for params in PRESETS.values():
        xy_out, scores, _ = AeDecoder(params).decode(scene.heatmaps, scene.tags)
        assert xy_out.shape == (1, K, 2) and (scores > 0).all()
        np.testing.assert_allclose(xy_out[0, :9], xy[0, :9] + 0.5, atol=0.76)
        np.testing.assert_allclose(xy_out[0, 9:], xy[1, 9:] + 0.5, atol=0.76)


def test_identical_tags_give_complete_people():
    # Three pairs of people share a tag: which of a pair gets which keypoint is a tie the
    # solver breaks, but every person still ends with one of each keypoint.
    scene = _known_people(2, np.repeat([[0.0, 0.0], [2.0, 2.0], [4.0, 4.0]], 2, axis=0))
    for params in PRESETS.values():
        values = AeDecoder(params).group(scene.heatmaps, scene.tags)[3]
        assert values.shape == (6, K) and (values > 0).all()
        _assert_same(AeDecoder(params).decode(scene.heatmaps, scene.tags),
                     ref.decode_reference(scene.heatmaps, scene.tags, params))


# ---------------------------------------------------------------------------
# Hungarian ties: SciPy vs the sources' Munkres
# ---------------------------------------------------------------------------

def test_munkres_reference_is_optimal():
    rng = np.random.default_rng(0)
    for _ in range(60):
        rows, cols = rng.integers(1, 5, 2)
        cost = rng.integers(0, 4, (rows, cols)).astype(float).tolist()
        best = ref.brute_force_assignment(cost) if rows <= cols else None
        if best is not None:
            assert ref.assignment_cost(cost, ref.munkres_assignment(cost)) == \
                ref.assignment_cost(cost, best)


def test_solvers_break_a_tie_differently():
    # Every assignment costs 1 (column 2 once). By hand, in the package's steps: stars
    # (0, 0), (1, 1); no uncovered zero, so column 2 drops by 1; prime (0, 2), cover row
    # 0, uncover column 0; row 1's search from column 0 meets (1, 0) then (1, 2) and keeps
    # the last: prime (1, 2), uncover column 1; row 2's search from column 1 meets
    # (2, 1), (2, 2), (2, 0): prime (2, 0); the path (2, 0) → (0, 0) → (0, 2) ends with
    # 0→2, 1→1, 2→0. SciPy returns 0→0, 1→1, 2→2.
    cost = [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    munkres, scipy = ref.munkres_assignment(cost), ref.scipy_assignment(cost)
    assert munkres == [2, 1, 0] and scipy == [0, 1, 2]
    assert ref.assignment_cost(cost, munkres) == ref.assignment_cost(cost, scipy) == 1
    assert assign(np.array(cost), np.zeros(3), 1.0, use_detection_val=False)[1].tolist() \
        == munkres
    if importlib.util.find_spec("munkres"):
        from munkres import Munkres

        assert [j for _, j in Munkres().compute(cost)] == munkres


def _brute_preferred(distance, values, threshold):
    """Every assignment of the 0-padded square cost: least cost, then most joins, then the
    least sum of the joining distances squared."""
    rows, cols = distance.shape
    size = max(rows, cols)
    cost = np.zeros((size, size))
    cost[:rows, :cols] = np.round(distance) * 100 - values[:, None]
    near = np.zeros((size, size), bool)
    near[:rows, :cols] = distance < threshold
    squared = np.zeros((size, size))
    squared[:rows, :cols] = distance ** 2

    def key(p):
        pairs = list(enumerate(p))
        return (round(sum(cost[r, c] for r, c in pairs), 6),
                -sum(near[r, c] for r, c in pairs),
                sum(squared[r, c] for r, c in pairs if near[r, c]))

    best = min(itertools.permutations(range(size)), key=key)
    return [c if c < cols else -1 for c in best[:rows]]


def _as_choice(pairs, rows):
    choice = [-1] * rows
    for r, c in zip(*pairs):
        choice[r] = int(c)
    return choice


def _joins(choice, distance, threshold=1.0):
    return {(r, c) for r, c in enumerate(choice) if c >= 0 and distance[r][c] < threshold}


def test_assign_breaks_ties_by_joins_then_squared_distance():
    rng = np.random.default_rng(21)
    for _ in range(40):
        rows, cols = (int(v) for v in rng.integers(1, 6, 2))
        # Rounds 0 to 3 with many ties, as in crowded scenes.
        distance = rng.uniform(0, 3, (rows, cols))
        values = rng.uniform(0.1, 1, rows)
        expected = _joins(_brute_preferred(distance, values, 1.0), distance)
        # Which person a non-joining detection is paired with changes nothing: compare
        # the joins, the pairs that make people.
        # The project's tie-break, no longer the default (ties="official" is).
        chosen = assign(distance, values, 1.0, ties="most-joins")
        assert _joins(_as_choice(chosen, rows), distance) == expected


@pytest.mark.parametrize("distance, expected, reason", [
    ([[0.6, 1.4], [1.4, 1.4]], [0, 1], "all rounds 1: the one assignment with a join"),
    ([[1.4, 0.6], [1.4, 1.4]], [1, 0], "the same, the other way round"),
    ([[0.6, 0.7], [0.7, 0.9]], [1, 0], "two joins either way: 0.49 + 0.49 < 0.36 + 0.81"),
    ([[0.4, 0.6], [0.4, 0.6]], [0, 1], "equal tags: a true tie, SciPy's choice"),
])
def test_assign_tie_cases(distance, expected, reason):
    values = np.array([0.9, 0.8])
    # The project's tie-break, no longer the default (ties="official" is).
    chosen = assign(np.array(distance), values, 1.0, ties="most-joins")
    assert _as_choice(chosen, 2) == expected, reason


def test_assign_keeps_the_smallest_value_differences():
    # Two detections for one person, their values one float32 step apart: not a tie, so
    # the stronger one gets the person although the other's tag is nearer.
    weak = np.float32(0.5)
    strong = np.nextafter(weak, np.float32(1))
    values = np.array([weak, strong], np.float64)
    # Only without the sources' 1e10 padding: beside 1e10 the two values tie.
    chosen = assign(np.array([[0.1], [0.4]]), values, 1.0, ties="most-joins")
    assert _as_choice(chosen, 2) == [-1, 0]


def test_assign_does_not_depend_on_the_order_of_rows_and_columns():
    # The tie-break is what takes the answer out of the solver's hands: shuffling the
    # matrix shuffles the joining pairs, whatever order SciPy meets the ties in.
    rng = np.random.default_rng(22)
    for _ in range(20):
        rows, cols = (int(v) for v in rng.integers(8, 25, 2))
        distance = rng.uniform(0, 2, (rows, cols))
        values = rng.uniform(0.1, 1, rows)
        row_order, col_order = rng.permutation(rows), rng.permutation(cols)
        # The project's tie-break, no longer the default (ties="official" is).
        chosen = assign(distance, values, 1.0, ties="most-joins")
        pairs = {(r, c) for r, c in zip(*(a.tolist() for a in chosen)) if distance[r, c] < 1.0}
        shuffled = assign(distance[row_order][:, col_order], values[row_order], 1.0,
                          ties="most-joins")
        moved = {(int(row_order[r]), int(col_order[c])) for r, c in zip(*shuffled)}
        assert {(r, c) for r, c in moved if distance[r, c] < 1.0} == pairs


def _triangle_tie(toward):
    """Three noses with l2 tags on a triangle of side 0.8; three left eyes with tags near the
    midpoints of its sides, moved 15% toward corner i + toward: each eye is round(< 0.5)
    = 0 from two people and round(0.69) = 1 from the third, all below the tag threshold,
    so two groupings cost the same and differ in their squared distances."""
    side = 0.8
    corners = np.array([[0, 0], [side, 0], [side / 2, side * math.sqrt(3) / 2]]) + 5
    heatmaps = np.zeros((K, 32, 48), np.float32)
    tags = np.full((K, 32, 48, 2), 50, np.float32)
    for i in range(3):
        middle = (corners[(i + 1) % 3] + corners[(i + 2) % 3]) / 2
        eye = middle + 0.15 * (corners[(i + toward) % 3] - middle)
        x = 6 + 14 * i
        heatmaps[0, 5, x] = heatmaps[1, 20, x] = 0.9 - 0.1 * i
        tags[0, 5, x], tags[1, 20, x] = corners[i], eye
    return heatmaps, tags


@pytest.mark.parametrize("toward, eye_of_first, reason", [
    (1, 34, "eye i nearer person i+1: person 0 gets eye 2 at x=34, not the solvers' eye"),
    (2, 20, "eye i nearer person i+2: person 0 gets eye 1 at x=20, the solvers' eye too"),
])
def test_decoder_breaks_ties_by_distance_not_by_solver(toward, eye_of_first, reason):
    heatmaps, tags = _triangle_tie(toward)
    # The project's tie-break is an option now; the presets take the solver's choice.
    params = AeParams(nms_kernel=3, adjust=False, refine=False, ties="most-joins")
    result = AeDecoder(params).decode(heatmaps, tags)
    _assert_same(result, ref.decode_reference(heatmaps, tags, params))
    assert result[0][0, 1, 0] == eye_of_first, reason
    # Munkres in the sources' order and SciPy, without the tie-break, both give person 0
    # eye 1 whichever way the eyes lean.
    munkres = ref.decode_reference(heatmaps, tags, params, solver="munkres")
    plain = ref.decode_reference(heatmaps, tags, params, solver="scipy")
    assert munkres[0][0, 1, 0] == plain[0][0, 1, 0] == 20
    official = AeDecoder(dataclasses.replace(params, ties="official")).decode(heatmaps, tags)
    assert official[0][0, 1, 0] == 20


# ---------------------------------------------------------------------------
# Map aggregation
# ---------------------------------------------------------------------------

def _bilinear_formula(maps, height, width):
    """torch's bilinear, align_corners=False, written out: out[i] reads src = max((i + 0.5)
    · in / out − 0.5, 0) between floor(src) and the next pixel (the last one repeated)."""
    channels, in_h, in_w = maps.shape

    def taps(count_out, count_in):
        src = np.maximum((np.arange(count_out) + 0.5) * count_in / count_out - 0.5, 0)
        low = np.floor(src).astype(int)
        return low, np.minimum(low + 1, count_in - 1), src - low

    y0, y1, fy = taps(height, in_h)
    x0, x1, fx = taps(width, in_w)
    m = maps.astype(np.float64)
    top = m[:, y0][:, :, x0] * (1 - fx) + m[:, y0][:, :, x1] * fx
    bottom = m[:, y1][:, :, x0] * (1 - fx) + m[:, y1][:, :, x1] * fx
    return top * (1 - fy)[:, None] + bottom * fy[:, None]


@pytest.mark.parametrize("shape, size, reason", [
    ((3, 16, 24), (48, 32), "x2, HigherHRNet's 1/4 to 1/2"),
    ((2, 7, 9), (20, 13), "not a whole factor: PROJECT2IMAGE to an input size"),
    ((1, 10, 10), (5, 5), "a downscale reads two pixels per output too"),
])
def test_resize_bilinear_is_align_corners_false(shape, size, reason):
    maps = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    out = resize_bilinear(maps, size)
    assert out.shape == (shape[0], size[1], size[0]) and out.dtype == np.float32
    np.testing.assert_allclose(out, _bilinear_formula(maps, size[1], size[0]), atol=2e-6,
                               err_msg=reason)


def test_resize_bilinear_matches_torch_when_installed():
    torch = pytest.importorskip("torch")
    maps = np.random.default_rng(2).normal(size=(4, 12, 20)).astype(np.float32)
    expected = torch.nn.functional.interpolate(torch.from_numpy(maps)[None], size=(24, 40),
                                               mode="bilinear", align_corners=False)[0]
    np.testing.assert_allclose(resize_bilinear(maps, (40, 24)), expected.numpy(), atol=2e-6)


def test_aggregate_higherhrnet():
    rng = np.random.default_rng(3)
    output0 = rng.normal(size=(2 * K, 8, 12)).astype(np.float32)
    output1 = rng.normal(size=(K, 16, 24)).astype(np.float32)
    heatmaps, tags = aggregate_higherhrnet(output0, output1)
    up = _bilinear_formula(output0, 16, 24)
    np.testing.assert_allclose(heatmaps, (up[:K] + output1) / 2, atol=2e-6)
    np.testing.assert_allclose(tags, up[K:], atol=2e-6)
    with pytest.raises(DecodeError, match="34"):
        aggregate_higherhrnet(output0[:K], output1)


def test_average_flip():
    rng = np.random.default_rng(4)
    heatmaps, tags, heatmaps_f, tags_f = (rng.random((K, 6, 10)).astype(np.float32)
                                          for _ in range(4))
    permutation = COCO17.flip_permutation()
    # HigherHRNet's FLIP_CONFIG['COCO'] and pose-ae-train's flipRef, 0-based.
    assert permutation.tolist() == [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    out_heatmaps, out_tags = average_flip(heatmaps, tags, heatmaps_f, tags_f, permutation)
    for k in range(K):
        mirrored = heatmaps_f[permutation[k], :, ::-1]
        np.testing.assert_allclose(out_heatmaps[k], (heatmaps[k] + mirrored) / 2, rtol=1e-6)
        np.testing.assert_array_equal(out_tags[k, ..., 0], tags[k])
        np.testing.assert_array_equal(out_tags[k, ..., 1], tags_f[permutation[k], :, ::-1])
    with pytest.raises(InputError, match="permutation"):
        flip_back_maps(heatmaps, np.arange(K - 1))


def test_flip_back_commutes_with_the_upsampling():
    # HigherHRNet upsamples each output, then mirrors; aggregating first is the same.
    output0 = np.random.default_rng(5).random((2 * K, 8, 12)).astype(np.float32)
    permutation = np.concatenate([COCO17.flip_permutation(), K + COCO17.flip_permutation()])
    a = resize_bilinear(flip_back_maps(output0, permutation), (24, 16))
    b = flip_back_maps(resize_bilinear(output0, (24, 16)), permutation)
    np.testing.assert_allclose(a, b, atol=1e-6)


# ---------------------------------------------------------------------------
# Input checks and the optional dependency
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("heatmaps, tags, message, reason", [
    (np.zeros((K, 8, 8), np.float32), np.zeros((K, 8, 9), np.float32), "tags have shape",
     "tag maps of another size"),
    (np.zeros((K, 8, 8), np.int32), np.zeros((K, 8, 8), np.float32), "float",
     "integer heatmaps"),
    (np.zeros((16, 8, 8), np.float32), np.zeros((16, 8, 8), np.float32), "joint_order",
     "16 keypoints with COCO's joint order"),
    (np.full((K, 8, 8), np.nan, np.float32), np.zeros((K, 8, 8), np.float32), "NaN",
     "non-finite network output"),
    (np.zeros((K, 8), np.float32), np.zeros((K, 8, 8), np.float32), "3-D", "2-D maps"),
])
def test_decode_rejects(heatmaps, tags, message, reason):
    with pytest.raises(DecodeError, match=message):
        AeDecoder(AeParams.higherhrnet()).decode(heatmaps, tags)


def test_decode_takes_tags_without_a_d_axis():
    scene = ref.make_scene(3, (48, 48), seed=9, dims=1, heights=(20, 30))
    decoder = AeDecoder(AeParams.pose_ae_train())
    with_axis = decoder.decode(scene.heatmaps, scene.tags)
    without = decoder.decode(scene.heatmaps, scene.tags[..., 0])
    for a, b in zip(with_axis, without):
        np.testing.assert_array_equal(a, b)
    assert with_axis[0].dtype == with_axis[1].dtype == with_axis[2].dtype == np.float32


def test_match_by_tag_without_scipy_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    xy = np.zeros((K, 2, 2), np.int64)
    with pytest.raises(MissingDependencyError, match=r"edgepose\[ae\]"):
        match_by_tag(xy, np.zeros((K, 2)), np.zeros((K, 2, 1)), AeParams(ties="most-joins"))


def test_official_ties_need_no_scipy(monkeypatch):
    # The presets solve in munkres' order, written here: no SciPy needed.
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)
    xy, values, tags = _two_keypoints([0.0, 3.0], [0.1, 2.9])
    people_xy, people_values, _ = match_by_tag(xy, values, tags, TWO)
    assert people_values.shape == (2, 2) and (people_values == np.float32(0.9)).all()
    assert people_xy[:, 1, 0].tolist() == [0, 10]  # each eye with the nose of its tag


def test_module_imports_without_scipy_and_torch():
    # SciPy is loaded on the first decode that breaks ties its own way ('most-joins'), so
    # the runtime imports with numpy and OpenCV and the presets decode without SciPy.
    script = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("scipy", "torch"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import numpy as np
from edgepose.decode.ae import AeDecoder, AeParams
from edgepose.errors import MissingDependencyError
for ties in ("official", "most-joins"):
    try:
        AeDecoder(AeParams(ties=ties)).decode(np.zeros((17, 8, 8), np.float32),
                                              np.zeros((17, 8, 8), np.float32))
        print(ties, "ran")
    except MissingDependencyError as error:
        print(ties, "needs", error.extra)
"""
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["official ran", "most-joins needs ae"]


def test_decoder_rejects_other_params():
    with pytest.raises(InputError, match="AeParams"):
        AeDecoder({"nms_kernel": 3})


# ---------------------------------------------------------------------------
# The sources' matching (ties="official"): solver's choice, tag keys, float64 thresholds
# ---------------------------------------------------------------------------

TWO = AeParams(joint_order=(0, 1), nms_kernel=3)


def _two_keypoints(first, second, values=None, dims=1):
    """Candidates of two keypoints: tags (D = dims, a number repeated) of the first and
    the second keypoint's detections, values highest first (0.9 for the first)."""
    width = max(len(first), len(second))
    tags = np.zeros((2, width, dims), np.float32)
    vals = np.zeros((2, width), np.float32)
    for k, (found, value) in enumerate(((first, [0.9] * len(first)),
                                        (second, values or [0.9] * len(second)))):
        for t, (tag, v) in enumerate(zip(found, value)):
            tags[k, t] = tag
            vals[k, t] = v
    xy = np.zeros((2, width, 2), np.int64)
    xy[..., 0] = np.arange(width) * 10
    xy[1, :, 1] = 5
    return xy, vals, tags


def _official(xy, values, tags, params):
    """The sources' match_by_tag (munkres) → values (N, K)."""
    pytest.importorskip("munkres")
    return ref.official_match_by_tag(tags, xy, values.astype(np.float64), params)[..., 2]


def test_official_ties_are_the_solvers_not_most_joins():
    # People tagged 2.6, 0.1, 2.1; eyes tagged 0.0 (0.68), 1.5 (0.39), 1.3 (0.32). Eye 0
    # joins person 1 (round 0); eyes 1 and 2 are round(0.6..1.4) = 1 from every person, so
    # giving person 2 eye 1 (0.6 away) or eye 2 (0.8) costs the same. most-joins takes the
    # nearer eye 1; munkres (the sources) and SciPy both take eye 2.
    xy, values, tags = _two_keypoints([2.6, 0.1, 2.1], [0.0, 1.5, 1.3], [0.68, 0.39, 0.32])
    official = match_by_tag(xy, values, tags, TWO)[1]
    most_joins = match_by_tag(xy, values, tags, dataclasses.replace(TWO, ties="most-joins"))[1]
    np.testing.assert_array_equal(official.astype(np.float32), _official(xy, values, tags, TWO))
    assert official[2, 1] == np.float32(0.32) and most_joins[2, 1] == np.float32(0.39)
    assert len(official) == len(most_joins) == 4  # the other eye starts a person in both


@pytest.mark.parametrize("ties", ["official", "most-joins"])
@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0)])
def test_assign_without_detections_or_people_pairs_nothing(ties, shape):
    rows, columns = assign(np.zeros(shape), np.zeros(shape[0]), 1.0, ties=ties)
    assert rows.shape == columns.shape == (0,)
    assert rows.dtype == columns.dtype == np.intp


def test_most_joins_without_detection_values_is_the_least_distance_assignment():
    # Random distances: one least-distance assignment, found here by trying them all.
    rng = np.random.default_rng(29)
    for _ in range(30):
        rows, cols = (int(v) for v in rng.integers(1, 5, 2))
        distance = rng.uniform(0, 3, (rows, cols))
        row, column = assign(distance, np.zeros(rows), 1.0, use_detection_val=False,
                             ties="most-joins")
        pairs = sorted(zip(row.tolist(), column.tolist()))
        if rows <= cols:  # each detection's person
            best = min(itertools.permutations(range(cols), rows),
                       key=lambda p: sum(distance[r, c] for r, c in enumerate(p)))
            assert pairs == list(enumerate(best))
        else:  # each person's detection
            best = min(itertools.permutations(range(rows), cols),
                       key=lambda p: sum(distance[r, c] for c, r in enumerate(p)))
            assert pairs == sorted((r, c) for c, r in enumerate(best))


@pytest.mark.parametrize("call, message", [
    (lambda: tag_distance(np.zeros((1, 1)), np.zeros((1, 1)), "cosine"), "tag distance must"),
    (lambda: assign(np.zeros((1, 1)), np.zeros(1), 1.0, ties="munkres"), "ties must be"),
])
def test_matching_helpers_name_the_bad_option(call, message):
    with pytest.raises(InputError, match=message):
        call()


@pytest.mark.parametrize("xy_shape, values_shape, tags_shape", [
    ((2, 3, 2), (2, 3), (2, 3)),  # tags without the D axis
    ((2, 3, 2), (2, 4), (2, 3, 1)),  # values of another T
    ((2, 3, 2), (2, 3), (2, 4, 1)),  # tags of another T
    ((2, 3, 3), (2, 3), (2, 3, 1)),  # xy of three coordinates
    ((2, 3), (2, 3), (2, 3, 1)),  # xy without the coordinate axis
])
def test_match_by_tag_rejects_shapes_that_disagree(xy_shape, values_shape, tags_shape):
    with pytest.raises(DecodeError, match="expected xy"):
        match_by_tag(np.zeros(xy_shape, np.int64), np.zeros(values_shape),
                     np.zeros(tags_shape), AeParams(joint_order=(0, 1)))


def test_official_assign_is_least_cost_on_the_padded_matrix():
    rng = np.random.default_rng(23)
    for _ in range(40):
        rows, cols = (int(v) for v in rng.integers(1, 5, 2))
        distance = rng.uniform(0, 3, (rows, cols))
        values = rng.uniform(0.1, 1, rows)
        cost = match_cost(distance, values, True).tolist()
        best = ref.assignment_cost(cost, ref.brute_force_assignment(cost))
        chosen = _as_choice(assign(distance, values, 1.0), rows)
        assert ref.assignment_cost(cost, chosen) == pytest.approx(best, abs=1e-9)


def test_equal_creating_tags_merge_as_in_the_sources():
    # Two noses with the same tag: the sources' dict has one key, the later (weaker) nose
    # overwrites the first; most-joins keeps two people.
    xy, values, tags = _two_keypoints([1.0, 1.0], [1.0], [0.7])
    people_xy, official, _ = match_by_tag(xy, values, tags, TWO)
    np.testing.assert_array_equal(official.astype(np.float32), _official(xy, values, tags, TWO))
    assert official.tolist() == [[np.float32(0.9), np.float32(0.7)]]
    assert people_xy[0, 0, 0] == 10  # the second nose
    most_joins = match_by_tag(xy, values, tags, dataclasses.replace(TWO, ties="most-joins"))[1]
    assert len(most_joins) == 2


def test_a_new_person_with_an_existing_key_takes_over_its_slot_and_tags():
    # D = 2. Person A (1, 1). A later eye (1, 5) is 4 away, so it starts a person, keyed
    # tag[0] = 1: A's key. A gets the eye and A's tags restart from (1, 5), so an ear at
    # (1, 5) joins A and one at (1.5, 1), 0.5 from A's first tag, starts a person.
    params = AeParams(joint_order=(0, 1, 2), nms_kernel=3)
    tags = np.zeros((3, 2, 2), np.float32)
    values = np.zeros((3, 2), np.float32)
    tags[0, 0], values[0, 0] = (1, 1), 0.9
    tags[1, 0], values[1, 0] = (1, 5), 0.8
    tags[2, 0], values[2, 0] = (1, 5), 0.7
    tags[2, 1], values[2, 1] = (1.5, 1), 0.6
    xy = np.zeros((3, 2, 2), np.int64)
    xy[..., 0] = np.arange(3)[:, None] * 10 + np.arange(2)
    result = match_by_tag(xy, values, tags, params)
    np.testing.assert_array_equal(result[1].astype(np.float32),
                                  _official(xy, values, tags, params))
    np.testing.assert_allclose(result[1], [[0.9, 0.8, 0.7], [0, 0, 0.6]], rtol=1e-7)
    people = match_by_tag(xy, values, tags, dataclasses.replace(params, ties="most-joins"))[1]
    np.testing.assert_allclose(people, [[0.9, 0, 0.6], [0, 0.8, 0.7]], rtol=1e-7)


@pytest.mark.parametrize("ties_rule", ["values", "distances"])
def test_official_matching_with_colliding_keys_matches_the_sources(ties_rule):
    # Coarse tags: first components repeat, so new people often meet an existing key in
    # the same keypoint as other detections join people (taken in the sources' row
    # order); the people's xy, values and tags must be the sources' at every step.
    rng = np.random.default_rng(41 if ties_rule == "values" else 42)
    params = AeParams(joint_order=(2, 0, 3, 1), nms_kernel=3, max_people=5,
                      use_detection_val=ties_rule == "values")
    for _ in range(150):
        tags = np.stack([rng.integers(0, 4, (4, 5)) * 0.75,
                         rng.integers(0, 7, (4, 5)) * 0.5], axis=2).astype(np.float32)
        values = np.sort(rng.choice(np.float32([0.05, 0.3, 0.5, 0.9]), (4, 5)), axis=1)[:, ::-1]
        xy = rng.integers(0, 50, (4, 5, 2))
        people_xy, people_values, people_tags = match_by_tag(xy, values, tags, params)
        rows = ref.official_match_by_tag(tags, xy, values.astype(np.float64), params)
        np.testing.assert_array_equal(people_values.astype(np.float32), rows[..., 2])
        np.testing.assert_array_equal(people_xy.astype(np.float32), rows[..., :2])
        np.testing.assert_array_equal(people_tags, rows[..., 3:])


def test_identical_tag_pairs_merge_in_the_whole_decode():
    # Pairs of people with exactly equal tags: one person per pair, as the sources.
    scene = _known_people(2, np.repeat([[0.0, 0.0], [2.0, 2.0], [4.0, 4.0]], 2, axis=0))
    scene.tags[:] = np.round(scene.tags, 0)  # no tag noise: keys equal within each pair
    params = PRESETS["higherhrnet"]
    result = AeDecoder(params).decode(scene.heatmaps, scene.tags)
    if importlib.util.find_spec("munkres"):
        _assert_same(result, ref.decode_reference(scene.heatmaps, scene.tags, params))
    assert len(result[0]) == 3


F32_TENTH = np.float32(0.1)  # 0.100000001490116...


@pytest.mark.parametrize("value, kept, reason", [
    (F32_TENTH, True, "float32(0.1) is above 0.1 in float64, as the sources compare"),
    (np.nextafter(F32_TENTH, np.float32(0)), False, "the float32 below 0.1"),
    (0.1, False, "a float64 value equal to the threshold: strict >"),
    (np.nextafter(0.1, 1.0), True, "the float64 above 0.1"),
])
def test_thresholds_compare_in_float64(value, kept, reason):
    dtype = np.float64 if type(value) is float or value.dtype == np.float64 else np.float32
    maps = np.zeros((1, 3, 3), dtype)
    maps[0, 1, 1] = value
    assert bool(top_k(maps, 2, 0.1)[2][0] == 1) is kept, reason
    assert bool(above(np.array([value], dtype), 0.1)[0]) is kept, reason
    xy = np.zeros((1, 1, 2), np.int64)
    people = match_by_tag(xy, np.array([[value]], dtype), np.zeros((1, 1, 1)),
                          AeParams(joint_order=(0,)))[1]
    assert (len(people) == 1) is kept, reason
    decoded = AeDecoder(AeParams(joint_order=(0,), refine=False)).decode(
        maps, np.zeros((1, 3, 3), np.float32))
    assert (len(decoded[0]) == 1) is kept, reason


@pytest.mark.parametrize("threshold", [0.0, 0.1, 0.3, 1 / 3, 1e-40, 1e300, -math.inf, 5.0])
def test_above_is_the_float64_comparison(threshold):
    rng = np.random.default_rng(24)
    base = np.float32(threshold if math.isfinite(threshold) and threshold < 1e30 else 0)
    near = np.array([np.nextafter(base, np.float32(-np.inf)), base,
                     np.nextafter(base, np.float32(np.inf))], np.float32)
    values = np.concatenate([near, rng.normal(size=50).astype(np.float32),
                             np.float32([np.inf, -np.inf, 0.0, -0.0])])
    np.testing.assert_array_equal(above(values, threshold),
                                  values.astype(np.float64) > threshold)
