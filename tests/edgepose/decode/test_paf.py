"""PAF decoding against an independent loop reference (tests/edgepose/decode/paf_reference.py).

The reference follows the published algorithm one pixel, pair, sample and person
at a time; the vectorised decoder must return exactly its peaks and people on
synthetic OpenPose maps, for the Python-port and the CMU presets.
"""


import dataclasses

import cv2
import numpy as np
import pytest

from edgepose.decode.paf import (
    ImageMaps,
    PafDecoder,
    PafParams,
    assemble,
    find_peaks,
    gaussian_smooth,
    gaussian_smooth_at,
    match_limb,
    redundant_limbs,
    resize_maps_to_image,
    score_limbs,
)
from edgepose.errors import DecodeError, InputError
from edgepose.keypoints import COCO18, KEYPOINT_SETS
from edgepose.preprocess import resize_pad_for_bottom_up


from tests.edgepose.decode import paf_reference as ref  # noqa: E402 - after the code under test
K = COCO18.num_keypoints
PRESETS = {"python": PafParams.python(), "cmu": PafParams.cmu()}
# Half the working resolution of a 368x656 frame keeps the loop reference quick.
SIZE = (184, 328)


def _assert_same_result(peaks, rows, ref_peaks, ref_rows):
    flat = [p for part in ref_peaks for p in part]
    assert len(peaks) == len(flat)
    np.testing.assert_array_equal(peaks.xy, np.array([p[:2] for p in flat]).reshape(-1, 2))
    np.testing.assert_array_equal(peaks.parts, [k for k, part in enumerate(ref_peaks)
                                                for _ in part])
    np.testing.assert_allclose(peaks.scores, [p[2] for p in flat], rtol=0, atol=1e-6)
    assert rows.shape == ref_rows.shape
    np.testing.assert_array_equal(rows[:, :K], ref_rows[:, :K])  # the same parts per person
    np.testing.assert_array_equal(rows[:, K + 1], ref_rows[:, K + 1])  # part counts
    np.testing.assert_allclose(rows[:, K], ref_rows[:, K], rtol=0, atol=1e-6)  # total scores


def _people(necks, heights, missing=(), seed=0):
    """Template people at explicit necks (x, y) and heights; `missing`: (person, part) hidden."""
    rng = np.random.default_rng(seed)
    count = len(necks)
    xy = np.array(necks, float)[:, None, :] + (
        ref.COCO18_TEMPLATE[None] + rng.normal(0, 0.01, (count, K, 2))) * np.array(
        heights, float)[:, None, None]
    visible = np.ones((count, K), bool)
    for person, part in missing:
        visible[person, part] = False
    height, width = SIZE
    visible &= (xy[..., 0] >= 0) & (xy[..., 0] <= width - 1) & (xy[..., 1] >= 0) \
        & (xy[..., 1] <= height - 1)
    return xy, visible


