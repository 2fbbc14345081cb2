"""A synthetic COCO keypoints dataset on disk, and its command line."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence

import cv2
import numpy as np

from edgepose.errors import EdgeposeError, InputError
from edgepose.io import write_bytes_atomic, write_json_atomic
from edgepose.keypoints import KeypointSet
from export.training.synthetic.config import (ANNOTATION_FILE, IMAGE_FORMATS, JPEG_QUALITY,
                                              LAYOUTS, PersonAnnotation, SyntheticConfig,
                                              to_coco18)
from export.training.synthetic.render import render_image

log = logging.getLogger(__name__)



def _file_name(index: int, image_format: str) -> str:
    return f"{index:06d}.{image_format}"


def _render_task(index: int, config: SyntheticConfig, image_dir: str,
                 image_format: str) -> list[PersonAnnotation]:
    image, people = render_image(config, index)
    if image_format == "jpg":
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    else:
        ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise InputError(f"OpenCV could not encode image {index} as {image_format}")
    write_bytes_atomic(Path(image_dir) / _file_name(index, image_format), encoded.tobytes())
    return people


def _worker_init() -> None:
    cv2.setNumThreads(1)        # one process per core; OpenCV's own threads would oversubscribe


def _coco_row(person: PersonAnnotation, layout: str) -> tuple[list[float], int]:
    keypoints = person.keypoints if layout == "coco17" else to_coco18(person.keypoints)
    flat = [round(float(v), 2) for v in keypoints.reshape(-1)]
    return flat, int(np.count_nonzero(keypoints[:, 2] > 0))


def coco_category(layout: str = "coco17") -> dict[str, Any]:
    """The COCO `categories` entry: person, keypoint names and the 1-based skeleton."""
    keypoint_set = _layout(layout)
    return {"id": 1, "name": "person", "supercategory": "person",
            "keypoints": list(keypoint_set.names),
            "skeleton": [[i + 1, j + 1] for i, j in keypoint_set.skeleton]}


def _layout(layout: str) -> KeypointSet:
    if layout not in LAYOUTS:
        raise InputError(f"unknown keypoint layout {layout!r}; expected one of "
                         f"{', '.join(LAYOUTS)}")
    return LAYOUTS[layout]


def write_coco_dataset(out_dir: str | Path, count: int, config: SyntheticConfig | None = None, *,
                       layout: Literal["coco17", "coco18"] = "coco17",
                       image_format: Literal["jpg", "png"] = "jpg",
                       workers: int | None = None, progress: bool = True) -> Path:
    """Write images 0 .. count-1 and their COCO keypoints file; return the file's path.

    out_dir/images/000000.jpg … and out_dir/person_keypoints.json (written last,
    atomically, so it never refers to images that are not there). Image ids are
    index + 1, annotation ids count from 1 in image order. `workers` processes render
    in parallel (default: os.cpu_count()); the output does not depend on it.
    JPEG is written at quality 95 (about 4x smaller than PNG on these textures).
    Images already in out_dir/images beyond `count` are left alone.
    """
    config = SyntheticConfig() if config is None else config
    if not isinstance(config, SyntheticConfig):
        raise InputError(f"config must be a SyntheticConfig, got {type(config).__name__}")
    if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 1:
        raise InputError(f"count must be a positive number of images, got {count!r}")
    keypoint_set = _layout(layout)
    if image_format not in IMAGE_FORMATS:
        raise InputError(f"unknown image format {image_format!r}; expected one of "
                         f"{', '.join(IMAGE_FORMATS)}")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if not isinstance(workers, int) or workers < 1:
        raise InputError(f"workers must be a positive number of processes, got {workers!r}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output {str(out_dir)!r} exists and is not a folder")
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)

    task = functools.partial(_render_task, config=config, image_dir=str(image_dir),
                             image_format=image_format)
    started = time.perf_counter()
    results: list[list[PersonAnnotation]] = []
    bar = None
    try:
        for people in _render_all(task, count, workers):
            if bar is None:         # made once the workers are forked: tqdm starts a thread
                bar = _progress_bar(count, progress)
            results.append(people)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()

    images, annotations = [], []
    for index, people in enumerate(results):
        images.append({"id": index + 1, "file_name": _file_name(index, image_format),
                       "width": config.width, "height": config.height})
        for person in people:
            flat, labelled = _coco_row(person, layout)
            annotations.append({
                "id": len(annotations) + 1, "image_id": index + 1, "category_id": 1,
                "bbox": [round(v, 2) for v in person.bbox], "area": person.area,
                "iscrowd": 0, "keypoints": flat, "num_keypoints": labelled,
            })
    payload = {
        "info": {"description": "edgepose synthetic people", "version": "1",
                 "generator": "export.training.synthetic", "layout": keypoint_set.name,
                 "config": dataclasses.asdict(config)},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [coco_category(layout)],
    }
    path = write_json_atomic(out_dir / ANNOTATION_FILE, payload)
    elapsed = time.perf_counter() - started
    log.info("wrote %d images, %d people (%d annotated) to %s in %.1f s (%.0f images/s)",
             count, len(annotations), sum(a["num_keypoints"] > 0 for a in annotations),
             out_dir, elapsed, count / max(elapsed, 1e-9))
    return path


def _render_all(task: Callable[[int], list[PersonAnnotation]], count: int,
                workers: int) -> Iterator[list[PersonAnnotation]]:
    """task(0) .. task(count - 1) in order, in `workers` processes when more than one."""
    if workers == 1 or count == 1:
        yield from map(task, range(count))
        return
    chunk = max(1, min(32, count // (workers * 8)))
    # Spawned, not forked: a caller that already ran torch or OpenCV threads (the demo
    # exports first) can deadlock a forked child on a lock held by one of those threads.
    context = multiprocessing.get_context("spawn")
    with context.Pool(min(workers, count), initializer=_worker_init) as pool:
        yield from pool.imap(task, range(count), chunksize=chunk)


def _progress_bar(count: int, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=count, unit="img", desc="synthetic people")


# --- command line -------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    # Imported here: the video module builds on this one.
    from export.training.synthetic.video import SyntheticVideoConfig

    video = SyntheticVideoConfig()
    parser = argparse.ArgumentParser(
        prog="python -m export.training.synthetic",
        description="Write a synthetic COCO keypoints dataset: images of articulated people "
                    "(left limbs warm-coloured, right limbs cool) on cluttered backgrounds, "
                    "with overlap, occluders, truncation, lighting and blur, and "
                    "DIR/person_keypoints.json with boxes, areas and visibility flags. "
                    "With --video, a video of people walking instead, with track ids. "
                    "The same seed always writes the same files.")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="output folder; images go to DIR/images/, annotations to "
                             "DIR/person_keypoints.json")
    parser.add_argument("--count", type=int, required=True, metavar="N",
                        help="number of images (000000.jpg .. N-1); with --video, the number "
                             "of people walking through the video (1 to 100)")
    parser.add_argument("--video", type=int, default=None, metavar="FRAMES",
                        help=f"write one synthetic video of FRAMES frames ({video.fps:g} per "
                             "second) instead of an image set: DIR/video.avi (Motion JPEG), every "
                             "frame as DIR/images/frame_000000.jpg .., and "
                             "DIR/person_keypoints.json, whose annotations carry a track_id "
                             "that stays with each person from frame to frame. --count people "
                             "walk, turn, cross and hide each other, and may leave the frame "
                             f"and come back; the nearest stand {video.person_height[1]:g} of "
                             "the height tall. --people, "
                             "--min-person-height and --workers apply to image sets only")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="random seed; image i depends only on (seed, i) (default 0)")
    parser.add_argument("--layout", choices=list(LAYOUTS), default="coco17",
                        help="keypoint layout of the annotations: coco17 (COCO order) or "
                             "coco18 (OpenPose order with a neck) (default coco17)")
    defaults = SyntheticConfig()
    parser.add_argument("--width", type=int, default=defaults.width, metavar="W",
                        help="image width in pixels (default 320)")
    parser.add_argument("--height", type=int, default=defaults.height, metavar="H",
                        help="image height in pixels; also the tallest person (default 256)")
    # None until given, so that --video can refuse them (the defaults apply to image sets).
    parser.add_argument("--min-person-height", type=float, default=None,
                        metavar="PX", help="standing height of the smallest person in pixels "
                                           f"(default {defaults.min_person_height:g})")
    parser.add_argument("--people", type=int, nargs=2, metavar=("MIN", "MAX"), default=None,
                        help="people per image, a range (default 1 4)")
    parser.add_argument("--format", choices=list(IMAGE_FORMATS), default="jpg",
                        help="image files: jpg (quality 95, small) or png (lossless, ~4x "
                             "larger) (default jpg)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="processes rendering in parallel (default: all CPU cores); "
                             "the output does not depend on it")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar and no summary line")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m export.training.synthetic`; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(message)s")
    if args.video is not None:
        given = [flag for flag, value in (("--people", args.people), ("--workers", args.workers),
                                          ("--min-person-height", args.min_person_height))
                 if value is not None]
        if given:
            parser.error(f"{', '.join(given)}: for image sets only; with --video, --count is "
                         "the number of people in the video")
        return _main_video(args)
    defaults = SyntheticConfig()
    try:
        config = SyntheticConfig(
            image_size=(args.width, args.height), seed=args.seed,
            people=tuple(args.people) if args.people is not None else defaults.people,
            min_person_height=(args.min_person_height if args.min_person_height is not None
                               else defaults.min_person_height))
        path = write_coco_dataset(args.out, args.count, config, layout=args.layout,
                                  image_format=args.format, workers=args.workers,
                                  progress=not args.quiet)
    except EdgeposeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def _main_video(args: argparse.Namespace) -> int:
    from export.training.synthetic.video import SyntheticVideoConfig, write_synthetic_video

    try:
        config = SyntheticVideoConfig(frame_size=(args.width, args.height), frames=args.video,
                                      people=args.count, seed=args.seed)
        video, annotations = write_synthetic_video(args.out, config, layout=args.layout,
                                                   image_format=args.format,
                                                   progress=not args.quiet)
    except EdgeposeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {video} and {annotations}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
