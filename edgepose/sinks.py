"""Where a stream's poses go: JSON lines per frame, COCO results, an annotated video,
a window. Files are written beside their destination and renamed into place when the
stream ends, so an interrupted run never leaves half a file under the user's name.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgepose._closing import Closeable
from edgepose.errors import InputError
from edgepose.io import (check_output_path, json_bytes, place_scratch, scratch_file_beside,
                         write_bytes_atomic)
from edgepose.poses import Poses
from edgepose.sources import Frame

#: Containers cv2.VideoWriter writes, and the codec each gets.
VIDEO_CODECS = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


def frame_record(frame: Frame, poses: Poses) -> dict[str, Any]:
    """One JSON line: the frame and, per person, box, keypoints [x, y, score], score and
    track id (null outside tracking)."""
    people = []
    for person in range(len(poses)):
        people.append({
            "track_id": None if poses.track_ids is None else int(poses.track_ids[person]),
            "box": (None if poses.boxes is None
                    else [round(float(v), 2) for v in poses.boxes[person]]),
            "score": round(float(poses.person_scores[person]), 5),
            "keypoints": [[round(float(x), 2), round(float(y), 2), round(float(s), 4)]
                          for (x, y), s in zip(poses.xy[person], poses.scores[person])],
        })
    return {"frame": frame.index, "timestamp": round(frame.timestamp_s, 4), "name": frame.name,
            "keypoint_set": poses.keypoint_set, "people": people}


class Sink(Closeable):
    """write(frame, poses, drawing) per frame; close(complete) ends the output: a
    complete run puts it in place, an aborted one leaves the destination untouched."""

    def write(self, frame: Frame, poses: Poses, drawing: np.ndarray | None) -> None:
        raise NotImplementedError

    def finish(self, complete: bool = True) -> None:
        self._complete = complete
        self.close()

    _complete = False


class _StagedFile(Sink):
    """A file streamed to a scratch file beside `path`, renamed into place by finish()."""

    def __init__(self, path: str | Path, what: str) -> None:
        self.path = check_output_path(path, what)
        self.scratch = scratch_file_beside(self.path)

    def _place(self) -> None:
        if self._complete:
            place_scratch(self.scratch, self.path)
        elif self.scratch.exists():
            self.scratch.unlink()


class JsonLinesSink(_StagedFile):
    """One JSON object per frame and line (frame_record)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, "--jsonl")
        self._stream = open(self.scratch, "w", encoding="utf-8")

    def write(self, frame: Frame, poses: Poses, drawing: np.ndarray | None) -> None:
        self._stream.write(json.dumps(frame_record(frame, poses), allow_nan=False) + "\n")

    def _release(self) -> None:
        self._stream.close()
        self._place()


class CocoResultsSink(Sink):
    """COCO keypoint results of every frame; image ids are frame index + 1 (the order of
    the files), written when the stream ends."""

    def __init__(self, path: str | Path) -> None:
        self.path = check_output_path(path, "--json")
        self.results: list[dict[str, Any]] = []
        self.names: dict[int, str] = {}

    def write(self, frame: Frame, poses: Poses, drawing: np.ndarray | None) -> None:
        self.results.extend(poses.to_coco_results(frame.index + 1))
        self.names[frame.index + 1] = frame.name

    def _release(self) -> None:
        if self._complete:
            payload = {"image_ids": "frame index + 1, in the source's order",
                       "images": [{"id": i, "file_name": n} for i, n in self.names.items()],
                       "results": self.results}
            write_bytes_atomic(self.path, json_bytes(self.path, payload))


class VideoSink(_StagedFile):
    """The drawings as a video at the source's frame rate (mp4v in .mp4, MJPG in .avi)."""

    def __init__(self, path: str | Path, fps: float | None) -> None:
        suffix = Path(path).suffix.lower()
        if suffix not in VIDEO_CODECS:
            raise InputError(f"--video-out must end in {', '.join(VIDEO_CODECS)}, got "
                             f"{Path(path).name!r}")
        super().__init__(path, "--video-out")
        self.fps = fps if fps and fps > 0 else 25.0
        self._writer: cv2.VideoWriter | None = None

    def write(self, frame: Frame, poses: Poses, drawing: np.ndarray | None) -> None:
        image = frame.image if drawing is None else drawing
        if self._writer is None:
            height, width = image.shape[:2]
            codec = VIDEO_CODECS[self.path.suffix.lower()]
            self._writer = cv2.VideoWriter(str(self.scratch), cv2.VideoWriter_fourcc(*codec),
                                           self.fps, (width, height))
            if not self._writer.isOpened():
                raise InputError(f"this OpenCV cannot write {codec} video to "
                                 f"{self.path.name}; try .avi")
            self._size = (width, height)
        if (image.shape[1], image.shape[0]) != self._size:
            image = cv2.resize(image, self._size)   # a source whose frame size changes
        self._writer.write(image)

    def _release(self) -> None:
        if self._writer is not None:
            self._writer.release()
        self._place()


class WindowSink(Sink):
    """A window showing the drawings; q or Esc ends the stream (StopIteration upstream)."""

    def __init__(self, title: str = "edgepose") -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                     or os.environ.get("WAYLAND_DISPLAY")):
            raise InputError("--show needs a display (DISPLAY or WAYLAND_DISPLAY is unset); "
                             "write --video-out instead")
        self.title = title
        self.stopped = False

    def write(self, frame: Frame, poses: Poses, drawing: np.ndarray | None) -> None:
        cv2.imshow(self.title, frame.image if drawing is None else drawing)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.stopped = True

    def _release(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass
