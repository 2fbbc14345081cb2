"""Files in and out: images, box files, and atomic writes.

Nothing edgepose writes is ever left half-written: every file goes to a
temporary name in the destination folder and is renamed into place. Scratch
files and folders carry one prefix and the writer's process id, so the next run
in that folder removes what a killed run left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from edgepose.errors import InputError
# The box size bounds the pipelines enforce; files and flags are checked against them early.
from edgepose.preprocess import MAX_BOX_PIXELS, MIN_BOX_PIXELS

#: Every scratch file or folder edgepose makes starts with this, then "<pid>.".
SCRATCH_PREFIX = ".edgepose-"


def _scratch_prefix(name: str) -> str:
    return f"{SCRATCH_PREFIX}{os.getpid()}.{name}."


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_scratch(folder: str | Path) -> list[Path]:
    """Remove the scratch files and folders in `folder` whose writer process is gone.

    Scratch of live processes stays: two edgepose runs may write beside each other.
    """
    removed = []
    try:
        entries = list(Path(folder).glob(f"{SCRATCH_PREFIX}*"))
    except OSError:
        return removed
    for entry in entries:
        pid_text = entry.name[len(SCRATCH_PREFIX):].split(".", 1)[0]
        if not pid_text.isdigit() or _process_alive(int(pid_text)):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue
        removed.append(entry)
    return removed


def _make_scratch_file(folder: Path, name: str, what: str) -> tuple[int, str]:
    try:
        return tempfile.mkstemp(prefix=_scratch_prefix(name), suffix=".tmp", dir=folder)
    except OSError as exc:
        raise InputError(f"cannot write the {what} in {str(folder)!r}: {exc.strerror}") from None


def _output_folder(destination: Path) -> Path:
    folder = destination.parent if str(destination.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"output folder {str(folder)!r} does not exist")
    return folder


@contextmanager
def atomic_path(destination: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `destination`; rename it there on success.

    On an exception the temporary file is removed and `destination` is untouched.
    """
    destination = Path(destination)
    folder = _output_folder(destination)
    if destination.is_dir():
        raise InputError(f"output {str(destination)!r} is a folder; give a file path")
    remove_stale_scratch(folder)
    handle, temporary = _make_scratch_file(folder, destination.name, "output")
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        place_scratch(temporary_path, destination)
    finally:
        if temporary_path.exists():
            temporary_path.unlink()


def place_scratch(scratch: Path, destination: Path) -> None:
    """Rename a finished scratch file onto `destination` (one atomic step)."""
    # mkstemp makes the file private (0600); the result gets the usual permissions.
    os.chmod(scratch, 0o666 & ~_umask())
    os.replace(scratch, destination)


def scratch_file_beside(destination: str | Path) -> Path:
    """An empty scratch file in `destination`'s folder with its suffix (OpenCV's video
    writer picks the container by it), for output streamed over a long run; the caller
    renames it into place or removes it."""
    destination = Path(destination)
    folder = _output_folder(destination)
    remove_stale_scratch(folder)
    try:
        handle, name = tempfile.mkstemp(prefix=_scratch_prefix(destination.name),
                                        suffix=destination.suffix, dir=folder)
    except OSError as exc:
        raise InputError(f"cannot write {destination.name} in {str(folder)!r}: "
                         f"{exc.strerror}") from None
    os.close(handle)
    return Path(name)


