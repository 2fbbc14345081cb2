"""The OpenPose trainer: targets follow CMU's formulas, decode back through the runtime, and
its checkpoint loads strictly.

Facts used here, read from CMU's training code (caffe_train `cpm_data_transformer.cpp`,
openpose_caffe_train `oPDataTransformer.cpp`): heatmap grid point g stands for input pixel
8g + 3.5 (start = stride/2 − 0.5), Gaussians exp(−d²/(2σ²)) skipped where the exponent
exceeds ln 100, the max over people, background max(1 − max, 0); PAF pixels within the
threshold (1 map pixel) of the limb's line inside its bounding box grown by the threshold,
averaged over people. The expected values below are computed from those formulas by hand
or by the loop reference in this file, never by the code under test.
"""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch

from export.training.synthetic import SyntheticConfig, write_coco_dataset
from edgepose.backends.base import RunnerBase, TensorSpec
from edgepose.errors import InputError
from edgepose.keypoints import COCO18
from edgepose.pipeline import BottomUpPipeline
from export.families import openpose_card, prepare_openpose
from export.models.openpose import build_openpose, parse_openpose_variant
from export.training.openpose import (
    FrameDataset,
    TrainConfig,
    augment_frame,
    heatmap_targets,
    ignore_mask,
    init_weights,
    load_frames,
    main,
    openpose_loss,
    paf_targets,
    train,
)

K = 18
SIGMA = 6.0
NECK, R_SHOULDER = 1, 2
# Limb 0 of CMU's limbSeq is neck → right shoulder, its PAF in channels 12 and 13
# (mapIdx [31, 32] − 19).
LIMB0_CHANNELS = (12, 13)
# The supervised layers of CMU's COCO prototxt: the last conv of each branch of each stage.
OUTPUT_LAYERS = {f"conv5_5_CPM_L{b}" for b in (1, 2)} | {
    f"Mconv7_stage{s}_L{b}" for s in range(2, 7) for b in (1, 2)}


def _people(*rows: dict[int, tuple[float, float, int]]) -> np.ndarray:
    """(N, K, 3) from {keypoint: (x, y, v)} per person; the rest unlabelled."""
    people = np.zeros((len(rows), K, 3))
    for n, row in enumerate(rows):
        for k, value in row.items():
            people[n, k] = value
    return people


def _input(gx: float, gy: float) -> tuple[float, float]:
    """Input pixel of map pixel (gx, gy): 8g + 3.5."""
    return 8 * gx + 3.5, 8 * gy + 3.5


# --- an independent loop reference, pixel by pixel from the formulas -----------------------


def reference_targets(people: np.ndarray, map_size: tuple[int, int], sigma: float,
                      width: float) -> tuple[np.ndarray, np.ndarray]:
    h, w = map_size
    heat = np.zeros((K + 1, h, w))
    for y in range(h):
        for x in range(w):
            cx, cy = 8 * x + 3.5, 8 * y + 3.5
            for k in range(K):
                best = 0.0
                for person in people:
                    if person[k, 2] > 0:
                        e = ((cx - person[k, 0]) ** 2 + (cy - person[k, 1]) ** 2) / (2 * sigma ** 2)
                        if e <= math.log(100):
                            best = max(best, math.exp(-e))
                heat[k, y, x] = best
            heat[K, y, x] = max(1.0 - max(heat[k, y, x] for k in range(K)), 0.0)
    pafs = np.zeros((2 * len(COCO18.skeleton), h, w))
    for (a, b), (ch_x, ch_y) in zip(COCO18.skeleton, COCO18.paf_channels):
        for y in range(h):
            for x in range(w):
                vectors = []
                for person in people:
                    if person[a, 2] <= 0 or person[b, 2] <= 0:
                        continue
                    ax, ay = (person[a, 0] - 3.5) / 8, (person[a, 1] - 3.5) / 8
                    bx, by = (person[b, 0] - 3.5) / 8, (person[b, 1] - 3.5) / 8
                    norm = math.hypot(bx - ax, by - ay)
                    if norm == 0:
                        continue
                    ux, uy = (bx - ax) / norm, (by - ay) / norm
                    inside = (min(ax, bx) - width <= x <= max(ax, bx) + width
                              and min(ay, by) - width <= y <= max(ay, by) + width)
                    if inside and abs((x - ax) * uy - (y - ay) * ux) <= width:
                        vectors.append((ux, uy))
                if vectors:
                    pafs[ch_x, y, x] = sum(v[0] for v in vectors) / len(vectors)
                    pafs[ch_y, y, x] = sum(v[1] for v in vectors) / len(vectors)
    return pafs, heat


