"""The synthetic video mode: the file, COCO validity, track ids, determinism, occlusion."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepose.errors import InputError
from export.training.synthetic import ANNOTATION_FILE, main
from export.training.synthetic import video as video_module
from export.training.synthetic.video import SyntheticVideoConfig, write_synthetic_video

CONFIG = SyntheticVideoConfig()         # the defaults are what the properties are about


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """The default video written twice, into two folders."""
    root = tmp_path_factory.mktemp("video")
    return {name: write_synthetic_video(root / name, CONFIG) for name in ("first", "second")}


@pytest.fixture(scope="module")
def data(written) -> dict:
    return json.loads(written["first"][1].read_text())


def _read_video(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"OpenCV cannot open {path}"
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def _tracks(data: dict) -> dict[int, dict[int, dict]]:
    """track id -> frame index -> annotation."""
    frame_of = {image["id"]: image["frame_index"] for image in data["images"]}
    tracks: dict[int, dict[int, dict]] = {}
    for annotation in data["annotations"]:
        frames = tracks.setdefault(annotation["track_id"], {})
        frame = frame_of[annotation["image_id"]]
        assert frame not in frames, "a track is one person: at most once per frame"
        frames[frame] = annotation
    return tracks


def test_the_video_opens_with_the_stated_frame_count_size_and_rate(written, data):
    video, _ = written["first"]
    assert video.name == "video.avi"
    capture = cv2.VideoCapture(str(video))
    fourcc = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    assert fourcc == "MJPG" and fps == pytest.approx(CONFIG.fps)
    frames = _read_video(video)
    assert len(frames) == CONFIG.frames
    assert all(frame.shape == (CONFIG.height, CONFIG.width, 3) for frame in frames)
    (entry,) = data["videos"]
    assert entry["frames"] == CONFIG.frames and entry["fps"] == CONFIG.fps
    assert (entry["width"], entry["height"]) == CONFIG.frame_size


def test_annotations_are_coco_keypoints_with_one_image_per_frame(written, data):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO

    ground_truth = COCO(str(written["first"][1]))
    assert len(ground_truth.getImgIds()) == CONFIG.frames
    assert [image["frame_index"] for image in data["images"]] == list(range(CONFIG.frames))
    for image in data["images"]:
        assert image["id"] == image["frame_index"] + 1
        assert image["file_name"] == f"frame_{image['frame_index']:06d}.jpg"
        assert (image["width"], image["height"]) == CONFIG.frame_size
    assert data["annotations"], "people are annotated"
    for annotation in data["annotations"]:
        points = np.asarray(annotation["keypoints"]).reshape(17, 3)
        assert annotation["num_keypoints"] == int(np.count_nonzero(points[:, 2] > 0))
        assert annotation["iscrowd"] == 0 and annotation["category_id"] == 1
        assert annotation["area"] > 0 and annotation["bbox"][2] > 0 and annotation["bbox"][3] > 0
        assert annotation["track_id"] in range(1, CONFIG.people + 1)
    assert set(_tracks(data)) == set(range(1, CONFIG.people + 1)), "everyone shows up"


def test_each_track_moves_at_most_a_walk_step_per_frame(data):
    # Independent of how the gait is drawn: a walker's ground point covers at most
    # walk_speed[1] / fps pixels a frame, and no body part of a walking person moves
    # faster than about three times the body (a swinging foot), so no edge of the
    # box, and not its centre, moves further; 2 pixels more for the silhouette's
    # pixel grid and the head and arms turning. Boxes cut by the frame's border are
    # left out: a clipped box jumps when a limb leaves the frame.
    bound = 3.0 * CONFIG.walk_speed[1] / CONFIG.fps + 2.0
    width, height = CONFIG.frame_size
    steps = moves = 0
    for track, frames in _tracks(data).items():
        for frame, annotation in frames.items():
            steps += 1
            before = frames.get(frame - 1)
            if before is None:
                continue
            centers = []
            for x, y, w, h in (before["bbox"], annotation["bbox"]):
                if x <= 0 or y <= 0 or x + w >= width or y + h >= height:
                    break
                centers.append(np.array([x + w / 2, y + h / 2]))
            else:
                moves += 1
                step = float(np.hypot(*(centers[1] - centers[0])))
                assert step <= bound, f"track {track} jumped {step:.1f} px into frame {frame}"
    assert moves > 0.5 * steps, "most steps are inside the frame, so the check means something"


def test_the_same_config_writes_identical_files(written):
    first, second = (written[name][1].parent for name in ("first", "second"))
    assert (first / ANNOTATION_FILE).read_bytes() == (second / ANNOTATION_FILE).read_bytes()
    assert (first / "video.avi").read_bytes() == (second / "video.avi").read_bytes()
    names = sorted(path.name for path in (first / "images").iterdir())
    assert len(names) == CONFIG.frames
    for name in names:
        assert (first / "images" / name).read_bytes() == (second / "images" / name).read_bytes()


def test_people_occlude_each_other_in_a_default_video(data):
    flags = np.concatenate([np.asarray(a["keypoints"][2::3]) for a in data["annotations"]])
    assert np.count_nonzero(flags == 1) > 0, "some labelled keypoints are covered (v=1)"
    assert np.count_nonzero(flags == 2) > np.count_nonzero(flags == 1)


def test_frame_images_match_the_video_frames(written):
    # Both are JPEG encodings of one rendered frame, so they differ by two rounds of
    # compression only; the next frame is much further away (people move, noise differs).
    video, _ = written["first"]
    for index, frame in enumerate(_read_video(video)):
        image = cv2.imread(str(video.parent / "images" / f"frame_{index:06d}.jpg"))
        assert image is not None and image.shape == frame.shape
        error = np.mean((image.astype(np.float64) - frame) ** 2)
        assert 10 * np.log10(255.0 ** 2 / max(error, 1e-12)) > 30.0, f"frame {index}"


def test_a_turning_walker_leaves_the_frame_and_comes_back(tmp_path):
    # Everyone turns back once seen leaving; over 40 s someone leaves and returns.
    config = SyntheticVideoConfig(frame_size=(160, 128), frames=400, people=3, seed=1,
                                  turn_back=1.0, occluders=(0, 0))
    _, path = write_synthetic_video(tmp_path, config)
    tracks = _tracks(json.loads(path.read_text()))
    gaps = [track for track, frames in tracks.items()
            if len(frames) < max(frames) - min(frames) + 1]
    assert gaps, "a person is missing for some frames between two appearances"


@pytest.mark.parametrize("kwargs, match", [
    ({"frame_size": (16, 256)}, "frame_size"),          # narrower than any figure
    ({"frame_size": (320.0, 256)}, "frame_size"),       # pixels are integers
    ({"frames": 0}, "frames"),                          # an empty video
    ({"fps": 0.0}, "fps"),                              # no time passes
    ({"fps": float("nan")}, "fps"),                     # not a rate
    ({"people": 0}, "people"),                          # nobody to track
    ({"people": 2.5}, "people"),                        # half a person
    ({"walk_speed": (30.0, 10.0)}, "walk_speed"),       # range upside down
    ({"walk_speed": (-5.0, 10.0)}, "walk_speed"),       # walking backwards is a heading
    ({"person_height": (0.5, 1.5)}, "person_height"),   # taller than the frame
    ({"person_height": (0.01, 0.8)}, "person_height"),  # far people under 8 pixels
    ({"turn_back": 2.0}, "turn_back"),                  # not a probability
    ({"seed": -1}, "seed"),                             # checked by the frame settings
    ({"noise": 100.0}, "noise"),                        # likewise
])
def test_bad_configs_raise_input_error(kwargs, match):
    with pytest.raises(InputError, match=match):
        SyntheticVideoConfig(**kwargs)


@pytest.mark.parametrize("options, match", [
    ({"config": object()}, "SyntheticVideoConfig"),     # not a config
    ({"layout": "coco19"}, "layout"),                   # unknown keypoint layout
    ({"image_format": "bmp"}, "image format"),          # unknown frame format
])
def test_bad_arguments_raise_input_error_and_write_nothing(tmp_path, options, match):
    options = {"config": SyntheticVideoConfig(frames=2), **options}
    with pytest.raises(InputError, match=match):
        write_synthetic_video(tmp_path / "out", **options)
    assert not (tmp_path / "out" / ANNOTATION_FILE).exists()


def test_an_opencv_that_cannot_write_the_video_is_an_input_error(tmp_path, monkeypatch):
    class ClosedWriter:
        def __init__(self, *args: object) -> None:
            pass

        def isOpened(self) -> bool:
            return False

    monkeypatch.setattr(video_module.cv2, "VideoWriter", ClosedWriter)
    with pytest.raises(InputError, match="cannot write a Motion JPEG"):
        write_synthetic_video(tmp_path, SyntheticVideoConfig(frames=2))
    assert not (tmp_path / ANNOTATION_FILE).exists() and not (tmp_path / "video.avi").exists()


def test_command_line_writes_a_video_and_refuses_image_set_options(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["--out", str(out), "--count", "2", "--video", "5", "--width", "160",
                 "--height", "128", "--layout", "coco18", "--seed", "3", "--quiet"]) == 0
    data = json.loads((out / ANNOTATION_FILE).read_text())
    assert data["videos"][0]["frames"] == 5 and len(data["images"]) == 5
    assert len(data["categories"][0]["keypoints"]) == 18
    assert {a["track_id"] for a in data["annotations"]} <= {1, 2}
    assert len(_read_video(out / "video.avi")) == 5
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "bad"), "--count", "2", "--video", "5", "--people", "1", "2"])
    assert exit_info.value.code == 2 and "--people" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "bad"), "--count", "0", "--video", "5", "--quiet"]) == 2
    assert "people" in capsys.readouterr().err
