"""PAF thresholds pinned exactly at their boundaries, from the official rules.

The Python OpenPose port (Hzzone ``src/body.py``, ``Body.__call__``), which the
CMU demo's algorithm follows:
- peaks: ``map >= map_left, map >= map_right, map >= map_up, map >= map_down,
  map > thre1`` on the smoothed map (0 outside it);
- pairs: a sample counts when ``score_midpts > thre2``, and a pair is a candidate
  when ``len(np.nonzero(score_midpts > thre2)[0]) > 0.8 * len(score_midpts)`` and
  its score with the distance prior is ``> 0``.
Expected outcomes come from those rules, not from the code under test. The top-down
boundaries live in test_topdown.py (SHIFT_CASES), the HRNet box sentinel in
test_preprocess.py.
"""

import dataclasses

import numpy as np
import pytest

from edgepose.decode.paf import PafParams, find_peaks, score_limbs
from edgepose.decode.paf_peaks import heatmap_peaks

from tests.edgepose.decode import paf_reference as ref  # noqa: E402 - after the code under test

PYTHON = PafParams.python()
THRE2 = PYTHON.paf_threshold  # 0.05
THRE1 = PYTHON.peak_threshold  # 0.1

# ------------------------------------------------------------------ pair scoring
# A horizontal limb from A = (0, 5) to B = (18, 5): linspace gives the 10 samples at
# x = 0, 2, ..., 18 on row 5, each a distinct pixel, and the unit vector is (1, 0), so
# sample k's score is exactly paf_x[5, 2k]. image_height 100 makes the distance prior
# min(0.5·100/18 − 1, 0) = 0, so a pair's score is the mean of its samples.
ROW, SAMPLE_X = 5, np.arange(0, 20, 2)
A, B = np.array([[0, ROW]]), np.array([[18, ROW]])
IMAGE_HEIGHT = 100.0


def _limb(samples):
    """score_limbs on a PAF whose 10 samples along A→B are `samples` (float64, as the port)."""
    paf_x = np.zeros((12, 20), np.float64)
    paf_y = np.zeros((12, 20), np.float64)
    paf_x[ROW, SAMPLE_X] = samples
    return score_limbs(paf_x, paf_y, A, B, IMAGE_HEIGHT, PYTHON)


def _samples(above, below=0.0, extra=()):
    """`above` samples of 1.0, then `extra`, then `below` for the rest of the 10."""
    values = [1.0] * above + list(extra)
    return values + [below] * (10 - len(values))


@pytest.mark.parametrize("samples, accepted", [
    pytest.param(_samples(9), True, id="9-of-10-above-accepted-(9>8)"),
    pytest.param(_samples(8), False, id="8-of-10-above-rejected-(8>8-fails)"),
    pytest.param(_samples(10), True, id="10-of-10-above-accepted"),
    # 8 clear samples plus one exactly at thre2: that one does not count, 8 > 8 fails.
    pytest.param(_samples(8, extra=[THRE2]), False, id="sample-equal-to-thre2-does-not-count"),
    # The same with that sample one ulp above thre2: it counts, 9 > 8.
    pytest.param(_samples(8, extra=[np.nextafter(THRE2, 1.0)]), True,
                 id="sample-one-ulp-above-thre2-counts"),
])
def test_pair_needs_more_than_0_8_of_its_samples_strictly_above_thre2(samples, accepted):
    scores, ok = _limb(samples)
    # Every case's mean is positive, so only the 0.8 criterion decides.
    assert scores[0, 0] > 0
    assert bool(ok[0, 0]) is accepted


def test_pair_scoring_exactly_zero_is_rejected():
    # 9 samples of 1 and one of −9: all but one above thre2, but the score is
    # (9 − 9)/10 + 0 = 0 exactly and the port asks score_with_dist_prior > 0.
    scores, ok = _limb(_samples(9, below=-9.0))
    assert scores[0, 0] == 0.0
    assert not ok[0, 0]


@pytest.mark.parametrize("above, accepted", [(9, False), (10, True)])
def test_cmu_preset_needs_more_than_0_95_of_the_samples(above, accepted):
    # CMU's inter_min_above_threshold 0.95, also strict: 9.5 samples, so all 10.
    paf_x = np.zeros((12, 20), np.float64)
    paf_x[ROW, SAMPLE_X] = _samples(above)
    _, ok = score_limbs(paf_x, np.zeros_like(paf_x), A, B, IMAGE_HEIGHT, PafParams.cmu())
    assert bool(ok[0, 0]) is accepted


# ------------------------------------------------------------------ peaks

UNSMOOTHED = dataclasses.replace(PYTHON, sigma=0.0)


