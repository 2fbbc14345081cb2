"""The shipped demo checkpoint: strict official layout, and the accuracy the README states."""

import torch

from edgepose.evaluate import evaluate_model
from export.checkpoints import load_checkpoint_into
from export.models.hrnet import build_hrnet, parse_hrnet_variant

# Issue 4's bar for the demo model on held-out synthetic people, ground-truth boxes.
REQUIRED_AP = 0.80
SHIPPED_WEIGHTS_LIMIT = 10 * 2**20


def test_demo_checkpoint_is_small_and_in_the_official_layout(demo_checkpoint):
    assert demo_checkpoint.stat().st_size < SHIPPED_WEIGHTS_LIMIT
    model = build_hrnet(parse_hrnet_variant("w8_128x96"), 17)
    assert load_checkpoint_into(model, demo_checkpoint) == "official"
    state = torch.load(demo_checkpoint, weights_only=True)
    assert all(t.dtype in (torch.float16, torch.int64) for t in state.values())


def test_demo_model_reaches_the_required_ap_on_unseen_synthetic_people(demo_onnx,
                                                                       validation_split):
    annotations, images = validation_split
    report = evaluate_model(demo_onnx, annotations, images, progress=False)
    assert report.people > 200
    assert report.metrics["AP"] >= REQUIRED_AP, report.format_table()
