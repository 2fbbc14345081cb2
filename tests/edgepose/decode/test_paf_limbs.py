"""Scoring all limbs in one pass, pruned, against the loop reference and the per-limb path.

score_every_limb reads two middle samples of each pair first and refuses, unread,
the pairs already short of the samples the 0.8 (CMU: 0.95) criterion needs. The
accepted pairs and their scores must be the loop reference's
(paf_reference.limb_candidates_reference, the port's loop), for thresholds where
the pruning refuses nothing, some pairs, or most of them.
"""

import dataclasses

import cv2
import numpy as np
import pytest

from edgepose.decode.paf import PafDecoder, PafParams, find_peaks, score_limbs
from edgepose.decode.paf_limbs import score_every_limb, score_pairs
from edgepose.keypoints import COCO18

from tests.edgepose.decode import paf_reference as ref  # noqa: E402 - after the code under test

PARAMS = {
    "python": PafParams.python(),                                   # 9 of 10 above: 1 miss
    "cmu": PafParams.cmu(),                                         # 10 of 10: no miss
    "half": PafParams(paf_threshold=-0.2, min_above_fraction=0.5),  # 6 of 10: no pruning
    "3 samples": PafParams(samples=3, min_above_fraction=0.6),      # 2 of 3, probes 1
    "2 samples": PafParams(samples=2),                              # probes are the ends
    "any": PafParams(min_above_fraction=0.0),                       # 1 of 10 above
    "5 samples": PafParams(samples=5),                              # 5 of 5, probes 2
    "none": PafParams(min_above_fraction=1.0),                      # 11 of 10: none pass
}


def _fields(rng, height=50, width=70):
    pafs = np.stack([cv2.GaussianBlur(rng.normal(0.05, 0.6, (height, width)).astype(np.float32),
                                      (0, 0), 4) for _ in range(4)])
    return pafs


@pytest.mark.parametrize("name", sorted(PARAMS))
@pytest.mark.parametrize("seed", range(5))
def test_pruned_scores_are_the_loops_for_accepted_pairs(name, seed):
    rng = np.random.default_rng(seed)
    params = PARAMS[name]
    pafs = _fields(rng)
    points_a = rng.integers(0, (70, 50), (9, 2))
    points_b = np.concatenate([rng.integers(0, (70, 50), (8, 2)), points_a[:1]])
    a, b = np.repeat(points_a, len(points_b), axis=0), np.tile(points_b, (len(points_a), 1))
    scores, accepted = score_pairs(pafs[0].reshape(-1), pafs[1].reshape(-1), 0, 0, a, b, 70,
                                   30.0, params, prune=True)
    cand_a = [(int(x), int(y), 0.0, i) for i, (x, y) in enumerate(points_a)]
    cand_b = [(int(x), int(y), 0.0, j) for j, (x, y) in enumerate(points_b)]
    expected = ref.limb_candidates_reference(pafs[0], pafs[1], cand_a, cand_b, 30.0, params)
    accepted = accepted.reshape(len(points_a), len(points_b))
    assert [(i, j) for i, j, _ in expected] == list(zip(*np.nonzero(accepted)))
    np.testing.assert_array_equal([s for _, _, s in expected],
                                  scores.reshape(accepted.shape)[accepted])


def test_pruning_refuses_most_pairs_of_an_empty_field_but_not_the_whole_criterion():
    # A pair with exactly one sample at or below thre2 passes the 0.8 criterion: its
    # probes may hold that one miss. A field of 1 except at one middle sample.
    pafs = np.ones((2, 5, 30), np.float32)
    pafs[1] = 0.0
    a, b = np.array([[0, 2]]), np.array([[27, 2]])  # samples at x = 0, 3, ..., 27
    pafs[0, 2, 12] = 0.0                             # sample 4, one of the two probes
    scores, accepted = score_pairs(pafs[0].reshape(-1), pafs[1].reshape(-1), 0, 0, a, b, 30,
                                   100.0, PafParams.python(), prune=True)
    assert accepted.tolist() == [True] and scores[0] == pytest.approx(0.9)
    pafs[0, 2, 15] = 0.0                             # and sample 5, the other probe
    scores, accepted = score_pairs(pafs[0].reshape(-1), pafs[1].reshape(-1), 0, 0, a, b, 30,
                                   100.0, PafParams.python(), prune=True)
    assert accepted.tolist() == [False] and np.isnan(scores[0])


