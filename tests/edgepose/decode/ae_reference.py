"""Test support for the AE decoder: a loop reference and synthetic heatmap + tag maps.

The reference is written from the algorithm's description (Newell et al.'s
grouping as pose-ae-train and HigherHRNet describe it): one keypoint, detection,
person and tag component at a time, in plain Python floats and lists, sharing no
code with edgepose/decode/ae.py. Only whole-map arithmetic (the max-pool's
shifted maxima, refine's distance map) uses numpy, one map at a time.

The Hungarian step has four solvers: "preferred", the decoder's documented
tie-break (the least-cost assignment with the most joins, then the least sum
of squared joining distances) found by another method than the decoder's;
"scipy", SciPy's linear_sum_assignment on the sources' matrix (padded with 1e10)
without a tie-break; "munkres", a classic Munkres written here from the
algorithm's steps in the order the `munkres` package (1.1) takes them, the
sources' solver; "brute", every assignment (small cases).

official_match_by_tag follows the sources' match_by_tag itself: detections as
float64 rows (x, y, value, tag...), people in a dict keyed by the tag[0] of the
detection that created them, the `munkres` package (1.1, the sources' solver)
on the 1e10-padded cost. group_reference and decode_reference use it for
params.ties == "official" unless given another solver.

Shared by tests/edgepose/decode/test_ae.py and benchmarks/ae_grouping.py.

Shapes: N people, K keypoints, H, W map size, D tag dimensions.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

PAD = 1e10

#: COCO-17 keypoints of a standing person facing the camera, (x, y) in units of
#: its height from the top of the head; left is on the image's right.
COCO17_TEMPLATE = np.array([
    (0.00, 0.06), (0.03, 0.04), (-0.03, 0.04), (0.06, 0.05), (-0.06, 0.05),
    (0.13, 0.18), (-0.13, 0.18), (0.17, 0.35), (-0.17, 0.35), (0.18, 0.50), (-0.18, 0.50),
    (0.09, 0.52), (-0.09, 0.52), (0.10, 0.74), (-0.10, 0.74), (0.10, 0.96), (-0.10, 0.96),
])


# ---------------------------------------------------------------------------
# Solvers: cost, distance (R x G lists), threshold → the column of each row, -1 for none
# ---------------------------------------------------------------------------

def _padded(cost: list[list[float]], value: float) -> list[list[float]]:
    """Square, with columns of `value` added when there are more rows (as the sources)."""
    rows, cols = len(cost), len(cost[0])
    return [list(row) + [value] * (rows - cols) for row in cost] if rows > cols else cost


def _scipy_solve(cost: list[list[float]]) -> list[int]:
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(np.array(cost, dtype=np.float64))
    answer = [-1] * len(cost)
    for r, c in zip(rows.tolist(), cols.tolist()):
        answer[r] = c
    return answer


def _real(choice: list[int], columns: int) -> list[int]:
    return [c if 0 <= c < columns else -1 for c in choice]


def scipy_assignment(cost, distance=None, threshold=None) -> list[int]:
    """SciPy on the sources' matrix (padded with 1e10), no tie-break."""
    return _real(_scipy_solve(_padded(cost, PAD)), len(cost[0]))


def preferred_assignment(cost, distance, threshold) -> list[int]:
    """Of the least-cost assignments, the one with the most joins (distance < threshold),
    then the least sum of the joining distances squared (the decoder's tie-break).

    Written without the decoder's exact weighting: an entry can be in a least-cost
    assignment iff it plus the optimum of the matrix without its row and column
    equals the optimum (to within 1e-9); SciPy then minimises, over those entries
    only, a join bonus far larger than any squared distance plus the squared
    distances of the joins. Padded to square with 0 (any constant selects the same
    rows; 1e10 would drown the detection values).
    """
    rows, cols = len(cost), len(cost[0])
    size = max(rows, cols)
    square = [[cost[i][j] if i < rows and j < cols else 0.0 for j in range(size)]
              for i in range(size)]
    if distance is None:
        return _real(_scipy_solve(square)[:rows], cols)

    def optimum(matrix):
        if not matrix:
            return 0.0
        choice = _scipy_solve(matrix)
        return sum(matrix[r][c] for r, c in enumerate(choice))

    bonus = 1000.0 * size * (threshold ** 2 + 1)
    best = optimum(square)
    allowed = [[10.0 * size * bonus] * size for _ in range(size)]
    for i in range(size):
        for j in range(size):
            minor = [[square[a][b] for b in range(size) if b != j]
                     for a in range(size) if a != i]
            if square[i][j] + optimum(minor) <= best + 1e-9:
                joins = i < rows and j < cols and distance[i][j] < threshold
                allowed[i][j] = distance[i][j] ** 2 - bonus if joins else 0.0
    return _real(_scipy_solve(allowed)[:rows], cols)


