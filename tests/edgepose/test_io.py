import json

import cv2
import numpy as np
import pytest

from edgepose.errors import InputError
from edgepose.io import (atomic_path, parse_boxes, read_boxes_json, read_image, write_image_atomic,
                         write_json_atomic)


def test_atomic_path_leaves_the_destination_untouched_on_error(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("half-written")
            raise RuntimeError("export crashed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_atomic_path_replaces_on_success(tmp_path):
    target = tmp_path / "out.json"
    write_json_atomic(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_atomic_writes_get_ordinary_permissions(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        target = write_json_atomic(tmp_path / "out.json", {})
    finally:
        os.umask(mask)
    # A temp-file-and-rename write must not leave the file private to its owner.
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_atomic_path_needs_an_existing_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        write_json_atomic(tmp_path / "missing" / "out.json", {})


def test_image_round_trip(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    write_image_atomic(tmp_path / "x.png", image)
    assert np.array_equal(read_image(tmp_path / "x.png"), image)


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),                 # missing file
    (b"", "could not be decoded"),            # empty file
    (b"not an image at all", "could not be decoded"),  # text named .png
])
def test_bad_images(tmp_path, content, message):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_image(path)


def test_parse_boxes():
    boxes, scores = parse_boxes("10,20,30,40; 1,2,3,4,0.5")
    assert boxes.tolist() == [[10, 20, 30, 40], [1, 2, 3, 4]]
    assert scores.tolist() == [1.0, 0.5]


@pytest.mark.parametrize("text", ["10,20,30", "a,b,c,d", "", ";;"])
def test_parse_boxes_refuses(text):
    with pytest.raises(InputError):
        parse_boxes(text)


def test_read_boxes_json_both_forms(tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text("[[1, 2, 3, 4]]")
    coco = tmp_path / "coco.json"
    coco.write_text(json.dumps([{"bbox": [5, 6, 7, 8], "score": 0.9, "image_id": 1}]))
    assert read_boxes_json(plain)[0].tolist() == [[1, 2, 3, 4]]
    boxes, scores = read_boxes_json(coco)
    assert boxes.tolist() == [[5, 6, 7, 8]] and scores.tolist() == pytest.approx([0.9])


@pytest.mark.parametrize("content", ['{"bbox": [1,2,3,4]}', "[[1,2,3]]", "[{\"box\": 1}]", "nope"])
def test_read_boxes_json_refuses(tmp_path, content):
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(InputError):
        read_boxes_json(path)