@contextmanager
def scratch_folder(beside: str | Path, purpose: str) -> Iterator[Path]:
    """A scratch folder in the folder of the output `beside`, removed on exit.

    Kept beside the output rather than in the system temp dir, so large candidates
    land on the disk the user chose and a killed run's leftovers are found and
    removed by the next run there.
    """
    folder = _output_folder(Path(beside))
    remove_stale_scratch(folder)
    path = Path(tempfile.mkdtemp(prefix=_scratch_prefix(purpose), dir=folder))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def staged_folder(destination: str | Path) -> Iterator[Path]:
    """A scratch folder beside `destination`, renamed onto it when the block ends
    without an exception and removed otherwise: a folder of outputs appears whole or
    not at all. `destination` must not exist (it is never overwritten)."""
    destination = Path(destination)
    folder = _output_folder(destination)
    if destination.exists():
        raise InputError(f"{str(destination)!r} exists; give a new folder (an existing one "
                         "is never overwritten)")
    remove_stale_scratch(folder)
    scratch = Path(tempfile.mkdtemp(prefix=_scratch_prefix(destination.name), dir=folder))
    try:
        yield scratch
        # mkdtemp makes the folder private (0700); the result gets the usual permissions.
        os.chmod(scratch, 0o777 & ~_umask())
        os.rename(scratch, destination)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def check_output_path(path: str | Path, what: str = "output") -> Path:
    """`path` as a Path once it can be written: not empty, not a folder, in an existing,
    writable folder. Call it before any work, so a bad path costs nothing."""
    text = str(path)
    if not text.strip():
        raise InputError(f"{what} path is empty; give a file path")
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} {text!r} is a folder; give a file path")
    folder = _output_folder(path)
    # A real file tells what os.access cannot: read-only mounts, and root's rights.
    handle, probe = _make_scratch_file(folder, path.name, what)
    os.close(handle)
    os.unlink(probe)
    return path


def check_image_output(path: str | Path, what: str = "drawing") -> Path:
    """check_output_path, and an extension OpenCV can encode."""
    path = check_output_path(path, what)
    if not path.suffix or not cv2.haveImageWriter(str(path)):
        kind = repr(path.suffix) if path.suffix else "a file without an extension"
        raise InputError(f"{what} {str(path)!r}: OpenCV cannot write {kind}; use .png, .jpg, "
                         ".bmp, .tiff or .webp")
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_overwriting_inputs(outputs: dict[str, str | Path | None],
                              inputs: dict[str, str | Path | None]) -> None:
    """InputError when an output is the same file as an input (after symlinks, or the
    same inode) or as another output, or names a media file inside an input folder.

    Labels (the keys) name each path in the message, e.g. {"json": …}, {"model": …}.
    """
    given_outputs = [(label, Path(path)) for label, path in outputs.items() if path is not None]
    given_inputs = [(label, Path(path)) for label, path in inputs.items() if path is not None]
    for index, (label, output) in enumerate(given_outputs):
        for other_label, other in given_outputs[:index]:
            if output.absolute() == other.absolute() or _same_file(output, other):
                raise InputError(f"{label} and {other_label} are both {str(output)!r}; give "
                                 "each output its own path")
        if not output.exists():
            continue
        for input_label, source in given_inputs:
            if _same_file(output, source):
                raise InputError(
                    f"{label} {str(output)!r} is the input {input_label} {str(source)!r}; "
                    "refusing to overwrite an input: choose another output path")
            if (source.is_dir() and output.suffix.lower() in MEDIA_SUFFIXES
                    and output.resolve().parent == source.resolve()):
                raise InputError(
                    f"{label} {str(output)!r} would replace a file of the input folder "
                    f"{input_label} {str(source)!r}; choose another output path")


#: Files a folder input may hold as data: an output there with one of these is refused.
MEDIA_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp",
                            ".mp4", ".avi", ".mkv", ".mov", ".json", ".onnx", ".engine",
                            ".plan"})


def write_all_atomic(files: list[tuple[str | Path, bytes]]) -> list[Path]:
    """Write several files so that a failure leaves none of them changed.

    Every temporary file is written before the first rename, so an error while
    staging or writing any of them (a missing folder, a full disk) replaces nothing.
    """
    with ExitStack() as stack:
        staged = [(stack.enter_context(atomic_path(destination)), data)
                  for destination, data in files]
        for temporary, data in staged:
            temporary.write_bytes(data)
    return [Path(destination) for destination, _ in files]


def json_bytes(destination: str | Path, payload: Any) -> bytes:
    """Indented JSON text; InputError naming `destination` when it holds NaN or infinity."""
    try:
        text = json.dumps(payload, indent=2, allow_nan=False)
    except ValueError:
        # NaN and Infinity are not JSON; a file holding them breaks every other reader.
        raise InputError(f"refusing to write {str(destination)!r}: the results hold a "
                         "non-finite number (NaN or infinity)") from None
    return (text + "\n").encode()


