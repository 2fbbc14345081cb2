"""What a profile runs on: argument checks the CLI shares, the frame and the person boxes."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from edgepose.errors import InputError
from edgepose.io import read_image
from edgepose.preprocess import validate_boxes
from edgepose.profile.stats import is_finite_number

DEFAULT_WARMUP = 50
DEFAULT_ITERS = 500
DEFAULT_VIDEO_WARMUP = 10
#: The default frame: what a 720p camera hands over. Crop cost depends on the
#: network input size, not the frame, so the size matters little; the content is
#: seeded noise so runs repeat.
SYNTHETIC_FRAME_SIZE = (1280, 720)  # (width, height)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|min|h)\s*$")
_DURATION_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds from "10s", "500ms", "2m" (also "1.5s", "2min", "1h"); the unit is required."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise InputError(f"duration {text!r} is not a number with a unit; expected e.g. '10s', "
                         "'500ms' or '2m'")
    seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds <= 0:
        raise InputError(f"duration {text!r} is zero; expected a positive time such as '10s'")
    return seconds


def parse_integers(text: str, what: str, example: str) -> tuple[int, ...]:
    """Integers from comma-separated text ("1,2,4"), in the order given; InputError naming
    `what` and an `example` when there are none or one is not an integer."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values:
        raise InputError(f"{what} {text!r}: expected comma-separated integers such as "
                         f"'{example}'")
    return values


def parse_batch_sizes(text: str) -> tuple[int, ...]:
    """Batch sizes from "1,2,4,8", in the order given."""
    return check_batch_sizes(parse_integers(text, "batch sizes", "1,2,4,8"))


def read_frame_boxes(path: str | Path) -> tuple[np.ndarray, ...]:
    """Per-frame boxes from a JSON list, entry i for frame i: [[x,y,w,h], …] or
    [{"bbox": [x,y,w,h], "score": s}, …]; an empty list means nobody in that frame."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"per-frame boxes file {str(path)!r} does not exist")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"per-frame boxes file {str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(frame, list) for frame in data):
        raise InputError(f"per-frame boxes file {str(path)!r} must hold a JSON list with one list "
                         "of boxes per frame: [[[x,y,w,h], …], …]")
    frames = []
    for index, frame in enumerate(data):
        rows = []
        for item in frame:
            bbox = item.get("bbox") if isinstance(item, dict) else item
            if not (isinstance(bbox, list) and len(bbox) == 4
                    and all(is_finite_number(v) for v in bbox)):
                raise InputError(f"per-frame boxes file {str(path)!r}, frame {index}: {item!r}; "
                                 'expected [x, y, w, h] or {"bbox": [x, y, w, h], "score": s}')
            rows.append(bbox)
        frames.append(np.asarray(rows, np.float32).reshape(-1, 4))
    return tuple(frames)


def check_batch_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    sizes = tuple(sizes)
    if not sizes:
        raise InputError("no batch sizes; expected e.g. (1, 2, 4, 8)")
    bad = [s for s in sizes if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 1]
    if bad:
        raise InputError(f"batch sizes {list(sizes)}: {bad} are not positive integers")
    if len(set(sizes)) != len(sizes):
        raise InputError(f"batch sizes {list(sizes)} repeat a size; give each once")
    return tuple(int(s) for s in sizes)


def check_count(value: Any, name: str, minimum: int, hint: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise InputError(f"{name} is {value!r}; expected an integer ≥ {minimum} ({hint})")
    return int(value)


def check_run_length(iters: int | None, duration_s: float | None, default: int | None
                      ) -> tuple[int | None, float | None]:
    if iters is not None and duration_s is not None:
        raise InputError(f"give an iteration count ({iters}) or a duration ({duration_s} s), "
                         "not both")
    if duration_s is not None:
        if not is_finite_number(duration_s) or duration_s <= 0:
            raise InputError(f"duration is {duration_s!r} s; expected a positive number of seconds")
        return None, float(duration_s)
    if iters is None:
        return default, None
    return check_count(iters, "iteration count", 1, "timed calls per batch size"), None



def synthetic_frame(size: tuple[int, int] = SYNTHETIC_FRAME_SIZE, seed: int = 0) -> np.ndarray:
    """A seeded noise frame (height, width, 3) BGR uint8."""
    width, height = size
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def grid_boxes(count: int, width: int, height: int) -> np.ndarray:
    """`count` person-shaped boxes (N, 4) xywh laid out on a grid over a width×height frame."""
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    cell_w, cell_h = width / columns, height / rows
    boxes = [(c * cell_w + 0.1 * cell_w, r * cell_h + 0.05 * cell_h, 0.8 * cell_w, 0.9 * cell_h)
             for r in range(rows) for c in range(columns)][:count]
    return np.asarray(boxes, np.float32)


def load_frame(image: str | Path | np.ndarray | None) -> tuple[np.ndarray, str]:
    if image is None:
        width, height = SYNTHETIC_FRAME_SIZE
        return synthetic_frame(), f"synthetic {width}x{height} frame"
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f"image must be a BGR uint8 array (h, w, 3), got {image.dtype} "
                             f"{image.shape}")
        return image, f"{image.shape[1]}x{image.shape[0]} array"
    array = read_image(image)
    return array, str(image)


def boxes_for(batch: int, boxes: np.ndarray | None, width: int, height: int) -> np.ndarray:
    if boxes is None:
        return grid_boxes(batch, width, height)
    # Given boxes fill a batch in order, repeating from the first when there are fewer.
    return boxes[np.arange(batch) % boxes.shape[0]]


def fixed_boxes(boxes: Any, width: int, height: int) -> np.ndarray | None:
    if boxes is None:
        return None
    array = validate_boxes(np.asarray(boxes, np.float32), width, height)
    if array.shape[0] == 0:
        raise InputError("boxes are empty; give at least one x,y,w,h box, or none for the default")
    return array



def frame_boxes_source(boxes: Any) -> Callable[[int], np.ndarray | None] | None:
    """frame index → boxes, or None past the end of per-frame boxes; None: the whole frame."""
    if boxes is None:
        return None
    if isinstance(boxes, (str, Path)):
        boxes = read_frame_boxes(boxes)
    if isinstance(boxes, np.ndarray):
        array = np.asarray(boxes, np.float32).reshape(-1, 4)
        return lambda index: array
    per_frame = tuple(np.asarray(b, np.float32).reshape(-1, 4) for b in boxes)
    return lambda index: per_frame[index] if index < len(per_frame) else None

