"""What every verb refuses, before any work: one row per case, with its reason.

Each row runs the real command in a folder of inputs, then checks the one-line error,
that every input is byte-for-byte unchanged and that no file appeared or vanished.
"""

import hashlib
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepose.cli import main


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.fixture
def work(tmp_path, exported_hrnet, monkeypatch):
    """A folder of inputs: model, image, boxes, a one-image COCO set, a checkpoint."""
    (tmp_path / "model.onnx").write_bytes(exported_hrnet.read_bytes())
    image = np.random.default_rng(5).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "image.jpg"), image)
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), image)
    (tmp_path / "boxes.json").write_text(json.dumps([[10, 10, 60, 90]]))
    (tmp_path / "ann.json").write_text(json.dumps(_coco(bbox=[10, 10, 60, 90])))
    (tmp_path / "nan_ann.json").write_text(json.dumps(_coco(bbox=[float("nan"), 10, 60, 90])))
    (tmp_path / "two_images.json").write_text(json.dumps([
        {"image_id": 1, "category_id": 1, "bbox": [10, 10, 60, 90], "score": 0.9},
        {"image_id": 2, "category_id": 1, "bbox": [20, 10, 60, 90], "score": 0.8}]))
    (tmp_path / "nan_score.json").write_text(
        '[{"bbox": [10, 10, 60, 90], "score": NaN}]')
    (tmp_path / "nan_dets.json").write_text(
        '[{"image_id": 1, "category_id": 1, "bbox": [10, 10, 60, 90], "score": NaN}]')
    (tmp_path / "checkpoint.pth").write_bytes(b"checkpoint bytes")
    # A training record saying the weights were trained at another size than asked for.
    (tmp_path / "checkpoint.json").write_text(json.dumps({"config": {"variant": "w10_128x96"}}))
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "a_folder" / "keep.txt").write_text("keep")
    _nan_checkpoint(tmp_path / "nan.pth")
    (tmp_path / "link.json").symlink_to(tmp_path / "model.onnx")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _nan_checkpoint(path: Path) -> None:
    import torch

    from export.models.hrnet import build_hrnet, parse_hrnet_variant

    state = build_hrnet(parse_hrnet_variant("w8_128x96"), 17).state_dict()
    state["final_layer.weight"] = torch.full_like(state["final_layer.weight"], float("nan"))
    torch.save(state, path)


def _results(path: Path) -> list:
    # Random-weight models wrap their results beside a warning.
    return json.loads(path.read_text())["results"]


def _coco(bbox):
    keypoints = [30, 30, 2] * 17
    return {"images": [{"id": 1, "file_name": "a.png", "width": 160, "height": 120}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": bbox,
                             "area": 5400, "num_keypoints": 17, "iscrowd": 0,
                             "keypoints": keypoints}],
            "categories": [{"id": 1, "name": "person"}]}


INFER = ["infer", "--model", "model.onnx", "--image", "image.jpg"]
SOURCE = ["infer", "--model", "model.onnx", "--source"]
EVAL = ["eval", "--model", "model.onnx", "--annotations", "ann.json", "--images", "images"]
PROFILE = ["profile", "model.onnx", "--warmup", "1", "--iters", "1"]
EXPORT = ["export", "hrnet", "--variant", "w8_128x96", "--checkpoint", "checkpoint.pth"]
CALIBRATE = ["calibrate", "model.onnx", "--data", "images", "--precision", "fp16"]
BUILD = ["build", "model.onnx"]

