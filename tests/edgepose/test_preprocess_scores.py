"""Detector box scores at their limits, which the preprocess mutation run found unpinned."""

import numpy as np
import pytest

from edgepose.errors import InputError
from edgepose.preprocess import validate_box_scores


def test_a_score_of_zero_is_a_score():
    # A detector may report 0 for a box it keeps (a threshold of 0): only < 0 is refused.
    scores = validate_box_scores(np.array([0.0, 0.5, 0.0]), 3)
    assert scores.tolist() == [0.0, 0.5, 0.0]


def test_scores_come_back_as_float32_whatever_they_were():
    for given in (np.array([0.25, 1.0]), np.array([1, 0]), [0.5, 0.75]):
        assert validate_box_scores(given, 2).dtype == np.float32


@pytest.mark.parametrize("bad, text", [(-0.5, "-0.5"), (np.nan, "nan"), (np.inf, "inf")])
def test_the_first_bad_score_is_named_by_its_index(bad, text):
    scores = np.array([0.9, 0.8, bad, -1.0])
    with pytest.raises(InputError, match=f"^box score 2 is {text}; expected a finite score >= 0"):
        validate_box_scores(scores, 4)
