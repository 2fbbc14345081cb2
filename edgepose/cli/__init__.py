"""The `edgepose` command: a thin layer, one public function per verb.

Workstation verbs (export) import torch-side packages lazily, so the on-device
runtime never needs them installed.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path
from typing import Callable, Sequence

import edgepose
from edgepose.api import RANDOM_WEIGHTS_BANNER
from edgepose.cli.arguments import path_argument as _path
from edgepose.cli.compare import add_compare as _add_compare
from edgepose.cli.compare import add_tolerance_options, verify_built_engine
from edgepose.cli.precision_search import add_debug_precision as _add_debug_precision
from edgepose.cli.common import add_model_options as _add_model_options
from edgepose.cli.common import check_paths as _check_paths
from edgepose.cli.common import with_sidecar as _with_sidecar
from edgepose.cli.common import write_outputs as _write_outputs
from edgepose.cli.detector_flags import add_detector_options, detector_settings
from edgepose.cli.infer import add_infer as _add_infer
from edgepose.cli.triton_export import add_triton as _add_triton
from edgepose.cli.triton_client import (add_concurrency_option, add_triton_options,
                                        run_profile_triton, triton_flags_without_server)
from edgepose.errors import EdgeposeError, InputError

log = logging.getLogger("edgepose")


def _add_export(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="PyTorch checkpoint -> ONNX with its model card (workstation)",
        description="Load an official checkpoint strictly, export it to ONNX with a dynamic "
                    "batch axis and the edgepose model card embedded, then check the ONNX "
                    "output against PyTorch with ONNX Runtime. 'export detector' instead "
                    "copies a person detector's ONNX (--detector) with its detector card "
                    "embedded.")
    parser.add_argument("family",
                        choices=["hrnet", "openpose", "cpm", "hourglass", "ae", "higherhrnet",
                                 "detector"],
                        help="model family, or 'detector' for a person detector's ONNX")
    parser.add_argument("--variant",
                        help="HRNet: w{width}_{height}x{width}, e.g. w32_256x192, w48_384x288, "
                             "w8_128x96; OpenPose: coco18 or body25; CPM: centermap (6 stages, "
                             "pose_deploy_centerMap) or vgg (pose_deploy_resize); hourglass: "
                             "princeton_s8, princeton_s2, bearpaw_s8_b1, bearpaw_s2_b1; ae: "
                             "hg4_512 (pose-ae-train); higherhrnet: w32_512, w32_640, w48_640")
    parser.add_argument("--checkpoint", type=_path,
                        help="official or mmpose .pth / .pth.tar (loaded with "
                             "weights_only=True), or CMU's OpenPose/CPM .caffemodel (read "
                             "without Caffe); for HRNet, the decoder block of a training "
                             "record beside it (CHECKPOINT with .json, from python -m "
                             "export.training.hrnet) goes into the card")
    parser.add_argument("--input-size", metavar="HxW",
                        help="network input HEIGHTxWIDTH, multiples of 8, for families whose "
                             "variant does not fix it (OpenPose; default 368x656)")
    parser.add_argument("--random-init", action="store_true",
                        help="export untrained random weights (toolchain tests only)")
    parser.add_argument("--keypoints",
                        help="keypoint set (coco17, mpii16, coco18, body25, mpii_cpm14); "
                             "default: from the checkpoint's number of output channels")
    parser.add_argument("--opset", type=int, default=17,
                        help="ONNX opset, 16 to 23, the range this torch writes as asked "
                             "(default 17); the file's own opset is printed")
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the ONNX Runtime vs PyTorch comparison")
    parser.add_argument("--out", type=_path, required=True, help="ONNX file to write")
    add_detector_options(parser, parser.add_mutually_exclusive_group())
    parser.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    if args.family == "detector":
        return _run_export_detector(args)
    if args.detector is not None:
        raise InputError("--detector is the input of 'edgepose export detector'")
    if args.variant is None:
        raise InputError(f"'edgepose export {args.family}' needs --variant")
    detector_settings(args)     # a --detector-* flag without --detector is refused
    try:
        from export.families import export_model, parse_input_size
    except ImportError as exc:
        raise _workstation_import("export", "export")(exc) from None
    inputs: dict[str, Path | None] = {"--checkpoint": args.checkpoint}
    if args.checkpoint is not None:
        inputs["the training record of --checkpoint"] = args.checkpoint.with_suffix(".json")
    _check_paths({"--out": args.out}, inputs)
    input_size = parse_input_size(args.input_size) if args.input_size is not None else None
    result = export_model(args.family, args.variant, args.out, checkpoint=args.checkpoint,
                          random_init=args.random_init, keypoints=args.keypoints,
                          input_size=input_size, opset=args.opset, verify=not args.no_verify)
    print(f"wrote {result.path} ({result.card.family} {result.card.variant}, "
          f"{result.card.keypoints}, weights: {result.layout}, opset {result.opset})")
    record = result.card.source.get("decoder_from")
    if record is not None:
        print(f"  decoder: {result.card.decoder.refine}, as the training record {record} says")
    for check in result.verification:
        print(f"  ONNX Runtime vs PyTorch, {check}")
    if result.card.random_init:
        print(f"  WARNING: {RANDOM_WEIGHTS_BANNER}")
    return 0


def _run_export_detector(args: argparse.Namespace) -> int:
    try:
        from export.onnx_files.detector import export_detector
    except ImportError as exc:
        raise _workstation_import("export", "export")(exc) from None
    if args.detector is None:
        raise InputError("'edgepose export detector' needs --detector, the detector's ONNX")
    pose_only = [flag for flag, value in (("--variant", args.variant),
                                          ("--checkpoint", args.checkpoint),
                                          ("--input-size", args.input_size),
                                          ("--keypoints", args.keypoints),
                                          ("--random-init", args.random_init or None))
                 if value is not None]
    if pose_only:
        raise InputError(f"{', '.join(pose_only)} do(es) not apply to 'export detector'")
    _check_paths({"--out": args.out}, {"--detector": args.detector})
    card = export_detector(args.detector, args.out, **detector_settings(args))
    print(f"wrote {args.out} with its detector card: {card.describe()}")
    return 0


def _workstation_import(verb: str, extra: str):
    """Import error from a workstation verb → one line naming the extra to install."""
    def refuse(exc: ImportError) -> EdgeposeError:
        return EdgeposeError(f"'edgepose {verb}' needs the workstation packages ({exc.name} is "
                             f"missing); install them with: pip install 'edgepose[{extra}]'")
    return refuse


def _add_build(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "build", help="ONNX -> TensorRT engine + <engine>.json sidecar (on the target GPU)",
        description="Build a strongly typed TensorRT engine from an edgepose ONNX file. "
                    "Precision comes from the graph (FP32, or FP16/INT8 graphs from "
                    "'edgepose calibrate'), never from builder flags, so the same command "
                    "works on TensorRT 10.3 (JetPack 6) and 11.x. Run it on the device the "
                    "engine is for: plans are tied to the GPU and TensorRT version.")
    parser.add_argument("onnx", type=_path, help="edgepose ONNX file (with its model card)")
    parser.add_argument("--out", type=_path, required=True,
                        help="engine file to write (.engine or .plan); the sidecar goes to "
                             "<out>.json")
    parser.add_argument("--batch", default="1",
                        help="batch sizes of the optimisation profile, MIN:OPT:MAX, or N for "
                             "1:N:N; the engine takes any batch in range, tuned for OPT "
                             "(default 1)")
    parser.add_argument("--workspace",
                        help="largest GPU scratch memory a kernel may use, e.g. 2GiB, 512MiB "
                             "(default: TensorRT's, the whole device memory)")
    parser.add_argument("--timing-cache", type=_path,
                        help="layer timing cache: read if present, written back after the "
                             "build, so rebuilds on the same GPU skip most kernel timing")
    parser.add_argument("--opt-level", type=int, default=3, choices=range(6), metavar="0-5",
                        help="builder optimisation level; higher searches longer for faster "
                             "kernels (default 3)")
    parser.add_argument("--version-compatible", action="store_true",
                        help="a plan later TensorRT versions of the same major version can run "
                             "(embeds the lean runtime; runs on tensorrt_lean)")
    parser.add_argument("--hardware-compatible", nargs="?", const="ampere_plus",
                        default="none", choices=["none", "ampere_plus", "same_compute_capability"],
                        help="a plan other GPUs can run: ampere_plus (any Ampere or newer, the "
                             "default when given without a value) or same_compute_capability "
                             "(TensorRT 11 only)")
    parser.add_argument("--dla-core", type=int,
                        help="Jetson: build for this DLA core, with GPU fallback for layers "
                             "the DLA cannot run")
    parser.add_argument("--verbose", dest="verbose_build", action="store_true",
                        help="TensorRT's verbose build log instead of warnings only")
    parser.add_argument("--verify", type=_path, metavar="DATA",
                        help="before the engine is written in place, compare it with "
                             "--verify-against on crops of these images (as 'edgepose "
                             "compare'); a broken --verify-* tolerance leaves no engine")
    parser.add_argument("--verify-against", type=_path, metavar="REFERENCE",
                        help="the ONNX graph to compare with (default: the ONNX being built, "
                             "so TensorRT is checked against what the graph computes)")
    add_tolerance_options(parser, prefix="verify-")
    parser.set_defaults(run=_run_build)


def _run_build(args: argparse.Namespace) -> int:
    try:
        from export.engine.tensorrt import BuildConfig, build_engine, parse_batch_range, parse_size
    except ImportError as exc:
        raise _workstation_import("build", "trt")(exc) from None
    # The timing cache is read and written back: an output that may exist, never the ONNX.
    _check_paths({"--out": args.out, "the sidecar of --out": args.out.with_name(
        args.out.name + ".json"), "--timing-cache": args.timing_cache},
        {"onnx": args.onnx, "--verify": args.verify, "--verify-against": args.verify_against,
         "--verify-annotations": args.verify_annotations})
    verify_flags = [flag for flag, value in (
        ("--verify-against", args.verify_against), ("--verify-annotations",
                                                    args.verify_annotations),
        ("--verify-atol", args.verify_atol), ("--verify-rtol", args.verify_rtol),
        ("--verify-max-kpt-error", args.verify_max_kpt_error),
        ("--verify-max-ap-drop", args.verify_max_ap_drop)) if value is not None]
    if args.verify is None and verify_flags:
        raise InputError(f"{', '.join(verify_flags)} need(s) --verify DATA")
    config = BuildConfig(
        batch=parse_batch_range(args.batch),
        workspace=parse_size(args.workspace) if args.workspace else None,
        timing_cache=args.timing_cache, opt_level=args.opt_level,
        version_compatible=args.version_compatible,
        hardware_compatibility=args.hardware_compatible, dla_core=args.dla_core,
        verbose=args.verbose_build)
    if args.verify is None:
        path = build_engine(args.onnx, args.out, config)
    else:
        path = _build_verified(args, config, build_engine)
    print(f"wrote {path} and {path.name}.json (batch {':'.join(map(str, config.batch))})")
    return 0


def _build_verified(args: argparse.Namespace, config, build_engine) -> Path:
    """Build into scratch beside --out, compare, and only then move the engine and its
    sidecar into place."""
    import os

    from edgepose.io import scratch_folder
    from edgepose.sidecar import sidecar_path

    with scratch_folder(args.out, "verify") as folder:
        built = build_engine(args.onnx, folder / args.out.name, config)
        verify_built_engine(built, args.verify_against or args.onnx, args.verify, args)
        os.replace(sidecar_path(built), sidecar_path(args.out))
        os.replace(built, args.out)
    return args.out


def _add_calibrate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate", help="FP32 ONNX -> FP16 or INT8 (Q/DQ) ONNX, measured before any engine",
        description="Write the precision into the graph (TensorRT 11 has no FP16/INT8 "
                    "builder flags): FP16 casts with FP32 I/O, or symmetric INT8 "
                    "Quantize/Dequantize pairs where TensorRT fuses them. Calibration data "
                    "goes through the runtime's own preprocessing; an accuracy report "
                    "(and, with a gate, layer fallback) comes with the graph.")
    parser.add_argument("model", type=_path, help="FP32 edgepose ONNX file (from 'edgepose export')")
    parser.add_argument("--data", type=_path, required=True,
                        help="calibration images: a folder of images, or a video file (every "
                             "n-th frame)")
    parser.add_argument("--annotations", type=_path,
                        help="COCO keypoints file for --data: person crops from its boxes, and "
                             "COCO AP in the report and the gate")
    parser.add_argument("--precision", choices=["fp16", "int8"], required=True,
                        help="fp16: FP16 graph, layers whose activations overflow FP16 kept "
                             "FP32; int8: Q/DQ graph")
    parser.add_argument("--method", choices=["entropy", "percentile", "minmax", "mse"],
                        default="entropy",
                        help="INT8 activation ranges: entropy (KL divergence, as TensorRT), "
                             "percentile, minmax or mse (default entropy)")
    parser.add_argument("--percentile", type=float, default=99.99,
                        help="percentile for --method percentile (default 99.99)")
    parser.add_argument("--samples", type=int, default=512,
                        help="calibration samples (default 512; fewer available: all are used)")
    parser.add_argument("--int8-fallback", choices=["fp16", "fp32"], default="fp16",
                        help="precision of layers left unquantised (default fp16)")
    parser.add_argument("--max-ap-drop", type=float,
                        help="accuracy gate: largest COCO AP drop in points (1.0 = 0.010 AP); "
                             "the worst layers fall back until it holds (needs --annotations)")
    parser.add_argument("--max-kpt-error", type=float, metavar="PX",
                        help="accuracy gate: largest p90 keypoint displacement vs FP32, pixels")
    parser.add_argument("--force", action="store_true",
                        help="write the best graph reached even when the gate cannot be met")
    parser.add_argument("--cache", type=_path,
                        help="JSON calibration cache: reused when it matches the graph and the "
                             "data, written otherwise")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--out", type=_path, required=True, help="calibrated ONNX file to write")
    parser.set_defaults(run=_run_calibrate)


def _run_calibrate(args: argparse.Namespace) -> int:
    try:
        from calib.calibrate import calibrate
    except ImportError as exc:
        raise _workstation_import("calibrate", "calib")(exc) from None
    _check_paths({"--out": args.out, "--cache": args.cache},
                 {"model": args.model, "--data": args.data, "--annotations": args.annotations})
    result = calibrate(args.model, args.out, data=args.data, annotations=args.annotations,
                       precision=args.precision, method=args.method, samples=args.samples,
                       percentile=args.percentile, int8_fallback=args.int8_fallback,
                       max_ap_drop=args.max_ap_drop, max_kpt_error=args.max_kpt_error,
                       force=args.force, cache=args.cache, seed=args.seed,
                       progress=sys.stderr.isatty())
    print(result.summary())
    return 0


def _add_eval(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="COCO keypoint AP/AR (or MPII PCKh) of a model on an annotated image set",
        description="Run the model on every annotated person (ground-truth boxes, or a "
                    "detections file) and score the results with pycocotools' OKS-based "
                    "COCO keypoint evaluation; with --mpii-gt, score an MPII16 top-down "
                    "model by PCKh@0.5 as the official HRNet code does.")
    _add_model_options(parser)
    parser.add_argument("--annotations", type=_path, required=True,
                        help="COCO person_keypoints JSON (with --mpii-gt: HRNet's MPII "
                             "valid.json)")
    parser.add_argument("--images", type=_path, required=True,
                        help="folder holding the images the annotations name")
    boxes = parser.add_mutually_exclusive_group()
    boxes.add_argument("--detections", type=_path,
                       help="COCO detection results JSON to take person boxes from "
                            "(default: the ground-truth boxes)")
    add_detector_options(parser, boxes)
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                        help="flip test (default: as the model card says)")
    parser.add_argument("--refine", choices=["none", "shift", "dark", "princeton", "bearpaw"],
                        help="sub-pixel refinement (default: as the model card says); "
                             "'princeton'/'bearpaw' for Stacked Hourglass")
    parser.add_argument("--mpii-gt", type=_path, metavar="GT_VALID_MAT",
                        help="MPII's gt_valid.mat (pos_gt_src, jnt_missing, headboxes_src): "
                             "score PCKh per joint group, Mean and Mean@0.1 instead of COCO AP")
    parser.add_argument("--limit", type=int,
                        help="evaluate only the first N images (people, with --mpii-gt)")
    parser.add_argument("--json", type=_path, help="write every metric and the setup here")
    parser.set_defaults(run=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    _check_paths({"--json": args.json},
                 {**_with_sidecar(args.model), "--annotations": args.annotations,
                  "--images": args.images, "--detections": args.detections,
                  "--mpii-gt": args.mpii_gt, **_with_sidecar(args.detector, "--detector")})
    detector_options = detector_settings(args)
    if args.mpii_gt is not None:
        from edgepose.evaluate_mpii import evaluate_mpii

        if args.detections is not None or args.detector is not None:
            raise InputError("--detections and --detector are for COCO evaluation; MPII crops "
                             "come from the annotations' centers and scales")
        report = evaluate_mpii(args.model, args.annotations, args.mpii_gt, args.images,
                               flip=args.flip, refine=args.refine, limit=args.limit,
                               cuda_graph=args.cuda_graph, cuda_impl=args.cuda)
        what = f"{report.family} {report.variant}"
        unit = ", PCKh (%):"
    else:
        from edgepose.evaluate import evaluate_model

        report = evaluate_model(args.model, args.annotations, args.images, flip=args.flip,
                                refine=args.refine, detections=args.detections,
                                limit=args.limit, cuda_graph=args.cuda_graph,
                                cuda_impl=args.cuda, detector=args.detector,
                                detector_options=detector_options)
        what = f"{report.family} {report.variant} ({report.precision})"
        unit = ""
    print(f"{what} on {report.backend}: {report.people} people in {report.images} images, "
          f"{report.wall_time_s:.1f} s{unit}")
    if args.mpii_gt is None:
        # The same weights score points apart under another decoder (the demo model:
        # 0.820 with DARK, 0.796 with the shift), so the table names its setup.
        print(f"  refine {report.refine}, flip test {'on' if report.flip_test else 'off'}, "
              f"boxes: {report.box_source}")
        if report.detector is not None:
            print(f"  {report.detector}", file=sys.stderr)
            box = report.box_metrics or {}
            print(f"  detector person boxes: AP {box.get('AP', math.nan):.3f}, AP50 "
                  f"{box.get('AP50', math.nan):.3f}, AR100 {box.get('AR100', math.nan):.3f}; "
                  f"{report.ms_per_image:.1f} ms per image (detect, pose, reading)")
    if report.random_init:
        print(f"WARNING: {RANDOM_WEIGHTS_BANNER}")
    if args.mpii_gt is None and report.skipped_boxes:
        print(f"edgepose: warning: {report.skipped_boxes} box(es) left nothing to crop (zero "
              "width or height, or wholly outside the image) and were not run; with "
              "ground-truth boxes those people count as missed", file=sys.stderr)
    print(report.format_table())
    if args.json:
        from edgepose.io import json_bytes

        _write_outputs([("json", args.json, json_bytes(args.json, report.to_dict()))])
    return 0


def _add_profile(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "profile", help="latency per stage, per batch size, per model, side by side",
        description="Time the top-down chain stage by stage (preprocess, host->device, "
                    "inference, device->host, decode, end to end): CUDA events on a GPU, "
                    "perf_counter on the CPU. Several models run in one process and one "
                    "table, with ratios to the first, so comparisons share the machine and "
                    "the moment. With --triton URL instead of MODEL: a Triton server's pose "
                    "model under 1, 4, 16, ... concurrent clients (--concurrency), requests/s "
                    "and latency percentiles per level, measured by the clients.")
    parser.add_argument("models", nargs="*", type=_path, metavar="MODEL",
                        help="ONNX files (ONNX Runtime, CPU) or TensorRT engines (.engine/.plan "
                             "with their .json sidecar); the first is the reference for the "
                             "ratio column; none with --triton")
    parser.add_argument("--batch", default=None,
                        help="batch sizes (people per call) to time, in order, e.g. 1,2,4,8 "
                             "(default 1); not with --video")
    parser.add_argument("--warmup", type=int,
                        help="calls before timing, per batch size (per model with --video); the "
                             "first is reported alone as the first-call latency (default 50; "
                             "10 with --video; with --triton: untimed requests per client "
                             "thread, default 3)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--iters", type=int,
                        help="timed calls per batch size (default 500); with --video, the most "
                             "frames to time (default: the whole video); with --triton, the "
                             "timed requests of each concurrency level, shared by its clients "
                             "(default 200)")
    length.add_argument("--duration",
                        help="time each batch size for this long instead of --iters, e.g. 10s, "
                             "500ms, 2m (with --video: each model; with --triton: each "
                             "concurrency level)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--image", type=_path,
                        help="frame to crop people from (default: a seeded 1280x720 noise "
                             "frame); with --triton, the file's bytes are sent as stored (the "
                             "default frame as PNG)")
    source.add_argument("--video", type=_path,
                        help="time the full chain frame by frame over this video, decoding "
                             "included, instead of batch sweeps")
    boxes = parser.add_mutually_exclusive_group()
    boxes.add_argument("--boxes",
                       help='person boxes in pixels, "x,y,w,h;...": with --image they fill each '
                            "batch in order, repeating; with --video the same boxes on every "
                            "frame (default: boxes on a grid / the whole frame); with --triton "
                            "sent with every request (default: none, the server's detector or "
                            "the whole frame)")
    boxes.add_argument("--boxes-json", type=_path,
                       help="with --video: per-frame boxes, a JSON list holding one list of "
                            '[x,y,w,h] or {"bbox": ...} per frame; the run stops where the '
                            "list ends")
    add_detector_options(parser, boxes)
    parser.add_argument("--cuda-graph", action="store_true",
                        help="engines: capture and replay a CUDA graph per batch size")
    parser.add_argument("--layers", action="store_true",
                        help="engines: per-layer times from TensorRT's profiler (50 calls at "
                             "the first batch size, on a separate runner); top 15 printed")
    parser.add_argument("--json", type=_path, help="write every figure and the environment here")
    parser.add_argument("--plot", type=_path,
                        help="write a PNG: latency per batch size and a latency histogram")
    add_concurrency_option(add_triton_options(parser, instead_of="MODEL"))
    parser.set_defaults(run=_run_profile)


def _run_profile(args: argparse.Namespace) -> int:
    from edgepose.io import parse_boxes
    from edgepose.io import image_bytes, json_bytes
    from edgepose.profile import parse_batch_sizes, parse_duration, plot_image, profile_models

    given = triton_flags_without_server(args) + (["--concurrency"] if args.concurrency and
                                                 args.triton is None else [])
    if given:
        raise InputError(f"{', '.join(given)} need(s) --triton")
    if args.triton is not None:
        return run_profile_triton(args)
    if not args.models:
        raise InputError("profile needs a MODEL file (or several), or --triton URL")
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise InputError(f"--plot is a PNG; name the file *.png, not {args.plot.name!r}")
    inputs: dict[str, Path | None] = {"--image": args.image, "--video": args.video,
                                      "--boxes-json": args.boxes_json,
                                      **_with_sidecar(args.detector, "--detector")}
    detector_options = detector_settings(args)
    for index, model in enumerate(args.models):
        inputs.update({f"{label} {index + 1}": path
                       for label, path in _with_sidecar(model).items()})
    _check_paths({"--json": args.json, "--plot": args.plot}, inputs, images=("--plot",))
    boxes = args.boxes_json
    if args.boxes is not None:
        boxes = parse_boxes(args.boxes)[0]
    report = profile_models(
        args.models, batch_sizes=parse_batch_sizes(args.batch) if args.batch else None,
        warmup=args.warmup, iters=args.iters,
        duration_s=parse_duration(args.duration) if args.duration else None,
        image=args.image, video=args.video, boxes=boxes, cuda_graph=args.cuda_graph,
        layers=args.layers, progress=sys.stderr.isatty(), detector=args.detector,
        detector_options=detector_options)
    print(report.format_table())
    outputs = []
    if args.json:
        outputs.append(("json", args.json, json_bytes(args.json, report.to_dict())))
    if args.plot:
        outputs.append(("plot", args.plot, image_bytes(args.plot, plot_image(report))))
    _write_outputs(outputs)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgepose",
        description="Human pose estimation from PyTorch checkpoints to TensorRT engines.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version",
                        version=f"edgepose {edgepose.__version__}",
                        help="print the version and exit")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_export, _add_calibrate, _add_build, _add_infer, _add_eval, _add_profile,
                _add_triton, _add_compare, _add_debug_precision):
        add(subparsers)
    return parser


#: Options whose value may start with "-" (a box left of or above the frame).
_NEGATIVE_VALUE_OPTIONS = ("--boxes",)


def _join_negative_values(argv: Sequence[str]) -> list[str]:
    """`--boxes -40,10,80,90` → `--boxes=-40,10,80,90`: argparse takes a value starting
    with "-" for an option unless it is one plain number."""
    joined: list[str] = []
    items = list(argv)
    index = 0
    while index < len(items):
        item = items[index]
        if (item in _NEGATIVE_VALUE_OPTIONS and index + 1 < len(items)
                and items[index + 1].startswith("-") and len(items[index + 1]) > 1
                and (items[index + 1][1].isdigit() or items[index + 1][1] == ".")):
            joined.append(f"{item}={items[index + 1]}")
            index += 2
            continue
        joined.append(item)
        index += 1
    return joined


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_join_negative_values(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(name)s: %(message)s")
    # Our own progress notes are shown by default; other libraries only warn.
    for name in ("edgepose", "export", "calib"):
        logging.getLogger(name).setLevel(logging.DEBUG if args.verbose else logging.INFO)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except EdgeposeError as exc:
        print(f"edgepose: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
