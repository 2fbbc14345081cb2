import re
import json

import pytest

from edgepose.card import DecoderSpec, InputSpec, ModelCard, OutputSpec
from edgepose.errors import CardError

# The HRNet-W32 example card from DESIGN.md, written out independently of card.py.
DESIGN_EXAMPLE = {
    "schema": 1,
    "family": "hrnet",
    "variant": "w32_256x192",
    "paradigm": "top-down",
    "keypoints": "coco17",
    "input": {"name": "input", "layout": "NCHW", "height": 256, "width": 192,
              "color": "RGB", "mean": [123.675, 116.28, 103.53],
              "std": [58.395, 57.12, 57.375], "pad_value": 0},
    "outputs": [{"name": "heatmaps", "role": "heatmaps", "stride": 4}],
    "decoder": {"name": "topdown", "refine": "shift", "flip_test": False},
    "precision": "fp32",
    "source": {"format": "official", "checkpoint_sha256": "abc"},
}


def test_design_example_round_trips():
    card = ModelCard.from_dict(DESIGN_EXAMPLE)
    assert card.input.mean == (123.675, 116.28, 103.53)
    assert card.output("heatmaps").stride == 4
    again = ModelCard.from_json(card.to_json())
    assert again == card
    assert json.loads(card.to_json()) == {**DESIGN_EXAMPLE, "input": {**DESIGN_EXAMPLE["input"], "pad_value": 0.0}}


def test_unknown_keys_survive_a_round_trip():
    data = json.loads(json.dumps(DESIGN_EXAMPLE))
    data["future_top_level"] = {"x": 1}
    data["input"]["future_input_key"] = 3
    data["outputs"][0]["future_output_key"] = "y"
    out = ModelCard.from_dict(data).to_dict()
    assert out["future_top_level"] == {"x": 1}
    assert out["input"]["future_input_key"] == 3
    assert out["outputs"][0]["future_output_key"] == "y"


def test_engine_block_is_kept():
    data = {**DESIGN_EXAMPLE, "engine": {"tensorrt_version": "10.3.0", "plan_sha256": "ff"}}
    assert ModelCard.from_dict(data).to_dict()["engine"]["tensorrt_version"] == "10.3.0"


def _with(path: str, value):
    data = json.loads(json.dumps(DESIGN_EXAMPLE))
    target = data
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if key.isdigit() else target[key]
    if value is _DELETE:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return data


_DELETE = object()


@pytest.mark.parametrize("path, value, message", [
    ("schema", 2, "schema 2"),                                   # newer schema named with the supported one
    ("paradigm", "sideways", "'paradigm' is 'sideways'"),        # unknown paradigm
    ("keypoints", "coco99", "'keypoints' is 'coco99'"),          # unknown keypoint set
    ("precision", "fp8", "'precision' is 'fp8'"),                # unknown precision
    ("input.height", 0, "'input.height' is 0"),                  # non-positive size
    ("input.width", 19.5, "'input.width' is 19.5"),              # non-integer size
    ("input.layout", "CHW", "'input.layout' is 'CHW'"),          # unknown layout
    ("input.color", "GRAY", "'input.color' is 'GRAY'"),          # unknown color order
    ("input.mean", [1, 2], "'input.mean'"),                      # wrong length
    ("input.std", [1, 0, 1], "'input.std'"),                     # zero std divides by zero
    ("outputs.0.role", "masks", "role' is 'masks'"),             # unknown role
    ("outputs.0.stride", -4, "stride' is -4"),                   # negative stride
    ("decoder.refine", "magic", "'decoder.refine' is 'magic'"),  # unknown refinement
    ("decoder.flip_test", "yes", "'decoder.flip_test' is 'yes'"),  # not a boolean
    ("outputs", [], "'outputs'"),                                # no outputs
    ("family", _DELETE, "family"),                               # required field missing
    ("input.name", _DELETE, "lacks name"),                       # required input field missing
])
def test_bad_cards_name_the_field_and_value(path, value, message):
    with pytest.raises(CardError, match=re.escape(message)):
        ModelCard.from_dict(_with(path, value))


def test_bad_json_is_a_card_error():
    with pytest.raises(CardError, match="not valid JSON"):
        ModelCard.from_json("{not json")


def test_random_init_flag():
    card = ModelCard(family="hrnet", variant="w8_128x96", paradigm="top-down", keypoints="coco17",
                     input=InputSpec("input", 128, 96), outputs=(OutputSpec("heatmaps", "heatmaps", 4),),
                     decoder=DecoderSpec("topdown"), source={"format": "random-init"})
    assert card.random_init
    assert not ModelCard.from_dict(DESIGN_EXAMPLE).random_init
