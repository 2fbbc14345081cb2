"""`edgepose infer`: one image, or every frame of a source, through a model."""

from __future__ import annotations

import argparse
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from edgepose.cli.arguments import path_argument as _path
from edgepose.cli.common import (add_model_options, check_paths, read_image_and_boxes,
                                 report_people, with_sidecar, write_outputs)
from edgepose.cli.detector_flags import add_detector_options, detector_settings
from edgepose.cli.streaming import (add_stream_options, check_stream_outputs, run_source,
                                    stream_only_flags)
from edgepose.cli.triton_client import (add_triton_options, run_infer_triton,
                                        triton_flags_without_server)
from edgepose.errors import InputError


def add_infer(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "infer", help="run a model on one image; write COCO-format JSON and/or a drawing",
        description="Top-down models (HRNet): each person box is cropped, run and "
                    "decoded; without boxes the whole image is one person. Bottom-up models "
                    "(OpenPose): the whole frame is run and people are assembled from the "
                    "maps; boxes, --flip and --refine do not apply. With --triton URL "
                    "the model is the one a Triton server serves (a repository from "
                    "'edgepose triton'): the same JSON and drawing, without --model.")
    add_model_options(parser)
    _model_optional_with_triton(parser)
    frames = parser.add_mutually_exclusive_group(required=True)
    frames.add_argument("--image", type=_path, help="one input image")
    frames.add_argument("--source",
                        help="every frame of: an image, a folder or glob of images, a video "
                             "file, a camera index (0), a V4L2 device (/dev/video0), an "
                             "RTSP/HTTP URL, or a GStreamer pipeline (OpenCV with GStreamer); "
                             "see the stream options below")
    boxes = parser.add_mutually_exclusive_group()
    boxes.add_argument("--boxes", help='person boxes in pixels, "x,y,w,h[,score];..."')
    boxes.add_argument("--boxes-json", type=_path,
                       help="JSON file: [[x,y,w,h], ...] or COCO detections "
                            '[{"bbox": [x,y,w,h], "score": s, "image_id": i, '
                            '"category_id": 1}, ...]; person detections (category 1) of '
                            "--image-id are taken")
    add_detector_options(parser, boxes)
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                        help="flip test: also run the mirrored crop and average "
                             "(default: as the model card says)")
    parser.add_argument("--refine", choices=["none", "shift", "dark", "princeton", "bearpaw"],
                        help="sub-pixel refinement (default: as the model card says); HRNet: "
                             "'shift' (official quarter-pixel shift), 'dark' or 'none'; "
                             "Stacked Hourglass: 'princeton' or 'bearpaw', the port's own rule")
    parser.add_argument("--preset", choices=["python", "cmu", "pose-ae-train", "higherhrnet"],
                        help="bottom-up grouping constants; PAF (OpenPose): 'python' (the "
                             "widely used Python port) or 'cmu' (OpenPose C++ defaults); "
                             "associative embedding: 'pose-ae-train' or 'higherhrnet'; "
                             "default: the card's")
    parser.add_argument("--integer-coords", action="store_true",
                        help="Stacked Hourglass only: whole-pixel coordinates, as the original "
                             "Princeton/bearpaw code outputs them (default: sub-pixel)")
    parser.add_argument("--image-id", type=int,
                        help="the image's COCO id: written in the results (default 0), and "
                             "the image whose boxes --boxes-json takes from a COCO "
                             "detections file holding several images")
    parser.add_argument("--json", type=_path,
                        help="write COCO keypoint results here (with --source: image ids are "
                             "frame index + 1, in the source's order)")
    parser.add_argument("--draw", type=_path, help="write the image with skeletons here")
    add_stream_options(parser)
    add_triton_options(parser, instead_of="--model")
    parser.set_defaults(run=run_infer)


def _model_optional_with_triton(parser: argparse.ArgumentParser) -> None:
    # --model is required for every other verb; infer takes --triton instead, which
    # run_infer checks, since argparse cannot say "one of these two" across types.
    for action in parser._actions:
        if action.dest == "model":
            action.required = False
            action.help += "; required unless --triton names a server"


#: The library speaks in parameters; the CLI says which flag set them.
FLAG_OF_PARAMETER = {"flip_test": "--flip", "refine": "--refine", "preset": "--preset",
                      "integer_coords": "--integer-coords", "boxes": "--boxes/--boxes-json"}


