"""OpenPose part-affinity-field (PAF) decoding, pure numpy and OpenCV.

Reproduces the published bottom-up grouping of Cao et al. as the official
Python port runs it (Hzzone/pytorch-openpose ``src/body.py``, the CMU demo's
algorithm): heatmap peaks by smoothing and 4-neighbour NMS, a 10-sample PAF
line integral with a distance prior, the 0.8 criterion, greedy one-to-one
matching per limb, and the subset merge and pruning rules. Every constant is a
field of PafParams; ``PafParams.python()`` holds the port's values and
``PafParams.cmu()`` the CMU C++ defaults for the same thresholds.

Shapes: N people, K keypoints, L limbs (the keypoint set's skeleton, in
scoring order), C = 2L PAF channels, P peaks of all parts together, H, W map
height and width.

Map space: the decoder works in the pixels of the maps it is given and
returns coordinates in those pixels. The published algorithm runs at image
resolution: the maps are upsampled by the stride (cubic), cropped to the
unpadded input and resized to the image first (resize_maps_to_image here;
BottomUpPipeline does it), and ``image_height`` (the distance prior's H) is
the image height. Peaks sit on integer pixels, as in the published code.

Deliberate differences from the port, none of which changes its results:
- The Gaussian smoothing runs in OpenCV (about 3x faster than SciPy's
  ``gaussian_filter``, equal to ~1e-15); pixels whose peak test is that close
  to a tie are re-evaluated with SciPy's exact arithmetic, so the peaks are
  SciPy's bit for bit, ties on plateaus included.
- Greedy matching is computed in rounds (every candidate that comes first among
  the live candidates of both its A and its B is taken), which selects exactly
  the sequential greedy's set; the connections keep the greedy's order.
- The limbs that never start a person are derived from the skeleton (those
  closing a cycle, redundant_limbs) instead of the port's ``k < 17``: the same
  two limbs for COCO-18, and the right ones for BODY_25.
- A connection whose parts already sit in three or more people (possible only
  through the port's overwrite rule) uses the first two; the port raises an
  IndexError there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from edgepose.errors import DecodeError, InputError
from edgepose.keypoints import KeypointSet, get_keypoint_set

PRESETS = ("python", "cmu")


@dataclass(frozen=True)
class PafParams:
    """Constants of the PAF grouping (names of the port in brackets).

    sigma, truncate: Gaussian smoothing of each heatmap before peak NMS
        (``gaussian_filter(sigma=3)``, SciPy's truncate 4.0); sigma 0 = none.
    peak_threshold: a peak's smoothed value must exceed it [thre1].
    samples: points on the A→B segment where the PAF is read [mid_num].
    paf_threshold: a sample counts when PAF·unit(B−A) exceeds it [thre2].
    min_above_fraction: a pair is a candidate only if more than this fraction
        of the samples count (the "0.8 criterion").
    distance_prior: the limb score adds min(distance_prior·image_height/‖B−A‖ − 1, 0).
    min_norm: ‖B−A‖ is clamped below at this value.
    min_parts: a person with fewer parts is dropped (CMU's min subset count).
    min_mean_score: a person whose total score / parts is below it is dropped.

    Which limbs may start a person is not a constant but a property of the
    skeleton: see redundant_limbs.
    """

    sigma: float = 3.0
    truncate: float = 4.0
    peak_threshold: float = 0.1
    samples: int = 10
    paf_threshold: float = 0.05
    min_above_fraction: float = 0.8
    distance_prior: float = 0.5
    min_norm: float = 1e-3
    min_parts: int = 4
    min_mean_score: float = 0.4

    def __post_init__(self) -> None:
        def number(name: str, low: float, strict: bool) -> None:
            value = getattr(self, name)
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
                  and math.isfinite(value) and (value > low if strict else value >= low))
            if not ok:
                bound = f"> {low:g}" if strict else f">= {low:g}"
                raise InputError(f"PafParams.{name} must be a finite number {bound}, got {value!r}")

        def integer(name: str, low: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"PafParams.{name} must be an integer >= {low}, got {value!r}")

        number("sigma", 0.0, strict=False)
        number("truncate", 0.0, strict=True)
        number("distance_prior", 0.0, strict=False)
        number("min_norm", 0.0, strict=True)
        number("min_above_fraction", 0.0, strict=False)
        for name in ("peak_threshold", "paf_threshold", "min_mean_score"):
            number(name, -math.inf, strict=True)
        integer("samples", 2)
        integer("min_parts", 0)

    @classmethod
    def python(cls) -> "PafParams":
        """The official Python port's constants (Hzzone ``body.py``)."""
        return cls()

    @classmethod
    def cmu(cls) -> "PafParams":
        """CMU OpenPose's C++ defaults for the thresholds (``poseParameters.cpp``).

        NMS threshold 0.05, inter-min-above 0.95, inter-threshold 0.05, min subset
        count 3, min subset score 0.4; smoothing, samples, distance prior and the
        rules stay the port's. CMU's C++ (nmsBase.cpp, bodyPartConnectorBase.cpp)
        also differs in what no constant expresses: 3x3 NMS on the unsmoothed map
        with sub-pixel refinement; 5–25 samples by limb length, no distance prior, a
        score that averages only the samples above the threshold; its CPU
        connector grows people from part A's owner without merging (its GPU one
        sorts all connections globally); and a person score of total / (K + L),
        which PafDecoder reports for both presets.
        """
        return cls(peak_threshold=0.05, paf_threshold=0.05, min_above_fraction=0.95,
                   min_parts=3, min_mean_score=0.4)

    @classmethod
    def preset(cls, name: str) -> "PafParams":
        """PafParams for a card's ``decoder.extra["preset"]``: 'python' or 'cmu'."""
        if name == "python":
            return cls.python()
        if name == "cmu":
            return cls.cmu()
        raise InputError(f"unknown PAF decoder preset {name!r}; expected one of {PRESETS}")


@dataclass(frozen=True)
class Peaks:
    """All heatmap peaks of one frame, in id order: part by part, row-major within a part.

    xy: (P, 2) int64 (x, y) map pixels. scores: (P,) float64 unsmoothed heatmap
    value at the peak. parts: (P,) int64 keypoint index. starts: (K+1,) int64;
    the peaks of part k have ids starts[k]:starts[k+1].
    """

    xy: np.ndarray
    scores: np.ndarray
    parts: np.ndarray
    starts: np.ndarray

    def __len__(self) -> int:
        return self.xy.shape[0]

    def of_part(self, part: int) -> slice:
        return slice(int(self.starts[part]), int(self.starts[part + 1]))


def gaussian_kernel(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """SciPy's 1-D Gaussian weights: radius int(truncate·sigma + 0.5), normalised to sum 1."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x ** 2)
    return phi / phi.sum()


def _float_maps(maps: object) -> np.ndarray:
    """float32 or float64 maps as they are (OpenCV reads both); other dtypes as float64."""
    array = np.asarray(maps)
    return array if array.dtype in (np.float32, np.float64) else array.astype(np.float64)


def gaussian_smooth(maps: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """scipy.ndimage.gaussian_filter(map, sigma, mode='reflect', truncate) of each (H, W) map.

    maps: (K, H, W). Returns (K, H, W) float64, equal to SciPy to ~1e-15 (OpenCV
    sums in another order); gaussian_smooth_at gives SciPy's exact values. A
    float32 map is widened to float64 first, as the port's float64 maps hold it.
    """
    maps = _float_maps(maps)
    if sigma <= 0:
        return maps.astype(np.float64)
    kernel = gaussian_kernel(sigma, truncate)
    out = np.empty(maps.shape, dtype=np.float64)
    for k in range(maps.shape[0]):
        cv2.sepFilter2D(np.ascontiguousarray(maps[k]), cv2.CV_64F, kernel, kernel, dst=out[k],
                        borderType=cv2.BORDER_REFLECT)
    return out


def _reflect(index: np.ndarray, size: int) -> np.ndarray:
    """SciPy's 'reflect' extension (d c b a | a b c d | d c b a), repeated for any offset."""
    folded = np.mod(index, 2 * size)
    return np.where(folded >= size, 2 * size - 1 - folded, folded)


def gaussian_smooth_at(maps: np.ndarray, k: np.ndarray, y: np.ndarray, x: np.ndarray,
                       sigma: float, truncate: float = 4.0) -> np.ndarray:
    """SciPy's float64 gaussian_filter value at pixels (k, y, x), bit for bit.

    maps: (K, H, W); k, y, x: (P,) int. Returns (P,) float64. SciPy filters axis 0
    then axis 1, each output starting at centre·w0 and adding (left_j + right_j)·w_j
    from the outermost tap inwards; the same operations in the same order give
    its result.
    """
    maps = np.asarray(maps)
    k, y, x = (np.asarray(v, dtype=np.intp).reshape(-1) for v in (k, y, x))
    if sigma <= 0:
        return maps[k, y, x].astype(np.float64)
    weights = gaussian_kernel(sigma, truncate)
    radius = len(weights) // 2
    offsets = np.arange(-radius, radius + 1)
    rows = _reflect(y[:, None] + offsets, maps.shape[1])
    cols = _reflect(x[:, None] + offsets, maps.shape[2])
    kk = k[:, None]

    def at(tap: int) -> np.ndarray:
        return maps[kk, rows[:, tap:tap + 1], cols].astype(np.float64)

    # First pass (along H) at row y, for every column the second pass reads.
    column = at(radius) * weights[radius]
    for j in range(radius, 0, -1):
        column += (at(radius - j) + at(radius + j)) * weights[radius - j]
    value = column[:, radius] * weights[radius]
    for j in range(radius, 0, -1):
        value += (column[:, radius - j] + column[:, radius + j]) * weights[radius - j]
    return value


def find_peaks(heatmaps: np.ndarray, params: PafParams = PafParams()) -> Peaks:
    """Peaks of K heatmaps (no background channel): (K, H, W) → Peaks.

    A peak is a pixel whose smoothed value is >= its 4 neighbours (0 outside the
    map) and > params.peak_threshold; its score is the unsmoothed value. Only the
    pixels above the threshold are compared with their neighbours.
    """
    maps = _float_maps(heatmaps)
    count, height, width = maps.shape
    smooth = gaussian_smooth(maps, params.sigma, params.truncate)
    # OpenCV differs from SciPy by ~1e-15·max|map|: decide clear pixels with a margin
    # either way and recompute the near-ties with SciPy's exact arithmetic.
    exact = params.sigma <= 0
    margin = 0.0 if exact else 2e-9 * max(1.0, float(np.abs(maps).max(initial=0.0)))
    flat = np.flatnonzero(smooth > params.peak_threshold - margin)
    k, rest = np.divmod(flat, height * width)
    y, x = np.divmod(rest, width)
    values = smooth.reshape(-1)[flat]
    plane = smooth.reshape(-1)
    neighbours = np.stack([
        np.where(y > 0, plane[np.maximum(flat - width, 0)], 0.0),
        np.where(y < height - 1, plane[np.minimum(flat + width, plane.size - 1)], 0.0),
        np.where(x > 0, plane[np.maximum(flat - 1, 0)], 0.0),
        np.where(x < width - 1, plane[np.minimum(flat + 1, plane.size - 1)], 0.0),
    ])
    sure = (values > params.peak_threshold + margin) & (values >= neighbours + margin).all(axis=0)
    if not exact:
        unsure = (values >= neighbours - margin).all(axis=0) & ~sure
        if unsure.any():
            sure[unsure] = _exact_peak_test(maps, k[unsure], y[unsure], x[unsure], params)
    k, y, x = k[sure], y[sure], x[sure]
    starts = np.concatenate([[0], np.cumsum(np.bincount(k, minlength=count))]).astype(np.int64)
    return Peaks(xy=np.stack([x, y], axis=1).astype(np.int64),
                 scores=maps[k, y, x].astype(np.float64), parts=k.astype(np.int64),
                 starts=starts)


_NEIGHBOURS = np.array([(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)])


def _exact_peak_test(maps: np.ndarray, k: np.ndarray, y: np.ndarray, x: np.ndarray,
                     params: PafParams) -> np.ndarray:
    """The peak test at pixels (k, y, x) on SciPy's exact smoothed values."""
    _, height, width = maps.shape
    ny = y[:, None] + _NEIGHBOURS[:, 0]
    nx = x[:, None] + _NEIGHBOURS[:, 1]
    inside = (ny >= 0) & (ny < height) & (nx >= 0) & (nx < width)
    kk = np.broadcast_to(k[:, None], ny.shape)
    values = np.zeros(ny.shape)
    values[inside] = gaussian_smooth_at(maps, kk[inside], ny[inside], nx[inside],
                                        params.sigma, params.truncate)
    return (values[:, 0] > params.peak_threshold) & (values[:, :1] >= values).all(axis=1)


def score_limbs(paf_x: np.ndarray, paf_y: np.ndarray, points_a: np.ndarray,
                points_b: np.ndarray, image_height: float,
                params: PafParams = PafParams()) -> tuple[np.ndarray, np.ndarray]:
    """Line-integral scores of every (A, B) pair of one limb, vectorised over pairs and samples.

    paf_x, paf_y: (H, W) the limb's PAF channels. points_a: (nA, 2), points_b:
    (nB, 2) integer (x, y) peaks. Returns scores (nA, nB) float64 = mean_k(s_k) +
    min(distance_prior·image_height/‖B−A‖ − 1, 0) with s_k = PAF(p_k)·(B−A)/‖B−A‖
    at p_k = round(linspace(A, B, samples)[k]); and accepted (nA, nB) bool: more
    than min_above_fraction of the s_k exceed paf_threshold and the score is > 0.
    """
    a = np.asarray(points_a, dtype=np.int64).reshape(-1, 2)
    b = np.asarray(points_b, dtype=np.int64).reshape(-1, 2)
    dx = (b[None, :, 0] - a[:, None, 0]).astype(np.float64)
    dy = (b[None, :, 1] - a[:, None, 1]).astype(np.float64)
    norm = np.maximum(np.sqrt(dx * dx + dy * dy), params.min_norm)
    n = params.samples
    # np.linspace(A, B, n) per pair, operation for operation: start + k·(delta/(n−1)), end = B;
    # then rounded half to even, as Python's round() in the port.
    steps = np.arange(n, dtype=np.float64)[:, None, None]
    xs = steps * (dx / (n - 1))
    xs += a[:, None, 0]
    xs[-1] = b[:, 0]
    ys = steps * (dy / (n - 1))
    ys += a[:, None, 1]
    ys[-1] = b[:, 1]
    np.rint(xs, out=xs)
    np.rint(ys, out=ys)
    ys *= paf_x.shape[1]
    ys += xs
    flat = ys.astype(np.intp)  # exact: small integers in float64
    # float32 × float64 widens first, as the port's float64 maps hold the values.
    along = np.take(paf_x.reshape(-1), flat) * (dx / norm)
    along += np.take(paf_y.reshape(-1), flat) * (dy / norm)
    # Summing over the leading axis adds the samples in order, as the port's sum().
    scores = np.add.reduce(along, axis=0) / n + np.minimum(
        params.distance_prior * image_height / norm - 1, 0.0)
    above = np.count_nonzero(along > params.paf_threshold, axis=0)
    accepted = (above > params.min_above_fraction * n) & (scores > 0)
    return scores, accepted


def match_limb(scores: np.ndarray, accepted: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy one-to-one matching of one limb's accepted pairs, best score first.

    scores, accepted: (nA, nB) from score_limbs. Candidates are ordered by score,
    descending, ties in row-major (A-major) order; each A and each B is used at
    most once. Returns (index_a, index_b, score) of the taken pairs, in that order.
    """
    index_a, index_b = np.nonzero(accepted)
    values = scores[index_a, index_b]
    order = np.argsort(-values, kind="stable")
    index_a, index_b, values = index_a[order], index_b[order], values[order]
    taken = np.zeros(len(values), dtype=bool)
    live = np.ones(len(values), dtype=bool)
    # A candidate first among the live ones of both its A and its B is taken by the
    # sequential greedy too; taking all such at once, then dropping their rivals,
    # repeats until nothing is live and yields the sequential greedy's set.
    while live.any():
        alive = np.flatnonzero(live)
        rank = np.arange(len(alive))
        first_a = np.full(scores.shape[0], len(alive))
        first_b = np.full(scores.shape[1], len(alive))
        np.minimum.at(first_a, index_a[alive], rank)
        np.minimum.at(first_b, index_b[alive], rank)
        chosen = alive[(first_a[index_a[alive]] == rank) & (first_b[index_b[alive]] == rank)]
        taken[chosen] = True
        used_a = np.zeros(scores.shape[0], dtype=bool)
        used_b = np.zeros(scores.shape[1], dtype=bool)
        used_a[index_a[chosen]] = True
        used_b[index_b[chosen]] = True
        live &= ~(used_a[index_a] | used_b[index_b])
    return index_a[taken], index_b[taken], values[taken]


Connections = tuple[np.ndarray, np.ndarray, np.ndarray]


def redundant_limbs(skeleton: Sequence[tuple[int, int]]) -> tuple[int, ...]:
    """Limbs that close a cycle: both parts already joined by earlier limbs of the skeleton.

    They may extend or merge people but never start one. For COCO-18 these are
    limbs 17 and 18, the ear–shoulder pairs (the port's ``k < 17``); for BODY_25
    limbs 18 and 19, the pairs CMU's connector special-cases the same way.
    """
    parent: dict[int, int] = {}

    def root(part: int) -> int:
        while parent.setdefault(part, part) != part:
            part = parent[part]
        return part

    closing = []
    for limb, (part_a, part_b) in enumerate(skeleton):
        root_a, root_b = root(part_a), root(part_b)
        if root_a == root_b:
            closing.append(limb)
        else:
            parent[root_b] = root_a
    return tuple(closing)


def assemble(connections: Sequence[Connections], skeleton: Sequence[tuple[int, int]],
             peak_scores: np.ndarray, num_keypoints: int,
             params: PafParams = PafParams()) -> np.ndarray:
    """People from the matched connections, with the published merge and pruning rules.

    connections: per limb (peak id of A, peak id of B, limb score), each (M,), in
    match_limb's order. peak_scores: (P,). Returns (N, K+2) float64 rows: K peak
    ids (−1 where missing), the total score, the part count. For each connection,
    the people holding its A (in A's column) or its B (in B's column), in row order:
    - one: B is written into that person (count + 1, score + score(B) + limb score)
      unless it is already there;
    - two: if they share no part they merge (ids, scores and counts added, plus the
      limb score); otherwise B is written into the first as above — even when it is
      already there, the port's quirk that counts it again;
    - none: a new person of two parts (score(A) + score(B) + limb score), except on
      the redundant_limbs of the skeleton.
    Then people with count < min_parts or total/count < min_mean_score are dropped.
    The loop is over connections (people × limbs), each O(1): a merge depends on
    every earlier one, so it is sequential by nature.
    """
    scores = np.asarray(peak_scores, dtype=np.float64).tolist()
    ids: list[list[int]] = []
    totals: list[float] = []
    counts: list[int] = []
    alive: list[bool] = []
    # peak id -> people holding it in its part's column
    holders: dict[int, set[int]] = {}
    no_start = set(redundant_limbs(skeleton))

    def put(person: int, part: int, peak: int) -> None:
        old = ids[person][part]
        if old >= 0:
            holders[old].discard(person)
        ids[person][part] = peak
        holders.setdefault(peak, set()).add(person)

    for limb, ((part_a, part_b), (peaks_a, peaks_b, limb_scores)) in enumerate(
            zip(skeleton, connections)):
        for a, b, s in zip(np.asarray(peaks_a).tolist(), np.asarray(peaks_b).tolist(),
                           np.asarray(limb_scores, dtype=np.float64).tolist()):
            found = sorted(holders.get(a, set()) | holders.get(b, set()))
            if len(found) == 1:
                person = found[0]
                if ids[person][part_b] != b:
                    put(person, part_b, b)
                    counts[person] += 1
                    totals[person] += scores[b] + s
            elif len(found) >= 2:
                first, second = found[0], found[1]
                row1, row2 = ids[first], ids[second]
                if all(p < 0 or q < 0 for p, q in zip(row1, row2)):
                    for part, peak in enumerate(row2):
                        if peak >= 0:
                            holders[peak].discard(second)
                            put(first, part, peak)
                    totals[first] += totals[second]
                    counts[first] += counts[second]
                    totals[first] += s
                    alive[second] = False
                    ids[second] = [-1] * num_keypoints
                else:
                    put(first, part_b, b)
                    counts[first] += 1
                    totals[first] += scores[b] + s
            elif limb not in no_start:
                person = len(ids)
                ids.append([-1] * num_keypoints)
                put(person, part_a, a)
                put(person, part_b, b)
                totals.append(scores[a] + scores[b] + s)
                counts.append(2)
                alive.append(True)
    kept = [n for n in range(len(ids)) if alive[n] and not (
        counts[n] < params.min_parts or totals[n] / counts[n] < params.min_mean_score)]
    rows = np.empty((len(kept), num_keypoints + 2), dtype=np.float64)
    for row, n in enumerate(kept):
        rows[row, :num_keypoints] = ids[n]
        rows[row, num_keypoints] = totals[n]
        rows[row, num_keypoints + 1] = counts[n]
    return rows


def resize_maps_to_image(maps: np.ndarray, stride: int, valid_size: tuple[int, int],
                         image_size: tuple[int, int]) -> np.ndarray:
    """Network maps to image pixels, as the port: ×stride cubic, crop the padding, cubic resize.

    maps: (C, Hm, Wm). valid_size: (width, height) of the resized image inside the
    padded network input. image_size: (width, height) of the original image.
    Returns (C, height, width) float32.
    """
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise DecodeError(f"maps must be 3-D (C, H, W), got shape {maps.shape}")
    channels, height, width = maps.shape
    valid_w, valid_h = valid_size
    if height * stride < valid_h or width * stride < valid_w:
        raise DecodeError(
            f"maps of {height}x{width} at stride {stride} cover {height * stride}x"
            f"{width * stride} input pixels, less than the {valid_h}x{valid_w} image inside "
            f"the input; the model's output size does not match its card"
        )
    out = np.empty((channels, image_size[1], image_size[0]), dtype=np.float32)
    for c in range(channels):
        up = cv2.resize(maps[c].astype(np.float32, copy=False), (width * stride, height * stride),
                        interpolation=cv2.INTER_CUBIC)
        cv2.resize(up[:valid_h, :valid_w], image_size, dst=out[c], interpolation=cv2.INTER_CUBIC)
    return out


def _check_maps(maps: object, name: str) -> np.ndarray:
    array = np.asarray(maps)
    if array.ndim != 3:
        raise DecodeError(f"{name} must be 3-D (C, H, W), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise DecodeError(f"{name} must be a float array, got dtype {array.dtype}")
    if array.shape[1] < 1 or array.shape[2] < 1:
        raise DecodeError(f"{name} must have H, W >= 1, got shape {array.shape}")
    if not np.isfinite(array.sum(dtype=np.float64)):
        bad = ~np.isfinite(array)
        if bad.any():
            c, y, x = (int(v) for v in np.argwhere(bad)[0])
            raise DecodeError(
                f"{name} hold {int(bad.sum())} NaN/inf values (first at channel {c}, y={y}, "
                f"x={x}); expected finite network outputs — check the engine's precision "
                f"and the input normalisation"
            )
    return array


class PafDecoder:
    """PAFs + heatmaps of one frame → people, for a keypoint set with PAF channels.

    decode returns xy (N, K, 2) float32 in map pixels, scores (N, K) float32 (the
    unsmoothed heatmap value at each found part; missing parts have score 0 and
    xy (0, 0)) and person_scores (N,) float32 = total score / (K + L), CMU's
    normalisation of the port's total (part scores plus limb scores).
    """

    def __init__(self, keypoint_set: KeypointSet | str, params: PafParams | None = None) -> None:
        if isinstance(keypoint_set, str):
            keypoint_set = get_keypoint_set(keypoint_set)
        if keypoint_set.paf_channels is None:
            raise InputError(
                f"keypoint set {keypoint_set.name!r} has no PAF channel map; the PAF decoder "
                "needs a part-affinity-field keypoint set such as 'coco18'"
            )
        self.keypoint_set = keypoint_set
        self.params = PafParams() if params is None else params
        self.num_keypoints = keypoint_set.num_keypoints
        self.num_limbs = len(keypoint_set.skeleton)
        self.paf_channels = 2 * self.num_limbs

    def group(self, pafs: np.ndarray, heatmaps: np.ndarray, image_height: float
              ) -> tuple[Peaks, np.ndarray]:
        """Peaks and the (N, K+2) people rows of assemble; the validated core of decode."""
        pafs, heatmaps = self._check(pafs, heatmaps, image_height)
        peaks = find_peaks(heatmaps[:self.num_keypoints], self.params)
        return peaks, self.connect(pafs, peaks, image_height)

    def connect(self, pafs: np.ndarray, peaks: Peaks, image_height: float) -> np.ndarray:
        """The grouping alone: score, match and assemble every limb → (N, K+2) rows.

        pafs: (C, H, W), already validated (group and decode check them).
        """
        params = self.params
        connections = []
        for (part_a, part_b), (channel_x, channel_y) in zip(self.keypoint_set.skeleton,
                                                            self.keypoint_set.paf_channels):
            span_a, span_b = peaks.of_part(part_a), peaks.of_part(part_b)
            if span_a.stop == span_a.start or span_b.stop == span_b.start:
                connections.append((np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)))
                continue
            scores, accepted = score_limbs(pafs[channel_x], pafs[channel_y], peaks.xy[span_a],
                                           peaks.xy[span_b], image_height, params)
            index_a, index_b, values = match_limb(scores, accepted)
            connections.append((index_a + span_a.start, index_b + span_b.start, values))
        return assemble(connections, self.keypoint_set.skeleton, peaks.scores,
                        self.num_keypoints, params)

    def decode(self, pafs: np.ndarray, heatmaps: np.ndarray, image_height: float
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """pafs (C, H, W), heatmaps (K+1, H, W) or (K, H, W) → xy, scores, person_scores.

        image_height: the H of the distance prior, the image height when the maps
        are at image resolution.
        """
        peaks, rows = self.group(pafs, heatmaps, image_height)
        k = self.num_keypoints
        ids = rows[:, :k].astype(np.int64)
        present = ids >= 0
        safe = np.where(present, ids, 0)
        xy = np.where(present[..., None], peaks.xy[safe], 0)
        scores = np.where(present, peaks.scores[safe], 0.0)
        person_scores = rows[:, k] / (k + self.num_limbs)
        return (xy.astype(np.float32).reshape(-1, k, 2), scores.astype(np.float32).reshape(-1, k),
                person_scores.astype(np.float32))

    def _check(self, pafs: object, heatmaps: object, image_height: float
               ) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(image_height, bool) or not isinstance(image_height, (int, float, np.number)) \
                or not (math.isfinite(image_height) and image_height > 0):
            raise DecodeError(f"image_height must be a positive number, got {image_height!r}")
        pafs = _check_maps(pafs, "pafs")
        heatmaps = _check_maps(heatmaps, "heatmaps")
        name, k = self.keypoint_set.name, self.num_keypoints
        if pafs.shape[0] != self.paf_channels:
            raise DecodeError(
                f"pafs have {pafs.shape[0]} channels; {name} needs {self.paf_channels} "
                f"(x and y for each of its {self.num_limbs} limbs) — is the model's keypoint "
                f"set {name}?"
            )
        if heatmaps.shape[0] not in (k, k + 1):
            raise DecodeError(
                f"heatmaps have {heatmaps.shape[0]} channels; {name} needs {k + 1} ({k} parts "
                f"+ background) or {k} — is the model's keypoint set {name}?"
            )
        if pafs.shape[1:] != heatmaps.shape[1:]:
            raise DecodeError(
                f"pafs are {pafs.shape[1]}x{pafs.shape[2]} but heatmaps are "
                f"{heatmaps.shape[1]}x{heatmaps.shape[2]}; expected the same map size"
            )
        return pafs, heatmaps
