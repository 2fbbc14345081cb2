"""Associative Embedding: grouping one joint's detections with the people found so far,
by tag distance and the Hungarian solver, as the sources' match_by_tag does (see ae.py
for the whole algorithm and the sources).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgepose import _optional
from edgepose.decode.munkres_order import munkres_assignment
from edgepose.errors import DecodeError, InputError

if TYPE_CHECKING:  # ae.py imports this module; the parameters are only a type here
    from edgepose.decode.ae import AeParams

TAG_DISTANCES = ("rms", "l2")
TIES = ("official", "most-joins")
#: The sources pad the cost matrix to square with this (more detections than people).
_PAD = 1e10


def above(values: np.ndarray, threshold: float) -> np.ndarray:
    """values > threshold as float64 numbers compare, without a float64 copy.

    The sources compare float64: their detections are the concatenation of int64
    locations and float32 values, so float32(0.1) = 0.10000000149 is above 0.1;
    NumPy 2 would compare a float32 array with the Python float in float32, where
    the two are equal. For x of a narrower float dtype, x > threshold exactly iff
    x > the largest value of that dtype not above threshold.
    """
    values = np.asarray(values)
    if values.dtype == np.float64 or not np.issubdtype(values.dtype, np.floating):
        return values > threshold
    kind = values.dtype.type
    with np.errstate(over="ignore"):
        low = kind(threshold)
    if float(low) > threshold:
        low = np.nextafter(low, kind(-np.inf))
    return values > low


def tag_distance(tags: np.ndarray, means: np.ndarray, kind: str) -> np.ndarray:
    """Distances (R, G) float64 from tags (R, D) to means (G, D).

    kind 'rms': sqrt(mean over D of the squared differences) (pose-ae-train);
    'l2': sqrt of their sum (HigherHRNet). Equal for D = 1.
    """
    if kind not in TAG_DISTANCES:
        raise InputError(f"tag distance must be one of {TAG_DISTANCES}, got {kind!r}")
    tags = np.asarray(tags, np.float64)
    means = np.asarray(means, np.float64)
    # A component at a time (numpy reduces a short last axis slowly); adding the squares
    # in component order is the sources' sum over D for D < 8.
    squared = np.subtract.outer(tags[:, 0], means[:, 0])
    squared *= squared
    for d in range(1, tags.shape[1]):
        part = np.subtract.outer(tags[:, d], means[:, d])
        part *= part
        squared += part
    if kind == "rms":
        squared /= tags.shape[1]
    return np.sqrt(squared, out=squared)


def match_cost(distance: np.ndarray, values: np.ndarray, use_detection_val: bool) -> np.ndarray:
    """The Hungarian cost (R, G): round(distance)·100 − value of the row, or the distance."""
    if not use_detection_val:
        return distance
    # np.round halves to even, as in the sources.
    return np.round(distance) * 100 - np.asarray(values, np.float64)[:, None]


def assign(distance: np.ndarray, values: np.ndarray, tag_threshold: float,
           use_detection_val: bool = True, ties: str = "official"
           ) -> tuple[np.ndarray, np.ndarray]:
    """The Hungarian step: R detections to G people at least match_cost.

    distance: (R, G) tag distances; values: (R,) detection values. Returns (rows,
    columns) int arrays of the pairs of a detection with a person (at most
    min(R, G)), rows ascending; a pair joins if its distance is < tag_threshold.

    ties 'official': the sources' solve. With more detections than people the
    cost is padded to square with 1e10, and among assignments of equal cost the
    `munkres` package's choice is taken (munkres_order: its steps in its order),
    so ties go as in the sources.

    ties 'most-joins': among the assignments of least cost, the one in which the
    most detections join their person, and of those the one of least sum of the
    joining distances squared; so the people do not depend on how the solver
    breaks ties, except where values, tags or mean tags are exactly equal.
    With use_detection_val, cost = round(distance)·100 − value. When R <= G every
    detection gets a person and the values add up alike in every assignment, so
    the integer rounds alone decide and the tie-break rides below one unit of
    them in a single exact solve. When R > G the values decide which G
    detections get a person (one set, unless values tie exactly); a second solve
    breaks the ties among those. Without use_detection_val the cost is the
    distance itself and only equal distances tie.
    """
    if ties not in TIES:
        raise InputError(f"ties must be one of {TIES}, got {ties!r}")
    distance = np.asarray(distance, np.float64)
    rows, columns = distance.shape
    if rows == 0 or columns == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    if ties == "official":
        cost = match_cost(distance, values, use_detection_val)
        if rows > columns:
            # Padded as the sources pad: munkres' steps, and so its choice among
            # ties, depend on the whole square matrix.
            cost = np.concatenate([cost, np.full((rows, rows - columns), _PAD)], axis=1)
        row, column = munkres_assignment(cost)
        real = column < columns
        return row[real], column[real]
    solve = _optional.scipy_optimize().linear_sum_assignment
    if not use_detection_val:
        return solve(distance)
    rounds = np.round(distance)
    chosen = np.arange(rows)
    if rows > columns:
        chosen, _ = solve(match_cost(distance, values, True))
        rounds, distance = rounds[chosen], distance[chosen]
    size = len(chosen)
    # A join is worth more than any sum of squared joining distances, and one unit of
    # the rounds more than any sum of join terms: the weights make the order exact.
    join_weight = size * tag_threshold ** 2 + 1.0
    unit = size * join_weight + 1.0
    joins = distance < tag_threshold
    preference = np.where(joins, distance * distance - join_weight, 0.0)
    row, column = solve(rounds * unit + preference)
    return chosen[row], column


def match_by_tag(xy: np.ndarray, values: np.ndarray, tags: np.ndarray, params: AeParams
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates of every keypoint → people, keypoint by keypoint in params.joint_order.

    xy: (K, T, 2) integer (x, y), values: (K, T), tags: (K, T, D), each keypoint's
    candidates highest first (top_k); those not above params.detection_threshold
    (in float64, see above) are ignored. Returns xy (N, K, 2) float64, values (N, K)
    float64 (0: missing) and tags (N, K, D) of the people, in the order they were
    created.

    A person's mean tag is kept as a running sum in the tags' dtype divided by the
    count, which for float32 tags is the sources' np.mean of the list of tags.
    With params.ties 'official' a detection that starts a person whose key
    (its tag[0]) equals an existing person's key goes into that person instead,
    as in the sources' dict: it takes the keypoint's slot and the person's tags
    start again from its tag alone.
    """
    xy = np.asarray(xy)
    values = np.asarray(values)
    tags = np.asarray(tags)
    if tags.dtype not in (np.float32, np.float64):
        tags = tags.astype(np.float64)
    if xy.ndim != 3 or xy.shape[2] != 2 or values.shape != xy.shape[:2] \
            or tags.ndim != 3 or tags.shape[:2] != xy.shape[:2]:
        raise DecodeError(f"expected xy (K, T, 2), values (K, T), tags (K, T, D); got "
                          f"{xy.shape}, {values.shape}, {tags.shape}")
    count, candidates = values.shape
    dims = tags.shape[2]
    check_joint_order(params.joint_order, count)
    official = params.ties == "official"
    if not official:  # before any work: a missing SciPy fails every frame alike
        _optional.scipy_optimize()
    capacity = count * candidates
    people_xy = np.zeros((capacity, count, 2))
    people_values = np.zeros((capacity, count))
    people_tags = np.zeros((capacity, count, dims), tags.dtype)
    tag_sums = np.zeros((capacity, dims), tags.dtype)
    tag_counts = np.zeros(capacity, tags.dtype)
    keys = np.zeros(capacity, tags.dtype)
    # The keys as Python floats, whose == and hash are the sources' dict's (-0.0 == 0.0).
    key_set: set[float] = set()
    made = 0
    for joint in params.joint_order:
        found = above(values[joint], params.detection_threshold)
        rows = int(np.count_nonzero(found))
        if rows == 0:
            continue
        row_xy = xy[joint][found]
        row_tags = tags[joint][found]
        row_values = values[joint][found]
        person = np.full(rows, -1)
        if made > 0:
            if params.ignore_too_much and made >= params.max_people:
                continue
            columns = min(made, params.max_people)
            means = tag_sums[:columns] / tag_counts[:columns, None]
            distance = tag_distance(row_tags, means, params.tag_distance)
            row, column = assign(distance, row_values, params.tag_threshold,
                                 params.use_detection_val, params.ties)
            joins = distance[row, column] < params.tag_threshold
            person[row[joins]] = column[joins]
        new = person < 0
        if official:
            new_keys = row_tags[new, 0].tolist()
            before = len(key_set)
            key_set.update(new_keys)
            if len(key_set) - before < len(new_keys):  # a key met again: merge in order
                made = _add_in_order(person, row_xy, row_values, row_tags, joint, made, keys,
                                     people_xy, people_values, people_tags, tag_sums,
                                     tag_counts)
                continue
        person[new] = made + np.arange(int(np.count_nonzero(new)))
        keys[person[new]] = row_tags[new, 0]
        people_xy[person, joint] = row_xy
        people_values[person, joint] = row_values
        people_tags[person, joint] = row_tags
        # Within one keypoint every person appears at most once, so += adds each row once.
        tag_sums[person] += row_tags
        tag_counts[person] += 1
        made = max(made, int(person.max()) + 1)
    return people_xy[:made], people_values[:made], people_tags[:made]


