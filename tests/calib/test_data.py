"""Calibration sources: the runtime's preprocessing, sampling, hold-out and bad input."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from calib.data import (MAX_HOLDOUT, CalibrationData, Samples, load_calibration_data,
                        model_inputs)
from edgepose.card import DecoderSpec, InputSpec, ModelCard, OutputSpec
from edgepose.errors import InputError, ModelFileError
from edgepose.io import read_image
from edgepose.pipeline import TopDownPipeline
from tests.calib.tiny import save, tiny_pose, topdown_card, write_images


class RecordingRunner:
    """Stands in for a backend: records every feed, returns zero maps of the right shape."""

    def __init__(self, card: ModelCard, outputs: dict[str, tuple[int, int, int]]) -> None:
        self.card = card
        self.max_batch = None
        self.outputs_shape = outputs
        self.feeds: list[np.ndarray] = []

    def infer(self, feeds):
        tensor = feeds[self.card.input.name]
        self.feeds.append(np.array(tensor, copy=True))
        return {name: np.zeros((tensor.shape[0], *shape), np.float32)
                for name, shape in self.outputs_shape.items()}


def _fed(runner: RecordingRunner) -> np.ndarray:
    return np.concatenate(runner.feeds)


@pytest.fixture()
def card() -> ModelCard:
    return topdown_card(64, 48, stride=4)


@pytest.mark.parametrize("color, layout", [("RGB", "NCHW"), ("BGR", "NHWC")])
def test_folder_inputs_are_exactly_what_the_topdown_pipeline_feeds(tmp_path, color, layout):
    base = topdown_card(64, 48, stride=4)
    card = base.with_updates(input=InputSpec(name="input", height=64, width=48, color=color,
                                             layout=layout, mean=(100.0, 110.0, 120.0),
                                             std=(50.0, 60.0, 70.0), pad_value=17))
    paths = write_images(tmp_path / "images", 3, size=(90, 70))
    runner = RecordingRunner(card, {"heatmaps": (17, 16, 12)})
    pipeline = TopDownPipeline(runner)
    for path in paths:
        pipeline(read_image(path))              # no boxes: the whole image is one person
    data = load_calibration_data(tmp_path / "images", card, samples=10, holdout=0,
                                 progress=False)
    order = [p.name for p in paths]
    fed = _fed(runner)[[order.index(o) for o in data.calibration.origins]]
    np.testing.assert_array_equal(data.calibration.inputs, fed)


def test_coco_crops_are_exactly_what_the_topdown_pipeline_feeds(tmp_path, card):
    paths = write_images(tmp_path / "images", 2, size=(120, 100))
    boxes = {0: [[10, 5, 40, 80], [50, 20, 45, 95]], 1: [[-10, 30, 60, 200]]}   # one clipped
    dataset = {
        "images": [{"id": i + 1, "file_name": p.name, "width": 100, "height": 120}
                   for i, p in enumerate(paths)],
        "annotations": [{"id": 10 * (i + 1) + k, "image_id": i + 1, "category_id": 1,
                         "bbox": box, "iscrowd": 0, "area": box[2] * box[3]}
                        for i, image_boxes in boxes.items() for k, box in enumerate(image_boxes)]
        + [{"id": 99, "image_id": 1, "category_id": 1, "bbox": [0, 0, 50, 50], "iscrowd": 1,
            "area": 2500}],
        "categories": [{"id": 1, "name": "person"}],
    }
    annotations = tmp_path / "ann.json"
    annotations.write_text(json.dumps(dataset))
    data = load_calibration_data(tmp_path / "images", card, annotations=annotations,
                                 samples=10, holdout=0, progress=False)
    assert sorted(data.calibration.origins) == ["0000.png#10", "0000.png#11", "0001.png#20"]
    runner = RecordingRunner(card, {"heatmaps": (17, 16, 12)})
    pipeline = TopDownPipeline(runner)
    expected = {}
    for index, path in enumerate(paths):
        image = read_image(path)
        clipped = []
        for x, y, w, h in boxes[index]:
            x1, y1 = max(x, 0), max(y, 0)
            x2, y2 = min(x + w, image.shape[1]), min(y + h, image.shape[0])
            clipped.append([x1, y1, x2 - x1, y2 - y1])
        runner.feeds.clear()
        pipeline(image, np.array(clipped, np.float32))
        for k, tensor in enumerate(_fed(runner)):
            expected[f"{path.name}#{10 * (index + 1) + k}"] = tensor
    for origin, tensor in zip(data.calibration.origins, data.calibration.inputs):
        np.testing.assert_array_equal(tensor, expected[origin])
    assert data.kind == "coco" and data.calibration.centers.shape == (3, 2)


def test_bottom_up_inputs_are_what_the_bottom_up_pipeline_feeds(tmp_path):
    pipeline_module = pytest.importorskip("edgepose.pipeline")
    BottomUpPipeline = getattr(pipeline_module, "BottomUpPipeline", None)
    from edgepose.keypoints import KEYPOINT_SETS

    if BottomUpPipeline is None or "coco18" not in KEYPOINT_SETS:
        pytest.skip("edgepose has no BottomUpPipeline / coco18 keypoint set yet")
    card = ModelCard(
        family="openpose", variant="tiny", paradigm="bottom-up", keypoints="coco18",
        input=InputSpec(name="input", height=64, width=80, mean=(128.0,) * 3,
                        std=(256.0,) * 3, pad_value=128),
        outputs=(OutputSpec("pafs", "pafs", 8), OutputSpec("heatmaps", "heatmaps", 8)),
        decoder=DecoderSpec(name="paf"))
    paths = write_images(tmp_path / "frames", 2, size=(90, 160))
    runner = RecordingRunner(card, {"pafs": (38, 8, 10), "heatmaps": (19, 8, 10)})
    for path in paths:
        try:
            BottomUpPipeline(runner)(read_image(path))
        except Exception:  # noqa: BLE001 - decoding zero maps is not what is tested here
            pass
    data = load_calibration_data(tmp_path / "frames", card, samples=5, holdout=0,
                                 progress=False)
    order = [p.name for p in paths]
    fed = _fed(runner)[[order.index(o) for o in data.calibration.origins]]
    np.testing.assert_array_equal(data.calibration.inputs, fed)
    assert data.calibration.centers is None


def test_video_takes_every_nth_frame(tmp_path, card):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write MJPG AVI files")
    for index in range(30):
        frame = np.full((48, 64, 3), index * 8, np.uint8)
        writer.write(frame)
    writer.release()
    data = load_calibration_data(path, card, samples=4, every=5, holdout=0.2, progress=False)
    origins = sorted(data.calibration.origins + data.holdout.origins,
                     key=lambda o: int(o.split()[1]))
    assert origins == [f"frame {i}" for i in range(0, 30, 5)][:len(origins)]
    assert len(data.calibration) == 4 and len(data.holdout) == 1
    assert data.kind == "video"
    default = load_calibration_data(path, card, samples=3, holdout=0, progress=False)
    frames = [int(o.split()[1]) for o in default.calibration.origins]
    assert frames == [0, 10, 20]                 # spread over the whole clip


def test_unopenable_video_is_refused(tmp_path, card):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"not a video")
    with pytest.raises(InputError, match="cannot be opened|yielded no frames"):
        load_calibration_data(path, card, samples=4, progress=False)


def test_samples_are_drawn_by_seed_and_held_out_apart(tmp_path, card):
    write_images(tmp_path / "images", 20, size=(60, 50))
    first = load_calibration_data(tmp_path / "images", card, samples=8, seed=1, progress=False)
    again = load_calibration_data(tmp_path / "images", card, samples=8, seed=1, progress=False)
    other = load_calibration_data(tmp_path / "images", card, samples=8, seed=2, progress=False)
    assert first.calibration.fingerprint == again.calibration.fingerprint
    assert first.calibration.fingerprint != other.calibration.fingerprint
    assert len(first.calibration) == 8 and len(first.holdout) == 4          # 20 % of 20
    assert not set(first.calibration.origins) & set(first.holdout.origins)
    assert first.summary()["fingerprint"] == first.calibration.fingerprint


def test_holdout_is_capped(tmp_path, card, monkeypatch):
    monkeypatch.setattr("calib.data.MAX_HOLDOUT", 3)
    write_images(tmp_path / "images", 30, size=(40, 40))
    data = load_calibration_data(tmp_path / "images", card, samples=5, progress=False)
    assert len(data.holdout) == 3 and MAX_HOLDOUT == 200


# --- bad input ------------------------------------------------------------------------------------


def test_empty_folder_is_refused(tmp_path, card):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(InputError, match="holds no images"):
        load_calibration_data(tmp_path / "empty", card, progress=False)


def test_fewer_images_than_samples_warns_and_uses_all(tmp_path, card, caplog):
    write_images(tmp_path / "images", 6, size=(40, 40))
    with caplog.at_level(logging.WARNING, logger="calib.data"):
        data = load_calibration_data(tmp_path / "images", card, samples=512, progress=False)
    assert len(data.calibration) == 5 and len(data.holdout) == 1
    assert "asked for 512 calibration samples but only 5" in caplog.text


def test_unreadable_images_are_skipped_and_counted(tmp_path, card, caplog):
    write_images(tmp_path / "images", 6, size=(40, 40))
    for name in ("broken1.jpg", "broken2.png"):
        (tmp_path / "images" / name).write_bytes(b"\x00garbage")
    with caplog.at_level(logging.WARNING, logger="calib.data"):
        data = load_calibration_data(tmp_path / "images", card, samples=100, holdout=0,
                                     progress=False)
    assert sorted(data.skipped) == ["broken1.jpg", "broken2.png"]
    assert len(data.calibration) == 6 and data.summary()["skipped"] == 2
    assert "skipped 2 unreadable image(s)" in caplog.text


def test_a_folder_of_only_unreadable_images_is_refused(tmp_path, card):
    (tmp_path / "images").mkdir()
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / "images" / name).write_bytes(b"junk")
    with pytest.raises(InputError, match="could be read"):
        load_calibration_data(tmp_path / "images", card, holdout=0, progress=False)


@pytest.mark.parametrize("kwargs, match", [
    ({"samples": 0}, "samples must be a positive"),
    ({"samples": 2.5}, "samples must be a positive"),
    ({"holdout": 1.0}, "holdout must be a fraction"),
    ({"every": 3}, "every .* applies to videos only"),
])
def test_bad_arguments_are_refused(tmp_path, card, kwargs, match):
    write_images(tmp_path / "images", 2, size=(40, 40))
    with pytest.raises(InputError, match=match):
        load_calibration_data(tmp_path / "images", card, progress=False, **kwargs)


@pytest.mark.parametrize("content, match", [
    ("{not json", "not valid JSON"),
    ('{"images": []}', "not a COCO file"),
    ('{"images": [], "annotations": [], "categories": []}', "no image with a person box"),
])
def test_bad_annotation_files_are_refused(tmp_path, card, content, match):
    write_images(tmp_path / "images", 2, size=(40, 40))
    (tmp_path / "ann.json").write_text(content)
    with pytest.raises(InputError, match=match):
        load_calibration_data(tmp_path / "images", card, annotations=tmp_path / "ann.json",
                              progress=False)


def test_missing_source_and_non_video_file_are_refused(tmp_path, card):
    with pytest.raises(InputError, match="does not exist"):
        load_calibration_data(tmp_path / "nowhere", card, progress=False)
    (tmp_path / "list.txt").write_text("x")
    with pytest.raises(InputError, match="not a video"):
        load_calibration_data(tmp_path / "list.txt", card, progress=False)


def test_a_graph_without_a_card_is_refused_with_a_fix(tmp_path):
    from calib.calibrate import calibrate

    model = tiny_pose(0)
    del model.metadata_props[:]
    path = save(model, tmp_path / "nocard.onnx")
    write_images(tmp_path / "images", 4, size=(40, 40))
    with pytest.raises(ModelFileError, match="carries no edgepose model card.*edgepose export"):
        calibrate(path, tmp_path / "out.onnx", data=tmp_path / "images", progress=False)
    assert not (tmp_path / "out.onnx").exists()


def test_samples_validate_their_shapes():
    with pytest.raises(InputError, match="origins"):
        Samples(np.zeros((2, 3, 4, 4)), None, None, ["a"])
    with pytest.raises(InputError, match="centers"):
        Samples(np.zeros((2, 3, 4, 4)), np.zeros((3, 2)), np.zeros((2, 2)), ["a", "b"])


def test_model_inputs_refuses_boxes_for_bottom_up():
    card = ModelCard(
        family="openpose", variant="tiny", paradigm="bottom-up", keypoints="coco17",
        input=InputSpec(name="input", height=32, width=32),
        outputs=(OutputSpec("pafs", "pafs", 8), OutputSpec("heatmaps", "heatmaps", 8)),
        decoder=DecoderSpec(name="paf"))
    with pytest.raises(InputError, match="full frames"):
        model_inputs(np.zeros((40, 40, 3), np.uint8), card, np.array([[0, 0, 10, 10]]))


def test_calibration_data_is_a_plain_record(tmp_path, card):
    write_images(tmp_path / "images", 3, size=(40, 40))
    data = load_calibration_data(Path(tmp_path / "images"), card, samples=2, progress=False)
    assert isinstance(data, CalibrationData) and data.images_dir == tmp_path / "images"
    assert data.calibration.inputs.dtype == np.float32
    assert data.calibration.inputs.shape[1:] == (3, 64, 48)
