"""Test support for the PAF decoder: a loop reference and synthetic OpenPose maps.

The reference is written from the published algorithm's description (Cao et
al.; the official Python port's steps), one pixel, pair, sample and person at a
time, so that it shares no code and no vectorisation trick with
edgepose/decode/paf.py. Smoothing uses SciPy's gaussian_filter when SciPy is
installed, and otherwise an explicit padded convolution in SciPy's own order.

Shared by tests/edgepose/decode/test_paf.py and benchmarks/paf_grouping.py, which
load it by file path (tests/ is not a package).

Shapes: N people, K keypoints, L limbs, H, W map size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

try:  # SciPy is a test-only dependency: the runtime never imports it.
    from scipy.ndimage import gaussian_filter as _scipy_gaussian
except ImportError:  # pragma: no cover - depends on the environment
    _scipy_gaussian = None

HAVE_SCIPY = _scipy_gaussian is not None


# ---------------------------------------------------------------------------
# Loop reference
# ---------------------------------------------------------------------------

def smooth_reference(image: np.ndarray, sigma: float, truncate: float) -> np.ndarray:
    """gaussian_filter(image, sigma, mode='reflect', truncate) of one float64 (H, W) map."""
    image = np.asarray(image, dtype=np.float64)
    if sigma <= 0:
        return image.copy()
    if _scipy_gaussian is not None:
        return _scipy_gaussian(image, sigma=sigma, truncate=truncate)
    radius = int(truncate * sigma + 0.5)
    taps = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 / (sigma * sigma) * taps ** 2)
    weights = weights / weights.sum()
    out = image
    for axis in (0, 1):
        padded = np.pad(out, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)],
                        mode="symmetric")
        size = out.shape[axis]
        def take(start, padded=padded, size=size, axis=axis):
            return np.take(padded, np.arange(start, start + size), axis=axis)

        acc = take(radius) * weights[radius]
        for j in range(radius, 0, -1):
            acc = acc + (take(radius - j) + take(radius + j)) * weights[radius - j]
        out = acc
    return out


def peaks_reference(heatmaps: np.ndarray, params) -> list[list[tuple[int, int, float, int]]]:
    """Per part, its peaks as (x, y, unsmoothed score, global id), row-major within a part."""
    all_peaks = []
    next_id = 0
    for part in range(heatmaps.shape[0]):
        raw = np.asarray(heatmaps[part], dtype=np.float64)
        smooth = smooth_reference(raw, params.sigma, params.truncate)
        height, width = smooth.shape
        found = []
        # Only pixels above the threshold can be peaks; visit them in row-major order.
        for y, x in zip(*np.nonzero(smooth > params.peak_threshold)):
            y, x = int(y), int(x)
            value = smooth[y, x]
            up = smooth[y - 1, x] if y > 0 else 0.0
            down = smooth[y + 1, x] if y < height - 1 else 0.0
            left = smooth[y, x - 1] if x > 0 else 0.0
            right = smooth[y, x + 1] if x < width - 1 else 0.0
            if value >= up and value >= down and value >= left and value >= right:
                found.append((x, y, float(raw[y, x]), next_id))
                next_id += 1
        all_peaks.append(found)
    return all_peaks


def peaks_as_the_port(heatmaps: np.ndarray, params) -> list[list[tuple[int, int, float, int]]]:
    """peaks_reference's result, computed the way the port's Body.__call__ does: each
    whole smoothed map compared with four copies shifted by one pixel (zeros shifted
    in), then np.nonzero. Its peak search goes at the port's speed, unlike the pixel
    loop (the rest of the reference, leaner Python than the port's, takes the whole
    to about half the port's time): the benchmarks time this one, the tests pin it to
    peaks_reference and the recording."""
    all_peaks = []
    next_id = 0
    for part in range(heatmaps.shape[0]):
        raw = np.asarray(heatmaps[part], dtype=np.float64)
        smooth = smooth_reference(raw, params.sigma, params.truncate)
        shifted = [np.zeros(smooth.shape) for _ in range(4)]
        shifted[0][1:, :] = smooth[:-1, :]
        shifted[1][:-1, :] = smooth[1:, :]
        shifted[2][:, 1:] = smooth[:, :-1]
        shifted[3][:, :-1] = smooth[:, 1:]
        binary = np.logical_and.reduce([smooth >= neighbour for neighbour in shifted]
                                       + [smooth > params.peak_threshold])
        ys, xs = np.nonzero(binary)
        found = [(int(x), int(y), float(raw[y, x]), next_id + i)
                 for i, (x, y) in enumerate(zip(xs, ys))]
        next_id += len(found)
        all_peaks.append(found)
    return all_peaks


def limb_candidates_reference(paf_x, paf_y, cand_a, cand_b, image_height, params):
    """(i, j, score) of every accepted pair, looping over pairs and over samples."""
    accepted = []
    for i, (xa, ya, _, _) in enumerate(cand_a):
        for j, (xb, yb, _, _) in enumerate(cand_b):
            dx, dy = xb - xa, yb - ya
            norm = max(math.sqrt(dx * dx + dy * dy), params.min_norm)
            ux, uy = dx / norm, dy / norm
            xs = np.linspace(xa, xb, num=params.samples)
            ys = np.linspace(ya, yb, num=params.samples)
            along = []
            for sx, sy in zip(xs, ys):
                px, py = int(round(sx)), int(round(sy))
                along.append(float(paf_x[py, px]) * ux + float(paf_y[py, px]) * uy)
            score = sum(along) / len(along) + min(
                params.distance_prior * image_height / norm - 1, 0)
            above = sum(1 for value in along if value > params.paf_threshold)
            if above > params.min_above_fraction * len(along) and score > 0:
                accepted.append((i, j, score))
    return accepted


def greedy_reference(candidates, cand_a, cand_b):
    """Sequential greedy: best score first (stable), each candidate used once, <= min(nA, nB)."""
    ordered = sorted(candidates, key=lambda c: c[2], reverse=True)
    used_a, used_b, taken = set(), set(), []
    for i, j, score in ordered:
        if i in used_a or j in used_b:
            continue
        taken.append((cand_a[i][3], cand_b[j][3], score))
        used_a.add(i)
        used_b.add(j)
        if len(taken) >= min(len(cand_a), len(cand_b)):
            break
    return taken


def assemble_reference(connections, skeleton, peak_scores, num_keypoints, params):
    """People rows [ids (−1 missing)..., total, count] by the published subset rules, in loops."""
    people = []
    new_limit = 17  # COCO-18: the two ear–shoulder limbs (17, 18) never start a person
    for limb, (part_a, part_b) in enumerate(skeleton):
        for a, b, score in connections[limb]:
            hits = [n for n, row in enumerate(people) if row[part_a] == a or row[part_b] == b]
            if len(hits) == 1:
                row = people[hits[0]]
                if row[part_b] != b:
                    row[part_b] = b
                    row[-1] += 1
                    row[-2] += peak_scores[b] + score
            elif len(hits) >= 2:
                row1, row2 = people[hits[0]], people[hits[1]]
                shared = any(row1[p] >= 0 and row2[p] >= 0 for p in range(num_keypoints))
                if not shared:
                    for p in range(num_keypoints):
                        if row1[p] < 0:
                            row1[p] = row2[p]
                    row1[-2] += row2[-2]
                    row1[-1] += row2[-1]
                    row1[-2] += score
                    del people[hits[1]]
                else:
                    row1[part_b] = b
                    row1[-1] += 1
                    row1[-2] += peak_scores[b] + score
            elif limb < new_limit:
                row = [-1] * num_keypoints + [0.0, 0]
                row[part_a] = a
                row[part_b] = b
                row[-2] = peak_scores[a] + peak_scores[b] + score
                row[-1] = 2
                people.append(row)
    kept = [row for row in people
            if not (row[-1] < params.min_parts or row[-2] / row[-1] < params.min_mean_score)]
    return np.array(kept, dtype=np.float64).reshape(-1, num_keypoints + 2)


def group_reference(all_peaks, pafs, keypoint_set, image_height, params):
    """Connections of every limb and the assembled rows, from reference peaks."""
    peak_scores = [p[2] for part in all_peaks for p in part]
    connections = []
    for (part_a, part_b), (cx, cy) in zip(keypoint_set.skeleton, keypoint_set.paf_channels):
        cand_a, cand_b = all_peaks[part_a], all_peaks[part_b]
        if not cand_a or not cand_b:
            connections.append([])
            continue
        candidates = limb_candidates_reference(pafs[cx], pafs[cy], cand_a, cand_b,
                                               image_height, params)
        connections.append(greedy_reference(candidates, cand_a, cand_b))
    rows = assemble_reference(connections, keypoint_set.skeleton, peak_scores,
                              keypoint_set.num_keypoints, params)
    return connections, rows


def decode_reference(pafs, heatmaps, keypoint_set, image_height, params,
                     find_peaks=peaks_reference):
    """(peaks per part, rows) for (2L, H, W) PAFs and (K or K+1, H, W) heatmaps;
    find_peaks: peaks_reference, or peaks_as_the_port for the official code's speed."""
    all_peaks = find_peaks(np.asarray(heatmaps)[:keypoint_set.num_keypoints], params)
    _, rows = group_reference(all_peaks, pafs, keypoint_set, image_height, params)
    return all_peaks, rows


# ---------------------------------------------------------------------------
# Synthetic maps
# ---------------------------------------------------------------------------

# COCO-18 joints of an upright person facing the camera, (x, y) in units of the
# person's height, origin at the neck.
COCO18_TEMPLATE = np.array([
    (0.00, -0.13), (0.00, 0.00), (-0.11, 0.01), (-0.15, 0.17), (-0.17, 0.32),
    (0.11, 0.01), (0.15, 0.17), (0.17, 0.32), (-0.07, 0.34), (-0.08, 0.56),
    (-0.08, 0.78), (0.07, 0.34), (0.08, 0.56), (0.08, 0.78), (-0.03, -0.16),
    (0.03, -0.16), (-0.06, -0.14), (0.06, -0.14),
])


@dataclass(frozen=True)
class Scene:
    """Synthetic people and their maps. xy (N, K, 2) map pixels; visible (N, K) bool."""

    xy: np.ndarray
    visible: np.ndarray
    pafs: np.ndarray
    heatmaps: np.ndarray


def sample_people(rng: np.random.Generator, count: int, size: tuple[int, int],
                  heights: tuple[float, float], missing: float = 0.0, margin: float = 0.0,
                  jitter: float = 0.02, template: np.ndarray = COCO18_TEMPLATE
                  ) -> tuple[np.ndarray, np.ndarray]:
    """`count` people at random places and heights in a (H, W) frame.

    margin > 0 lets a neck lie up to margin·height outside the frame (truncated
    people); `missing` is each part's chance to be invisible. Parts outside the
    frame are invisible. Returns xy (N, K, 2) and visible (N, K).
    """
    height, width = size
    k = template.shape[0]
    xy = np.zeros((count, k, 2))
    visible = np.zeros((count, k), dtype=bool)
    for n in range(count):
        tall = rng.uniform(*heights)
        neck = np.array([rng.uniform(-margin * tall, width + margin * tall),
                         rng.uniform(0.2 * tall - margin * tall,
                                     height - 0.7 * tall + margin * tall)])
        lean = rng.uniform(-0.15, 0.15)
        pose = template + rng.normal(0, jitter, template.shape)
        pose[:, 0] += lean * pose[:, 1]
        xy[n] = neck + pose * tall
        visible[n] = rng.random(k) >= missing
        inside = ((xy[n, :, 0] >= 0) & (xy[n, :, 0] <= width - 1)
                  & (xy[n, :, 1] >= 0) & (xy[n, :, 1] <= height - 1))
        visible[n] &= inside
    return xy, visible


def render_maps(xy: np.ndarray, visible: np.ndarray, keypoint_set, size: tuple[int, int],
                sigma: float, paf_width: float, noise: float = 0.0,
                rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """OpenPose-style targets: heatmaps (K+1, H, W) (max of Gaussians, then background
    = 1 − max) and PAFs (2L, H, W) (unit vectors within paf_width of each limb, averaged
    where people overlap, as CMU renders its targets), float32, plus uniform noise of
    amplitude `noise`."""
    height, width = size
    k = keypoint_set.num_keypoints
    heatmaps = np.zeros((k + 1, height, width), np.float32)
    reach = int(math.ceil(4 * sigma))
    for n in range(xy.shape[0]):
        for part in range(k):
            if not visible[n, part]:
                continue
            cx, cy = xy[n, part]
            x0, x1 = max(0, int(cx) - reach), min(width, int(cx) + reach + 2)
            y0, y1 = max(0, int(cy) - reach), min(height, int(cy) + reach + 2)
            if x0 >= x1 or y0 >= y1:
                continue
            gy, gx = np.mgrid[y0:y1, x0:x1]
            blob = np.exp(-((gx - cx) ** 2 + (gy - cy) ** 2) / (2 * sigma ** 2))
            np.maximum(heatmaps[part, y0:y1, x0:x1], blob, out=heatmaps[part, y0:y1, x0:x1])
    heatmaps[k] = 1 - heatmaps[:k].max(axis=0)
    pafs = np.zeros((2 * len(keypoint_set.skeleton), height, width), np.float32)
    for (a, b), (cx, cy) in zip(keypoint_set.skeleton, keypoint_set.paf_channels):
        total = np.zeros((2, height, width), np.float32)
        count = np.zeros((height, width), np.float32)
        for n in range(xy.shape[0]):
            if not (visible[n, a] and visible[n, b]):
                continue
            pa, pb = xy[n, a], xy[n, b]
            length = float(np.hypot(*(pb - pa)))
            if length < 1e-6:
                continue
            unit = (pb - pa) / length
            x0 = max(0, int(min(pa[0], pb[0]) - paf_width) - 1)
            x1 = min(width, int(max(pa[0], pb[0]) + paf_width) + 2)
            y0 = max(0, int(min(pa[1], pb[1]) - paf_width) - 1)
            y1 = min(height, int(max(pa[1], pb[1]) + paf_width) + 2)
            gy, gx = np.mgrid[y0:y1, x0:x1]
            # As CMU's training targets: within paf_width of the limb's line, inside the
            # limb's bounding box grown by paf_width (so the field covers both joints).
            rx, ry = gx - pa[0], gy - pa[1]
            on = np.abs(rx * unit[1] - ry * unit[0]) <= paf_width
            total[0, y0:y1, x0:x1] += on * unit[0]
            total[1, y0:y1, x0:x1] += on * unit[1]
            count[y0:y1, x0:x1] += on
        pafs[cx] = total[0] / np.maximum(count, 1)
        pafs[cy] = total[1] / np.maximum(count, 1)
    if noise > 0:
        rng = rng or np.random.default_rng(0)
        heatmaps += rng.uniform(-noise, noise, heatmaps.shape).astype(np.float32)
        pafs += rng.uniform(-noise, noise, pafs.shape).astype(np.float32)
    return pafs, heatmaps


def make_scene(keypoint_set, people: int, size: tuple[int, int], seed: int, *,
               heights: tuple[float, float], sigma: float, paf_width: float,
               missing: float = 0.0, margin: float = 0.0, noise: float = 0.0) -> Scene:
    rng = np.random.default_rng(seed)
    xy, visible = sample_people(rng, people, size, heights, missing=missing, margin=margin)
    pafs, heatmaps = render_maps(xy, visible, keypoint_set, size, sigma, paf_width,
                                 noise=noise, rng=rng)
    return Scene(xy=xy, visible=visible, pafs=pafs, heatmaps=heatmaps)


# ---------------------------------------------------------------------------
# Network-resolution cases recorded from the official port
# ---------------------------------------------------------------------------

# Synthetic network outputs for frames the official Body.__call__ decodes
# (data/paf_official_outputs.npz holds what it returned). The port scales a frame
# of height H by 0.5·368/H, pads it right and down to a multiple of the stride 8, and
# the network's maps are 1/8 of that: `network` is their (h, w), `valid` the
# (width, height) of the scaled frame inside the padding, `image` the frame's (H, W).
# People sizes are in network pixels; sigma 1 and paf_width 1 are 8 image pixels.
NETWORK_CASES = {
    "30 people": dict(image=(368, 656), valid=(328, 184), network=(23, 41), people=30,
                      seed=4, heights=(6.2, 13.8), missing=0.1, margin=0.2, noise=0.02),
    "12 people, tall frame": dict(image=(480, 640), valid=(245, 184), network=(23, 31),
                                  people=12, seed=5, heights=(7.0, 14.0), missing=0.1,
                                  margin=0.2, noise=0.02),
    "5 people, padded": dict(image=(368, 500), valid=(250, 184), network=(23, 32), people=5,
                             seed=1, heights=(8.0, 16.0), missing=0.15, margin=0.1,
                             noise=0.02),
    "noise only": dict(image=(368, 656), valid=(328, 184), network=(23, 41), people=0,
                       seed=2, heights=(6.0, 12.0), missing=0.0, margin=0.0, noise=0.05),
}


def ports_resize(maps: np.ndarray, case: dict) -> np.ndarray:
    """The port's resize of a NETWORK_CASES entry's maps: all channels at once,
    channel-last, x8 cubic, cropped to the valid part, cubic to the image; (C, H, W)."""
    import cv2

    height, width = case["image"]
    valid_w, valid_h = case["valid"]
    hwc = cv2.resize(maps.transpose(1, 2, 0), (0, 0), fx=8, fy=8,
                     interpolation=cv2.INTER_CUBIC)[:valid_h, :valid_w]
    return cv2.resize(hwc, (width, height), interpolation=cv2.INTER_CUBIC).transpose(2, 0, 1)


def network_case_maps(case: dict) -> tuple[np.ndarray, np.ndarray]:
    """(pafs (38, h, w), heatmaps (19, h, w)) float32 network outputs of a NETWORK_CASES entry."""
    from edgepose.keypoints import COCO18

    scene = make_scene(COCO18, case["people"], tuple(case["network"]), case["seed"],
                       heights=tuple(case["heights"]), sigma=1.0, paf_width=1.0,
                       missing=case["missing"], margin=case["margin"], noise=case["noise"])
    return scene.pafs, scene.heatmaps