def image_bytes(destination: str | Path, image: np.ndarray) -> bytes:
    """`image` encoded in the format `destination`'s extension names (PNG without one)."""
    suffix = Path(destination).suffix.lower() or ".png"
    ok, encoded = cv2.imencode(suffix, image)
    if not ok:
        raise InputError(f"cannot encode an image as {suffix!r} for {str(destination)!r}")
    return encoded.tobytes()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomic(destination: str | Path, data: bytes) -> Path:
    with atomic_path(destination) as temporary:
        temporary.write_bytes(data)
    return Path(destination)


def write_json_atomic(destination: str | Path, payload: Any) -> Path:
    return write_bytes_atomic(destination, json_bytes(destination, payload))


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
    return write_bytes_atomic(destination, image_bytes(destination, image))


ACCEPTED_BOXES = (f"finite x, y within ±{MAX_BOX_PIXELS:g}, width and height from "
                  f"{MIN_BOX_PIXELS:g} to {MAX_BOX_PIXELS:g} pixels, score a finite number ≥ 0")


def check_box_values(boxes: np.ndarray, scores: np.ndarray, where: str) -> None:
    """InputError naming the first box (N, 4) xywh or score (N,) outside ACCEPTED_BOXES."""
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(boxes).all(axis=1) & (np.abs(boxes[:, :2]) <= MAX_BOX_PIXELS).all(axis=1)
                & (boxes[:, 2:] >= MIN_BOX_PIXELS).all(axis=1)
                & (boxes[:, 2:] <= MAX_BOX_PIXELS).all(axis=1)
                & np.isfinite(scores) & (scores >= 0))
    if bad.any():
        index = int(np.argmax(bad))
        values = ", ".join(f"{v:g}" for v in (*boxes[index], scores[index]))
        raise InputError(f"{where}: box {index} is ({values}) as x, y, w, h, score; accepted: "
                         f"{ACCEPTED_BOXES}")


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
    array = np.asarray(rows, dtype=np.float64)
    check_box_values(array[:, :4], array[:, 4], "boxes")
    return array[:, :4].astype(np.float32), array[:, 4].astype(np.float32)


def read_json(path: str | Path, what: str) -> Any:
    """Parsed JSON of `path`; InputError naming `what` ("annotation file", …) when missing or bad."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {str(path)!r} does not exist")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{what} {str(path)!r} is not valid JSON: {exc}") from None


#: COCO's person category, the only one whose detections are person boxes.
PERSON_CATEGORY_ID = 1


def read_boxes_json(path: str | Path, image_id: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Boxes from a JSON file: [[x,y,w,h], …] or COCO detections [{"bbox": […], "score": s}, …].

    COCO detections that name a category keep the person's only; those that name an
    image keep `image_id`'s, and a file holding several images needs `image_id`.
    """
    data = read_json(path, "boxes file")
    where = f"boxes file {str(path)!r}"
    if not isinstance(data, list):
        raise InputError(f"{where} must hold a JSON list of boxes")
    boxes, scores, image_ids = [], [], set()
    for index, item in enumerate(data):
        bbox, score = (item.get("bbox"), item.get("score", 1.0)) if isinstance(item, dict) else (item, 1.0)
        if (not isinstance(bbox, list) or len(bbox) != 4
                or not all(_is_number(v) for v in bbox) or not _is_number(score)):
            raise InputError(
                f"{where}, entry {index}: {item!r}; expected [x, y, w, h] or "
                '{"bbox": [x, y, w, h], "score": s}'
            )
        if isinstance(item, dict):
            if item.get("category_id", PERSON_CATEGORY_ID) != PERSON_CATEGORY_ID:
                continue
            if "image_id" in item:
                image_ids.add(item["image_id"])
                if image_id is not None and item["image_id"] != image_id:
                    continue
        boxes.append(bbox)
        scores.append(score)
    if image_id is None and len(image_ids) > 1:
        shown = ", ".join(str(i) for i in sorted(image_ids, key=str)[:5])
        raise InputError(f"{where} holds detections of {len(image_ids)} images (ids {shown}"
                         f"{', …' if len(image_ids) > 5 else ''}); give the image's id "
                         "(image_id) to take its boxes")
    if image_id is not None and image_ids and image_id not in image_ids:
        raise InputError(f"{where} holds no person detection of image id {image_id}")
    box_array = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    score_array = np.asarray(scores, dtype=np.float64)
    check_box_values(box_array, score_array, where)
    return box_array.astype(np.float32), score_array.astype(np.float32)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
