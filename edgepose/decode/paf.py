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
unpadded input and resized to the image first (resize_maps_to_image, or
ImageMaps one channel at a time, which BottomUpPipeline uses so that memory
follows the network, not the frame), and ``image_height`` (the distance prior's
H) is the image height. Peaks sit on integer pixels, as in the published code.
Peak finding lives in paf_peaks, the maps resized to the image in paf_image_maps.

Deliberate differences from the port, none of which changes its results:
- The Gaussian smoothing runs in OpenCV in float32 (about 5x faster than
  SciPy's ``gaussian_filter``), with a proven bound on its distance to SciPy's
  float64 values; pixels whose peak test is within that bound of a tie are
  re-evaluated with SciPy's exact arithmetic, so the peaks are SciPy's bit for
  bit, ties on plateaus included. Rows far from any raw value above the
  threshold are not smoothed at all (paf_peaks.heatmap_peaks). From network
  maps (ImageMaps), resize and smoothing are two small products per heatmap
  (paf_smoothing), with their own bound, settled the same way.
- Limb pairs are scored all limbs at once when the PAFs are one array, and a
  pair whose two middle samples already fail the 0.8 criterion is refused
  without reading the rest (paf_limbs.score_pairs): the accepted pairs and their
  scores are the port's.
- Greedy matching is computed in rounds (every candidate that comes first among
  the live candidates of both its A and its B is taken), which selects exactly
  the sequential greedy's set; the connections keep the greedy's order.
- The limbs that never start a person are derived from the skeleton (those
  closing a cycle, redundant_limbs) instead of the port's ``k < 17``: the same
  two limbs for COCO-18, and the right ones for BODY_25.
- A connection whose parts already sit in three or more people (possible only
  through the port's overwrite rule) uses the first two; the port raises an
  IndexError there.
And one that does, only on frames with more than 127 peaks of a part: a part
keeps its 127 strongest peaks (PafParams.max_peaks_per_part), which bounds the
grouping's time and memory; the port keeps all.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from edgepose.decode.paf_image_maps import ImageMaps, check_maps
from edgepose.decode.paf_limbs import score_every_limb, score_pairs
from edgepose.decode.paf_peaks import (NonFiniteMap, Peaks, Scratch, float_maps, heatmap_peaks,
                                       smoothed_map_peaks)
# Re-exported: they were this module's before peak finding moved to paf_peaks and the
# image-size maps to paf_image_maps.
from edgepose.decode.paf_image_maps import resize_maps_to_image  # noqa: F401
from edgepose.decode.paf_peaks import gaussian_kernel, gaussian_smooth  # noqa: F401
from edgepose.decode.paf_peaks import gaussian_smooth_at  # noqa: F401
from edgepose.decode.maps import all_finite, check_finite
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
    max_peaks_per_part: a part keeps at most this many peaks, highest scores first
        (ties: the first in row-major order). 127 is CMU OpenPose's POSE_MAX_PEOPLE,
        the peaks its NMS keeps per part (CMU keeps the first 127 in raster order,
        the port keeps all). It bounds the grouping: a limb scores at most 127²
        pairs, and no real frame holds more people.

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
    max_peaks_per_part: int = 127

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
        integer("max_peaks_per_part", 1)

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
        which PafDecoder reports for both presets. Both presets keep 127 peaks per
        part (max_peaks_per_part), CMU's limit.
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


def find_peaks(heatmaps: np.ndarray | ImageMaps, params: PafParams = PafParams()) -> Peaks:
    """Peaks of K heatmaps (no background channel): (K, H, W) or ImageMaps → Peaks.

    A peak is a pixel whose smoothed value is >= its 4 neighbours (0 outside the
    map) and > params.peak_threshold; its score is the unsmoothed value. A part
    keeps its params.max_peaks_per_part highest-scoring peaks (ties: the first in
    row-major order). One map is worked on at a time (see heatmap_peaks), so an
    ImageMaps is resized one channel at a time. DecodeError naming the first NaN
    or inf, if any: the search reads every value, so it checks them too.
    """
    xy, scores, parts = [], [], []
    counts = np.zeros(len(heatmaps), np.int64)
    scratch = Scratch()
    for k in range(len(heatmaps)):
        try:
            y, x, score = _part_peaks(heatmaps, k, params, scratch)
        except NonFiniteMap:
            if isinstance(heatmaps, np.ndarray):
                check_finite(heatmaps, "heatmaps", ("channel",))
            raise DecodeError(
                f"heatmaps hold NaN/inf values (channel {k}); expected finite network "
                f"outputs — check the engine's precision and the input normalisation"
            ) from None
        xy.append(np.stack([x, y], axis=1))
        scores.append(score)
        parts.append(np.full(len(y), k, np.int64))
        counts[k] = len(y)
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Peaks(xy=np.concatenate(xy or [np.zeros((0, 2), np.int64)]).astype(np.int64),
                 scores=np.concatenate(scores or [np.zeros(0)]),
                 parts=np.concatenate(parts or [np.zeros(0, np.int64)]), starts=starts)


def _part_peaks(heatmaps: np.ndarray | ImageMaps, part: int, params: PafParams,
                scratch: Scratch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y, x, score of one part's peaks. An ImageMaps channel is resized into a scratch
    buffer, which the next part's map then overwrites."""
    if isinstance(heatmaps, ImageMaps):
        heatmap = heatmaps.resize(part, out=scratch.get("heatmap", heatmaps.shape[1:],
                                                        np.float32))
        smoothing = heatmaps.smoothed(part, params.sigma, params.truncate)
        if smoothing is not None:
            y, x = smoothed_map_peaks(smoothing, heatmap, params.sigma, params.truncate,
                                      params.peak_threshold, params.max_peaks_per_part, scratch)
            return y, x, heatmap[y, x].astype(np.float64)
    else:
        heatmap = float_maps(heatmaps[part])
    y, x = heatmap_peaks(heatmap, params.sigma, params.truncate, params.peak_threshold,
                         limit=params.max_peaks_per_part, scratch=scratch)
    return y, x, heatmap[y, x].astype(np.float64)


def score_limbs(paf_x: np.ndarray, paf_y: np.ndarray, points_a: np.ndarray,
                points_b: np.ndarray, image_height: float,
                params: PafParams = PafParams(), prune: bool = False
                ) -> tuple[np.ndarray, np.ndarray]:
    """Line-integral scores of every (A, B) pair of one limb, vectorised over pairs and samples.

    paf_x, paf_y: (H, W) the limb's PAF channels. points_a: (nA, 2), points_b:
    (nB, 2) integer (x, y) peaks. Returns scores (nA, nB) float64 = mean_k(s_k) +
    min(distance_prior·image_height/‖B−A‖ − 1, 0) with s_k = PAF(p_k)·(B−A)/‖B−A‖
    at p_k = round(linspace(A, B, samples)[k]); and accepted (nA, nB) bool: more
    than min_above_fraction of the s_k exceed paf_threshold and the score is > 0.
    With prune, refused pairs may be left unscored (NaN): see score_pairs.
    """
    a = np.asarray(points_a, dtype=np.int64).reshape(-1, 2)
    b = np.asarray(points_b, dtype=np.int64).reshape(-1, 2)
    scores, accepted = score_pairs(np.asarray(paf_x).reshape(-1), np.asarray(paf_y).reshape(-1),
                                   0, 0, np.repeat(a, len(b), axis=0), np.tile(b, (len(a), 1)),
                                   np.shape(paf_x)[1], image_height, params, prune=prune)
    return scores.reshape(len(a), len(b)), accepted.reshape(len(a), len(b))


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

    def group(self, pafs: np.ndarray | ImageMaps, heatmaps: np.ndarray | ImageMaps,
              image_height: float) -> tuple[Peaks, np.ndarray]:
        """Peaks and the (N, K+2) people rows of assemble; the validated core of decode."""
        pafs, heatmaps = self._check(pafs, heatmaps, image_height)
        peaks = find_peaks(heatmaps[:self.num_keypoints], self.params)
        return peaks, self.connect(pafs, peaks, image_height)

    def connect(self, pafs: np.ndarray | ImageMaps, peaks: Peaks, image_height: float
                ) -> np.ndarray:
        """The grouping alone: score, match and assemble every limb → (N, K+2) rows.

        pafs: (C, H, W), already validated (group and decode check them). A limb's
        two channels are read only when both its parts have peaks.
        """
        params = self.params
        limbs = [(limb, peaks.of_part(part_a), peaks.of_part(part_b), channels)
                 for limb, ((part_a, part_b), channels) in enumerate(
                     zip(self.keypoint_set.skeleton, self.keypoint_set.paf_channels))]
        # A limb is scored only when both its parts have peaks, as in the port.
        limbs = [limb for limb in limbs
                 if limb[1].stop > limb[1].start and limb[2].stop > limb[2].start]
        if isinstance(pafs, np.ndarray) and pafs.flags.c_contiguous:
            scored = score_every_limb(pafs, peaks.xy, [(a, b) for _, a, b, _ in limbs],
                                      [c for *_, c in limbs], image_height, params)
        else:  # ImageMaps: a channel is resized when read, so only the limbs' own are read
            scratch = Scratch()
            shape = pafs.shape[1:]

            def channel(index: int, role: str) -> np.ndarray:
                if isinstance(pafs, ImageMaps):
                    return pafs.resize(index, out=scratch.get(role, shape, np.float32))
                return pafs[index]

            scored = [score_limbs(channel(channel_x, "paf_x"), channel(channel_y, "paf_y"),
                                  peaks.xy[span_a], peaks.xy[span_b], image_height, params,
                                  prune=True)
                      for _, span_a, span_b, (channel_x, channel_y) in limbs]
        connections = [(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
                       for _ in self.keypoint_set.skeleton]
        for (limb, span_a, span_b, _), (scores, accepted) in zip(limbs, scored):
            index_a, index_b, values = match_limb(scores, accepted)
            connections[limb] = (index_a + span_a.start, index_b + span_b.start, values)
        return assemble(connections, self.keypoint_set.skeleton, peaks.scores,
                        self.num_keypoints, params)

    def decode(self, pafs: np.ndarray | ImageMaps, heatmaps: np.ndarray | ImageMaps,
               image_height: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """pafs (C, H, W), heatmaps (K+1, H, W) or (K, H, W) → xy, scores, person_scores.

        Either may be an ImageMaps: network maps resized to the image one channel at
        a time, with the same result as the arrays resize_maps_to_image makes.
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
               ) -> tuple[np.ndarray | ImageMaps, np.ndarray | ImageMaps]:
        if isinstance(image_height, bool) or not isinstance(image_height, (int, float, np.number)) \
                or not (math.isfinite(image_height) and image_height > 0):
            raise DecodeError(f"image_height must be a positive number, got {image_height!r}")
        pafs = check_maps(pafs, "pafs")
        # The peak search reads every part map and refuses a NaN/inf (find_peaks);
        # only the background channel, which it does not read, is checked here.
        heatmaps = check_maps(heatmaps, "heatmaps", finite=False)
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
        if isinstance(heatmaps, np.ndarray) and len(heatmaps) > k \
                and not all_finite(heatmaps[k:]):
            check_finite(heatmaps, "heatmaps", ("channel",))
        return pafs, heatmaps