def _scene(name):
    """(pafs, heatmaps, true xy, visible) of the named synthetic frame."""
    rng = np.random.default_rng(7)
    if name == "0 people":
        xy, visible = np.zeros((0, K, 2)), np.zeros((0, K), bool)
    elif name == "1 person":
        xy, visible = _people([(160, 40)], [150])
    elif name == "5 people":
        # Three overlapping people, one missing its left arm and right eye, one cut by the
        # right border, one small one.
        xy, visible = _people(
            [(60, 40), (92, 50), (124, 35), (312, 45), (230, 100)], [130, 120, 140, 150, 70],
            missing=[(1, 5), (1, 6), (1, 7), (1, 14)], seed=1)
    elif name == "30 people":
        xy, visible = ref.sample_people(rng, 30, SIZE, (50, 120), missing=0.15, margin=0.3)
    else:
        raise ValueError(name)
    pafs, heatmaps = ref.render_maps(xy, visible, COCO18, SIZE, sigma=3.5, paf_width=4.0,
                                     noise=0.02, rng=rng)
    return pafs, heatmaps, xy, visible


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("scene, least_people", [
    ("0 people", 0),    # noise only: no peak, no person
    ("1 person", 1),    # one full person
    ("5 people", 3),    # overlapping, a truncated one, missing parts
    ("30 people", 10),  # crowded, truncated at every border, parts missing at random
])
def test_decoder_returns_the_reference_people(scene, least_people, preset):
    params = PRESETS[preset]
    pafs, heatmaps, _, _ = _scene(scene)
    decoder = PafDecoder(COCO18, params)
    peaks, rows = decoder.group(pafs, heatmaps, SIZE[0])
    ref_peaks, ref_rows = ref.decode_reference(pafs, heatmaps, COCO18, SIZE[0], params)
    _assert_same_result(peaks, rows, ref_peaks, ref_rows)
    assert len(rows) >= least_people
    xy, scores, person_scores = decoder.decode(pafs, heatmaps, SIZE[0])
    flat = [p for part in ref_peaks for p in part]
    for n, row in enumerate(ref_rows):
        for part in range(K):
            peak = int(row[part])
            expected = (flat[peak][0], flat[peak][1], flat[peak][2]) if peak >= 0 else (0, 0, 0)
            np.testing.assert_allclose([*xy[n, part], scores[n, part]], expected, atol=1e-6)
    np.testing.assert_allclose(person_scores, ref_rows[:, K] / (K + len(COCO18.skeleton)),
                               rtol=1e-6)


def test_a_single_person_is_found_where_drawn():
    pafs, heatmaps, true_xy, visible = _scene("1 person")
    xy, scores, _ = PafDecoder(COCO18).decode(pafs, heatmaps, SIZE[0])
    assert xy.shape == (1, K, 2)
    found = scores[0] > 0
    np.testing.assert_array_equal(found, visible[0])
    # Peaks sit on integer pixels: at most half a pixel per axis from the drawn point.
    assert np.abs(xy[0][found] - true_xy[0][found]).max() <= 0.5 + 1e-6


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("seed", range(3))
def test_find_peaks_matches_the_loop_on_noisy_maps(seed, preset):
    rng = np.random.default_rng(seed)
    smooth_noise = cv2.GaussianBlur(rng.random((60, 90)).astype(np.float32), (0, 0), 2)
    maps = np.stack([smooth_noise * rng.uniform(0.2, 1.5) for _ in range(4)])
    params = PRESETS[preset]
    _assert_same_result(find_peaks(maps, params), np.zeros((0, K + 2)),
                        ref.peaks_reference(maps, params), np.zeros((0, K + 2)))


def test_ties_on_plateaus_follow_scipy():
    # Flat tops make neighbouring smoothed values equal in SciPy's arithmetic; the
    # decoder re-evaluates such near-ties exactly, so both pixels are peaks as there.
    maps = np.zeros((3, 30, 40))
    maps[0, 10, 10:12] = 20.0                # two-pixel plateau
    maps[1, 14:16, 20:22] = 10.0             # 2x2 plateau
    maps[2, 0, 5:8] = 5.0                    # plateau on the border row
    gy, gx = np.mgrid[0:30, 0:40]
    maps[2] += np.exp(-((gx - 25.5) ** 2 + (gy - 20.5) ** 2) / 8.0)  # blob between pixels
    peaks = find_peaks(maps, PafParams())
    _assert_same_result(peaks, np.zeros((0, K + 2)), ref.peaks_reference(maps, PafParams()),
                        np.zeros((0, K + 2)))
    assert np.diff(peaks.starts).tolist() == [2, 4, 3]  # every plateau pixel ties


@pytest.mark.parametrize("shape", [(4, 37, 53), (3, 5, 7), (1, 1, 30), (2, 30, 1)])
def test_gaussian_smooth_matches_scipy(shape):
    ndimage = pytest.importorskip("scipy.ndimage", reason="SciPy is the reference smoother")
    maps = np.random.default_rng(1).random(shape).astype(np.float32)
    expected = np.stack([ndimage.gaussian_filter(m.astype(np.float64), 3.0) for m in maps])
    np.testing.assert_allclose(gaussian_smooth(maps, 3.0), expected, rtol=0, atol=1e-13)
    k, y, x = (a.ravel() for a in np.indices(shape))
    exact = gaussian_smooth_at(maps, k, y, x, 3.0).reshape(shape)
    np.testing.assert_array_equal(exact, expected)  # bit for bit


