"""PAF line integrals of peak pairs: one limb's pairs, or every limb's pairs in one pass.

The port scores each pair of a limb in a Python loop; here the pairs of a limb,
or of all limbs when the PAFs are one array, are scored together, with the
port's operations in its order (see score_pairs), so the scores are its own.
Shapes: N pairs, S samples per pair, C PAF channels, H, W map height and width.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def score_pairs(paf_x: np.ndarray, paf_y: np.ndarray, offset_x: np.ndarray | int,
                offset_y: np.ndarray | int, a: np.ndarray, b: np.ndarray, width: int,
                image_height: float, params, prune: bool = False
                ) -> tuple[np.ndarray, np.ndarray]:
    """Line-integral scores of the pairs (a[i], b[i]), vectorised over pairs and samples.

    paf_x, paf_y: 1-D float arrays holding the PAF channels (flattened maps, or all
    channels flattened together); the x component for pair i at map pixel (x, y) is
    paf_x[offset_x[i] + y·width + x], and likewise for y. a, b: (N, 2) integer (x, y).
    Returns scores (N,) float64 = mean_k(s_k) + min(distance_prior·image_height/‖B−A‖
    − 1, 0), s_k = PAF(p_k)·(B−A)/‖B−A‖ at p_k = round(linspace(A, B, samples)[k]);
    and accepted (N,) bool: more than min_above_fraction of the s_k exceed
    paf_threshold and the score is > 0. params: a PafParams.

    With prune, two middle samples are read first: a pair already short of the
    samples it needs above paf_threshold is refused unread (its score is NaN; the
    port computes one but uses only accepted pairs'). Most pairs of a crowded frame
    join parts of different people, across empty PAF, so most stop there.
    """
    a = np.asarray(a, dtype=np.int64).reshape(-1, 2)
    b = np.asarray(b, dtype=np.int64).reshape(-1, 2)
    offset_x = np.broadcast_to(np.asarray(offset_x, dtype=np.intp), (len(a),))
    offset_y = np.broadcast_to(np.asarray(offset_y, dtype=np.intp), (len(a),))
    dx = (b[:, 0] - a[:, 0]).astype(np.float64)
    dy = (b[:, 1] - a[:, 1]).astype(np.float64)
    norm = np.maximum(np.sqrt(dx * dx + dy * dy), params.min_norm)
    n = params.samples
    needed = _samples_needed_above(params)
    probes = sorted({(n - 1) // 2, n // 2})
    if not prune or n - needed >= len(probes):
        return _score(paf_x, paf_y, offset_x, offset_y, a, b, dx, dy, norm, width,
                      image_height, params)
    along = _along(paf_x, paf_y, offset_x, offset_y, a, b, dx, dy, norm, width, n, probes)
    failed = np.count_nonzero(~(along > params.paf_threshold), axis=0)
    kept = np.flatnonzero(failed <= n - needed)
    scores = np.full(len(a), np.nan)
    accepted = np.zeros(len(a), dtype=bool)
    scores[kept], accepted[kept] = _score(
        paf_x, paf_y, offset_x[kept], offset_y[kept], a[kept], b[kept], dx[kept], dy[kept],
        norm[kept], width, image_height, params)
    return scores, accepted


def _samples_needed_above(params) -> int:
    """The fewest samples above paf_threshold that pass the criterion (samples + 1: none)."""
    n = params.samples
    return next((k for k in range(n + 1) if k > params.min_above_fraction * n), n + 1)


def _along(paf_x, paf_y, offset_x, offset_y, a, b, dx, dy, norm, width, n, samples):
    """(len(samples), N) s_k of the given sample indices k of each pair."""
    # np.linspace(A, B, n) per pair, operation for operation: start + k·(delta/(n−1)), end = B;
    # then rounded half to even, as Python's round() in the port.
    steps = np.asarray(samples, dtype=np.float64)[:, None]
    xs = steps * (dx / (n - 1))
    xs += a[:, 0]
    ys = steps * (dy / (n - 1))
    ys += a[:, 1]
    last = np.asarray(samples) == n - 1
    xs[last] = b[:, 0]
    ys[last] = b[:, 1]
    np.rint(xs, out=xs)
    np.rint(ys, out=ys)
    ys *= width
    ys += xs
    flat = ys.astype(np.intp)  # exact: small integers in float64
    # float32 × float64 widens first, as the port's float64 maps hold the values.
    along = np.take(paf_x, flat + offset_x) * (dx / norm)
    along += np.take(paf_y, flat + offset_y) * (dy / norm)
    return along


def _score(paf_x, paf_y, offset_x, offset_y, a, b, dx, dy, norm, width, image_height,
           params) -> tuple[np.ndarray, np.ndarray]:
    n = params.samples
    along = _along(paf_x, paf_y, offset_x, offset_y, a, b, dx, dy, norm, width, n, range(n))
    # Summing over the leading axis adds the samples in order, as the port's sum().
    scores = np.add.reduce(along, axis=0) / n + np.minimum(
        params.distance_prior * image_height / norm - 1, 0.0)
    above = np.count_nonzero(along > params.paf_threshold, axis=0)
    accepted = (above > params.min_above_fraction * n) & (scores > 0)
    return scores, accepted


def score_every_limb(pafs: np.ndarray, xy: np.ndarray, spans: Sequence[tuple[slice, slice]],
                     channels: Sequence[tuple[int, int]], image_height: float, params
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    """score_limbs of every limb from one (C, H, W) PAF array, in a single pass.

    xy: (P, 2) peaks; spans[l]: the peak ids of limb l's parts A and B (both
    non-empty); channels[l]: its x and y PAF channels. Returns per limb (scores,
    accepted), each (nA, nB), a refused pair's score NaN (score_pairs' prune): only
    accepted pairs are matched. The per-limb calls cost ~30 small numpy operations
    each; one pass over all pairs costs about as much as one of them.
    """
    _, height, width = pafs.shape
    flat_pafs = pafs.reshape(-1)  # a view: the decoder passes C-contiguous arrays
    a_ids, b_ids, limb_of_pair, shapes = [], [], [], []
    for limb, (span_a, span_b) in enumerate(spans):
        ids_a = np.arange(span_a.start, span_a.stop)
        ids_b = np.arange(span_b.start, span_b.stop)
        a_ids.append(np.repeat(ids_a, len(ids_b)))
        b_ids.append(np.tile(ids_b, len(ids_a)))
        limb_of_pair.append(np.full(len(ids_a) * len(ids_b), limb))
        shapes.append((len(ids_a), len(ids_b)))
    if not shapes:
        return []
    limb_of_pair = np.concatenate(limb_of_pair)
    plane = height * width
    channel = np.asarray(channels, dtype=np.int64).reshape(-1, 2)
    scores, accepted = score_pairs(flat_pafs, flat_pafs, channel[limb_of_pair, 0] * plane,
                                   channel[limb_of_pair, 1] * plane,
                                   xy[np.concatenate(a_ids)], xy[np.concatenate(b_ids)],
                                   width, image_height, params, prune=True)
    bounds = np.cumsum([0] + [rows * cols for rows, cols in shapes])
    return [(scores[start:stop].reshape(shape), accepted[start:stop].reshape(shape))
            for start, stop, shape in zip(bounds[:-1], bounds[1:], shapes)]
