"""Where frames come from: an image, a folder or glob of images, a video file, a camera
(index or V4L2 device), an RTSP/HTTP stream, or a GStreamer pipeline.

`open_source(spec)` picks the kind from the text. Files are read in order and never
drop a frame. Live sources are read on their own thread into a one-frame buffer that
keeps the newest frame, so a slow consumer sees fresh frames instead of a growing
queue of stale ones (the latency of a queue that fills is the queue's length).
"""

from __future__ import annotations

import glob as globbing
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from edgepose._closing import Closeable
from edgepose.errors import InputError
from edgepose.io import read_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://")
#: A live source with no frame for this long has stopped (a camera unplugged, a stream down).
LIVE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Frame:
    """One frame: its index in the source, BGR uint8 pixels, when it was taken (seconds
    from the source's start: the video's clock for files, the wall clock for live
    sources) and a name (the image file name, or frame_<index>)."""

    index: int
    image: np.ndarray
    timestamp_s: float
    name: str


class Source(Closeable):
    """An iterable of Frames. live: frames are dropped rather than queued; total: the
    frame count where known; fps: the source's own rate where it states one."""

    kind: str = "source"
    live: bool = False
    total: int | None = None
    fps: float | None = None

    def __init__(self, description: str) -> None:
        self.description = description

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def _require_open(self) -> None:
        if self.closed:
            raise InputError(f"{self.description} is closed")


class ImageFiles(Source):
    """Still images, in the given order; the timestamp is the position (one per second)."""

    kind = "images"

    def __init__(self, paths: list[Path], description: str) -> None:
        super().__init__(description)
        self.paths = paths
        self.total = len(paths)

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            self._require_open()
            yield Frame(index, read_image(path), float(index), path.name)


class Capture(Source):
    """A cv2.VideoCapture. Files are read frame by frame; live captures through a reader
    thread that keeps only the newest frame."""

    def __init__(self, capture: cv2.VideoCapture, description: str, *, live: bool,
                 kind: str) -> None:
        super().__init__(description)
        self._capture = capture
        self.live = live
        self.kind = kind
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and fps > 0 else None
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.total = count if count > 0 and not live else None
        self._newest: tuple[int, np.ndarray, float] | None = None
        self._ready = threading.Condition()
        self._ended = False
        self._thread: threading.Thread | None = None

    def __iter__(self) -> Iterator[Frame]:
        self._require_open()
        return self._live_frames() if self.live else self._file_frames()

    def _file_frames(self) -> Iterator[Frame]:
        index = 0
        while True:
            self._require_open()
            ok, image = self._capture.read()
            if not ok or image is None:
                return
            milliseconds = self._capture.get(cv2.CAP_PROP_POS_MSEC)
            stamp = (milliseconds / 1000.0 if milliseconds and milliseconds > 0
                     else index / self.fps if self.fps else float(index))
            yield Frame(index, image, stamp, f"frame_{index:06d}")
            index += 1

    def _read_continuously(self) -> None:
        began, index = time.monotonic(), 0
        while not self._ended:
            ok, image = self._capture.read()
            with self._ready:
                if not ok or image is None:
                    self._ended = True
                else:
                    self._newest = (index, image, time.monotonic() - began)
                    index += 1
                self._ready.notify_all()

    def _live_frames(self) -> Iterator[Frame]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._read_continuously, daemon=True,
                                            name=f"edgepose source {self.description}")
            self._thread.start()
        last = -1
        while True:
            with self._ready:
                fresh = self._ready.wait_for(
                    lambda: self._ended or (self._newest is not None and self._newest[0] > last),
                    timeout=LIVE_TIMEOUT_S)
                if not fresh:
                    raise InputError(f"{self.description} delivered no frame for "
                                     f"{LIVE_TIMEOUT_S:g} s; is it still connected?")
                if self._newest is None or self._newest[0] <= last:
                    return      # ended
                index, image, stamp = self._newest
            last = index
            yield Frame(index, image, stamp, f"frame_{index:06d}")

    def _release(self) -> None:
        self._ended = True
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._capture.release()


def gstreamer_available() -> bool:
    """Whether this OpenCV was built with its GStreamer backend."""
    info = cv2.getBuildInformation()
    return re.search(r"GStreamer:\s*YES", info) is not None


def _capture(target: str | int, description: str, api: int = cv2.CAP_ANY, *, live: bool,
             kind: str, hint: str) -> Capture:
    capture = cv2.VideoCapture(target, api)
    if not capture.isOpened():
        capture.release()
        raise InputError(f"{description} could not be opened; {hint}")
    return Capture(capture, description, live=live, kind=kind)


def open_source(spec: str | Path | int) -> Source:
    """The Source a command-line SRC names (see the module docstring for the kinds)."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        spec = str(spec)
    text = str(spec).strip()
    if not text:
        raise InputError("the source is empty; give an image, folder, glob, video, camera "
                         "index, /dev/videoN, stream URL or GStreamer pipeline")
    if "!" in text:
        if not gstreamer_available():
            raise InputError("a GStreamer pipeline needs OpenCV built with GStreamer, and this "
                             f"OpenCV {cv2.__version__} is not (its build information says "
                             "GStreamer: NO); on a Jetson use the system OpenCV that JetPack "
                             "ships, or read the camera as /dev/videoN")
        return _capture(text, "the GStreamer pipeline", cv2.CAP_GSTREAMER, live=True,
                        kind="gstreamer", hint="check the pipeline with gst-launch-1.0 and "
                        "that it ends in appsink")
    if text.lower().startswith(STREAM_SCHEMES):
        return _capture(text, f"stream {text}", live=True, kind="stream",
                        hint="check the URL, the network and that the stream is running")
    if re.fullmatch(r"\d+", text):
        return _capture(int(text), f"camera {text}", live=True, kind="camera",
                        hint="no camera with that index is connected (or another program "
                        "holds it)")
    if text.startswith("/dev/video"):
        if not Path(text).exists():
            raise InputError(f"camera device {text} does not exist; connected cameras appear "
                             "as /dev/video0, /dev/video1, …")
        return _capture(text, f"camera {text}", cv2.CAP_V4L2, live=True, kind="camera",
                        hint="the device exists but does not deliver video (is it a metadata "
                        "node, or held by another program?)")
    path = Path(text)
    if any(ch in text for ch in "*?["):
        paths = sorted(Path(p) for p in globbing.glob(text)
                       if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise InputError(f"the pattern {text!r} matches no image "
                             f"({', '.join(IMAGE_SUFFIXES)})")
        return ImageFiles(paths, f"{len(paths)} images matching {text}")
    if path.is_dir():
        paths = sorted(p for p in path.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise InputError(f"folder {text!r} holds no image ({', '.join(IMAGE_SUFFIXES)})")
        return ImageFiles(paths, f"{len(paths)} images in {text}")
    if not path.exists():
        raise InputError(f"source {text!r} does not exist (not a file, folder, camera index, "
                         "/dev/videoN, stream URL or GStreamer pipeline)")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return ImageFiles([path], f"image {text}")
    if suffix in VIDEO_SUFFIXES:
        return _capture(text, f"video {text}", live=False, kind="video",
                        hint="not a format this OpenCV build reads (FFmpeg decodes most)")
    raise InputError(f"source {text!r} is neither an image ({', '.join(IMAGE_SUFFIXES)}) nor a "
                     f"video ({', '.join(VIDEO_SUFFIXES)})")