@pytest.mark.parametrize("name", ["python", "cmu", "half"])
def test_every_limb_at_once_equals_limb_by_limb(name):
    params = PARAMS[name]
    scene = ref.make_scene(COCO18, 8, (120, 160), 3, heights=(40, 90), sigma=3.0,
                           paf_width=3.0, missing=0.1, margin=0.2, noise=0.03)
    peaks = find_peaks(scene.heatmaps[:COCO18.num_keypoints], params)
    spans = [(peaks.of_part(a), peaks.of_part(b)) for a, b in COCO18.skeleton]
    spans = [(sa, sb) for sa, sb in spans if sa.stop > sa.start and sb.stop > sb.start]
    channels = [c for (a, b), c in zip(COCO18.skeleton, COCO18.paf_channels)
                if peaks.of_part(a).stop > peaks.of_part(a).start
                and peaks.of_part(b).stop > peaks.of_part(b).start]
    together = score_every_limb(scene.pafs, peaks.xy, spans, channels, 120.0, params)
    assert len(together) == len(spans) > 10
    for (span_a, span_b), (cx, cy), (scores, accepted) in zip(spans, channels, together):
        alone_scores, alone_accepted = score_limbs(scene.pafs[cx], scene.pafs[cy],
                                                   peaks.xy[span_a], peaks.xy[span_b], 120.0,
                                                   params)
        np.testing.assert_array_equal(accepted, alone_accepted)
        np.testing.assert_array_equal(scores[accepted], alone_scores[alone_accepted])


def test_non_contiguous_pafs_take_the_limb_by_limb_path_to_the_same_people():
    scene = ref.make_scene(COCO18, 6, (100, 140), 8, heights=(40, 80), sigma=3.0,
                           paf_width=3.0, missing=0.1, noise=0.02)
    decoder = PafDecoder(COCO18, dataclasses.replace(PafParams.python()))
    strided = np.asfortranarray(scene.pafs)
    assert not strided.flags.c_contiguous
    _, rows = decoder.group(scene.pafs, scene.heatmaps, 100)
    _, strided_rows = decoder.group(strided, scene.heatmaps, 100)
    assert len(rows) >= 3
    np.testing.assert_array_equal(rows, strided_rows)


@pytest.mark.parametrize("name", ["python", "cmu"])
def test_score_limbs_pruned_accepts_what_it_accepts_unpruned(name):
    rng = np.random.default_rng(11)
    pafs = _fields(rng)
    points_a, points_b = rng.integers(0, (70, 50), (12, 2)), rng.integers(0, (70, 50), (10, 2))
    full = score_limbs(pafs[2], pafs[3], points_a, points_b, 30.0, PARAMS[name])
    pruned = score_limbs(pafs[2], pafs[3], points_a, points_b, 30.0, PARAMS[name], prune=True)
    np.testing.assert_array_equal(pruned[1], full[1])
    np.testing.assert_array_equal(pruned[0][pruned[1]], full[0][full[1]])
    assert np.isnan(pruned[0]).any() and not np.isnan(full[0]).any()


def test_the_probes_are_samples_of_an_odd_count_too():
    # 3 samples at x = 0, 10, 20 (A = (0, 2), B = (20, 2)); 0.6 needs 2 above. The
    # middle one fails, the ends pass: accepted, score (1 + 0 + 1) / 3. Pruning may
    # read sample 1 only: x = 15, not a sample, fails too but must not count.
    pafs = np.ones((2, 5, 21), np.float32)
    pafs[1] = 0.0
    pafs[0, 2, 10] = pafs[0, 2, 15] = 0.0
    params = PafParams(samples=3, min_above_fraction=0.6)
    scores, accepted = score_pairs(pafs[0].reshape(-1), pafs[1].reshape(-1), 0, 0,
                                   np.array([[0, 2]]), np.array([[20, 2]]), 21, 100.0, params,
                                   prune=True)
    assert accepted.tolist() == [True] and scores[0] == pytest.approx(2 / 3)


def test_without_prune_every_pair_is_scored():
    rng = np.random.default_rng(5)
    pafs = _fields(rng)
    a, b = rng.integers(0, (70, 50), (40, 2)), rng.integers(0, (70, 50), (40, 2))
    scores, _ = score_pairs(pafs[0].reshape(-1), pafs[1].reshape(-1), 0, 0, a, b, 70, 30.0,
                            PafParams.python())
    assert not np.isnan(scores).any()
