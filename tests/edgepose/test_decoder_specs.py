"""Decoder specs: the card's decoder settings read once, at load, into one typed spec per
scheme; bad values refused there, defaults held by the spec, old cards still read."""

import json

import numpy as np
import pytest

from edgepose.card import (AeSpec, CpmSpec, CropSpec, DecoderSpec, HourglassSpec,
                           ModelCard, PafSpec, TopDownSpec)
from edgepose.decode.ae import AeParams
from edgepose.decode.cpm import CpmDecoder
from edgepose.decode.hourglass import HourglassDecoder
from edgepose.decode.paf import PafParams
from edgepose.decode.topdown import TopDownDecoder
from edgepose.errors import CardError, InputError
from edgepose.pipeline import (AeBottomUpPipeline, PafPipeline, TopDownPipeline, pipeline_for,
                               top_down_decoder)

OUTPUTS = {
    "heatmaps": [{"name": "heatmaps", "role": "heatmaps", "stride": 4}],
    "paf": [{"name": "pafs", "role": "pafs", "stride": 8},
            {"name": "heatmaps", "role": "heatmaps", "stride": 8}],
    "ae": [{"name": "heatmaps", "role": "heatmaps", "stride": 4},
           {"name": "tags", "role": "tags", "stride": 4}],
}


def card_dict(decoder: dict, paradigm: str = "top-down", keypoints: str = "coco17",
              outputs: str = "heatmaps", input_extra: dict | None = None) -> dict:
    """A card as JSON, in the layout export wrote before the specs: each decoder's keys
    flat in the decoder section, the crop rule flat in the input section."""
    return {
        "schema": 1, "family": "f", "variant": "v", "paradigm": paradigm,
        "keypoints": keypoints,
        "input": {"name": "input", "layout": "NCHW", "height": 64, "width": 48,
                  "color": "RGB", "mean": [0, 0, 0], "std": [1, 1, 1], "pad_value": 0,
                  **(input_extra or {})},
        "outputs": OUTPUTS[outputs],
        "decoder": decoder, "precision": "fp32", "source": {"format": "random-init"},
    }


def load(data: dict) -> ModelCard:
    return ModelCard.from_json(json.dumps(data))


class StubRunner:
    """Enough of a Runner to build a pipeline: the card, the batch limit, close()."""

    max_batch = None

    def __init__(self, card: ModelCard) -> None:
        self.card = card

    def close(self) -> None:
        pass


@pytest.mark.parametrize("decoder, match", [
    ({"name": "topdown", "refine": "udp"},                        # listed once; implemented by none
     r"'decoder.refine' is 'udp'.*'none', 'shift', 'dark'.*implemented by no decoder"),
    ({"name": "topdown", "refine": "subpixel"},                   # never a refinement
     r"'decoder.refine' is 'subpixel'; expected one of \('none', 'shift', 'dark'\)"),
    ({"name": "paf", "refine": "udp", "preset": "python"},        # refused whatever the scheme
     r"'decoder.refine' is 'udp'"),
    ({"name": "topdown", "dark_kernel": 4},                        # even blur size
     r"'decoder.dark_kernel' is 4; expected a positive odd integer"),
    ({"name": "topdown", "dark_kernel": "5"},                      # a string, not a number
     r"'decoder.dark_kernel' is '5'"),
    ({"name": "topdown", "dark_kernel": True},                     # a bool is no kernel
     r"'decoder.dark_kernel' is True"),
    ({"name": "topdown", "flip_test": "yes"},                      # not a JSON bool
     r"'decoder.flip_test' is 'yes'; expected true or false"),
    ({"name": "paf", "preset": "mmpose"},                          # unknown PAF preset
     r"'decoder.preset' is 'mmpose'; expected one of \('python', 'cmu'\)"),
    ({"name": "paf", "flip_test": True},                           # PAF grouping has no flip test
     r"'decoder.flip_test' is True; expected false"),
    ({"name": "ae", "preset": "python"},                           # a PAF preset on an AE card
     r"'decoder.preset' is 'python'; expected one of \('pose-ae-train', 'higherhrnet'\)"),
    ({"name": "hourglass", "source": "mmpose"},                    # unknown hourglass port
     r"'decoder.source' is 'mmpose'; expected one of \('princeton', 'bearpaw'\)"),
    ({"name": "hourglass", "integer": 1},                          # not a JSON bool
     r"'decoder.integer' is 1; expected true or false"),
    ({"name": "cpm", "background": "true"},                        # a string, not a bool
     r"'decoder.background' is 'true'; expected true or false"),
    ({"name": "simcc"},                                            # a decoder this runtime lacks
     r"'decoder.name' is 'simcc'; expected one of \('topdown', 'hourglass', 'cpm', 'paf', "
     r"'ae'\)"),
])
def test_bad_decoder_values_are_refused_at_load(decoder, match):
    with pytest.raises(CardError, match=match):
        load(card_dict(decoder))


