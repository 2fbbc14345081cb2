"""Hourglass, Associative Embedding and HigherHRNet through export and `edgepose infer`."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from edgepose.cli import main
from edgepose.errors import CheckpointError, InputError
from export.families import export_model, prepare_model
from export.onnx import read_card


def _image(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), rng.integers(0, 255, (150, 200, 3), dtype=np.uint8))
    return path


@pytest.mark.parametrize(("variant", "mean"), [
    ("princeton_s2_d8", (0.0, 0.0, 0.0)),                        # RGB/255, no mean
    ("bearpaw_s2_b1_d8", (112.31, 113.23, 110.33)),             # MPII mean × 255, no std
])
def test_hourglass_card_describes_each_ports_input(variant, mean):
    card = prepare_model("hourglass", variant, None).card
    assert (card.paradigm, card.keypoints, card.input.color) == ("top-down", "mpii16", "RGB")
    assert (card.input.height, card.input.width) == (256, 256)
    assert card.input.std == (255.0,) * 3
    np.testing.assert_allclose(card.input.mean, mean, atol=0.01)
    assert card.decoder.name == "hourglass"
    assert card.decoder.extra["source"] == variant.split("_")[0]


def test_bearpaw_file_in_the_princeton_net_lists_the_keys(tmp_path):
    bearpaw = prepare_model("hourglass", "bearpaw_s2_b1_d8", None).model.model
    path = tmp_path / "model_best.pth.tar"
    torch.save({"epoch": 1, "arch": "hg", "best_acc": 0.5,
                "state_dict": {"module." + k: v for k, v in bearpaw.state_dict().items()}}, path)
    assert prepare_model("hourglass", "bearpaw_s2_b1_d8", path).layout == "official+module."
    with pytest.raises(CheckpointError, match="missing") as info:
        prepare_model("hourglass", "princeton_s2_d8", path)
    assert "unexpected" in str(info.value)


@pytest.mark.parametrize(("family", "variant", "roles"), [
    ("ae", "hg2_64_d16", ("heatmaps", "tags")),
    ("higherhrnet", "w8_128", ("heatmaps", "tags", "heatmaps_hr")),
])
def test_bottom_up_cards_split_the_outputs_by_role(family, variant, roles):
    card = prepare_model(family, variant, None).card
    assert card.paradigm == "bottom-up" and card.decoder.name == "ae"
    assert tuple(o.role for o in card.outputs) == roles
    assert card.decoder.extra["preset"] == ("higherhrnet" if family == "higherhrnet"
                                            else "pose-ae-train")


def test_higherhrnet_split_keeps_the_network_outputs():
    prepared = prepare_model("higherhrnet", "w8_128", None)
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        heatmaps, tags, high = prepared.model.eval()(x)
        low, expected_high = prepared.model.model(x)
    assert torch.equal(torch.cat([heatmaps, tags], 1), low) and torch.equal(high, expected_high)
    assert tuple(heatmaps.shape) == (1, 17, 32, 32) and tuple(high.shape) == (1, 17, 64, 64)


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"keypoints": "coco17"}, "mpii16"),
    ({"input_size": (64, 64)}, "--input-size"),
])
def test_prepare_rejects(kwargs, fragment):
    with pytest.raises(InputError, match=fragment):
        prepare_model("hourglass", "princeton_s2_d8", None, **kwargs)


@pytest.mark.parametrize(("family", "variant", "args", "keypoints"), [
    ("hourglass", "princeton_s2_d8", ["--boxes", "30,20,80,120"], 16),
    ("ae", "hg2_64_d16", [], 17),
    ("higherhrnet", "w8_128", [], 17),
])
def test_export_and_infer(tmp_path, capsys, family, variant, args, keypoints):
    onnx_path = tmp_path / f"{family}.onnx"
    result = export_model(family, variant, onnx_path, random_init=True)
    assert result.verification and read_card(onnx_path) == result.card
    out_json, out_png = tmp_path / "poses.json", tmp_path / "poses.png"
    assert main(["infer", "--model", str(onnx_path), "--image", str(_image(tmp_path)), *args,
                 "--json", str(out_json), "--draw", str(out_png)]) == 0
    results = json.loads(out_json.read_text())["results"]
    assert all(len(r["keypoints"]) == 3 * keypoints for r in results)
    assert cv2.imread(str(out_png)).shape == (150, 200, 3)
    assert f"{family} {variant}" in capsys.readouterr().out


def test_hourglass_refinement_and_whole_pixels_on_request(tmp_path, capsys):
    onnx_path = export_model("hourglass", "bearpaw_s2_b1_d8", tmp_path / "hg.onnx",
                             random_init=True, verify=False).path
    out_json = tmp_path / "poses.json"
    assert main(["infer", "--model", str(onnx_path), "--image", str(_image(tmp_path)),
                 "--boxes", "30,20,80,120", "--refine", "princeton", "--integer-coords",
                 "--json", str(out_json)]) == 0
    values = json.loads(out_json.read_text())["results"][0]["keypoints"]
    coords = [v for i, v in enumerate(values) if i % 3 != 2]
    assert all(float(v).is_integer() for v in coords)
    assert main(["infer", "--model", str(onnx_path), "--image", str(_image(tmp_path)),
                 "--refine", "dark"]) == 2
    assert "princeton" in capsys.readouterr().err