def test_the_references_own_smoother_equals_scipy(monkeypatch):
    # Without SciPy the reference smooths by itself; it must then still be SciPy's.
    ndimage = pytest.importorskip("scipy.ndimage", reason="SciPy is the reference smoother")
    image = np.random.default_rng(2).random((9, 31))
    monkeypatch.setattr(ref, "_scipy_gaussian", None)
    np.testing.assert_array_equal(ref.smooth_reference(image, 3.0, 4.0),
                                  ndimage.gaussian_filter(image, 3.0))


@pytest.mark.parametrize("threshold", [0.1, 0.0, -0.5])
def test_the_ports_shifted_map_peaks_are_the_pixel_loops(threshold):
    # The benchmarks time peaks_as_the_port (the official code's speed); the tests
    # trust peaks_reference. Blobs, a flat plateau on the border, noise, and a
    # threshold that lets every pixel through.
    rng = np.random.default_rng(3)
    maps = ref.make_scene(COCO18, 5, (40, 50), 1, heights=(15, 30), sigma=2.0,
                          paf_width=2.0, noise=0.05).heatmaps[:6].copy()
    maps[2, 0:6, 0:9] = 0.7
    maps[3] = rng.uniform(-1, 1, (40, 50))
    params = dataclasses.replace(PafParams(), peak_threshold=threshold)
    expected = ref.peaks_reference(maps, params)
    assert sum(map(len, expected)) > 10
    assert ref.peaks_as_the_port(maps, params) == expected


@pytest.mark.parametrize("seed", range(4))
def test_score_limbs_matches_the_loop(seed):
    rng = np.random.default_rng(seed)
    height, width = 50, 70
    paf_x = cv2.GaussianBlur(rng.normal(0.3, 1, (height, width)).astype(np.float32), (0, 0), 3)
    paf_y = cv2.GaussianBlur(rng.normal(0.3, 1, (height, width)).astype(np.float32), (0, 0), 3)
    points_a = rng.integers(0, (width, height), (7, 2))
    points_b = np.concatenate([rng.integers(0, (width, height), (6, 2)),
                               points_a[:1],                          # coincident with an A
                               np.minimum(points_a[1:2] + (0, 3), height - 1)])  # straight down
    params = PafParams(paf_threshold=-0.2, min_above_fraction=0.5)
    image_height = 40  # small: the distance prior bites on long pairs
    scores, accepted = score_limbs(paf_x, paf_y, points_a, points_b, image_height, params)
    cand_a = [(int(x), int(y), 0.0, i) for i, (x, y) in enumerate(points_a)]
    cand_b = [(int(x), int(y), 0.0, j) for j, (x, y) in enumerate(points_b)]
    expected = ref.limb_candidates_reference(paf_x, paf_y, cand_a, cand_b, image_height, params)
    assert [(i, j) for i, j, _ in expected] == list(zip(*np.nonzero(accepted)))
    assert 0 < len(expected) < accepted.size
    np.testing.assert_array_equal([s for _, _, s in expected], scores[accepted])


@pytest.mark.parametrize("seed", range(200))
def test_match_limb_equals_the_sequential_greedy(seed):
    rng = np.random.default_rng(seed)
    n_a, n_b = rng.integers(1, 8, 2)
    scores = rng.integers(1, 5, (n_a, n_b)) / 4.0  # few values: many ties
    accepted = rng.random((n_a, n_b)) < 0.7
    index_a, index_b, values = match_limb(scores, accepted)
    candidates = [(i, j, scores[i, j]) for i, j in zip(*np.nonzero(accepted))]
    cand_a = [(0, 0, 0.0, i) for i in range(n_a)]
    cand_b = [(0, 0, 0.0, j) for j in range(n_b)]
    expected = ref.greedy_reference(candidates, cand_a, cand_b)
    assert list(zip(index_a.tolist(), index_b.tolist(), values.tolist())) == expected