# --- heatmaps -----------------------------------------------------------------------------


def test_heatmaps_follow_the_formula_at_chosen_pixels():
    people = _people(
        {0: (*_input(5, 3), 2), NECK: (100.0, 100.0, 0)},  # neck not labelled: not drawn
        {0: (*_input(7, 3), 1)},                            # labelled but occluded: drawn
    )
    maps = heatmap_targets(people, (8, 12), SIGMA)
    assert maps.shape == (K + 1, 8, 12) and maps.dtype == np.float32
    nose = maps[0]
    two_s2 = 2 * SIGMA ** 2
    cases = {
        (5, 3): 1.0,                        # on the first nose
        (7, 3): 1.0,                        # on the second
        (6, 3): math.exp(-64 / two_s2),     # 8 px from both: the max, not the sum (0.82)
        (5, 4): math.exp(-64 / two_s2),     # 8 px below the first
        (6, 4): math.exp(-128 / two_s2),    # 8√2 px from both
        (3, 3): math.exp(-256 / two_s2),    # 16 px: exponent 3.6 <= ln 100, kept
        (2, 3): 0.0,                        # 24 px: exponent 8 > ln 100, cut to 0
        (5, 6): 0.0,                        # 24 px below
    }
    for (x, y), value in cases.items():
        assert nose[y, x] == pytest.approx(value, abs=1e-6), (x, y)
    assert not maps[1:K].any()  # the unlabelled neck and every other keypoint: nothing
    np.testing.assert_allclose(maps[K], 1 - nose, atol=1e-6)
    assert maps[K, 0, 11] == 1.0


@pytest.mark.parametrize("offset, kept", [
    (18.0, True),    # exponent 324/72 = 4.5 <= ln 100 = 4.605: 1.1 %
    (18.5, False),   # 342/72 = 4.75 > ln 100: CMU skips it
])
def test_heatmaps_are_cut_below_one_percent(offset, kept):
    x, y = _input(1, 1)
    maps = heatmap_targets(_people({0: (x + offset, y, 2)}), (4, 6), SIGMA)
    expected = math.exp(-offset ** 2 / (2 * SIGMA ** 2)) if kept else 0.0
    assert maps[0, 1, 1] == pytest.approx(expected, abs=1e-7)


# --- PAFs ---------------------------------------------------------------------------------


def test_paf_is_a_unit_vector_inside_the_limb_and_zero_outside():
    # Neck at map (2, 4), right shoulder at map (10, 4): a horizontal limb A→B = +x.
    people = _people({NECK: (*_input(2, 4), 2), R_SHOULDER: (*_input(10, 4), 2)})
    pafs = paf_targets(people, COCO18, (9, 14), limb_width=1.0)
    assert pafs.shape == (38, 9, 14) and pafs.dtype == np.float32
    px, py = pafs[LIMB0_CHANNELS[0]], pafs[LIMB0_CHANNELS[1]]
    inside = np.zeros((9, 14), bool)
    inside[3:6, 1:12] = True  # within 1 of the line, the box grown by 1 on each side
    np.testing.assert_array_equal(px, inside.astype(np.float32))
    assert not py.any()
    others = np.delete(pafs, LIMB0_CHANNELS, axis=0)
    assert not others.any()  # no other limb has both ends labelled


