"""Files in and out: images, box files, and atomic writes.

Nothing edgepose writes is ever left half-written: every file goes to a
temporary name in the destination folder and is renamed into place.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from edgepose.errors import InputError


@contextmanager
def atomic_path(destination: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `destination`; rename it there on success.

    On an exception the temporary file is removed and `destination` is untouched.
    """
    destination = Path(destination)
    folder = destination.parent if str(destination.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"output folder {str(folder)!r} does not exist")
    handle, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".tmp",
                                         dir=folder)
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        # mkstemp makes the file private (0600); the result gets the usual permissions.
        os.chmod(temporary_path, 0o666 & ~_umask())
        os.replace(temporary_path, destination)
    finally:
        if temporary_path.exists():
            temporary_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(destination: str | Path, data: bytes) -> Path:
    with atomic_path(destination) as temporary:
        temporary.write_bytes(data)
    return Path(destination)


def write_json_atomic(destination: str | Path, payload: Any) -> Path:
    return write_bytes_atomic(destination, (json.dumps(payload, indent=2) + "\n").encode())


def read_image(path: str | Path) -> np.ndarray:
    """A BGR uint8 image (h, w, 3); InputError when missing or undecodable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image {str(path)!r} does not exist")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"image {str(path)!r} could not be decoded (not an image OpenCV reads)")
    return image


def write_image_atomic(destination: str | Path, image: np.ndarray) -> Path:
    suffix = Path(destination).suffix.lower() or ".png"
    ok, encoded = cv2.imencode(suffix, image)
    if not ok:
        raise InputError(f"cannot encode an image as {suffix!r} for {str(destination)!r}")
    return write_bytes_atomic(destination, encoded.tobytes())


def parse_boxes(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Boxes from "x,y,w,h[,score];…" → (boxes (N,4) xywh, scores (N,))."""
    rows = []
    for index, item in enumerate(part for part in text.split(";") if part.strip()):
        try:
            values = [float(v) for v in item.split(",")]
        except ValueError:
            values = []
        if len(values) not in (4, 5):
            raise InputError(
                f"box {index} is {item.strip()!r}; expected 'x,y,w,h' or 'x,y,w,h,score' "
                "in pixels, boxes separated by ';'"
            )
        rows.append(values if len(values) == 5 else values + [1.0])
    if not rows:
        raise InputError(f"no boxes in {text!r}; expected 'x,y,w,h;x,y,w,h'")
    array = np.asarray(rows, dtype=np.float32)
    return array[:, :4], array[:, 4]


def read_json(path: str | Path, what: str) -> Any:
    """Parsed JSON of `path`; InputError naming `what` ("annotation file", …) when missing or bad."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {str(path)!r} does not exist")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} {str(path)!r} is not valid JSON: {exc}") from None


def read_boxes_json(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Boxes from a JSON file: [[x,y,w,h], …] or COCO detections [{"bbox": […], "score": s}, …]."""
    data = read_json(path, "boxes file")
    if not isinstance(data, list):
        raise InputError(f"boxes file {str(path)!r} must hold a JSON list of boxes")
    boxes, scores = [], []
    for index, item in enumerate(data):
        bbox, score = (item.get("bbox"), item.get("score", 1.0)) if isinstance(item, dict) else (item, 1.0)
        if (not isinstance(bbox, list) or len(bbox) != 4
                or not all(isinstance(v, (int, float)) for v in bbox)
                or not isinstance(score, (int, float))):
            raise InputError(
                f"boxes file {str(path)!r}, entry {index}: {item!r}; expected [x, y, w, h] or "
                '{"bbox": [x, y, w, h], "score": s}'
            )
        boxes.append(bbox)
        scores.append(score)
    return (np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
            np.asarray(scores, dtype=np.float32))
