"""The person-detector flags of `infer`, `eval` and `profile`, and the options they
make for edgepose.detect.Detector.open."""

from __future__ import annotations

import argparse

from edgepose.cli.arguments import path_argument, size_argument
from edgepose.errors import InputError


def add_detector_options(parser: argparse.ArgumentParser,
                          boxes: argparse._MutuallyExclusiveGroup) -> None:
    """--detector (in the group of the other box sources) and its card overrides."""
    from edgepose.detect.card import FORMATS, PADS, RESIZES
    from edgepose.detect.detector import NORMALIZATIONS

    boxes.add_argument("--detector", type=path_argument,
                       help="person detector, .onnx (ONNX Runtime) or .engine/.plan (TensorRT, "
                            "built by 'edgepose build'): finds the people a top-down model "
                            "crops. An ONNX without an edgepose detector card is read as its "
                            "exporter writes it (format, input size and class names from the "
                            "graph), stated in one line; the options below override that")
    group = parser.add_argument_group("detector card overrides (with --detector)")
    group.add_argument("--detector-format", choices=FORMATS,
                       help="output format where the graph does not tell: yolov8 (raw "
                            "(1, 4+nc, A), also YOLO11), yolox (raw (1, A, 5+nc)), end2end "
                            "((1, N, 6), YOLOv10/YOLO26), mmdeploy (dets + labels), "
                            "efficientnms (its four outputs), onnx_nms (NonMaxSuppression "
                            "inside)")
    group.add_argument("--detector-size", type=size_argument, metavar="HxW",
                       help="input height x width, for a graph whose input size is dynamic "
                            "(e.g. 640x640)")
    group.add_argument("--detector-person-class", type=int, metavar="ID",
                       help="class id of people (default: 'person' in the graph's class names, "
                            "else 0)")
    group.add_argument("--detector-score", type=float, metavar="S",
                       help="drop boxes scoring below S (default: the card's, 0.3 when guessed)")
    group.add_argument("--detector-iou", type=float, metavar="T",
                       help="NMS IoU threshold for raw formats (default: the card's, 0.45)")
    group.add_argument("--detector-max", type=int, metavar="N",
                       help="keep at most N people per frame (default: the card's, 100)")
    group.add_argument("--detector-color", choices=["RGB", "BGR"],
                       help="input colour order (default: the exporter's: RGB for "
                            "Ultralytics, BGR for YOLOX and mmdeploy)")
    group.add_argument("--detector-normalize", choices=list(NORMALIZATIONS),
                       help="input scaling: unit (x/255, Ultralytics), raw (0-255, YOLOX), "
                            "imagenet (mmdet mean/std)")
    group.add_argument("--detector-resize", choices=RESIZES,
                       help="letterbox (keep the aspect ratio and pad) or stretch")
    group.add_argument("--detector-pad", choices=PADS,
                       help="letterbox padding: center (Ultralytics) or corner (bottom and "
                            "right: YOLOX, mmdet)")


def detector_settings(args: argparse.Namespace) -> dict[str, object]:
    """Detector.open's options from the flags; an override without --detector is refused."""
    options = {"format": args.detector_format, "input_size": args.detector_size,
               "person_class": args.detector_person_class,
               "score_threshold": args.detector_score, "iou_threshold": args.detector_iou,
               "max_detections": args.detector_max, "color": args.detector_color,
               "normalize": args.detector_normalize, "resize": args.detector_resize,
               "pad": args.detector_pad}
    given = {k: v for k, v in options.items() if v is not None}
    if given and args.detector is None:
        flags = ", ".join(f"--detector-{_DETECTOR_FLAG[k]}" for k in given)
        raise InputError(f"{flags} need(s) --detector")
    return given


_DETECTOR_FLAG = {"format": "format", "input_size": "size", "person_class": "person-class",
                  "score_threshold": "score", "iou_threshold": "iou", "max_detections": "max",
                  "color": "color", "normalize": "normalize", "resize": "resize", "pad": "pad"}