def brute_force_assignment(cost, distance=None, threshold=None) -> list[int]:
    """The first (in itertools order) of the cheapest assignments of the padded matrix."""
    width = len(cost[0])
    cost = _padded(cost, PAD)
    rows, cols = len(cost), len(cost[0])
    best, best_total = None, math.inf
    for choice in itertools.permutations(range(cols), rows):
        total = sum(cost[r][c] for r, c in enumerate(choice))
        if total < best_total:
            best, best_total = list(choice), total
    return _real(best, width)


def assignment_cost(cost: list[list[float]], choice: list[int]) -> float:
    return sum(cost[r][c] for r, c in enumerate(choice) if c >= 0)


def munkres_assignment(cost: list[list[float]], distance=None, threshold=None
                       ) -> list[int]:
    """Classic Munkres (Kuhn's Hungarian method with Munkres' stars and primes).

    Steps as the `munkres` package takes them: pad to square with 0; subtract
    each row's minimum; star the first free zero of each row; then cover starred
    columns, prime uncovered zeros (searching on from the last one found, row by
    row, wrapping around, the last zero of the first row that has one), augment
    along star/prime paths, and shift the matrix by the smallest uncovered value
    when no zero is left.
    """
    width = len(cost[0])
    cost = _padded(cost, PAD)
    size = max(len(cost), len(cost[0]))
    c = [[float(cost[i][j]) if i < len(cost) and j < len(cost[0]) else 0.0
          for j in range(size)] for i in range(size)]
    for row in c:
        low = min(row)
        for j in range(size):
            row[j] -= low
    star = [[False] * size for _ in range(size)]
    prime = [[False] * size for _ in range(size)]
    row_cover = [False] * size
    col_cover = [False] * size
    for i in range(size):
        for j in range(size):
            if c[i][j] == 0 and not row_cover[i] and not col_cover[j]:
                star[i][j] = True
                row_cover[i] = col_cover[j] = True
                break
    row_cover = [False] * size
    col_cover = [False] * size

    def star_in_row(i):
        return next((j for j in range(size) if star[i][j]), -1)

    def star_in_col(j):
        return next((i for i in range(size) if star[i][j]), -1)

    def find_zero(i0, j0):
        # The package scans all of the first row that has an uncovered zero and
        # keeps the last one it meets (its loop over the row does not stop).
        i = i0
        while True:
            found = -1
            j = j0
            while True:
                if c[i][j] == 0 and not row_cover[i] and not col_cover[j]:
                    found = j
                j = (j + 1) % size
                if j == j0:
                    break
            if found >= 0:
                return i, found
            i = (i + 1) % size
            if i == i0:
                return -1, -1

    while True:
        for j in range(size):
            col_cover[j] = any(star[i][j] for i in range(size))
        if sum(col_cover) >= size:
            break
        row, col = 0, 0
        while True:
            row, col = find_zero(row, col)
            if row < 0:
                low = min(c[i][j] for i in range(size) for j in range(size)
                          if not row_cover[i] and not col_cover[j])
                for i in range(size):
                    for j in range(size):
                        if row_cover[i]:
                            c[i][j] += low
                        if not col_cover[j]:
                            c[i][j] -= low
                row, col = 0, 0
                continue
            prime[row][col] = True
            starred = star_in_row(row)
            if starred >= 0:
                row_cover[row] = True
                col_cover[starred] = False
                col = starred
                continue
            path = [(row, col)]
            while True:
                r = star_in_col(path[-1][1])
                if r < 0:
                    break
                path.append((r, path[-1][1]))
                path.append((r, next(j for j in range(size) if prime[r][j])))
            for i, j in path:
                star[i][j] = not star[i][j]
            prime = [[False] * size for _ in range(size)]
            row_cover = [False] * size
            col_cover = [False] * size
            break
    return _real([star_in_row(i) for i in range(len(cost))], width)


