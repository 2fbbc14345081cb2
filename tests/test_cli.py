"""The `edgepose` command end to end, and its one-line errors for bad input."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from edgepose.cli import RANDOM_WEIGHTS_BANNER, main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def image_path(tmp_path):
    image = np.random.default_rng(3).integers(0, 255, (200, 260, 3), dtype=np.uint8)
    path = tmp_path / "frame.jpg"
    cv2.imwrite(str(path), image)
    return path


def test_infer_writes_coco_json_and_a_drawing(exported_hrnet, image_path, tmp_path):
    out_json, out_png = tmp_path / "poses.json", tmp_path / "poses.png"
    result = subprocess.run(
        [sys.executable, "-m", "edgepose", "infer", "--model", str(exported_hrnet),
         "--image", str(image_path), "--boxes", "10,10,100,150;120,20,80,160,0.5",
         "--json", str(out_json), "--draw", str(out_png), "--refine", "dark", "--flip"],
        cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "2 person(s)" in result.stdout and RANDOM_WEIGHTS_BANNER in result.stdout
    payload = json.loads(out_json.read_text())
    assert payload["warnings"] == [RANDOM_WEIGHTS_BANNER]
    results = payload["results"]
    assert len(results) == 2 and len(results[0]["keypoints"]) == 51
    assert results[1]["bbox"] == [120, 20, 80, 160]
    drawing = cv2.imread(str(out_png))
    assert drawing.shape == (200, 260, 3)
    assert not np.array_equal(drawing, cv2.imread(str(image_path)))


def test_boxes_json_and_whole_image(exported_hrnet, image_path, tmp_path, capsys):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"bbox": [5, 5, 50, 90], "score": 0.7}]))
    assert main(["infer", "--model", str(exported_hrnet), "--image", str(image_path),
                 "--boxes-json", str(boxes)]) == 0
    assert "1 person(s)" in capsys.readouterr().out
    out_json = tmp_path / "whole.json"
    assert main(["infer", "--model", str(exported_hrnet), "--image", str(image_path),
                 "--json", str(out_json)]) == 0
    captured = capsys.readouterr()
    assert "1 person(s)" in captured.out
    # Without boxes a top-down model sees one person in the whole frame: it says so.
    assert "no person boxes" in captured.err
    assert any("no person boxes" in w for w in json.loads(out_json.read_text())["warnings"])


def _corrupt_onnx(tmp_path, exported_hrnet):
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(exported_hrnet.read_bytes()[:5000])
    return path


def _onnx_without_card(tmp_path, exported_hrnet):
    model = onnx.load(str(exported_hrnet))
    del model.metadata_props[:]
    path = tmp_path / "nocard.onnx"
    onnx.save(model, str(path))
    return path


def _other_checkpoint(tmp_path, exported_hrnet):
    import torch

    path = tmp_path / "other.pth"
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)).state_dict(), path)
    return path


def _not_an_image(tmp_path, exported_hrnet):
    path = tmp_path / "notes.png"
    path.write_text("not an image")
    return path


@pytest.mark.parametrize("make_args, message", [
    (lambda t, m, i: ["infer", "--model", str(m), "--image", str(t / "missing.jpg")],
     "does not exist"),                                                    # missing image
    (lambda t, m, i: ["infer", "--model", str(m), "--image", str(_not_an_image(t, m))],
     "could not be decoded"),                                              # unreadable image
    (lambda t, m, i: ["infer", "--model", str(_corrupt_onnx(t, m)), "--image", str(i)],
     "not a loadable ONNX model"),                                         # truncated ONNX file
    (lambda t, m, i: ["infer", "--model", str(_onnx_without_card(t, m)), "--image", str(i)],
     "carries no edgepose model card"),                                    # ONNX from elsewhere
    (lambda t, m, i: ["infer", "--model", str(m), "--image", str(i), "--boxes", "500,500,20,20"],
     "box 0"),                                                             # box outside the image
    (lambda t, m, i: ["infer", "--model", str(m), "--image", str(i), "--boxes", "10,10,0,20"],
     "box 0"),                                                             # zero-area box
    (lambda t, m, i: ["infer", "--model", str(m), "--image", str(i), "--boxes", "1,2,3"],
     "expected 'x,y,w,h'"),                                                # malformed box
    (lambda t, m, i: ["infer", "--model", str(t / "m.xyz"), "--image", str(i)],
     "cannot tell the backend"),                                           # unknown model suffix
    (lambda t, m, i: ["export", "hrnet", "--variant", "w32_256x192", "--out", str(t / "x.onnx"),
                      "--checkpoint", str(_other_checkpoint(t, m))],
     "not an HRNet checkpoint"),                                           # checkpoint of another model
    (lambda t, m, i: ["export", "hrnet", "--variant", "w32_256x192", "--out", str(t / "x.onnx")],
     "--random-init"),                                                     # no checkpoint, no opt-in
    (lambda t, m, i: ["export", "hrnet", "--variant", "w32_250x192", "--random-init",
                      "--out", str(t / "x.onnx")], "multiple of 32"),      # size not a multiple of 32
])
def test_bad_input_is_one_clear_line(tmp_path, exported_hrnet, image_path, capsys, make_args,
                                     message):
    code = main(make_args(tmp_path, exported_hrnet, image_path))
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert err.startswith("edgepose: error:") and message in err
    assert len(err.splitlines()) == 1, err
    assert not (tmp_path / "x.onnx").exists()


def test_help_explains_every_option():
    import argparse

    from edgepose.cli import build_parser

    parser = build_parser()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(verbs.choices) >= {"export", "infer"}
    for verb, subparser in verbs.choices.items():
        for action in subparser._actions:
            assert action.help, f"edgepose {verb}: {action.dest} has no help text"
    result = subprocess.run([sys.executable, "-m", "edgepose", "infer", "--help"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0 and "--boxes-json" in result.stdout


def test_eval_prints_the_ap_table_and_writes_json(exported_hrnet, tmp_path, capsys):
    from export.training.synthetic import SyntheticConfig, write_coco_dataset

    annotations = write_coco_dataset(tmp_path / "val", 3, SyntheticConfig(seed=9), workers=1,
                                     progress=False)
    out = tmp_path / "ap.json"
    assert main(["eval", "--model", str(exported_hrnet), "--annotations", str(annotations),
                 "--images", str(tmp_path / "val" / "images"), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "AP50" in printed and "onnxruntime" in printed and RANDOM_WEIGHTS_BANNER in printed
    assert "refine shift, flip test off, boxes: ground truth" in printed
    assert main(["eval", "--model", str(exported_hrnet), "--annotations", str(annotations),
                 "--images", str(tmp_path / "val" / "images"), "--refine", "dark",
                 "--flip"]) == 0
    assert "refine dark, flip test on" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert 0.0 <= report["metrics"]["AP"] <= 1.0 and report["images"] == 3


@pytest.mark.parametrize("extra, message", [
    (["--batch", "8:4:2"], "batch"),            # min > max: refused before TensorRT is needed
    (["--workspace", "lots"], "lots"),           # unparseable size
    ([], "edgepose[trt]"),                      # TensorRT absent here: names the extra
])
def test_build_errors_are_one_line(exported_hrnet, tmp_path, capsys, extra, message):
    if not extra:
        from edgepose import _optional
        from edgepose.errors import MissingDependencyError

        try:
            _optional.tensorrt("tensorrt")
        except MissingDependencyError:
            pass
        else:
            pytest.skip("TensorRT is installed here, so the build would run")
    code = main(["build", str(exported_hrnet), "--out", str(tmp_path / "m.engine"), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("edgepose: error:") and message in err
    assert len(err.splitlines()) == 1
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.fixture(scope="module")
def exported_openpose(tmp_path_factory):
    """A random-init, 1/8-width OpenPose COCO-18 at 96x128 exported through the CLI."""
    path = tmp_path_factory.mktemp("openpose") / "openpose_coco18_d8.onnx"
    assert main(["export", "openpose", "--variant", "coco18_d8", "--input-size", "96x128",
                 "--random-init", "--out", str(path)]) == 0
    return path


def test_infer_runs_a_bottom_up_model_on_the_whole_frame(exported_openpose, image_path, tmp_path,
                                                         capsys):
    out_png = tmp_path / "bottom_up.png"
    assert main(["infer", "--model", str(exported_openpose), "--image", str(image_path),
                 "--preset", "cmu", "--draw", str(out_png)]) == 0
    assert "person(s)" in capsys.readouterr().out
    assert cv2.imread(str(out_png)).shape == (200, 260, 3)


@pytest.mark.parametrize("extra, message", [
    (["--boxes", "1,1,20,20"], "--boxes"),   # bottom-up models find people themselves
    (["--flip"], "--flip"),                  # flip test is a top-down decoding option
])
def test_top_down_options_are_refused_for_bottom_up(exported_openpose, image_path, capsys,
                                                    extra, message):
    assert main(["infer", "--model", str(exported_openpose), "--image", str(image_path),
                 *extra]) == 2
    assert message in capsys.readouterr().err


def test_preset_is_refused_for_top_down(exported_hrnet, image_path, capsys):
    assert main(["infer", "--model", str(exported_hrnet), "--image", str(image_path),
                 "--preset", "cmu"]) == 2
    assert "bottom-up" in capsys.readouterr().err


@pytest.fixture(scope="module")
def exported_cpm(tmp_path_factory):
    """A random-init, 1/8-width CPM (center-map variant, 368x368) exported through the CLI."""
    path = tmp_path_factory.mktemp("cpm") / "cpm_centermap_d8.onnx"
    assert main(["export", "cpm", "--variant", "centermap_d8", "--random-init",
                 "--out", str(path)]) == 0
    return path


def test_infer_runs_cpm_on_one_person_per_box(exported_cpm, image_path, tmp_path, capsys):
    out_json, out_png = tmp_path / "cpm.json", tmp_path / "cpm.png"
    assert main(["infer", "--model", str(exported_cpm), "--image", str(image_path),
                 "--boxes", "20,20,80,150;120,30,60,140", "--json", str(out_json),
                 "--draw", str(out_png)]) == 0
    payload = json.loads(out_json.read_text())
    results = payload["results"] if isinstance(payload, dict) else payload
    assert len(results) == 2
    assert all(len(r["keypoints"]) == 14 * 3 for r in results)  # mpii_cpm14, background dropped
    assert cv2.imread(str(out_png)).shape == (200, 260, 3)
    assert main(["infer", "--model", str(exported_cpm), "--image", str(image_path),
                 "--refine", "dark"]) == 2
    assert "refine" in capsys.readouterr().err


def test_a_bottom_up_model_streams_with_track_ids(exported_openpose, tmp_path):
    # COCO-18 has no OKS constants: the tracker follows boxes only, and still runs.
    from tests.edgepose.test_sources import _video

    clip = _video(tmp_path / "clip.avi", frames=3, size=(128, 96))
    lines = tmp_path / "poses.jsonl"
    assert main(["infer", "--model", str(exported_openpose), "--source", str(clip),
                 "--jsonl", str(lines)]) == 0
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [r["frame"] for r in records] == [0, 1, 2]
    assert all(r["keypoint_set"] == "coco18" for r in records)
    ids = [p["track_id"] for r in records for p in r["people"]]
    assert all(i is None or isinstance(i, int) for i in ids)
