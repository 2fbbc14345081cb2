"""The family table: one entry per family module, and the refusals every entry makes
before any model is built."""

from __future__ import annotations

import pytest

from edgepose.errors import InputError
from export.families import FAMILIES, Family, prepare_model


def test_each_entry_is_named_by_its_key():
    assert list(FAMILIES) == ["hrnet", "openpose", "cpm", "hourglass", "ae", "higherhrnet"]
    for name, family in FAMILIES.items():
        assert isinstance(family, Family) and family.name == name


@pytest.mark.parametrize("family, options, match", [
    # a name outside the table lists the ones inside it
    ("yolo", {}, r"unknown model family 'yolo'; supported: hrnet, openpose, cpm"),
    # HRNet's variant fixes the input size
    ("hrnet", {"input_size": (256, 192)}, r"HRNet takes its input size from --variant"),
    # CPM runs at one size only
    ("cpm", {"input_size": (368, 368)}, r"CPM runs at the released models' 368x368"),
    # hourglass predicts MPII's 16 keypoints, nothing else
    ("hourglass", {"keypoints": "coco17"}, r"hourglass predicts the mpii16 keypoint set"),
    # AE's variant fixes the input size
    ("ae", {"input_size": (512, 512)}, r"ae takes its input size from --variant"),
    # HigherHRNet predicts COCO's 17 keypoints
    ("higherhrnet", {"keypoints": "mpii16"}, r"higherhrnet predicts the coco17 keypoint set"),
])
def test_options_a_family_does_not_take_are_refused(family, options, match):
    with pytest.raises(InputError, match=match):
        prepare_model(family, "any", None, **options)