SOLVERS = {"preferred": preferred_assignment, "scipy": scipy_assignment,
           "munkres": munkres_assignment, "brute": brute_force_assignment}


# ---------------------------------------------------------------------------
# Loop reference
# ---------------------------------------------------------------------------

def nms_reference(heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """Max-pool NMS of each map by the maximum over every shift in the window (-inf padding)."""
    out = np.zeros_like(heatmaps)
    radius = kernel // 2
    for k in range(heatmaps.shape[0]):
        plane = heatmaps[k]
        height, width = plane.shape
        padded = np.full((height + 2 * radius, width + 2 * radius), -np.inf, plane.dtype)
        padded[radius:radius + height, radius:radius + width] = plane
        pooled = np.full(plane.shape, -np.inf, plane.dtype)
        for dy in range(kernel):
            for dx in range(kernel):
                pooled = np.maximum(pooled, padded[dy:dy + height, dx:dx + width])
        out[k] = np.where(pooled == plane, plane, 0)
    return out


def candidates_reference(peaks: np.ndarray, tags: np.ndarray, k: int
                         ) -> list[list[tuple[int, int, float, tuple[float, ...]]]]:
    """Per keypoint, its k largest values (x, y, value, tag), highest first, ties row-major."""
    out = []
    for joint in range(peaks.shape[0]):
        height, width = peaks[joint].shape
        pixels = [(float(peaks[joint, y, x]), y * width + x)
                  for y in range(height) for x in range(width)]
        pixels.sort(key=lambda item: (-item[0], item[1]))
        found = []
        for value, index in pixels[:k]:
            y, x = divmod(index, width)
            found.append((x, y, value, tuple(float(t) for t in tags[joint, y, x])))
        out.append(found)
    return out


@dataclass
class Person:
    joints: dict  # keypoint → (x, y, value)
    tags: list  # the tags of its joints, in the order they joined


def person_mean(person: Person, dtype=np.float32) -> list[float]:
    # np.mean of the list of tags: a running sum in their dtype divided by the count.
    total = np.zeros(len(person.tags[0]), dtype)
    for tag in person.tags:
        total = total + np.array(tag, dtype)
    return [float(v) for v in total / dtype(len(person.tags))]


def distance_reference(tag: tuple[float, ...], mean: list[float], kind: str) -> float:
    total = 0.0
    for a, b in zip(tag, mean):
        total += (a - b) * (a - b)
    return math.sqrt(total / len(tag) if kind == "rms" else total)


def official_match_by_tag(tag_k: np.ndarray, loc_k: np.ndarray, val_k: np.ndarray, params
                          ) -> np.ndarray:
    """The sources' match_by_tag: tag_k (K, T, D), loc_k (K, T, 2) int64, val_k (K, T) →
    (N, K, 3 + D) float32 rows (x, y, value, tag...), zeros for missing keypoints; the
    `munkres` package solves, on the numpy matrix as the sources pass it."""
    from munkres import Munkres

    count = val_k.shape[0]
    default = np.zeros((count, 3 + tag_k.shape[2]))
    joint_dict: dict = {}
    tag_dict: dict = {}
    for i, idx in enumerate(params.joint_order):
        tags = tag_k[idx]
        joints = np.concatenate((loc_k[idx], val_k[idx, :, None], tags), 1)
        mask = joints[:, 2] > params.detection_threshold
        tags, joints = tags[mask], joints[mask]
        if joints.shape[0] == 0:
            continue
        if i == 0 or len(joint_dict) == 0:
            for tag, joint in zip(tags, joints):
                key = tag[0]
                joint_dict.setdefault(key, np.copy(default))[idx] = joint
                tag_dict[key] = [tag]
            continue
        grouped_keys = list(joint_dict.keys())[:params.max_people]
        grouped_tags = [np.mean(tag_dict[k], axis=0) for k in grouped_keys]
        if params.ignore_too_much and len(grouped_keys) == params.max_people:
            continue
        diff = joints[:, None, 3:] - np.array(grouped_tags)[None, :, :]
        if params.tag_distance == "l2":
            diff_normed = np.linalg.norm(diff, ord=2, axis=2)
        else:
            diff_normed = (diff ** 2).mean(axis=2) ** 0.5
        diff_saved = np.copy(diff_normed)
        if params.use_detection_val:
            diff_normed = np.round(diff_normed) * 100 - joints[:, 2:3]
        num_added, num_grouped = diff.shape[0], diff.shape[1]
        if num_added > num_grouped:
            diff_normed = np.concatenate(
                (diff_normed, np.zeros((num_added, num_added - num_grouped)) + PAD), axis=1)
        for row, col in Munkres().compute(diff_normed):
            if row < num_added and col < num_grouped \
                    and diff_saved[row][col] < params.tag_threshold:
                key = grouped_keys[col]
                joint_dict[key][idx] = joints[row]
                tag_dict[key].append(tags[row])
            else:
                key = tags[row][0]
                joint_dict.setdefault(key, np.copy(default))[idx] = joints[row]
                tag_dict[key] = [tags[row]]
    rows = [joint_dict[k] for k in joint_dict]
    return np.array(rows, np.float32).reshape(len(rows), count, 3 + tag_k.shape[2])


def official_group_reference(candidates, params, dtype=np.float32) -> list[Person]:
    """candidates_reference's candidates → official_match_by_tag → people."""
    count = len(candidates)
    width = max((len(c) for c in candidates), default=0)
    dims = next((len(c[0][3]) for c in candidates if c), 1)
    tag_k = np.zeros((count, width, dims), dtype)
    loc_k = np.zeros((count, width, 2), np.int64)
    val_k = np.zeros((count, width), np.float64)  # float32 values, exact in float64
    for k, found in enumerate(candidates):
        for t, (x, y, value, tag) in enumerate(found):
            loc_k[k, t], val_k[k, t], tag_k[k, t] = (x, y), value, tag
    people = []
    for rows in official_match_by_tag(tag_k, loc_k, val_k, params):
        joints = {k: (int(r[0]), int(r[1]), float(r[2])) for k, r in enumerate(rows)
                  if r[2] > 0}
        people.append(Person(joints, [tuple(r[3:]) for r in rows if r[2] > 0]))
    return people


def group_reference(candidates, params, solver: str | None = None, dtype=np.float32
                    ) -> list[Person]:
    """Candidates (candidates_reference) → people, keypoint by keypoint in joint order.

    solver: None takes "official" (official_group_reference, the `munkres` package) for
    params.ties == "official" and "preferred" otherwise. dtype: that of the tag maps, in
    which the people's mean tags are taken."""
    if solver is None:
        solver = "official" if getattr(params, "ties", "") == "official" else "preferred"
    if solver == "official":
        return official_group_reference(candidates, params, dtype)
    solve = SOLVERS[solver]
    people: list[Person] = []
    for joint in params.joint_order:
        detections = [c for c in candidates[joint] if c[2] > params.detection_threshold]
        if not detections:
            continue
        if not people:
            for x, y, value, tag in detections:
                people.append(Person({joint: (x, y, value)}, [tag]))
            continue
        if params.ignore_too_much and len(people) >= params.max_people:
            continue
        targets = people[:params.max_people]
        means = [person_mean(p, dtype) for p in targets]
        distance = [[distance_reference(tag, m, params.tag_distance) for m in means]
                    for _, _, _, tag in detections]
        if params.use_detection_val:
            cost = [[round(d) * 100 - value for d in row]
                    for row, (_, _, value, _) in zip(distance, detections)]
        else:
            cost = [list(row) for row in distance]
        choice = solve(cost, distance if params.use_detection_val else None,
                       params.tag_threshold)
        for row, (x, y, value, tag) in enumerate(detections):
            col = choice[row]
            if 0 <= col < len(targets) and distance[row][col] < params.tag_threshold:
                targets[col].joints[joint] = (x, y, value)
                targets[col].tags.append(tag)
            else:
                people.append(Person({joint: (x, y, value)}, [tag]))
    return people


def _quarter_reference(plane: np.ndarray, x: int, y: int) -> tuple[float, float]:
    height, width = plane.shape
    dx = 0.25 if plane[y, min(x + 1, width - 1)] > plane[y, max(x - 1, 0)] else -0.25
    dy = 0.25 if plane[min(y + 1, height - 1), x] > plane[max(y - 1, 0), x] else -0.25
    return dx, dy


def decode_reference(heatmaps: np.ndarray, tags: np.ndarray, params,
                     solver: str | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The whole decode, one step and one person at a time: xy (N, K, 2), scores, person scores."""
    heatmaps = np.asarray(heatmaps)
    tags = np.asarray(tags)
    if tags.ndim == 3:
        tags = tags[..., None]
    if params.heatmap_max is not None:
        heatmaps = np.minimum(heatmaps, heatmaps.dtype.type(params.heatmap_max))
    peaks = nms_reference(heatmaps, params.nms_kernel)
    candidates = candidates_reference(peaks, tags, params.top_k)
    people = group_reference(candidates, params, solver, tags.dtype.type)
    return finish_reference(people, heatmaps, tags, params)


def finish_reference(people: list[Person], heatmaps: np.ndarray, tags: np.ndarray, params
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grouped people → arrays, with adjust, person scores and refine, one person at a time.

    heatmaps: (K, H, W) as decoded (after heatmap_max); tags: (K, H, W, D).
    """
    count = heatmaps.shape[0]
    xy = np.zeros((len(people), count, 2))
    scores = np.zeros((len(people), count))
    person_scores = np.zeros(len(people))
    for n, person in enumerate(people):
        for joint, (x, y, value) in person.joints.items():
            if params.adjust:
                dx, dy = _quarter_reference(heatmaps[joint], x, y)
                xy[n, joint] = (x + 0.5 + dx, y + 0.5 + dy)
            else:
                xy[n, joint] = (x, y)
            scores[n, joint] = value
        person_scores[n] = float(np.mean(scores[n].astype(np.float32)))
        if params.refine:
            refine_person_reference(xy[n], scores[n], heatmaps, tags, params.refined_score)
    return xy, scores, person_scores


def refine_person_reference(xy: np.ndarray, scores: np.ndarray, heatmaps: np.ndarray,
                            tags: np.ndarray, refined_score) -> None:
    """Fill one person's missing keypoints in place: (K, 2) xy, (K,) scores."""
    found = [tags[k, int(math.floor(xy[k, 1])), int(math.floor(xy[k, 0]))]
             for k in range(len(scores)) if scores[k] > 0]
    mean = np.zeros(tags.shape[3], tags.dtype)
    for tag in found:
        mean = mean + tag
    mean = mean / tags.dtype.type(len(found))
    for k in range(len(scores)):
        if scores[k] != 0:
            continue
        plane = heatmaps[k]
        distance = np.sqrt(((tags[k] - mean) ** 2).sum(axis=2))
        y, x = np.unravel_index(np.argmax(plane - np.round(distance)), plane.shape)
        value = plane[y, x]
        if value > 0:
            dx, dy = _quarter_reference(plane, int(x), int(y))
            xy[k] = (x + 0.5 + dx, y + 0.5 + dy)
            scores[k] = value if refined_score is None else refined_score


# ---------------------------------------------------------------------------
# Synthetic maps
# ---------------------------------------------------------------------------

@dataclass
class Scene:
    heatmaps: np.ndarray  # (K, H, W) float32
    tags: np.ndarray  # (K, H, W, D) float32
    xy: np.ndarray  # (N, K, 2) the true keypoints (x, y)
    visible: np.ndarray  # (N, K) bool: drawn on the maps
    person_tags: np.ndarray  # (N, D)


def sample_people(rng: np.random.Generator, count: int, size: tuple[int, int],
                  heights: tuple[float, float], missing: float = 0.0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """count people of random heights placed inside a (H, W) map: xy (N, K, 2), visible (N, K)."""
    height, width = size
    tall = rng.uniform(*heights, size=count)
    left = rng.uniform(0.2 * tall, width - 1 - 0.2 * tall)
    top = rng.uniform(0, np.maximum(height - 1 - tall, 0))
    xy = np.empty((count, len(COCO17_TEMPLATE), 2))
    xy[..., 0] = left[:, None] + COCO17_TEMPLATE[None, :, 0] * tall[:, None]
    xy[..., 1] = top[:, None] + COCO17_TEMPLATE[None, :, 1] * tall[:, None]
    xy += rng.uniform(-0.3, 0.3, xy.shape)
    visible = rng.random(xy.shape[:2]) >= missing
    visible &= (xy[..., 0] >= 0) & (xy[..., 0] <= width - 1) & (xy[..., 1] >= 0) \
        & (xy[..., 1] <= height - 1)
    return xy, visible


def draw_scene(xy: np.ndarray, visible: np.ndarray, person_tags: np.ndarray,
               size: tuple[int, int], rng: np.random.Generator, sigma: float = 2.0,
               peak: tuple[float, float] = (0.6, 1.0), noise: float = 0.0,
               tag_noise: float = 0.02, tag_radius: float = 3.0) -> Scene:
    """Heatmaps: the maximum of one Gaussian per visible keypoint (peak value drawn from
    `peak`) plus uniform noise; tags: the person's tag (+ normal noise) within
    tag_radius of each of its keypoints, later people drawn over earlier ones,
    and uniform values far from every person's tag elsewhere."""
    height, width = size
    count, keypoints = visible.shape
    dims = person_tags.shape[1]
    heatmaps = rng.uniform(0, noise, (keypoints, height, width)) if noise else \
        np.zeros((keypoints, height, width))
    background = float(np.abs(person_tags).max(initial=0.0)) + 10.0
    tags = rng.uniform(background, background + 5.0, (keypoints, height, width, dims))
    gy, gx = np.mgrid[0:height, 0:width]
    for n in range(count):
        value = rng.uniform(*peak)
        for k in range(keypoints):
            if not visible[n, k]:
                continue
            x, y = xy[n, k]
            d2 = (gx - x) ** 2 + (gy - y) ** 2
            heatmaps[k] = np.maximum(heatmaps[k], value * np.exp(-d2 / (2 * sigma ** 2)))
            near = d2 <= tag_radius ** 2
            tags[k][near] = person_tags[n] + rng.normal(0, tag_noise, (int(near.sum()), dims))
    return Scene(heatmaps.astype(np.float32), tags.astype(np.float32), xy, visible,
                 person_tags)


def make_scene(count: int, size: tuple[int, int] = (128, 128), seed: int = 0,
               heights: tuple[float, float] = (30.0, 90.0), dims: int = 2,
               missing: float = 0.0, noise: float = 0.0, spacing: float = 3.0,
               sigma: float = 2.0) -> Scene:
    """count random people, each with its own tag (spacing apart, shuffled) on D dimensions."""
    rng = np.random.default_rng(seed)
    xy, visible = sample_people(rng, count, size, heights, missing)
    base = rng.permutation(count) * spacing
    person_tags = base[:, None] + rng.uniform(-0.1, 0.1, (count, dims))
    return draw_scene(xy, visible, person_tags, size, rng, sigma=sigma, noise=noise)
