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
    """

    name: str
    names: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...] | None = None

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

KEYPOINT_SETS: dict[str, KeypointSet] = {s.name: s for s in (COCO17, MPII16)}


def get_keypoint_set(name: str) -> KeypointSet:
    """The keypoint set a ModelCard names; InputError for an unknown name."""
    try:
        return KEYPOINT_SETS[name]
    except KeyError:
        raise InputError(
            f"unknown keypoint set {name!r}; known sets: {', '.join(sorted(KEYPOINT_SETS))}"
        ) from None
