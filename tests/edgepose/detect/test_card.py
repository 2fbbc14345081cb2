"""The detector card: JSON round trip, refusals, and the one line that states it."""

import json

import pytest

from edgepose.card import InputSpec
from edgepose.detect.card import DetectorCard
from edgepose.errors import CardError


def _card(**changes):
    fields = dict(format="yolov8", outputs=("output0",),
                  input=InputSpec(name="images", height=256, width=320,
                                  std=(255.0, 255.0, 255.0), pad_value=114.0))
    fields.update(changes)
    return DetectorCard(**fields)


def test_round_trip_through_json():
    card = _card(person_class=3, score_threshold=0.25, strides=(8, 16), engine={"x": 1},
                 source={"origin": "guessed"})
    data = json.loads(card.to_json())
    assert data["input"]["std"] == [255.0, 255.0, 255.0] and data["strides"] == [8, 16]
    assert DetectorCard.from_json(card.to_json()) == card


@pytest.mark.parametrize("changes, message", [
    (dict(format="yolov5"), "'format'"),
    (dict(outputs=("a", "b")), "1 output name"),
    (dict(format="mmdeploy"), "2 output name"),
    (dict(score_threshold=1.5), "'score_threshold'"),
    (dict(iou_threshold=float("nan")), "'iou_threshold'"),
    (dict(max_detections=0), "'max_detections'"),
    (dict(person_class=-1), "'person_class'"),
    (dict(person_class=True), "'person_class'"),
    (dict(resize="crop"), "'resize'"),
    (dict(pad="left"), "'pad'"),
    (dict(strides=()), "'strides'"),
    (dict(box_encoding="xywh"), "'box_encoding'"),
    (dict(schema=2), "'schema'"),
])
def test_bad_fields_are_refused(changes, message):
    with pytest.raises(CardError, match=message):
        _card(**changes)


@pytest.mark.parametrize("text, message", [
    ("{", "not valid JSON"),
    ("[]", "JSON object"),
    ('{"format": "yolov8", "outputs": ["o"]}', "lacks the field"),
    ('{"format": "yolov8", "outputs": ["o"], "input": {"name": "i", "height": 8, '
     '"width": 8}, "colour": "RGB"}', "unknown field"),
    ('{"format": "yolov8", "outputs": ["o"], "input": {"name": "i", "height": 0, '
     '"width": 8}}', "input.height"),
])
def test_bad_json_is_refused(text, message):
    with pytest.raises(CardError, match=message):
        DetectorCard.from_json(text)


def test_the_statement_names_what_edgepose_will_do():
    line = _card().describe()
    assert "\n" not in line
    for fact in ("yolov8", "320x256", "RGB", "/255", "centred", "person class 0",
                 "score >= 0.3", "NMS IoU 0.45"):
        assert fact in line, fact
    assert "NMS" not in _card(format="end2end", outputs=("o",)).describe()
