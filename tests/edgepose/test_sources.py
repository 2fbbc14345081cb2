"""Sources: what each kind of SRC opens, frames in order, and clear errors."""

import cv2
import numpy as np
import pytest

from edgepose.errors import InputError
from edgepose.sources import gstreamer_available, open_source


def _video(path, frames=7, size=(64, 48), fps=10):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for index in range(frames):
        image = np.zeros((size[1], size[0], 3), np.uint8)
        image[:, : 8 * (index + 1)] = 255           # a bar whose width counts the frame
        writer.write(image)
    writer.release()
    return path


def _bar_width(image):
    return int((image[image.shape[0] // 2, :, 0] > 127).sum())


def test_a_video_file_gives_every_frame_in_order_with_its_clock(tmp_path):
    with open_source(_video(tmp_path / "clip.avi")) as source:
        assert (source.kind, source.live, source.total, source.fps) == ("video", False, 7, 10.0)
        frames = list(source)
    assert [f.index for f in frames] == list(range(7))
    assert [_bar_width(f.image) for f in frames] == [8 * (i + 1) for i in range(7)]
    assert [f.timestamp_s for f in frames] == pytest.approx([i / 10 for i in range(7)])


def test_a_folder_and_a_glob_give_their_images_sorted_by_name(tmp_path):
    for name, value in (("b.png", 20), ("a.jpg", 10), ("c.png", 30)):
        cv2.imwrite(str(tmp_path / name), np.full((8, 8, 3), value, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    with open_source(tmp_path) as source:
        assert source.total == 3
        assert [f.name for f in source] == ["a.jpg", "b.png", "c.png"]
    with open_source(str(tmp_path / "*.png")) as source:
        frames = list(source)
    assert [f.name for f in frames] == ["b.png", "c.png"]
    assert [int(f.image[0, 0, 0]) for f in frames] == [20, 30]


def test_one_image_is_a_one_frame_source(tmp_path):
    cv2.imwrite(str(tmp_path / "one.png"), np.full((8, 8, 3), 5, np.uint8))
    with open_source(tmp_path / "one.png") as source:
        assert [f.index for f in source] == [0]


@pytest.mark.parametrize("spec, message", [
    ("", "empty"),
    ("nowhere/clip.mp4", "does not exist"),
    ("/dev/video97", "does not exist"),
    ("96", "camera 96 could not be opened"),
])
def test_missing_sources_are_refused_in_one_line(spec, message):
    with pytest.raises(InputError, match=message) as caught:
        open_source(spec)
    assert "\n" not in str(caught.value)


def test_a_gstreamer_pipeline_without_gstreamer_says_so():
    if gstreamer_available():
        pytest.skip("this OpenCV has GStreamer: the refusal cannot be shown")
    with pytest.raises(InputError, match="GStreamer: NO"):
        open_source("videotestsrc ! videoconvert ! appsink")


def test_files_that_are_neither_images_nor_videos_are_refused(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(InputError, match="neither an image"):
        open_source(tmp_path / "model.onnx")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="holds no image"):
        open_source(empty)


class _FakeCamera:
    """A capture that produces `count` frames, one every `period` seconds, then ends."""

    def __init__(self, count, period):
        self.count, self.period, self.made, self.released = count, period, 0, False

    def read(self):
        import time

        if self.made >= self.count:
            return False, None
        time.sleep(self.period)
        self.made += 1
        return True, np.full((4, 4, 3), self.made - 1, np.uint8)

    def get(self, prop):
        return 0.0

    def release(self):
        self.released = True


def test_a_slow_consumer_of_a_live_source_sees_the_newest_frames_not_a_queue():
    import time

    from edgepose.sources import Capture

    camera = _FakeCamera(count=40, period=0.005)
    source = Capture(camera, "fake camera", live=True, kind="camera")
    seen = []
    for frame in source:
        seen.append(frame.index)
        assert int(frame.image[0, 0, 0]) == frame.index
        time.sleep(0.03)                    # six camera frames per frame consumed
    source.close()
    assert seen == sorted(set(seen))        # in order, none twice
    assert len(seen) < 20                   # frames were dropped, not queued
    assert seen[-1] >= 35                   # and the last one seen is (nearly) the newest
    assert camera.released
