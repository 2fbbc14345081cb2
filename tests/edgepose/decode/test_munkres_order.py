"""munkres_order against the `munkres` package itself: the same assignment, ties included.

The matrices are chosen to tie exactly and often, since that is where solvers
differ: small integer costs, the AE sources' cost round(distance)·100 − value
with repeated values and their 1e10 padding, all-equal and 1x1 matrices.
"""

import numpy as np
import pytest

from edgepose.decode.munkres_order import munkres_assignment
from edgepose.errors import InputError

munkres = pytest.importorskip("munkres")


def _package(cost: np.ndarray) -> list[tuple[int, int]]:
    """The package's pairs. Lists: its padding appends to rows, which a numpy row would
    add elementwise instead (the sources pad to square themselves when it matters)."""
    return [(int(r), int(c)) for r, c in munkres.Munkres().compute(np.asarray(cost).tolist())]


def _ours(cost: np.ndarray) -> list[tuple[int, int]]:
    rows, columns = munkres_assignment(cost)
    return list(zip(rows.tolist(), columns.tolist()))


def _official_cost(rng, rows, columns, values=(0.9, 0.5, 0.3), spread=3.0):
    """round(distance)·100 − value, padded to square with 1e10 as the sources pad it."""
    distance = rng.uniform(0, spread, (rows, columns))
    cost = np.round(distance) * 100 - rng.choice(values, rows)[:, None]
    if rows > columns:
        cost = np.concatenate([cost, np.full((rows, rows - columns), 1e10)], axis=1)
    return cost


def _shape(rng, largest):
    return tuple(int(v) for v in rng.integers(1, largest + 1, 2))


@pytest.mark.parametrize("seed", range(4))
def test_small_integer_costs(seed):
    rng = np.random.default_rng(seed)
    for _ in range(100):
        cost = rng.integers(0, 3, _shape(rng, 8)).astype(np.float64)
        assert _ours(cost) == _package(cost)


@pytest.mark.parametrize("seed", range(4))
def test_the_official_cost(seed):
    rng = np.random.default_rng(100 + seed)
    for _ in range(100):
        cost = _official_cost(rng, *_shape(rng, 10))
        assert _ours(cost) == _package(cost)


def test_the_official_cost_with_float32_values():
    # Detection values are float32 in float64 rows: their last bits meet the padding.
    rng = np.random.default_rng(7)
    values = tuple(float(np.float32(v)) for v in (0.1, 0.7, 0.30000001, 0.3))
    for _ in range(100):
        cost = _official_cost(rng, *_shape(rng, 12), values=values, spread=2.0)
        assert _ours(cost) == _package(cost)


def test_larger_crowded_matrices():
    # The size of a crowded frame's step (up to 30 people and 30 candidates and more).
    rng = np.random.default_rng(11)
    for rows, columns in [(30, 30), (30, 12), (12, 30), (45, 30), (64, 64)]:
        cost = _official_cost(rng, rows, columns)
        assert _ours(cost) == _package(cost)


def test_rectangular_matrices_are_padded_with_zero_as_the_package_does():
    rng = np.random.default_rng(12)
    for _ in range(100):
        rows, columns = _shape(rng, 7)
        cost = rng.integers(0, 4, (rows, columns)).astype(np.float64)
        pairs = _ours(cost)
        assert pairs == _package(cost)
        assert len(pairs) == min(rows, columns)


@pytest.mark.parametrize("cost", [
    [[5.0]], [[-2.5]], np.full((6, 6), 3.0), np.zeros((5, 5)), np.full((4, 2), 1e10),
    np.eye(5), 1 - np.eye(5), [[0.0, 0.0, 1.0]] * 3,
])
def test_degenerate_matrices(cost):
    cost = np.asarray(cost, np.float64)
    assert _ours(cost) == _package(cost)


def test_a_tie_decided_by_the_search_order():
    # Worked by hand in tests/edgepose/decode/test_ae.py (test_solvers_break_a_tie_...):
    # the search keeps the last zero of a row, so rows 0 and 2 swap ends.
    assert _ours(np.array([[0.0, 0.0, 1.0]] * 3)) == [(0, 2), (1, 1), (2, 0)]


def test_the_result_is_a_least_cost_assignment():
    rng = np.random.default_rng(13)
    optimize = pytest.importorskip("scipy.optimize")
    for _ in range(50):
        cost = rng.uniform(0, 10, _shape(rng, 9))
        rows, columns = munkres_assignment(cost)
        best_rows, best_columns = optimize.linear_sum_assignment(cost)
        assert cost[rows, columns].sum() == pytest.approx(cost[best_rows, best_columns].sum())


def test_the_input_is_left_alone():
    cost = np.array([[3.0, 1.0], [2.0, 5.0]])
    munkres_assignment(cost)
    assert cost.tolist() == [[3.0, 1.0], [2.0, 5.0]]


@pytest.mark.parametrize("cost, message", [
    (np.array([[1.0, np.nan]]), "^cost must be finite$"),
    (np.array([[np.inf]]), "^cost must be finite$"),
    (np.zeros(3), "2-D"),
])
def test_rejects(cost, message):
    with pytest.raises(InputError, match=message):
        munkres_assignment(cost)


def test_empty_matrices_have_no_pairs():
    for shape in [(0, 0), (0, 3), (3, 0)]:
        rows, columns = munkres_assignment(np.zeros(shape))
        assert rows.size == columns.size == 0
        # Index arrays, as for any other matrix: callers index with them.
        assert rows.dtype == columns.dtype == np.intp


def test_integer_costs_are_taken_as_float64():
    # The steps subtract float minima in place: an integer matrix must not stay integer.
    rng = np.random.default_rng(9)
    for _ in range(50):
        cost = rng.integers(0, 4, _shape(rng, 6))
        assert _ours(cost) == _ours(cost.astype(np.float64)) == _package(cost.astype(np.float64))