def _random_connections(rng):
    counts = rng.integers(0, 5, K)
    starts = np.concatenate([[0], np.cumsum(counts)])
    connections = []
    for part_a, part_b in COCO18.skeleton:
        n = min(counts[part_a], counts[part_b])
        m = int(rng.integers(0, n + 1))
        a = starts[part_a] + rng.permutation(counts[part_a])[:m]
        b = starts[part_b] + rng.permutation(counts[part_b])[:m]
        connections.append((a.astype(np.int64), b.astype(np.int64), rng.random(m) * 2))
    return connections, rng.random(int(starts[-1]))


@pytest.mark.parametrize("preset", ["python", "cmu", "keep all"])
def test_assemble_matches_the_loop_on_random_connections(preset):
    params = PRESETS.get(preset, PafParams(min_parts=0, min_mean_score=-1e9))
    for seed in range(300):
        connections, peak_scores = _random_connections(np.random.default_rng(seed))
        rows = assemble(connections, COCO18.skeleton, peak_scores, K, params)
        expected = ref.assemble_reference(
            [list(zip(a.tolist(), b.tolist(), s.tolist())) for a, b, s in connections],
            COCO18.skeleton, peak_scores.tolist(), K, params)
        assert rows.shape == expected.shape, f"seed {seed}"
        np.testing.assert_array_equal(rows, expected, err_msg=f"seed {seed}")


def test_redundant_limbs_are_the_ear_shoulder_pairs():
    assert redundant_limbs(COCO18.skeleton) == (17, 18)  # the port's `k < 17`
    # CMU special-cases BODY_25's pairs 18 and 19 alike.
    assert redundant_limbs(KEYPOINT_SETS["body25"].skeleton) == (18, 19)


@pytest.mark.parametrize("skeleton, closing", [
    # Two chains 0-1 and 2-3 joined by 1-3: nothing closes yet; then 0-2 closes the
    # cycle 0-1-3-2. Both ends of 1-3 hang below their chains' first parts.
    ([(0, 1), (2, 3), (1, 3)], ()),
    ([(0, 1), (2, 3), (1, 3), (0, 2)], (3,)),
    # A 4-cycle whose last limb reaches its part 0 through three earlier limbs.
    ([(1, 0), (2, 1), (3, 2), (0, 3)], (3,)),
    # The same pair twice: the second adds no connection.
    ([(4, 7), (4, 7)], (1,)),
    # Parts 1 and 3 are joined through 0-2-3 before limb 3 asks; 1-2 closes too.
    ([(0, 1), (2, 3), (0, 2), (1, 3), (1, 2)], (3, 4)),
])
def test_redundant_limbs_are_those_whose_parts_earlier_limbs_already_join(skeleton, closing):
    # Expected by hand from the definition: a limb is redundant when a path of earlier
    # limbs already joins its two parts.
    assert redundant_limbs(skeleton) == closing


def test_the_ear_shoulder_limbs_never_start_a_person():
    # Only a right shoulder and a right ear, joined by limb 17 (the 18th): no person.
    connections = [(np.zeros(0, np.int64),) * 2 + (np.zeros(0),) for _ in COCO18.skeleton]
    connections[17] = (np.array([0]), np.array([1]), np.array([0.9]))
    params = PafParams(min_parts=0, min_mean_score=-1.0)
    assert assemble(connections, COCO18.skeleton, np.ones(2), K, params).shape == (0, K + 2)
    connections[17], connections[0] = connections[0], connections[17]  # neck–shoulder does
    assert assemble(connections, COCO18.skeleton, np.ones(2), K, params).shape == (1, K + 2)


def test_presets_hold_the_published_constants():
    python, cmu = PafParams.python(), PafParams.cmu()
    assert (python.sigma, python.truncate, python.peak_threshold, python.paf_threshold,
            python.samples, python.min_above_fraction, python.distance_prior, python.min_norm,
            python.min_parts, python.min_mean_score) == (
        3.0, 4.0, 0.1, 0.05, 10, 0.8, 0.5, 1e-3, 4, 0.4)
    assert (cmu.peak_threshold, cmu.paf_threshold, cmu.min_above_fraction, cmu.min_parts,
            cmu.min_mean_score) == (0.05, 0.05, 0.95, 3, 0.4)
    assert PafParams.preset("cmu") == cmu and PafParams.preset("python") == python


