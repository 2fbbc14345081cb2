"""Keypoint sets: names, skeletons, flip pairs and OKS sigmas, as data.

All indices are 0-based. Sources that print 1-based lists (COCO's skeleton) are
converted here, once, so no other module ever adds or subtracts one.
K below is the number of keypoints of a set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgepose.errors import InputError


@dataclass(frozen=True)
class KeypointSet:
    """One keypoint convention.

    names: K names in network output order.
    skeleton: pairs (i, j) of keypoint indices joined when drawing.
    flip_pairs: pairs (i, j) that swap under a horizontal mirror.
    sigmas: K per-keypoint OKS constants, or None where the set has none.
    paf_channels: for part-affinity-field models, the (x, y) channel indices of
        skeleton[i]'s field in the network's PAF output, or None.
    """

    name: str
    names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...] | None = None
    paf_channels: tuple[tuple[int, int], ...] | None = None

    def __post_init__(self) -> None:
        count = len(self.names)
        if len(set(self.names)) != count:
            raise ValueError(f"keypoint set {self.name!r}: names are not unique")
        for label, pairs in (("skeleton", self.skeleton), ("flip_pairs", self.flip_pairs)):
            for i, j in pairs:
                if not (0 <= i < count and 0 <= j < count) or i == j:
                    raise ValueError(
                        f"keypoint set {self.name!r}: {label} pair ({i}, {j}) is not two "
                        f"distinct indices in [0, {count})"
                    )
        flipped = [k for pair in self.flip_pairs for k in pair]
        if len(flipped) != len(set(flipped)):
            raise ValueError(f"keypoint set {self.name!r}: a keypoint is in two flip pairs")
        if self.sigmas is not None and len(self.sigmas) != count:
            raise ValueError(
                f"keypoint set {self.name!r}: {len(self.sigmas)} sigmas for {count} keypoints"
            )
        if self.paf_channels is not None:
            channels = [c for pair in self.paf_channels for c in pair]
            if len(self.paf_channels) != len(self.skeleton) or len(set(channels)) != len(channels):
                raise ValueError(f"keypoint set {self.name!r}: paf_channels must give two "
                                 "distinct channels for each skeleton limb")

    @property
    def num_keypoints(self) -> int:
        return len(self.names)

    def flip_permutation(self) -> np.ndarray:
        """Index array p such that mirrored[..., k] belongs to keypoint p[k]."""
        permutation = np.arange(self.num_keypoints)
        for i, j in self.flip_pairs:
            permutation[i], permutation[j] = j, i
        return permutation


def _from_one_based(pairs: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    return tuple((i - 1, j - 1) for i, j in pairs)


COCO17 = KeypointSet(
    name="coco17",
    names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    # COCO's person_keypoints skeleton, printed 1-based in the annotation files.
    skeleton=_from_one_based([
        (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7),
        (6, 8), (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5),
        (4, 6), (5, 7),
    ]),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    # COCO keypoint evaluation's per-keypoint sigmas (cocoeval.py).
    sigmas=(
        0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
        0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
    ),
)

MPII16 = KeypointSet(
    name="mpii16",
    names=(
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
        "pelvis", "thorax", "upper_neck", "head_top",
        "right_wrist", "right_elbow", "right_shoulder",
        "left_shoulder", "left_elbow", "left_wrist",
    ),
    skeleton=(
        (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9),
        (7, 12), (12, 11), (11, 10), (7, 13), (13, 14), (14, 15),
    ),
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
)

# Convolutional Pose Machines' MPII+LSP models: 14 joints in CMU's order (the
# network's 15th map is the background). The skeleton is the 9 limbs CPM's own
# testing config draws (config.m `limbs`, 1-based there).
MPII_CPM14 = KeypointSet(
    name="mpii_cpm14",
    names=(
        "head", "neck", "right_shoulder", "right_elbow", "right_wrist",
        "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
        "right_ankle", "left_hip", "left_knee", "left_ankle",
    ),
    skeleton=((0, 1), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (11, 12), (12, 13)),
    flip_pairs=((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13)),
)

# OpenPose's COCO layout: COCO-17 plus a neck, in CMU's order.
COCO18 = KeypointSet(
    name="coco18",
    names=(
        "nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
        "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
        "right_ankle", "left_hip", "left_knee", "left_ankle", "right_eye",
        "left_eye", "right_ear", "left_ear",
    ),
    # CMU's limbSeq (1-based in the source), in the order the PAF decoder scores limbs.
    skeleton=_from_one_based([
        (2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11),
        (2, 12), (12, 13), (13, 14), (2, 1), (1, 15), (15, 17), (1, 16), (16, 18),
        (3, 17), (6, 18),
    ]),
    flip_pairs=((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (14, 15), (16, 17)),
    # CMU's mapIdx minus 19 (the heatmap channels come first in its concatenated output).
    paf_channels=tuple((x - 19, y - 19) for x, y in (
        (31, 32), (39, 40), (33, 34), (35, 36), (41, 42), (43, 44), (19, 20), (21, 22),
        (23, 24), (25, 26), (27, 28), (29, 30), (47, 48), (49, 50), (53, 54), (51, 52),
        (55, 56), (37, 38), (45, 46),
    )),
)

# OpenPose's BODY_25: COCO-18's body plus a mid-hip and six foot points, in CMU's
# order (poseParameters.cpp POSE_BODY_25_BODY_PARTS; the heatmaps add a background).
BODY25 = KeypointSet(
    name="body25",
    names=(
        "nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
        "left_shoulder", "left_elbow", "left_wrist", "mid_hip", "right_hip",
        "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
        "right_eye", "left_eye", "right_ear", "left_ear", "left_big_toe",
        "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel",
    ),
    # CMU's POSE_BODY_PART_PAIRS for BODY_25 (0-based in the source), in its scoring order;
    # the 19th and 20th (ear-shoulder) are the redundant pairs its renderer leaves out.
    skeleton=(
        (1, 8), (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9), (9, 10), (10, 11),
        (8, 12), (12, 13), (13, 14), (1, 0), (0, 15), (15, 17), (0, 16), (16, 18),
        (2, 17), (5, 18), (14, 19), (19, 20), (14, 21), (11, 22), (22, 23), (11, 24),
    ),
    flip_pairs=((2, 5), (3, 6), (4, 7), (9, 12), (10, 13), (11, 14), (15, 16), (17, 18),
                (19, 22), (20, 23), (21, 24)),
    # CMU's POSE_MAP_INDEX for BODY_25: channels within the 52-channel PAF output.
    paf_channels=(
        (0, 1), (14, 15), (22, 23), (16, 17), (18, 19), (24, 25), (26, 27), (6, 7), (2, 3),
        (4, 5), (8, 9), (10, 11), (12, 13), (30, 31), (32, 33), (36, 37), (34, 35), (38, 39),
        (20, 21), (28, 29), (40, 41), (42, 43), (44, 45), (46, 47), (48, 49), (50, 51),
    ),
)

KEYPOINT_SETS: dict[str, KeypointSet] = {
    s.name: s for s in (COCO17, MPII16, MPII_CPM14, COCO18, BODY25)
}


def get_keypoint_set(name: str) -> KeypointSet:
    """The keypoint set a ModelCard names; InputError for an unknown name."""
    try:
        return KEYPOINT_SETS[name]
    except KeyError:
        raise InputError(
            f"unknown keypoint set {name!r}; known sets: {', '.join(sorted(KEYPOINT_SETS))}"
        ) from None
