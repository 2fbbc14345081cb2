import numpy as np
import pytest

from edgepose.errors import InputError
from edgepose.keypoints import COCO17, MPII16, KeypointSet, get_keypoint_set


def test_coco17_facts():
    assert COCO17.num_keypoints == 17
    # The first 1-based COCO limb is [16, 14]: left ankle to left knee.
    assert (COCO17.names[COCO17.skeleton[0][0]], COCO17.names[COCO17.skeleton[0][1]]) == (
        "left_ankle", "left_knee")
    assert len(COCO17.skeleton) == 19
    assert COCO17.sigmas[0] == pytest.approx(0.026)
    assert COCO17.sigmas[-1] == pytest.approx(0.089)


@pytest.mark.parametrize("keypoint_set", [COCO17, MPII16], ids=lambda s: s.name)
def test_flip_pairs_swap_left_and_right(keypoint_set):
    # Every flip pair must join a left and a right keypoint of the same body part.
    for i, j in keypoint_set.flip_pairs:
        a, b = keypoint_set.names[i], keypoint_set.names[j]
        sides = {a.split("_")[0], b.split("_")[0]}
        assert sides == {"left", "right"}, (a, b)
        assert a.split("_", 1)[1] == b.split("_", 1)[1]


@pytest.mark.parametrize("keypoint_set", [COCO17, MPII16], ids=lambda s: s.name)
def test_flip_permutation_is_an_involution(keypoint_set):
    permutation = keypoint_set.flip_permutation()
    assert np.array_equal(permutation[permutation], np.arange(keypoint_set.num_keypoints))
    unpaired = set(range(keypoint_set.num_keypoints)) - {k for p in keypoint_set.flip_pairs for k in p}
    assert all(permutation[k] == k for k in unpaired)


@pytest.mark.parametrize("kwargs, message", [
    (dict(skeleton=((0, 3),)), r"skeleton pair \(0, 3\) is not two distinct"),  # index out of range
    (dict(skeleton=((1, 1),)), r"skeleton pair \(1, 1\) is not two distinct"),  # self-loop
    (dict(flip_pairs=((0, 1), (1, 2))), "a keypoint is in two flip pairs"),    # 1 in two pairs
    (dict(sigmas=(0.1,)), "1 sigmas for 3 keypoints"),                         # count differs
    (dict(names=("a", "a", "c")), "names are not unique"),                     # a name twice
])
def test_bad_keypoint_sets_are_refused(kwargs, message):
    base = dict(name="t", names=("a", "b", "c"), skeleton=(), flip_pairs=())
    with pytest.raises(ValueError, match=message):
        KeypointSet(**{**base, **kwargs})


def test_unknown_set_names_the_known_ones():
    with pytest.raises(InputError, match="coco17"):
        get_keypoint_set("coco99")


def test_coco18_limbs_and_fields_follow_cmu():
    from edgepose.keypoints import COCO18

    assert COCO18.num_keypoints == 18 and len(COCO18.skeleton) == 19
    # CMU limb 1 is [2,3] (neck → right shoulder), its field mapIdx [31,32] → channels 12, 13.
    assert COCO18.skeleton[0] == (1, 2) and COCO18.paf_channels[0] == (12, 13)
    assert sorted(c for pair in COCO18.paf_channels for c in pair) == list(range(38))


def test_body25_extends_coco18_with_mid_hip_and_feet():
    from edgepose.keypoints import BODY25

    assert BODY25.num_keypoints == 25 and BODY25.names[8] == "mid_hip"
    assert BODY25.paf_channels is not None and len(BODY25.paf_channels) == len(BODY25.skeleton)
    # 26 limbs × 2 channels = the 52 PAF channels of the BODY_25 network.
    assert sorted(c for pair in BODY25.paf_channels for c in pair) == list(range(52))
