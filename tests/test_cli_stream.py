"""`edgepose infer --source`: folders and videos into COCO results and JSON lines, and
the refusals that keep the one-image and the stream forms apart."""

import json

import cv2
import numpy as np
import pytest

from edgepose.cli import main
from tests.edgepose.test_sources import _video


@pytest.fixture
def folder(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("b.jpg", "a.jpg"):
        cv2.imwrite(str(images / name), rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
    return images


def test_a_folder_becomes_coco_results_with_ids_in_file_order(exported_hrnet, folder, tmp_path):
    out = tmp_path / "results.json"
    assert main(["infer", "--model", str(exported_hrnet), "--source", str(folder),
                 "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["images"] == [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}]
    assert [r["image_id"] for r in payload["results"]] == [1, 2]   # one whole-frame person each
    assert payload["results"][0]["bbox"] == [0.0, 0.0, 128.0, 96.0]


def test_a_video_becomes_json_lines_and_an_annotated_video(exported_hrnet, tmp_path):
    clip = _video(tmp_path / "clip.avi", frames=4, size=(64, 48))
    lines, video = tmp_path / "poses.jsonl", tmp_path / "poses.avi"
    assert main(["infer", "--model", str(exported_hrnet), "--source", str(clip),
                 "--jsonl", str(lines), "--video-out", str(video), "--no-track"]) == 0
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert [r["frame"] for r in records] == [0, 1, 2, 3]
    assert [r["timestamp"] for r in records] == pytest.approx([0.0, 0.1, 0.2, 0.3])
    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    capture.release()


@pytest.mark.parametrize("extra, message", [
    (["--image", "IMAGE", "--jsonl", "OUT"], "apply to --source"),
    (["--source", "FOLDER"], "somewhere to put the poses"),
    (["--source", "FOLDER", "--jsonl", "OUT", "--det-interval", "3"], "needs --detector"),
    (["--source", "FOLDER", "--jsonl", "OUT", "--boxes", "1,2,3,4"], "applies to one --image"),
    (["--source", "97", "--jsonl", "OUT"], "camera 97 could not be opened"),
])
def test_refusals(exported_hrnet, folder, tmp_path, capsys, extra, message):
    image = next(folder.iterdir())
    argv = [a.replace("IMAGE", str(image)).replace("FOLDER", str(folder))
            .replace("OUT", str(tmp_path / "out.jsonl")) for a in extra]
    assert main(["infer", "--model", str(exported_hrnet), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()