def test_resize_maps_to_image_matches_the_ports_channel_last_resizes():
    maps = np.random.default_rng(0).random((5, 12, 20)).astype(np.float32)
    valid, image = (150, 90), (211, 127)
    out = resize_maps_to_image(maps, 8, valid, image)
    hwc = cv2.resize(maps.transpose(1, 2, 0), (0, 0), fx=8, fy=8, interpolation=cv2.INTER_CUBIC)
    hwc = cv2.resize(hwc[:valid[1], :valid[0]], image, interpolation=cv2.INTER_CUBIC)
    assert out.shape == (5, 127, 211)
    np.testing.assert_allclose(out, hwc.transpose(2, 0, 1), atol=1e-5)


def _maps(pafs=38, heatmaps=19, size=(20, 30)):
    return np.zeros((pafs, *size), np.float32), np.zeros((heatmaps, *size), np.float32)


@pytest.mark.parametrize("pafs, heatmaps, match", [
    (_maps(pafs=36)[0], _maps()[1], r"pafs have 36 channels; coco18 needs 38"),   # a limb short
    (_maps(pafs=52)[0], _maps()[1], r"pafs have 52 channels; coco18 needs 38"),   # BODY_25 PAFs
    (_maps()[0], _maps(heatmaps=26)[1], r"heatmaps have 26 channels; coco18 needs 19"),
    (_maps()[0], _maps(size=(20, 31))[1], r"same map size"),                      # sizes differ
    (_maps()[0][0], _maps()[1], r"pafs must be 3-D"),                             # one channel only
    (_maps()[0].astype(np.int32), _maps()[1], r"float array"),                    # not a float map
])
def test_maps_that_do_not_fit_the_keypoint_set_are_refused(pafs, heatmaps, match):
    with pytest.raises(DecodeError, match=match):
        PafDecoder(COCO18).decode(pafs, heatmaps, 100)


@pytest.mark.parametrize("which, value", [("pafs", np.nan), ("heatmaps", np.inf)])
def test_non_finite_maps_are_refused_with_their_location(which, value):
    pafs, heatmaps = _maps()
    {"pafs": pafs, "heatmaps": heatmaps}[which][3, 4, 5] = value
    with pytest.raises(DecodeError, match=rf"{which} hold 1 NaN/inf values \(first at channel "
                                          r"3, y=4, x=5\)"):
        PafDecoder(COCO18).decode(pafs, heatmaps, 100)


