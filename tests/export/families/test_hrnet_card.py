"""The HRNet card's decoder: the official quarter-pixel shift with DARK's blur matched
to the official training sigma, or what the training record beside the checkpoint names."""

from __future__ import annotations

import json

import pytest
import torch

from edgepose.cli import main
from edgepose.errors import CheckpointError
from export import families
from export.families import hrnet_card, prepare_hrnet
from export.models.hrnet import build_hrnet, parse_hrnet_variant

VARIANT = "w8_128x96"


@pytest.mark.parametrize("variant, kernel", [
    # Official configs: SIGMA 2 on 64x48 and 64x64 maps, 3 on 96x72; mmpose's DARK
    # configs blur those with sizes 11 and 17.
    ("w32_256x192", 11), ("w32_256x256", 11), ("w48_384x288", 17),
    # 32x24 maps: the official sigma scaled, 1 pixel, whose OpenCV blur is size 5.
    ("w8_128x96", 5),
])
def test_official_card_shifts_and_names_the_matching_dark_blur(variant, kernel):
    decoder = hrnet_card(variant, "coco17", {"format": "official"}).decoder
    assert (decoder.refine, decoder.flip_test) == ("shift", False)
    assert decoder.extra == {"dark_kernel": kernel}


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "hrnet.pth"
    torch.save(build_hrnet(parse_hrnet_variant(VARIANT), 17).state_dict(), path)
    return path


def test_without_a_record_the_card_is_the_official_one(checkpoint):
    card = prepare_hrnet(VARIANT, checkpoint).card
    assert card.decoder == hrnet_card(VARIANT, "coco17", {}).decoder
    assert "decoder_from" not in card.source


def test_a_record_without_a_decoder_block_changes_nothing(checkpoint):
    checkpoint.with_suffix(".json").write_text(json.dumps({"steps": 3}))
    assert prepare_hrnet(VARIANT, checkpoint).card.decoder.refine == "shift"


def test_the_training_records_decoder_goes_into_the_card(checkpoint):
    checkpoint.with_suffix(".json").write_text(
        json.dumps({"decoder": {"refine": "dark", "dark_kernel": 7}}))
    card = prepare_hrnet(VARIANT, checkpoint).card
    assert (card.decoder.refine, card.decoder.extra) == ("dark", {"dark_kernel": 7})
    assert card.source["decoder_from"] == "hrnet.json"
    # And it survives the card's JSON round trip, the way the runtime reads it.
    assert type(card).from_json(card.to_json()).decoder == card.decoder


@pytest.mark.parametrize("text, match", [
    ("{not json", "not readable JSON"),
    (json.dumps({"decoder": {"refine": "udp", "dark_kernel": 5}}), '"decoder" block'),
    (json.dumps({"decoder": {"refine": "dark"}}), '"decoder" block'),
    (json.dumps({"decoder": "dark"}), '"decoder" block'),
    (json.dumps({"decoder": {"refine": "dark", "dark_kernel": 6}}), "odd"),
])
def test_a_broken_record_is_refused_naming_it(checkpoint, text, match):
    checkpoint.with_suffix(".json").write_text(text)
    with pytest.raises(CheckpointError, match=match) as caught:
        prepare_hrnet(VARIANT, checkpoint)
    assert "hrnet.json" in str(caught.value)


def test_the_export_command_says_where_the_decoder_came_from(checkpoint, tmp_path, capsys,
                                                            monkeypatch):
    def prepare_only(family, variant, out, *, checkpoint=None, **_):
        # The card is what this test reads; tracing to ONNX would add half a minute.
        prepared = families.prepare_model(family, variant, checkpoint)
        return families.ExportResult(out, prepared.card, prepared.layout, ())

    monkeypatch.setattr(families, "export_model", prepare_only)
    command = ["export", "hrnet", "--variant", VARIANT, "--checkpoint", str(checkpoint),
               "--out", str(tmp_path / "hrnet.onnx")]
    assert main(command) == 0
    assert "decoder:" not in capsys.readouterr().out
    checkpoint.with_suffix(".json").write_text(
        json.dumps({"decoder": {"refine": "dark", "dark_kernel": 5}}))
    assert main(command) == 0
    assert "decoder: dark, as the training record hrnet.json says" in capsys.readouterr().out