@pytest.mark.parametrize("input_extra, match", [
    ({"box_rule": "square"}, r"'input.box_rule' is 'square'; expected one of \('fit', 'height'\)"),
    ({"box_padding": 0}, r"'input.box_padding' is 0; expected a positive number"),
    ({"box_padding": "1.2"}, r"'input.box_padding' is '1.2'"),
])
def test_bad_crop_values_are_refused_at_load(input_extra, match):
    with pytest.raises(CardError, match=match):
        load(card_dict({"name": "topdown"}, input_extra=input_extra))


@pytest.mark.parametrize("decoder, expected", [
    ({"name": "topdown"}, TopDownSpec(refine="shift", dark_kernel=11, flip_test=False)),
    ({"name": "hourglass"}, HourglassSpec(source="princeton", integer=False, flip_test=False)),
    ({"name": "cpm"}, CpmSpec(background=True, flip_test=False)),
    ({"name": "paf"}, PafSpec(preset="python")),
    ({"name": "ae"}, AeSpec(preset="pose-ae-train", flip_test=False)),
])
def test_a_card_without_the_optional_fields_gets_the_specs_defaults(decoder, expected):
    card = load(card_dict(decoder))
    assert card.decoder.spec == expected
    assert card.input.crop == CropSpec(rule="fit", padding=1.25)


def test_the_spec_holds_the_defaults_the_pipelines_use():
    paf = PafPipeline(StubRunner(load(card_dict({"name": "paf"}, "bottom-up", "coco18", "paf"))))
    assert paf.decoder.params == PafParams.preset(PafSpec().preset)
    ae = AeBottomUpPipeline(StubRunner(load(card_dict({"name": "ae"}, "bottom-up",
                                                      outputs="ae"))))
    assert ae.decoder.params == AeParams.preset(AeSpec().preset) and ae.flip_test is False
    top = TopDownPipeline(StubRunner(load(card_dict({"name": "topdown"}))))
    assert (top.decoder.refine, top.decoder.dark_kernel) == ("shift", TopDownSpec().dark_kernel)
    assert (top.box_rule, top.box_padding) == (CropSpec().rule, CropSpec().padding)


# Cards as export wrote them before the specs existed, decoder keys flat in "decoder".
OLD_TOP_DOWN = [
    (card_dict({"name": "topdown", "refine": "shift", "flip_test": False, "dark_kernel": 5}),
     TopDownDecoder(refine="shift", dark_kernel=5)),
    (card_dict({"name": "topdown", "refine": "dark", "flip_test": True, "dark_kernel": 17}),
     TopDownDecoder(refine="dark", dark_kernel=17)),
    (card_dict({"name": "hourglass", "refine": "none", "flip_test": False,
                "source": "bearpaw", "integer": False}, keypoints="mpii16"),
     HourglassDecoder(refine="bearpaw", integer=False)),
    (card_dict({"name": "cpm", "refine": "none", "flip_test": False, "background": True},
               keypoints="mpii_cpm14",
               input_extra={"box_rule": "height", "box_padding": 1.2,
                            "center_map": {"sigma": 21, "position": "crop center",
                                           "in_graph": True}}),
     CpmDecoder(stride=4, background=True)),
]


