"""The Hungarian solve in the order of the `munkres` package (1.1.4), vectorised.

The official AE grouping (HigherHRNet's lib/core/group.py, pose-ae-train's
utils/group.py) solves each keypoint's cost matrix with ``Munkres().compute``.
Its costs tie exactly and often (round(distance)·100 − value: every assignment
in which each detection gets a person sums the same values), and which optimum
the package returns follows from the order of its steps, not from the costs.
To return the same people, this solver takes the same steps in the same order
with the same float64 operations, so every ``== 0`` test agrees:

1. subtract each row's minimum from the row;
2. row by row, star the first zero (lowest column) whose column has no star;
3. cover the starred columns; n covered: done;
4. search an uncovered zero: rows in cyclic order from the search's start row,
   and in the first row that has one, the *last* in cyclic order from the start
   column (the package scans the whole row and keeps overwriting its find).
   Prime it. With a star in its row, cover the row, uncover the star's column
   and search on from (that row, the star's column); without, go to 5. No
   uncovered zero left: go to 6;
5. the path prime → star in its column → prime in that star's row … toggled
   (stars off, primes starred); erase primes and covers; back to 3;
6. m = the least uncovered value; add m to every element of each covered row,
   then subtract m from every element of each uncovered column (in that order:
   (c + m) − m need not be c); back to 4 with the search starting at (0, 0).

A matrix that is not square is padded with 0 to square, as the package does.
The state is kept as star and prime positions per row and column and a mask of
the uncovered zeros, updated a row or column at a time, so each step costs
O(n) numpy work except the row reduction and step 6 (O(n²)).
"""

from __future__ import annotations

import sys
from bisect import bisect_left

import numpy as np

from edgepose.errors import InputError

#: The package starts its search for the least uncovered value at sys.maxsize (an
#: int); a float compares below it exactly when it is below 2**63.
_START_MINIMUM = float(sys.maxsize)


def munkres_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the assignment ``munkres.Munkres().compute(cost)`` returns.

    cost: (R, C) finite numbers, taken as float64. Returns int arrays, rows
    ascending, of the pairs with row < R and column < C (min(R, C) pairs).
    """
    matrix = np.array(cost, dtype=np.float64)  # a copy: the steps work in place
    if matrix.ndim != 2:
        raise InputError(f"cost must be a 2-D matrix, got shape {matrix.shape}")
    height, width = matrix.shape
    if height == 0 or width == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    if not np.isfinite(matrix).all():
        # The package's comparisons with NaN or inf take paths this does not follow.
        raise InputError("cost must be finite")
    size = max(height, width)
    if height != width:
        square = np.zeros((size, size))
        square[:height, :width] = matrix
        matrix = square
    star_col = _solve(matrix)
    rows = np.arange(height)
    columns = star_col[:height]
    real = columns < width
    return rows[real], columns[real]


def _solve(c: np.ndarray) -> np.ndarray:
    """The column starred in each row at the end; c (n, n) float64 is changed in place."""
    n = len(c)
    c -= c.min(axis=1, keepdims=True)
    zero = c == 0
    star_col = np.full(n, -1)
    star_row = np.full(n, -1)
    _star_greedily(zero, star_col, star_row)
    # Not cleared between augmentations: a path reads the primes of rows primed since the
    # last one only (the star it leaves is in a row covered by a prime of this search).
    prime_col = np.full(n, -1)
    row_covered = np.zeros(n, bool)
    while True:
        column_covered = star_row >= 0
        if column_covered.all():
            return star_col
        row_covered[:] = False
        free = zero & ~column_covered  # uncovered zeros; no row is covered yet
        per_row = free.sum(axis=1)
        row, col = 0, 0
        while True:
            row, col = _find_uncovered_zero(free, per_row, row, col)
            if row < 0:
                _shift(c, row_covered, column_covered)
                np.equal(c, 0, out=zero)
                free = zero & ~row_covered[:, None] & ~column_covered
                per_row = free.sum(axis=1)
                row, col = 0, 0
                continue
            prime_col[row] = col
            starred = star_col[row]
            if starred < 0:
                _augment(row, col, star_col, star_row, prime_col)
                break
            row_covered[row] = True
            free[row] = False
            per_row[row] = 0
            column_covered[starred] = False
            opened = zero[:, starred] & ~row_covered
            free[:, starred] = opened
            per_row += opened
            col = starred


def _star_greedily(zero: np.ndarray, star_col: np.ndarray, star_row: np.ndarray) -> None:
    """Step 2: row by row, the first zero in a column without a star."""
    starred_row = -1
    taken = set()
    for row, col in zip(*(index.tolist() for index in zero.nonzero())):  # row-major
        if row != starred_row and col not in taken:
            star_col[row], star_row[col] = col, row
            starred_row = row
            taken.add(col)


def _find_uncovered_zero(free: np.ndarray, per_row: np.ndarray, start_row: int,
                         start_col: int) -> tuple[int, int]:
    """The package's search from (start_row, start_col): (-1, -1) if none."""
    rows = per_row.nonzero()[0]
    if rows.size == 0:
        return -1, -1
    # Python lists and bisect: the matrices are small and numpy's per-call cost dominates.
    rows = rows.tolist()
    at = bisect_left(rows, start_row)
    row = rows[at] if at < len(rows) else rows[0]
    cols = free[row].nonzero()[0].tolist()
    # The cyclic scan start_col, …, n−1, 0, …, start_col−1 keeps the last zero it meets:
    # the largest column below start_col if there is one, else (index −1) the largest.
    return row, cols[bisect_left(cols, start_col) - 1]


def _augment(row: int, col: int, star_col: np.ndarray, star_row: np.ndarray,
             prime_col: np.ndarray) -> None:
    """Step 5 from the prime at (row, col): each prime on the path replaces the star in
    its column, whose row's prime is the next on the path."""
    while True:
        displaced = star_row[col]
        star_col[row], star_row[col] = col, row
        if displaced < 0:
            return
        row, col = displaced, prime_col[displaced]


def _shift(c: np.ndarray, row_covered: np.ndarray, column_covered: np.ndarray) -> None:
    """Step 6 with the package's float operations, element by element alike."""
    open_rows = np.flatnonzero(~row_covered)
    open_cols = np.flatnonzero(~column_covered)
    smallest = min(float(c[np.ix_(open_rows, open_cols)].min()), _START_MINIMUM)
    c[row_covered] += smallest
    c[:, open_cols] -= smallest