def test_heatmaps_without_background_are_accepted():
    pafs, heatmaps, _, _ = _scene("1 person")
    with_bkg = PafDecoder(COCO18).decode(pafs, heatmaps, SIZE[0])
    without = PafDecoder(COCO18).decode(pafs, heatmaps[:K], SIZE[0])
    for a, b in zip(with_bkg, without):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("call, error, match", [
    (lambda: PafDecoder(COCO18).decode(*_maps(), 0), DecodeError, "image_height"),
    (lambda: PafDecoder("coco17"), InputError, "no PAF channel map"),        # not a PAF set
    (lambda: PafParams.preset("mmpose"), InputError, "unknown PAF decoder preset"),
    (lambda: PafParams(samples=1), InputError, "samples"),                   # no line to sample
    (lambda: PafParams(sigma=-1.0), InputError, "sigma"),
    (lambda: resize_pad_for_bottom_up(np.zeros((7, 100, 3), np.uint8), 368, 8, 128),
     InputError, "smaller than the model's stride 8"),                       # image < stride
])
def test_bad_arguments_are_refused(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_body25_maps_decode():
    body25 = KEYPOINT_SETS["body25"]
    pafs, heatmaps = _maps(pafs=52, heatmaps=26)
    xy, scores, person_scores = PafDecoder(body25).decode(pafs, heatmaps, 100)
    assert xy.shape == (0, 25, 2) and scores.shape == (0, 25) and person_scores.shape == (0,)


# ------------------------------------------- mutation-testing gaps (issue 25 §5)

@pytest.mark.parametrize("field, value", [
    ("sigma", 0.0), ("distance_prior", 0.0), ("min_above_fraction", 0.0),
    ("truncate", 0.5), ("min_norm", 1e-9), ("samples", 2), ("min_parts", 0),
    ("max_peaks_per_part", 1),
])
def test_paf_params_accept_their_lowest_values(field, value):
    assert getattr(PafParams(**{field: value}), field) == value


@pytest.mark.parametrize("field, value, match", [
    ("truncate", 0.0, "truncate must be a finite number > 0, got 0.0"),
    ("min_norm", 0.0, "min_norm must be a finite number > 0, got 0.0"),
    ("sigma", -1.0, "sigma must be a finite number >= 0, got -1.0"),
    ("distance_prior", -0.5, "distance_prior must be a finite number >= 0, got -0.5"),
    ("min_above_fraction", -0.1, "min_above_fraction must be a finite number >= 0, got -0.1"),
    ("samples", 1, "samples must be an integer >= 2, got 1"),
    ("samples", 10.0, "samples must be an integer >= 2, got 10.0"),
    ("max_peaks_per_part", 0, "max_peaks_per_part must be an integer >= 1, got 0"),
])
def test_paf_params_refuse_values_below_their_bounds(field, value, match):
    with pytest.raises(InputError, match=f"^PafParams.{match}$"):
        PafParams(**{field: value})


def test_assemble_keeps_a_person_whose_mean_score_equals_the_minimum():
    # The port drops `subset[i][-2] / subset[i][-1] < 0.4`: a mean of exactly 0.4 stays.
    # Five parts of 0.25 and four limbs of 0.1875 (exact binary fractions): 2.0 / 5 = 0.4.
    skeleton = [(0, 1), (1, 2), (2, 3), (3, 4)]
    connections = [(np.array([i]), np.array([i + 1]), np.array([0.1875])) for i in range(4)]
    rows = assemble(connections, skeleton, np.full(5, 0.25), 5, PafParams())
    np.testing.assert_array_equal(rows, [[0, 1, 2, 3, 4, 2.0, 5]])


@pytest.mark.parametrize("first, second", [(0, 3), (3, 0)], ids=["A-holds-0", "B-holds-0"])
def test_assemble_does_not_merge_people_sharing_a_part_held_by_peak_0(first, second):
    # Peak id 0 is a real peak: two people both holding a part (one of them with
    # peak 0) share it and must not merge; B's peak is written into the first.
    skeleton = [(0, 1), (0, 2), (1, 2)]
    connections = [(np.array([first]), np.array([1]), np.array([0.5])),
                   (np.array([second]), np.array([2]), np.array([0.5])),
                   (np.array([1]), np.array([2]), np.array([0.5]))]
    params = PafParams(min_parts=0, min_mean_score=-1.0)
    rows = assemble(connections, skeleton, np.ones(4), 3, params)
    expected = ref.assemble_reference(
        [list(zip(a.tolist(), b.tolist(), s.tolist())) for a, b, s in connections],
        skeleton, [1.0] * 4, 3, params)
    assert expected.shape == (2, 5)
    np.testing.assert_array_equal(rows, expected)


def test_assemble_forgets_peak_0_once_it_is_overwritten():
    # The cycle 1-0, 1-2, 2-0 overwrites the person's part 0 (peak 0) with peak 1 on
    # its closing limb; a later limb from peak 0 must find nobody holding it, as the
    # port's search of the current rows finds, and start a new person.
    skeleton = [(1, 0), (1, 2), (2, 0), (0, 3)]
    connections = [(np.array([a]), np.array([b]), np.array([0.5]))
                   for a, b in ((2, 0), (2, 3), (3, 1), (0, 4))]
    params = PafParams(min_parts=0, min_mean_score=-1.0)
    rows = assemble(connections, skeleton, np.ones(5), 4, params)
    expected = ref.assemble_reference(
        [list(zip(a.tolist(), b.tolist(), s.tolist())) for a, b, s in connections],
        skeleton, [1.0] * 5, 4, params)
    assert expected[:, :4].tolist() == [[1, 2, 3, -1], [0, -1, -1, 4]]
    np.testing.assert_array_equal(rows, expected)


def test_image_maps_accept_maps_that_exactly_cover_the_image():
    # 4 x 5 maps at stride 8 cover 32 x 40 input pixels: enough for a 40 x 32 image.
    maps = np.random.default_rng(0).random((2, 4, 5)).astype(np.float32)
    assert ImageMaps(maps, 8, (40, 32), (80, 64)).shape == (2, 64, 80)
    assert ImageMaps(np.ones((2, 1, 1), np.float32), 8, (8, 8), (8, 8)).shape == (2, 8, 8)


@pytest.mark.parametrize("valid_size, image", [((41, 32), "32x41"), ((40, 33), "33x40")])
def test_image_maps_refuse_maps_short_of_the_image_on_either_axis(valid_size, image):
    with pytest.raises(DecodeError, match=f"^maps of 4x5 at stride 8 cover 32x40 input pixels, "
                                          f"less than the {image} image"):
        ImageMaps(np.ones((2, 4, 5), np.float32), 8, valid_size, (80, 64))


@pytest.mark.parametrize("shape", [(2, 0, 3), (2, 3, 0)])
def test_image_maps_refuse_empty_maps(shape):
    with pytest.raises(DecodeError, match=r"^maps must have H, W >= 1"):
        ImageMaps(np.ones(shape, np.float32), 8, (1, 1), (8, 8))


def test_image_maps_check_by_default():
    maps = np.ones((2, 4, 5), np.float32)
    maps[1, 2, 3] = np.nan
    with pytest.raises(DecodeError, match="NaN"):
        ImageMaps(maps, 8, (40, 32), (80, 64))


def test_image_maps_slice_is_image_maps_of_those_channels():
    maps = np.random.default_rng(1).random((3, 4, 5)).astype(np.float32)
    whole = ImageMaps(maps, 8, (40, 32), (80, 64), name="pafs")
    part = whole[1:3]
    assert isinstance(part, ImageMaps) and part.shape == (2, 64, 80)
    assert (part.stride, part.valid_size, part.image_size, part.name, part.check) == \
        (8, (40, 32), (80, 64), "pafs", True)
    np.testing.assert_array_equal(part[0], whole[1])
    np.testing.assert_array_equal(part[1], whole.resize(2))


@pytest.mark.parametrize("field, value", [("peak_threshold", 2.0), ("paf_threshold", 2.0)])
def test_decoder_uses_its_own_params_for_peaks_and_limb_scores(field, value):
    # The maps are at most 1: a threshold of 2 leaves no peak, or no limb, so no one.
    pafs, heatmaps, _, _ = _scene("1 person")
    assert len(PafDecoder(COCO18).group(pafs, heatmaps, SIZE[0])[1]) == 1
    params = PafParams(**{field: value, "min_parts": 0, "min_mean_score": -1.0})
    peaks, rows = PafDecoder(COCO18, params).group(pafs, heatmaps, SIZE[0])
    ref_peaks, ref_rows = ref.decode_reference(pafs, heatmaps, COCO18, SIZE[0], params)
    assert len(rows) == len(ref_rows) == 0


def test_a_part_without_peaks_skips_only_its_own_limbs():
    # No right-shoulder peak (part 2): limbs 0 (1-2) and 2 (2-3) have nothing to
    # connect; every other limb still assembles the person.
    pafs, heatmaps, _, _ = _scene("1 person")
    heatmaps = heatmaps.copy()
    heatmaps[2] = 0.0
    peaks, rows = PafDecoder(COCO18).group(pafs, heatmaps, SIZE[0])
    ref_peaks, ref_rows = ref.decode_reference(pafs, heatmaps, COCO18, SIZE[0], PafParams())
    _assert_same_result(peaks, rows, ref_peaks, ref_rows)
    assert len(rows) == 1 and rows[0, 2] == -1 and rows[0, K + 1] >= 10