def _peak_xy(heatmap, params):
    peaks = find_peaks(heatmap[None], params)
    return sorted(map(tuple, peaks.xy.tolist()))


@pytest.mark.parametrize("value, is_peak", [
    pytest.param(THRE1, False, id="equal-to-thre1-not-a-peak"),
    pytest.param(np.nextafter(THRE1, 1.0), True, id="one-ulp-above-thre1-a-peak"),
    pytest.param(np.nextafter(THRE1, 0.0), False, id="one-ulp-below-thre1-not-a-peak"),
])
def test_unsmoothed_peak_must_be_strictly_above_thre1(value, is_peak):
    heatmap = np.zeros((9, 11), np.float64)
    heatmap[4, 6] = value
    assert _peak_xy(heatmap, UNSMOOTHED) == ([(6, 4)] if is_peak else [])


@pytest.mark.parametrize("offset, is_peak", [
    pytest.param(0, False, id="thre1-equal-to-the-smoothed-peak-not-a-peak"),
    pytest.param(-1, True, id="thre1-one-ulp-below-the-smoothed-peak-a-peak"),
])
def test_smoothed_peak_must_be_strictly_above_thre1(offset, is_peak):
    # The smoothed value is SciPy's (the reference smoother); the threshold is set to it,
    # or one ulp below, so the comparison is decided on SciPy's exact value.
    heatmap = np.zeros((31, 33), np.float64)
    heatmap[15, 16] = 1.0
    smoothed = ref.smooth_reference(heatmap, PYTHON.sigma, PYTHON.truncate)[15, 16]
    threshold = smoothed if offset == 0 else np.nextafter(smoothed, 0.0)
    params = dataclasses.replace(PYTHON, peak_threshold=float(threshold))
    assert _peak_xy(heatmap, params) == ([(16, 15)] if is_peak else [])


def test_a_plateau_is_all_peaks_since_neighbours_compare_with_greater_or_equal():
    heatmap = np.zeros((9, 11), np.float64)
    heatmap[2, 3:6] = 0.5          # a row of three equal pixels: all three peaks
    heatmap[5:7, 7:9] = 0.5        # a 2x2 plateau: all four peaks
    heatmap[8, 0:2] = 0.5          # on the corner, 0 outside the map: both peaks
    assert _peak_xy(heatmap, UNSMOOTHED) == [
        (0, 8), (1, 8), (3, 2), (4, 2), (5, 2), (7, 5), (7, 6), (8, 5), (8, 6)]


def test_a_plateau_pixel_beside_a_higher_one_is_not_a_peak():
    heatmap = np.zeros((9, 11), np.float64)
    # x = 3 ties its right neighbour and beats 0 on its left: a peak; x = 4 loses to 0.6.
    heatmap[2, 3:6] = (0.5, 0.5, 0.6)
    heatmap[6, 4] = 0.5
    heatmap[7, 4] = 0.5 + 1e-12        # one pixel a hair higher below the other
    assert _peak_xy(heatmap, UNSMOOTHED) == [(3, 2), (4, 7), (5, 2)]


def test_a_plateau_at_thre1_is_no_peak():
    heatmap = np.zeros((9, 11), np.float64)
    heatmap[3:5, 3:5] = THRE1
    assert _peak_xy(heatmap, UNSMOOTHED) == []


def test_heatmap_peaks_sigma_zero_follows_the_same_rule():
    # The function find_peaks calls, alone: same rule, (y, x) order.
    heatmap = np.zeros((5, 5), np.float64)
    heatmap[1, 1] = THRE1
    heatmap[3, 2:4] = 0.3
    y, x = heatmap_peaks(heatmap, 0.0, 4.0, THRE1)
    assert list(zip(y.tolist(), x.tolist())) == [(3, 2), (3, 3)]


def test_outside_the_map_counts_as_0_and_a_tie_with_it_is_kept():
    # With thre1 < 0 a flat zero map ties everywhere, the zeros outside included:
    # every pixel is a peak, border and corners too.
    params = dataclasses.replace(UNSMOOTHED, peak_threshold=-0.5)
    xy = _peak_xy(np.zeros((4, 5), np.float64), params)
    assert xy == [(x, y) for x in range(5) for y in range(4)]


def test_a_plateau_across_row_bands_is_all_peaks():
    # The map is searched in bands of 256 rows (paf_peaks._BAND_ROWS); the tie between
    # rows 255 and 256 is decided across two bands and must still count both.
    heatmap = np.zeros((300, 5), np.float64)
    heatmap[255:257, 2] = 0.5
    assert _peak_xy(heatmap, UNSMOOTHED) == [(2, 255), (2, 256)]
