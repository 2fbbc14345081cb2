"""`edgepose compare`, and the tolerance flags it shares with `edgepose build --verify`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgepose.cli.arguments import path_argument
from edgepose.cli.common import check_paths, with_sidecar, write_outputs
from edgepose.errors import EdgeposeError


#: calib.compare.ERROR_STATS, spelled here so that building the parser imports no
#: workstation package (a test holds the two equal).
ERROR_STATS = ("elemwise", "max", "mean", "median")


class ToleranceBroken(EdgeposeError):
    """The candidate broke a stated tolerance; the report says which."""


def add_tolerance_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    """--atol, --rtol, --error-stat, --max-kpt-error, --max-ap-drop, --samples,
    --annotations (each with `prefix`, e.g. "verify-")."""
    group = parser.add_argument_group("what the candidate must meet (each only when given)")
    group.add_argument(f"--{prefix}atol", type=float, metavar="ABS",
                       help="absolute output tolerance (Polygraphy's atol)")
    group.add_argument(f"--{prefix}rtol", type=float, metavar="REL",
                       help="relative output tolerance (Polygraphy's rtol); with --atol an "
                            "element fails only outside both")
    group.add_argument(f"--{prefix}error-stat", choices=ERROR_STATS, default="elemwise",
                       help="the error statistic the tolerances apply to: elemwise (every "
                            "element), max, mean or median (default %(default)s)")
    group.add_argument(f"--{prefix}max-kpt-error", type=float, metavar="PX",
                       help="largest p90 keypoint displacement in pixels, decoded by edgepose "
                            "(top-down models; the statistic calibrate's gate uses)")
    group.add_argument(f"--{prefix}max-ap-drop", type=float, metavar="POINTS",
                       help="largest COCO AP drop in points (1.0 = 0.010 AP); needs "
                            f"--{prefix}annotations")
    group.add_argument(f"--{prefix}annotations", type=path_argument,
                       help="COCO keypoints file for the images: crops from its boxes, and the "
                            "AP of both models on those images")
    group.add_argument(f"--{prefix}samples", type=int, default=64,
                       help="crops (or frames) to compare (default %(default)s)")


def tolerances_from(args: argparse.Namespace, prefix: str = ""):
    from calib.compare import Tolerances

    def value(name: str):
        return getattr(args, prefix.replace("-", "_") + name)

    return Tolerances(atol=value("atol"), rtol=value("rtol"), error_stat=value("error_stat"),
                      max_kpt_error=value("max_kpt_error"), max_ap_drop=value("max_ap_drop"))


def add_compare(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="check an engine or FP16/INT8 graph against its FP32 ONNX (Polygraphy)",
        description="Run CANDIDATE (a TensorRT engine, on the device, or an ONNX graph, "
                    "anywhere) and the reference ONNX graph (ONNX Runtime, CPU) on the same "
                    "crops of --data, through Polygraphy's runners and Comparator, and report "
                    "per output the max/mean absolute and relative error, the keypoint "
                    "displacement in pixels through edgepose's decoder, and with "
                    "--annotations the AP of both. Exit status 1 when a stated tolerance is "
                    "broken.")
    parser.add_argument("candidate", type=path_argument, metavar="CANDIDATE",
                        help="a TensorRT engine (.engine/.plan with its .json sidecar) or an "
                             "ONNX graph (FP16 parts are emulated on the CPU)")
    parser.add_argument("--against", type=path_argument, required=True, metavar="REFERENCE",
                        help="the FP32 edgepose ONNX graph the candidate came from")
    parser.add_argument("--data", type=path_argument, required=True,
                        help="images to crop (a folder) or a video, preprocessed as the runtime "
                             "does")
    parser.add_argument("--batch", type=int, default=1,
                        help="samples per inference call (default 1; an engine takes what its "
                             "profile allows)")
    parser.add_argument("--seed", type=int, default=0, help="which crops (default 0)")
    parser.add_argument("--json", type=path_argument, help="write the report here")
    add_tolerance_options(parser)
    parser.set_defaults(run=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    try:
        from calib.compare import compare_models
    except ImportError as exc:
        raise EdgeposeError(f"'edgepose compare' needs the workstation packages ({exc.name} is "
                            "missing); install them with: pip install 'edgepose[calib]'") from None
    from edgepose.io import json_bytes

    check_paths({"--json": args.json}, {**with_sidecar(args.candidate, "candidate"),
                                        "--against": args.against, "--data": args.data,
                                        "--annotations": args.annotations})
    report = compare_models(args.candidate, args.against, args.data,
                            annotations=args.annotations, samples=args.samples,
                            batch=args.batch, seed=args.seed, tolerances=tolerances_from(args),
                            progress=sys.stderr.isatty())
    print(report.format_table())
    if args.json:
        write_outputs([("json", args.json, json_bytes(args.json, report.to_dict()))])
    return 0 if report.passed else 1


def verify_built_engine(engine: Path, reference: Path, data: Path,
                        args: argparse.Namespace) -> None:
    """`build --verify`: compare the engine just built (still in scratch) with `reference`;
    ToleranceBroken, with the report, when a stated tolerance is broken."""
    from calib.compare import compare_models

    report = compare_models(engine, reference, data, annotations=args.verify_annotations,
                            samples=args.verify_samples,
                            tolerances=tolerances_from(args, "verify-"),
                            progress=sys.stderr.isatty())
    print(report.format_table())
    if not report.passed:
        raise ToleranceBroken(f"the engine was not written: {'; '.join(report.failures)}")