def test_paf_of_a_diagonal_limb():
    # Map (2, 2) → (8, 8): unit (1, 1)/√2.
    people = _people({NECK: (*_input(2, 2), 2), R_SHOULDER: (*_input(8, 8), 2)})
    pafs = paf_targets(people, COCO18, (12, 12), limb_width=1.0)
    length = np.hypot(pafs[12], pafs[13])
    unit = 1 / math.sqrt(2)
    cases = {
        (5, 5): True,    # on the segment
        (1, 1): True,    # on the line, inside the box grown by 1
        (0, 0): False,   # on the line, outside the grown box
        (9, 9): True, (10, 10): False,
        (3, 2): True,    # 1/√2 from the line
        (4, 2): False,   # √2 from the line
    }
    for (x, y), on in cases.items():
        if on:
            assert pafs[12, y, x] == pytest.approx(unit) and pafs[13, y, x] == pytest.approx(unit)
            assert length[y, x] == pytest.approx(1.0)
        else:
            assert length[y, x] == 0.0, (x, y)


def test_overlapping_people_are_averaged():
    people = _people(
        {NECK: (*_input(1, 4), 2), R_SHOULDER: (*_input(8, 4), 2)},   # → +x along row 4
        {NECK: (*_input(5, 1), 2), R_SHOULDER: (*_input(5, 8), 2)},   # → +y along column 5
        {NECK: (*_input(2, 4), 2), R_SHOULDER: (*_input(7, 4), 2)},   # → +x again, shorter
    )
    pafs = paf_targets(people, COCO18, (10, 10), limb_width=1.0)
    px, py = pafs[12], pafs[13]
    # Row 4, column 5: all three people: ((1, 0) + (0, 1) + (1, 0)) / 3.
    assert (px[4, 5], py[4, 5]) == pytest.approx((2 / 3, 1 / 3))
    # Row 4, column 3: the two horizontal people agree: still a unit vector, not 2.
    assert (px[4, 3], py[4, 3]) == pytest.approx((1.0, 0.0))
    # Row 4, column 0: the first person alone (its grown box starts at 0).
    assert (px[4, 0], py[4, 0]) == pytest.approx((1.0, 0.0))
    # Column 5, row 8: the vertical person alone.
    assert (px[8, 5], py[8, 5]) == pytest.approx((0.0, 1.0))


@pytest.mark.parametrize("people, why", [
    (_people({NECK: (*_input(2, 4), 2), R_SHOULDER: (*_input(9, 4), 0)}), "B not labelled"),
    (_people({NECK: (*_input(2, 4), 0), R_SHOULDER: (*_input(9, 4), 2)}), "A not labelled"),
    (_people({NECK: (*_input(3, 3), 2), R_SHOULDER: (*_input(3, 3), 2)}), "no direction"),
])
def test_a_limb_without_two_distinct_labelled_ends_has_no_field(people, why):
    pafs = paf_targets(people, COCO18, (8, 12), limb_width=1.0)
    assert np.isfinite(pafs).all() and not pafs.any(), why


def test_targets_match_the_loop_reference_on_random_people():
    rng = np.random.default_rng(7)
    people = np.zeros((3, K, 3))
    people[..., 0] = rng.uniform(-10, 110, (3, K))
    people[..., 1] = rng.uniform(-10, 90, (3, K))
    people[..., 2] = rng.choice([0, 1, 2], (3, K), p=[0.2, 0.2, 0.6])
    for width in (1.0, 1.5):
        pafs, heat = reference_targets(people, (10, 12), SIGMA, width)
        np.testing.assert_allclose(paf_targets(people, COCO18, (10, 12), width), pafs, atol=1e-6)
    np.testing.assert_allclose(heatmap_targets(people, (10, 12), SIGMA), heat, atol=1e-6)


