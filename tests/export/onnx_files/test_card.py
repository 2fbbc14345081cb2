"""Card I/O on ONNX files (export/onnx_files/card.py): the card travels in
metadata_props["edgepose"], exactly once, beside any metadata another tool wrote; files
are written whole or not at all."""

import json

import onnx
import pytest

from edgepose.card import METADATA_KEY, ModelCard
from edgepose.errors import CardError, ModelFileError
from export.onnx_files import card as card_io
from tests.calib.tiny import save, tiny_pose, topdown_card


def _keys(model: onnx.ModelProto) -> list[str]:
    return [prop.key for prop in model.metadata_props]


def test_embed_replaces_the_card_and_keeps_other_metadata():
    model = tiny_pose()
    model.metadata_props.add(key="names", value="{0: 'person'}")   # as Ultralytics writes
    card_io.embed_card(model, topdown_card(family="first"))
    card_io.embed_card(model, topdown_card(family="second"))
    assert sorted(_keys(model)) == sorted(["names", METADATA_KEY])
    assert _keys(model).count(METADATA_KEY) == 1
    stored = next(p.value for p in model.metadata_props if p.key == METADATA_KEY)
    assert json.loads(stored)["family"] == "second"
    assert card_io.find_card(model) == topdown_card(family="second")


def test_a_saved_card_reads_back_equal(tmp_path):
    card = topdown_card(height=64, width=48, stride=4)
    model = tiny_pose()
    card_io.embed_card(model, card)
    path = card_io.save_onnx_atomic(model, tmp_path / "m.onnx")
    assert card_io.read_card(path) == card
    assert ModelCard.from_json(onnx.load(str(path)).metadata_props[0].value) == card
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]   # no temporary left


def test_a_graph_without_a_card_has_none_and_reading_one_names_the_file(tmp_path):
    model = tiny_pose()
    del model.metadata_props[:]
    assert card_io.find_card(model) is None
    path = save(model, tmp_path / "bare.onnx")
    with pytest.raises(ModelFileError, match=r"bare\.onnx carries no edgepose model card"):
        card_io.read_card(path)


def test_a_malformed_card_is_a_card_error():
    model = tiny_pose()
    del model.metadata_props[:]
    model.metadata_props.add(key=METADATA_KEY, value="{not json")
    with pytest.raises(CardError):
        card_io.find_card(model)


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    (b"\x00not a protobuf at all\xff" * 3, "is not a readable ONNX file"),
])
def test_missing_or_unreadable_files_are_refused_in_one_line(tmp_path, content, message):
    path = tmp_path / "model.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelFileError, match=message) as caught:
        card_io.load_onnx(path)
    assert "\n" not in str(caught.value)


def test_a_failed_save_leaves_the_previous_file_untouched(tmp_path, monkeypatch):
    out = tmp_path / "m.onnx"
    out.write_bytes(b"previous graph")

    def half_written(model, path):
        with open(path, "wb") as stream:
            stream.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(card_io.onnx, "save", half_written)
    with pytest.raises(OSError, match="disk full"):
        card_io.save_onnx_atomic(tiny_pose(), out)
    assert out.read_bytes() == b"previous graph"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