@pytest.mark.parametrize("data, reference", OLD_TOP_DOWN,
                         ids=["hrnet", "hrnet-dark", "hourglass", "cpm"])
def test_old_top_down_cards_load_and_decode_as_before(data, reference):
    card = load(data)
    assert card.to_dict() == data  # written back unchanged: no new keys, none lost
    decoder = top_down_decoder(card)
    rng = np.random.default_rng(0)
    channels = card.decoder.spec.background + 16 if card.decoder.name == "cpm" else 17
    heatmaps = rng.random((3, channels, 16, 12)).astype(np.float32)
    centers = rng.uniform(50, 100, (3, 2))
    scales = rng.uniform(0.5, 1.5, (3, 2))
    for got, want in zip(decoder.decode(heatmaps, centers, scales),
                         reference.decode(heatmaps, centers, scales)):
        np.testing.assert_array_equal(got, want)


def test_old_cpm_card_keeps_its_crop_rule():
    card = load(OLD_TOP_DOWN[3][0])
    assert card.input.crop == CropSpec(rule="height", padding=1.2)
    assert card.input.extra["center_map"]["in_graph"] is True  # unknown keys kept


@pytest.mark.parametrize("decoder, outputs, pipeline, params", [
    ({"name": "paf", "refine": "none", "flip_test": False, "preset": "cmu"}, "paf",
     PafPipeline, PafParams.cmu()),
    ({"name": "ae", "refine": "none", "flip_test": False, "preset": "higherhrnet"}, "ae",
     AeBottomUpPipeline, AeParams.higherhrnet()),
])
def test_old_bottom_up_cards_load_and_pick_their_pipeline(decoder, outputs, pipeline, params):
    data = card_dict(decoder, "bottom-up", "coco18" if outputs == "paf" else "coco17", outputs)
    card = load(data)
    assert card.to_dict() == data
    chosen = pipeline_for(StubRunner(card))
    assert type(chosen) is pipeline and chosen.decoder.params == params


def test_hand_built_cards_with_the_old_extras_get_the_same_spec():
    decoder = DecoderSpec("hourglass", refine="none", extra={"source": "bearpaw"})
    assert decoder.spec == HourglassSpec(source="bearpaw")
    with pytest.raises(CardError, match="'decoder.source' is 'x'"):
        DecoderSpec("hourglass", extra={"source": "x"})


@pytest.mark.parametrize("decoder, paradigm, outputs, overrides, match", [
    ({"name": "topdown"}, "top-down", "heatmaps", {"preset": "cmu"},
     "preset applies to bottom-up models only"),           # grouping constant on top-down
    ({"name": "paf"}, "bottom-up", "paf", {"flip_test": True},
     "flip_test does not apply to the bottom-up model"),   # PAF has no flip test
    ({"name": "ae"}, "bottom-up", "ae", {"refine": "dark"},
     "refine does not apply to the bottom-up model"),      # heatmap refinement on AE
])
def test_pipeline_for_refuses_overrides_its_pipeline_does_not_take(decoder, paradigm, outputs,
                                                                  overrides, match):
    card = load(card_dict(decoder, paradigm, "coco18" if outputs == "paf" else "coco17",
                          outputs))
    with pytest.raises(InputError, match=match):
        pipeline_for(StubRunner(card), **overrides)


def test_pipeline_for_passes_overrides_on():
    card = load(card_dict({"name": "topdown", "refine": "shift"}))
    pipeline = pipeline_for(StubRunner(card), refine="dark", flip_test=True, box_padding=1.5)
    assert (pipeline.decoder.refine, pipeline.flip_test, pipeline.box_padding) == (
        "dark", True, 1.5)
    ae = load(card_dict({"name": "ae"}, "bottom-up", outputs="ae"))
    assert pipeline_for(StubRunner(ae), flip_test=True).flip_test is True