def _mirrored_targets(pafs: np.ndarray, heat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What a mirrored frame's targets must be: keypoint maps swapped left/right and mirrored,
    each limb's field moved to its mirror limb, mirrored, with its x component negated."""
    swap = np.arange(K)
    for i, j in COCO18.flip_pairs:
        swap[i], swap[j] = j, i
    heat_m = heat.copy()
    heat_m[:K] = heat[swap][..., ::-1]
    heat_m[K] = heat[K][..., ::-1]
    limbs = {tuple(limb): n for n, limb in enumerate(COCO18.skeleton)}
    pafs_m = np.zeros_like(pafs)
    for n, (a, b) in enumerate(COCO18.skeleton):
        m = limbs[(swap[a], swap[b])]  # the mirror limb is in the skeleton, same direction
        (x, y), (mx, my) = COCO18.paf_channels[n], COCO18.paf_channels[m]
        pafs_m[mx] = -pafs[x][..., ::-1]
        pafs_m[my] = pafs[y][..., ::-1]
    return pafs_m, heat_m


def test_a_mirrored_person_gives_mirrored_targets():
    rng = np.random.default_rng(3)
    width = 96  # a multiple of 8: map pixel g mirrors onto 11 − g
    people = np.zeros((2, K, 3))
    people[..., 0] = rng.uniform(5, 90, (2, K))
    people[..., 1] = rng.uniform(5, 60, (2, K))
    people[..., 2] = rng.choice([0, 2], (2, K), p=[0.2, 0.8])
    mirrored = people.copy()
    mirrored[..., 0] = width - 1 - people[..., 0]
    mirrored = mirrored[:, COCO18.flip_permutation()]
    size = (8, width // 8)
    expected_pafs, expected_heat = _mirrored_targets(paf_targets(people, COCO18, size, 1.0),
                                                     heatmap_targets(people, size, SIGMA))
    np.testing.assert_allclose(paf_targets(mirrored, COCO18, size, 1.0), expected_pafs, atol=1e-5)
    np.testing.assert_allclose(heatmap_targets(mirrored, size, SIGMA), expected_heat, atol=1e-6)


# --- the mask -----------------------------------------------------------------------------


def test_ignored_people_mask_the_map_pixels_their_box_covers():
    # Box x 16..36, y 8..18: map centres 19.5, 27.5, 35.5 across, 11.5 down.
    mask = ignore_mask(np.array([[16.0, 8.0, 20.0, 10.0]]), (4, 6))
    expected = np.ones((4, 6), np.float32)
    expected[1, 2:5] = 0
    np.testing.assert_array_equal(mask, expected)
    assert ignore_mask(np.zeros((0, 4)), (4, 6)).all()


# --- augmentation -------------------------------------------------------------------------


def _dots(size: tuple[int, int], points: np.ndarray) -> np.ndarray:
    image = np.full((*size, 3), 40, np.uint8)
    for x, y in points:
        cv2.circle(image, (int(x), int(y)), 3, (255, 255, 255), -1)
    return image


# Seeds drawing: 0 pad, 1 cut, 2 and 3 flip + pad, 8 flip + cut (scale 1.29).
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 8])
def test_augmented_keypoints_stay_on_their_pixels(seed):
    # White dots at the keypoints; after the random flip, cut or pad, and the fit, each
    # returned keypoint must sit on its dot's centre.
    points = np.array([[60.0, 50.0], [150.0, 90.0], [100.0, 130.0]])
    keypoints = np.zeros((1, K, 3))
    keypoints[0, [0, 2, 5], :2] = points  # nose, right and left shoulder
    keypoints[0, [0, 2, 5], 2] = 2
    image = _dots((160, 200), points)
    rng = np.random.default_rng(seed)
    padded, moved, _ = augment_frame(image, keypoints, np.zeros((0, 4)), (96, 128), rng,
                                     scale_jitter=0.3, flip_probability=0.5)
    assert padded.shape == (96, 128, 3)
    count, labels, _, centres = cv2.connectedComponentsWithStats(
        (padded[..., 0] > 150).astype(np.uint8))
    for k in (0, 2, 5):
        x, y = moved[0, k, :2]
        if not (2 <= x < 126 and 2 <= y < 94):
            continue  # cut off by the window
        distance = np.hypot(*(centres[1:] - (x, y)).T)
        assert distance.min() <= 1.0, (k, moved[0, k], centres[1:])
    assert (moved[0, [1, 3, 4]] == 0).all()  # unlabelled rows stay (0, 0, 0)


