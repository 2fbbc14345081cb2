"""The shipped demo checkpoints: strict official layouts, size, and the accuracy the README
states."""

import json

import pytest
import torch

from edgepose.evaluate import evaluate_model
from export.checkpoints import load_checkpoint_into
from export.families import export_model, prepare_openpose
from export.models.hrnet import build_hrnet, parse_hrnet_variant

# Issue 4's bar for the demo model on held-out synthetic people, ground-truth boxes.
REQUIRED_AP = 0.80
# What the shipped checkpoint measures on the validation_split fixture (150 images,
# seed 2) with the decoder its card names (DARK, blur 5), as the README states it; a
# regression in export, preprocessing or decoding shows up as a drop below it.
MEASURED_AP = 0.813
SHIPPED_WEIGHTS_LIMIT = 10 * 2**20
# Issue 4: every shipped checkpoint together under 10 MB.
ALL_SHIPPED_WEIGHTS_LIMIT = 10 * 10**6
OPENPOSE_VARIANT, OPENPOSE_INPUT = "coco18_d8", (256, 320)
# The OpenPose demo model on the same split, whole frames (no boxes), COCO-18 scored as
# COCO-17; as the README states it.
OPENPOSE_MEASURED_AP = 0.207


def test_demo_checkpoint_is_small_and_in_the_official_layout(demo_checkpoint):
    assert demo_checkpoint.stat().st_size < SHIPPED_WEIGHTS_LIMIT
    # The variant the checkpoint's training record names, so file and record must agree.
    record = json.loads(demo_checkpoint.with_suffix(".json").read_text())
    model = build_hrnet(parse_hrnet_variant(record["config"]["variant"]), 17)
    assert load_checkpoint_into(model, demo_checkpoint) == "official"
    state = torch.load(demo_checkpoint, weights_only=True)
    assert all(t.dtype in (torch.float16, torch.int64) for t in state.values())


@pytest.fixture(scope="module")
def demo_report(demo_onnx, validation_split):
    annotations, images = validation_split
    return evaluate_model(demo_onnx, annotations, images, progress=False)


def test_demo_model_keeps_the_ap_the_readme_states(demo_report):
    assert demo_report.people > 200
    assert demo_report.metrics["AP"] >= MEASURED_AP - 0.005, demo_report.format_table()


def test_demo_card_decodes_as_the_model_was_trained(demo_report):
    # Its training record names DARK with the blur of its 1-pixel targets; the
    # official quarter-pixel shift scores 0.785 here.
    assert demo_report.refine == "dark"


def test_demo_model_reaches_the_required_ap_on_unseen_synthetic_people(demo_report):
    assert demo_report.metrics["AP"] >= REQUIRED_AP, demo_report.format_table()


def test_all_shipped_weights_together_stay_under_10_mb(demo_checkpoint, openpose_demo_checkpoint):
    weights = sorted(demo_checkpoint.parent.glob("*.pth"))
    assert {demo_checkpoint, openpose_demo_checkpoint} <= set(weights)
    assert sum(path.stat().st_size for path in weights) < ALL_SHIPPED_WEIGHTS_LIMIT


def test_openpose_demo_checkpoint_loads_strictly_in_the_flat_caffe_layout(
        openpose_demo_checkpoint):
    prepared = prepare_openpose(OPENPOSE_VARIANT, openpose_demo_checkpoint,
                                input_size=OPENPOSE_INPUT)
    assert not prepared.card.random_init
    state = torch.load(openpose_demo_checkpoint, weights_only=True)
    assert all(t.dtype == torch.float16 for t in state.values())
    assert "conv1_1.weight" in state and "Mconv7_stage6_L2.bias" in state


@pytest.fixture(scope="module")
def openpose_report(openpose_demo_checkpoint, validation_split, tmp_path_factory):
    annotations, images = validation_split
    onnx_path = tmp_path_factory.mktemp("openpose") / "openpose_coco18_d8.onnx"
    export_model("openpose", OPENPOSE_VARIANT, onnx_path, checkpoint=openpose_demo_checkpoint,
                 input_size=OPENPOSE_INPUT)
    return evaluate_model(onnx_path, annotations, images, progress=False)


def test_openpose_demo_model_keeps_the_ap_the_readme_states(openpose_report):
    assert openpose_report.family == "openpose"
    assert openpose_report.metrics["AP"] >= OPENPOSE_MEASURED_AP - 0.005, \
        openpose_report.format_table()