def _add_in_order(person, row_xy, row_values, row_tags, joint, made, keys,
                  people_xy, people_values, people_tags, tag_sums, tag_counts) -> int:
    """One keypoint's detections one at a time in row order, as the sources' loop over
    the solver's pairs: a join adds its tag to its person; a new person whose key
    exists already overwrites that person's keypoint and restarts its tags (the
    sources' ``setdefault(key, …)[idx] = joint`` and ``tag_dict[key] = [tag]``).
    Only taken where keys collide (exactly equal tags). Returns the people made."""
    for r in range(len(person)):
        p = int(person[r])
        if p >= 0:
            tag_sums[p] += row_tags[r]
            tag_counts[p] += 1
        else:
            hit = np.flatnonzero(keys[:made] == row_tags[r, 0])
            if hit.size:
                p = int(hit[0])
            else:
                p = made
                made += 1
                keys[p] = row_tags[r, 0]
            tag_sums[p] = row_tags[r]
            tag_counts[p] = 1
        people_xy[p, joint] = row_xy[r]
        people_values[p, joint] = row_values[r]
        people_tags[p, joint] = row_tags[r]
    return made


def check_joint_order(joint_order: tuple[int, ...], count: int) -> None:
    if sorted(joint_order) != list(range(count)):
        raise DecodeError(
            f"the maps have {count} keypoints but AeParams.joint_order {joint_order} is not a "
            f"permutation of 0..{count - 1}; pass joint_order=tuple(range({count})) or the "
            f"model's own order")