def test_flip_mirrors_the_frame_and_swaps_left_and_right():
    image = np.random.default_rng(0).integers(0, 255, (64, 96, 3), np.uint8)
    keypoints = _people({R_SHOULDER: (10.0, 20.0, 2), 5: (30.0, 22.0, 1)})
    padded, moved, boxes = augment_frame(image, keypoints, np.array([[4.0, 5, 10, 20]]),
                                         (64, 96), np.random.default_rng(0), scale_jitter=0.0,
                                         flip_probability=1.0)
    np.testing.assert_array_equal(padded, image[:, ::-1])
    # The right shoulder at x 10 becomes the mirrored frame's left shoulder at 95 − 10.
    np.testing.assert_allclose(moved[0, 5], (85.0, 20.0, 2))
    np.testing.assert_allclose(moved[0, R_SHOULDER], (65.0, 22.0, 1))
    np.testing.assert_allclose(boxes, [[96 - 14, 5, 10, 20]], atol=1e-4)


# --- round trip through the runtime -------------------------------------------------------


class TargetRunner(RunnerBase):
    """Answers with the trainer's targets of the frame under test, as a perfect network would."""

    def __init__(self, card, size: tuple[int, int]):
        h, w = size[0] // 8, size[1] // 8
        self.card = card
        self.inputs = (TensorSpec("input", np.dtype(np.float32), (None, 3, *size)),)
        self.outputs = (TensorSpec("pafs", np.dtype(np.float32), (None, 38, h, w)),
                        TensorSpec("heatmaps", np.dtype(np.float32), (None, 19, h, w)))
        self.max_batch = None
        self.maps = None
        self.feeds = []

    def infer(self, feeds):
        self.feeds.append(feeds["input"].copy())
        pafs, heatmaps = self.maps
        return {"pafs": pafs[None], "heatmaps": heatmaps[None]}


def _connected_to_neck(labelled: np.ndarray) -> np.ndarray:
    """The labelled parts joined to the neck through labelled limbs: what PAF grouping can
    put into one person (a truncated figure without its neck falls apart)."""
    reached = np.zeros(K, bool)
    reached[NECK] = labelled[NECK]
    for _ in range(K):
        for a, b in COCO18.skeleton:
            if labelled[a] and labelled[b] and (reached[a] or reached[b]):
                reached[a] = reached[b] = True
    return reached


