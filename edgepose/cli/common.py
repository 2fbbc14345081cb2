"""What every verb of the command line shares: path checks before any work, the
outputs written all at once at the end, and the options that open a model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgepose.cli.arguments import path_argument as _path


def check_paths(outputs: dict[str, Path | None], inputs: dict[str, Path | None], *,
                 images: tuple[str, ...] = ()) -> None:
    """Every output writable and none of them an input, before any work is done.

    Labels are the options' flags; `images` names the outputs that are drawings.
    """
    from edgepose.io import check_image_output, check_output_path, refuse_overwriting_inputs

    for label, path in outputs.items():
        if path is not None:
            (check_image_output if label in images else check_output_path)(path, label)
    refuse_overwriting_inputs(outputs, inputs)


def with_sidecar(model: Path | None, flag: str = "--model") -> dict[str, Path | None]:
    """The model and, for an engine, the `<engine>.json` sidecar it cannot run without."""
    if model is None:
        return {}
    sidecar = model.with_name(model.name + ".json")
    return {flag: model, f"the sidecar of {flag}": sidecar if sidecar.exists() else None}


def write_outputs(outputs: list[tuple[str, Path, bytes]]) -> None:
    """Write every output of a command at its end, all or none, and name each."""
    from edgepose.io import write_all_atomic

    write_all_atomic([(path, data) for _, path, data in outputs])
    for label, path, _ in outputs:
        print(f"  {label}: {path}")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=_path, required=True,
                        help="model file: .onnx runs on ONNX Runtime (CPU), .engine/.plan on "
                             "TensorRT (with its .json sidecar from 'edgepose build')")
    parser.add_argument("--cuda-graph", action="store_true",
                        help="TensorRT only: capture one CUDA graph per input shape and replay it")
    parser.add_argument("--cuda", choices=["auto", "cuda-python", "pycuda"], default="auto",
                        help="TensorRT only: CUDA binding to use (default auto: cuda-python, "
                             "else pycuda)")


def report_people(count: int, image: Path, where: str, warnings: list[str],
                  random_init: bool, results: list[dict]) -> None:
    """What infer prints for one image: the whole-frame warning, who was found by what,
    the random-weights banner, each person's score."""
    from edgepose.api import RANDOM_WEIGHTS_BANNER, WHOLE_FRAME_WARNING

    if WHOLE_FRAME_WARNING in warnings:
        print(f"edgepose: warning: {WHOLE_FRAME_WARNING}", file=sys.stderr)
    print(f"{count} person(s) in {image} with {where}")
    if random_init:
        print(f"WARNING: {RANDOM_WEIGHTS_BANNER}")
    for person, entry in enumerate(results):
        print(f"  person {person}: score {entry['score']:.3f}")


def read_image_and_boxes(args: argparse.Namespace):
    """(image, boxes, box scores) for infer's --image with --boxes or --boxes-json (None,
    None without either)."""
    from edgepose.io import parse_boxes, read_boxes_json, read_image

    image = read_image(args.image)
    boxes = scores = None
    if args.boxes is not None:
        boxes, scores = parse_boxes(args.boxes)
    elif args.boxes_json is not None:
        boxes, scores = read_boxes_json(args.boxes_json, image_id=args.image_id)
    return image, boxes, scores