CASES = [
    # infer
    (INFER + ["--json", "model.onnx"], "is the input --model"),      # JSON over the model
    (INFER + ["--json", "image.jpg"], "is the input --image"),       # JSON over the image
    (INFER + ["--draw", "image.jpg"], "is the input --image"),       # drawing over the image
    (INFER + ["--boxes-json", "boxes.json", "--json", "boxes.json"],
     "is the input --boxes-json"),                                   # JSON over the boxes
    (INFER + ["--json", "link.json"], "is the input --model"),       # a symlink to the model
    (INFER + ["--json", "./sub/../model.onnx"], "does not exist"),   # a path through nowhere
    (INFER + ["--json", "a_folder"], "is a folder"),                 # output is a folder
    (INFER + ["--json", "missing/out.json"], "does not exist"),      # no such folder
    (INFER + ["--json", "/proc/out.json"], "cannot write"),          # unwritable folder
    (INFER + ["--draw", "out.xyz"], "OpenCV cannot write"),          # unknown drawing format
    (INFER + ["--json", "o.png", "--draw", "o.png"], "are both"),    # two outputs, one path
    (INFER + ["--boxes", "nan,10,60,90"], "accepted: finite"),       # NaN box
    (INFER + ["--boxes", "10,10,60,90,-1"], "accepted: finite"),     # negative score
    (INFER + ["--boxes", "10,10,60,90,inf"], "accepted: finite"),    # infinite score
    (INFER + ["--boxes", "0,0,1e30,1e30"], "accepted: finite"),      # absurdly large box
    (INFER + ["--boxes", "10,10,1e-30,1e-30"], "accepted: finite"),  # absurdly small box
    (INFER + ["--boxes-json", "nan_score.json"], "accepted: finite"),  # NaN score in a file
    (INFER + ["--boxes-json", "two_images.json"], "of 2 images"),    # whose image is it?
    (INFER + ["--boxes-json", "two_images.json", "--image-id", "7"],
     "no person detection of image id 7"),                           # an id not in the file
    # infer --source (streams), and its detector
    (SOURCE + ["images", "--jsonl", "model.onnx"], "is the input --model"),    # lines over model
    (SOURCE + ["image.jpg", "--video-out", "image.avi", "--json", "image.jpg"],
     "is the input --source"),                                        # results over the source
    (SOURCE + ["images", "--json", "images/a.png"], "input folder --source"),  # into the set
    (SOURCE + ["images"], "somewhere to put the poses"),             # no output at all
    (SOURCE + ["images", "--jsonl", "o.jsonl", "--video-out", "o.gif"],
     "must end in"),                                                  # a video we cannot write
    (SOURCE + ["images", "--jsonl", "o.jsonl", "--det-interval", "2"], "needs --detector"),
    (SOURCE + ["images", "--jsonl", "o.jsonl", "--max-frames", "0"], "at least 1"),
    (SOURCE + ["96", "--jsonl", "o.jsonl"], "camera 96 could not be opened"),  # no camera
    (SOURCE + ["nowhere.mp4", "--jsonl", "o.jsonl"], "does not exist"),        # no video
    (INFER + ["--detector-score", "0.5"], "need(s) --detector"),   # an override, no detector
    (INFER + ["--detector", "boxes.json"], "cannot tell the backend"),  # not a model file
    # eval
    (EVAL + ["--json", "ann.json"], "is the input --annotations"),   # JSON over annotations
    (EVAL + ["--json", "model.onnx"], "is the input --model"),       # JSON over the model
    (EVAL + ["--json", "images/a.png"], "input folder --images"),    # over an image of the set
    (["eval", "--model", "model.onnx", "--annotations", "nan_ann.json", "--images", "images"],
     "four finite numbers"),                                         # NaN ground-truth box
    (EVAL + ["--detections", "nan_dets.json"], "finite numbers, s >= 0"),  # NaN detection score
    # profile
    (PROFILE + ["--json", "model.onnx"], "is the input --model 1"),  # JSON over the model
    (PROFILE + ["--image", "image.jpg", "--plot", "image.jpg"],
     "PNG"),                                                         # plot must be a PNG
    (PROFILE + ["--image", "image.jpg", "--json", "image.jpg"],
     "is the input --image"),                                        # JSON over the frame
    (PROFILE + ["--batch", "100000"], "profile batches up to"),     # batch past memory
    # export
    (EXPORT + ["--out", "checkpoint.pth"], "is the input --checkpoint"),  # over the weights
    (EXPORT + ["--out", "checkpoint.json"],
     "is the input the training record"),                            # over the training record
    (EXPORT + ["--out", "a_folder"], "is a folder"),                 # output is a folder
    (EXPORT + ["--out", "missing/x.onnx"], "does not exist"),        # no such folder
    (EXPORT + ["--out", "x.onnx"], "was trained as HRNet w10_128x96"),  # record: other size
    (["export", "hrnet", "--variant", "w8_128x96", "--random-init", "--opset", "99",
      "--out", "x.onnx"], "opset must be an integer from 16 to 23"),  # an opset never written
    (["export", "hrnet", "--variant", "w8_128x96", "--checkpoint", "nan.pth", "--out",
      "x.onnx"], "holds NaN/inf values"),                            # diverged weights
    # calibrate
    (CALIBRATE + ["--out", "model.onnx"], "is the input model"),     # over the FP32 graph
    (CALIBRATE + ["--out", "x.onnx", "--cache", "ann.json", "--annotations", "ann.json"],
     "is the input --annotations"),                                  # cache over annotations
    (CALIBRATE + ["--out", "a_folder"], "is a folder"),              # output is a folder
    # build
    (BUILD + ["--out", "model.onnx"], "is the input onnx"),          # engine over its ONNX
    (BUILD + ["--out", "x.engine", "--timing-cache", "model.onnx"],
     "is the input onnx"),                                           # cache over the ONNX
    # triton
    (["triton", "model.onnx", "--out", "images"], "is never overwritten"),  # existing folder
    (["triton", "model.onnx", "--out", "nowhere/repo"], "does not exist"),  # no parent folder
    (["triton", "image.jpg", "--out", "repo"], "cannot serve"),      # not a model file
    (["triton", "model.onnx", "--out", "repo", "--network-backend", "tensorrt"],
     "does not run model.onnx"),                                     # backend for engines
    (["triton", "model.onnx", "--out", "repo", "--preferred-batch", "32"],
     "outside 1..16"),                                               # above the max batch
]