@pytest.fixture(scope="module")
def frames_400x300(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic18")
    # 400x300 frames are fitted into 256x320 at scale 0.8 with 16 rows of padding, so the
    # round trip also checks the trainer's scaling against the runtime's.
    annotations = write_coco_dataset(folder, 10, SyntheticConfig(image_size=(400, 300), seed=11),
                                     layout="coco18", workers=1, progress=False)
    return annotations, folder / "images"


def _crowded(frame_people: np.ndarray, n: int, radius: float) -> np.ndarray:
    """(K,) bool: person n's keypoints that another person's same keypoint is within radius
    of: two Gaussians that close merge into one peak at stride 8."""
    person = frame_people[n]
    crowded = np.zeros(K, bool)
    for m, other in enumerate(frame_people):
        if m != n:
            close = np.hypot(*(other[:, :2] - person[:, :2]).T) < radius
            crowded |= close & (other[:, 2] > 0) & (person[:, 2] > 0)
    return crowded


def test_targets_decode_back_to_the_annotated_people(frames_400x300):
    annotations, images = frames_400x300
    frames = load_frames(annotations, images)
    config = TrainConfig(input_size=(256, 320))
    dataset = FrameDataset(frames, config, train=False)
    card = openpose_card(parse_openpose_variant("coco18"), config.input_size, {"format": "test"})
    runner = TargetRunner(card, config.input_size)
    pipeline = BottomUpPipeline(runner)
    errors, people, wanted_total, recovered = [], 0, 0, 0
    for index, frame in enumerate(frames):
        tensor, pafs, heatmaps, _ = dataset[index]
        runner.maps = (pafs.numpy(), heatmaps.numpy())
        image = cv2.imread(str(frame.image_path))
        poses = pipeline(image)
        # The trainer's network input is the runtime's, bit for bit.
        np.testing.assert_array_equal(runner.feeds[-1][0], tensor.numpy())
        for n, person in enumerate(frame.keypoints):
            wanted = _connected_to_neck(person[:, 2] > 0)
            if wanted.sum() < 4:
                continue  # the decoder keeps people of 4 parts or more
            assert len(poses), index
            # Keypoints near the image border are left out: there the cubic upsampling
            # replicates the edge map pixel and moves the peak toward the edge.
            inner = wanted & (person[:, :2] >= 10).all(axis=1) & (
                person[:, 0] < image.shape[1] - 10) & (person[:, 1] < image.shape[0] - 10)
            if not inner.any():
                continue
            distance = np.hypot(*(poses.xy[:, inner] - person[inner, :2]).transpose(2, 0, 1))
            best = int(np.argmin(np.median(distance, axis=1)))
            close = (distance[best] <= 3.0) & (poses.scores[best][inner] > 0)
            wanted_total += int(inner.sum())
            recovered += int(close.sum())
            if _crowded(frame.keypoints, n, radius=24.0)[wanted].any():
                continue  # overlapping people: some parts may merge or swap
            people += 1
            found = poses.scores[best] > 0
            assert found[wanted].all(), (index, n, np.flatnonzero(wanted & ~found))
            errors.extend(distance[best])
    errors = np.array(errors)
    assert people >= 10, people
    # Peaks are whole image pixels: about 0.5 px of rounding plus the fit's resampling.
    assert errors.max() <= 3.0 and errors.mean() <= 1.0, (errors.max(), errors.mean())
    # Crowded people included, nearly every keypoint comes back on its annotation.
    assert recovered >= 0.9 * wanted_total, (recovered, wanted_total)


# --- loss and initialisation --------------------------------------------------------------


def test_loss_follows_its_formula():
    pafs = torch.zeros(1, 38, 1, 2)
    pafs[0, 12, 0, 0], pafs[0, 13, 0, 0] = 0.6, 0.8   # limb 0's unit vector on pixel 0
    heatmaps = torch.zeros(1, 19, 1, 2)
    heatmaps[0, 0, 0, 0] = 1.0                        # a nose on pixel 0
    heatmaps[0, 18] = torch.tensor([0.0, 1.0])        # background = 1 − max
    mask = torch.tensor([[[[1.0, 0.0]]]])             # pixel 1 is ignored
    paf_out, heat_out = torch.zeros_like(pafs), torch.zeros_like(heatmaps)
    heat_out[0, 18, 0, 1] = 5.0                       # a big error, but masked
    outputs = {"conv5_5_CPM_L1": paf_out, "conv5_5_CPM_L2": heat_out,
               "Mconv7_stage2_L1": paf_out, "Mconv7_stage2_L2": heat_out}
    # Per stage: PAF errors 0.36 + 0.64 and the nose's 1, each weighed 1 + w·1 (the limb's
    # length is 1 on both channels; the Gaussian is 1); the background's error on pixel 0
    # is 0. Mean over 1·(38 + 19)·1·2 = 114 elements, halved; two stages.
    for weight in (0.0, 9.0):
        expected = 2 * 0.5 * 2.0 * (1 + weight) / 114
        got = openpose_loss(outputs, pafs, heatmaps, mask, foreground_weight=weight)
        assert got.item() == pytest.approx(expected, rel=1e-6)


def test_loss_weighs_the_background_channel_by_its_foreground():
    heatmaps = torch.zeros(1, 19, 1, 2)
    heatmaps[0, 18] = torch.tensor([0.25, 1.0])       # a keypoint reaches 0.75 at pixel 0
    heatmaps[0, 3, 0, 0] = 0.75
    outputs = {"conv5_5_CPM_L1": torch.zeros(1, 38, 1, 2),
               "conv5_5_CPM_L2": torch.zeros(1, 19, 1, 2)}
    got = openpose_loss(outputs, torch.zeros(1, 38, 1, 2), heatmaps, torch.ones(1, 1, 1, 2),
                        foreground_weight=2.0)
    # Background: 0.25²·(1 + 2·0.75) + 1²·(1 + 2·0); keypoint 3: 0.75²·(1 + 2·0.75).
    expected = 0.5 * (0.0625 * 2.5 + 1.0 + 0.5625 * 2.5) / 114
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_init_is_he_normal_with_small_output_layers():
    torch.manual_seed(0)
    model = build_openpose(parse_openpose_variant("coco18_d4"))
    init_weights(model)
    convs = {name: m for name, m in model.named_children() if isinstance(m, torch.nn.Conv2d)}
    assert OUTPUT_LAYERS <= set(convs)
    for name, conv in convs.items():
        assert not conv.bias.any(), name
        if name in OUTPUT_LAYERS:
            expected = 0.01
        else:
            expected = math.sqrt(2 / (conv.in_channels * conv.kernel_size[0] ** 2))
        if conv.weight.numel() >= 2000:  # enough samples for a 10 % check
            assert conv.weight.std().item() == pytest.approx(expected, rel=0.1), name


# --- configuration, loading and the whole run ---------------------------------------------


@pytest.mark.parametrize("kwargs, match", [
    ({"variant": "body25"}, "trains COCO-18 models"),           # the synthetic set is COCO-18
    ({"variant": "coco18_d3"}, "width divisor"),                # not a narrow variant
    ({"input_size": (250, 320)}, "multiples of 8"),             # the maps are at stride 8
    ({"steps": 0}, "steps must be a positive integer"),
    ({"scale_jitter": 1.0}, r"scale_jitter must be in \[0, 1\)"),  # would scale to nothing
    ({"sigma": 0.0}, "sigma must be > 0"),
])
def test_bad_configurations_are_refused(kwargs, match):
    with pytest.raises(InputError, match=match):
        TrainConfig(**kwargs)


def test_coco17_annotations_are_refused_with_the_fix(tmp_path):
    folder = tmp_path / "coco17"
    annotations = write_coco_dataset(folder, 1, SyntheticConfig(seed=2), workers=1,
                                     progress=False)
    with pytest.raises(InputError, match="--layout coco18"):
        load_frames(annotations, folder / "images")


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train18")
    annotations = write_coco_dataset(folder, 4, SyntheticConfig(seed=5), layout="coco18",
                                     workers=1, progress=False)
    return annotations, folder / "images"


def test_a_tiny_run_writes_a_strictly_loadable_float16_checkpoint_and_its_record(
        small_set, tmp_path):
    annotations, images = small_set
    out = tmp_path / "openpose.pth"
    config = TrainConfig(variant="coco18_d8", input_size=(64, 80), steps=3, batch_size=2,
                         threads=1)
    record = train(annotations, images, out, config)
    state = torch.load(out, weights_only=True)
    assert all(value.dtype == torch.float16 for value in state.values())
    assert "Mconv7_stage6_L2.weight" in state and "conv1_1.weight" in state
    prepared = prepare_openpose("coco18_d8", out, input_size=(64, 80))  # strict
    assert prepared.card.variant == "coco18_d8"
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved == json.loads(json.dumps(record))
    assert saved["steps"] == 3 and saved["config"]["variant"] == "coco18_d8"
    assert saved["config"]["input_size"] == [64, 80] and saved["train_seconds"] >= 0
    assert saved["loss_history"][-1]["step"] == 3
    assert all(math.isfinite(row["loss"]) for row in saved["loss_history"])

    # The command line with the same settings writes the same weights: training is seeded.
    again = tmp_path / "again.pth"
    assert main(["--annotations", str(annotations), "--images", str(images), "--out", str(again),
                 "--variant", "coco18_d8", "--input-size", "64x80", "--steps", "3",
                 "--batch-size", "2", "--threads", "1"]) == 0
    repeated = torch.load(again, weights_only=True)
    assert set(repeated) == set(state)
    assert all(torch.equal(repeated[key], state[key]) for key in state)


def test_a_missing_output_folder_is_refused_before_training(small_set, tmp_path, capsys):
    annotations, images = small_set
    assert main(["--annotations", str(annotations), "--images", str(images),
                 "--out", str(tmp_path / "absent" / "x.pth"), "--steps", "1"]) == 2
    assert "does not exist" in capsys.readouterr().err
