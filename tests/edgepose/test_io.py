import json
import os

import numpy as np
import pytest

from edgepose.errors import InputError
from edgepose.io import (SCRATCH_PREFIX, atomic_path, check_image_output, check_output_path,
                         parse_boxes, read_boxes_json, read_image, refuse_overwriting_inputs,
                         scratch_folder, write_all_atomic, write_image_atomic, write_json_atomic)


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


# --- refusing outputs that would lose or misplace an input (issue 21) ---

def _hash_tree(folder):
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("make_output, message", [
    (lambda d: d / "model.onnx", "is the input model"),                 # the same path
    (lambda d: d / "." / "model.onnx", "is the input model"),           # another spelling
    (lambda d: (d / "link.json").symlink_to(d / "model.onnx") or d / "link.json",
     "is the input model"),                                             # a symlink to it
    (lambda d: os.link(d / "model.onnx", d / "hard.json") or d / "hard.json",
     "is the input model"),                                             # same inode
    (lambda d: d / "images" / "a.png", "input folder"),                 # an image of --images
])
def test_refuse_overwriting_inputs(tmp_path, make_output, message):
    (tmp_path / "model.onnx").write_bytes(b"weights")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"png")
    output = make_output(tmp_path)
    before = _hash_tree(tmp_path)
    with pytest.raises(InputError, match=message):
        refuse_overwriting_inputs({"json": output},
                                  {"model": tmp_path / "model.onnx",
                                   "images": tmp_path / "images"})
    assert _hash_tree(tmp_path) == before


def test_refuse_two_outputs_on_one_path(tmp_path):
    with pytest.raises(InputError, match="json and draw are both"):
        refuse_overwriting_inputs({"draw": tmp_path / "x.png", "json": tmp_path / "x.png"}, {})


def test_outputs_elsewhere_pass(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"weights")
    (tmp_path / "old.json").write_text("{}")   # an old result is replaced, not an input
    refuse_overwriting_inputs({"json": tmp_path / "old.json", "draw": tmp_path / "new.png"},
                              {"model": tmp_path / "model.onnx", "boxes": None})


@pytest.mark.parametrize("path, message", [
    ("", "is empty"),                       # empty path
    (".", "is a folder"),                   # an existing folder
    ("missing/out.json", "does not exist"),  # no such folder
    ("/proc/out.json", "cannot write"),     # a folder nothing can be written in, even as root
])
def test_check_output_path_refuses(tmp_path, monkeypatch, path, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=message):
        check_output_path(path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["out.xyz", "out"])  # unknown extension; none at all
def test_check_image_output_needs_a_known_extension(tmp_path, name):
    with pytest.raises(InputError, match="OpenCV cannot write"):
        check_image_output(tmp_path / name)


def test_json_with_nan_is_refused_and_nothing_written(tmp_path):
    with pytest.raises(InputError, match="non-finite"):
        write_json_atomic(tmp_path / "out.json", {"score": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_write_all_atomic_changes_nothing_when_one_file_fails(tmp_path):
    (tmp_path / "a.json").write_text("old")
    with pytest.raises(InputError, match="does not exist"):
        write_all_atomic([(tmp_path / "a.json", b"new"), (tmp_path / "no" / "b.png", b"x")])
    assert (tmp_path / "a.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    write_all_atomic([(tmp_path / "a.json", b"new"), (tmp_path / "b.png", b"x")])
    assert (tmp_path / "a.json").read_text() == "new" and (tmp_path / "b.png").read_text() == "x"


def _dead_pid():
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_scratch_of_dead_writers_is_removed_and_live_kept(tmp_path):
    dead = _dead_pid()
    (tmp_path / f"{SCRATCH_PREFIX}{dead}.out.json.abc.tmp").write_text("")
    (tmp_path / f"{SCRATCH_PREFIX}{dead}.calib.xyz").mkdir()
    (tmp_path / f"{SCRATCH_PREFIX}{dead}.calib.xyz" / "candidate.onnx").write_bytes(b"4MB")
    live = tmp_path / f"{SCRATCH_PREFIX}{os.getpid()}.other.json.def.tmp"
    live.write_text("")
    write_json_atomic(tmp_path / "out.json", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.json", live.name])


def test_scratch_folder_lives_beside_the_output_and_goes_away(tmp_path):
    with scratch_folder(tmp_path / "model.int8.onnx", "calib") as folder:
        assert folder.parent == tmp_path and folder.name.startswith(SCRATCH_PREFIX)
        (folder / "candidate.onnx").write_bytes(b"x")
    assert list(tmp_path.iterdir()) == []