@pytest.mark.parametrize("argv, message", CASES,
                         ids=[f"{argv[0]}-{index}" for index, (argv, _) in enumerate(CASES)])
def test_refused_before_any_work_and_nothing_changes(work, capsys, argv, message):
    before = _snapshot(work)
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("edgepose: error:") and message in err, err
    assert len(err.splitlines()) == 1, err
    assert _snapshot(work) == before


def test_an_empty_path_is_refused_by_the_parser(work, capsys):
    before = _snapshot(work)
    with pytest.raises(SystemExit) as stop:
        main(INFER + ["--json", ""])
    assert stop.value.code == 2
    assert "--json: an empty path" in capsys.readouterr().err
    assert _snapshot(work) == before


def test_a_box_left_of_the_frame_is_a_value_not_a_flag(work, capsys):
    # "-40,…" looks like an option to argparse; a box may start left of the frame.
    assert main(INFER + ["--boxes", "-40,10,100,90", "--json", "out.json"]) == 0
    assert _results(work / "out.json")[0]["bbox"] == [-40, 10, 100, 90]


def test_a_failing_command_leaves_no_output(work, capsys, monkeypatch):
    import edgepose.api

    def broken(*args, **kwargs):
        raise edgepose.errors.InputError("drawing failed")

    monkeypatch.setattr(edgepose.api, "draw_poses", broken)
    before = _snapshot(work)
    assert main(INFER + ["--boxes", "10,10,60,90", "--json", "out.json",
                         "--draw", "out.png"]) == 2
    assert "drawing failed" in capsys.readouterr().err
    assert _snapshot(work) == before


def test_old_results_are_replaced_not_refused(work, capsys):
    # Writing over one's own earlier output is normal use; only inputs are protected.
    (work / "out.json").write_text("[]")
    assert main(INFER + ["--boxes", "10,10,60,90", "--json", "out.json"]) == 0
    assert len(_results(work / "out.json")) == 1


def test_boxes_of_one_image_are_taken_from_a_coco_detection_file(work, capsys):
    assert main(INFER + ["--boxes-json", "two_images.json", "--image-id", "2",
                         "--json", "out.json"]) == 0
    results = _results(work / "out.json")
    assert [r["bbox"] for r in results] == [[20, 10, 60, 90]]
    assert results[0]["image_id"] == 2


def test_eval_reports_ground_truth_boxes_it_could_not_crop(work, capsys):
    data = _coco(bbox=[10, 10, 60, 90])
    empty = dict(data["annotations"][0], id=2, bbox=[200, 10, 60, 90])  # wholly outside
    data["annotations"].append(empty)
    (work / "two.json").write_text(json.dumps(data))
    assert main(["eval", "--model", "model.onnx", "--annotations", "two.json", "--images",
                 "images", "--json", "ap.json"]) == 0
    assert "1 box(es) left nothing to crop" in capsys.readouterr().err
    assert json.loads((work / "ap.json").read_text())["skipped_boxes"] == 1
    assert os.path.exists(work / "ap.json")