@contextmanager
def parameters_as_flags() -> Iterator[None]:
    try:
        yield
    except InputError as exc:
        message = re.sub(r"\b(" + "|".join(FLAG_OF_PARAMETER) + r")\b",
                         lambda match: FLAG_OF_PARAMETER[match.group(1)], str(exc))
        raise InputError(message) from None


def run_infer(args: argparse.Namespace) -> int:
    from edgepose.io import image_bytes, json_bytes

    given = triton_flags_without_server(args)
    if given:
        raise InputError(f"{', '.join(given)} need(s) --triton")
    if args.triton is not None:
        return run_infer_triton(args)
    if args.model is None:
        raise InputError("infer needs --model (a model file), or --triton URL (a Triton "
                         "server serving the model)")
    if args.source is not None:
        return _run_infer_source(args)
    refused = stream_only_flags(args)
    if refused:
        raise InputError(f"{', '.join(refused)} apply to --source, not to one --image")

    check_paths({"--json": args.json, "--draw": args.draw},
                 {**with_sidecar(args.model), "--image": args.image,
                  "--boxes-json": args.boxes_json, **with_sidecar(args.detector, "--detector")},
                 images=("--draw",))
    detector_options = detector_settings(args)
    image, boxes, scores = read_image_and_boxes(args)
    with parameters_as_flags():
        estimator = _load(args, detector_options)
        with estimator:
            poses = estimator(image, boxes, scores)
    card = estimator.card
    warnings = estimator.warnings(boxes)
    results = poses.to_coco_results(0 if args.image_id is None else args.image_id)
    outputs = []
    if args.json:
        # COCO results are a bare list; a wrapper keeps the warnings beside them.
        payload: object = results
        if warnings or estimator.detector is not None:
            payload = {"warnings": warnings, "results": results}
            if estimator.detector is not None:
                payload["detector"] = {"statement": estimator.detector.statement,
                                       "card": estimator.detector.card.to_dict(),
                                       "people": estimator.last_detections.to_json()}
        outputs.append(("json", args.json, json_bytes(args.json, payload)))
    if args.draw:
        outputs.append(("drawing", args.draw, image_bytes(args.draw,
                                                          estimator.draw(image, poses))))
    report_people(len(poses), args.image,
                  f"{card.family} {card.variant} on {type(estimator.runner).__name__}",
                  warnings, card.random_init, results)
    write_outputs(outputs)
    return 0


def _run_infer_source(args: argparse.Namespace) -> int:
    from edgepose.api import WHOLE_FRAME_WARNING

    for flag, value in (("--boxes", args.boxes), ("--boxes-json", args.boxes_json),
                        ("--draw", args.draw), ("--image-id", args.image_id)):
        if value is not None:
            raise InputError(f"{flag} applies to one --image; with --source the boxes come "
                             "from --detector (or the previous frame's poses)")
    from edgepose.sources import open_source

    source_path = Path(args.source)
    inputs = {**with_sidecar(args.model), **with_sidecar(args.detector, "--detector"),
              **({"--source": source_path} if source_path.exists() else {})}
    check_stream_outputs(args)
    outputs = {"--json": args.json, "--jsonl": args.jsonl, "--video-out": args.video_out}
    check_paths(outputs, inputs)
    detector_options = detector_settings(args)
    if args.det_interval != 1 and args.detector is None:
        raise InputError("--det-interval needs --detector")
    # The source first: a camera that is not there costs nothing to find out.
    with open_source(args.source) as source, parameters_as_flags():
        estimator = _load(args, detector_options)
        with estimator:
            if estimator.detector is None and estimator.top_down:
                print(f"edgepose: warning: {WHOLE_FRAME_WARNING}", file=sys.stderr)
            return run_source(args, estimator, source)


def _load(args: argparse.Namespace, detector_options: dict[str, object]) -> Any:
    """edgepose.load with the infer flags; the detector's card is stated on stderr."""
    from edgepose.api import load

    estimator = load(args.model, flip_test=args.flip, refine=args.refine, preset=args.preset,
                     integer_coords=True if args.integer_coords else None,
                     cuda_graph=args.cuda_graph, cuda_impl=args.cuda, detector=args.detector,
                     detector_options=detector_options)
    if estimator.detector is not None:
        print(estimator.detector.statement, file=sys.stderr)
    return estimator
