"""`edgepose debug-precision`: the fewest layers of an FP16/INT8 graph to keep in FP32 for
its engine to meet the tolerances (calib/precision_search.py), written as a new graph."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgepose.cli.arguments import path_argument
from edgepose.cli.common import check_paths, write_outputs
from edgepose.cli.compare import add_tolerance_options, tolerances_from
from edgepose.errors import EdgeposeError, InputError


def add_debug_precision(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "debug-precision",
        help="find the fewest layers of an FP16/INT8 graph to keep in FP32 (Polygraphy's "
             "debug precision), and write the repaired graph",
        description="Bisect over the layers of CANDIDATE (an FP16 or INT8 graph from 'edgepose "
                    "calibrate') for the fewest to keep in FP32 so that it meets the stated "
                    "tolerances against --against, as Polygraphy's 'debug precision' does: "
                    "each trial writes the precision into the graph (Q/DQ removed, or FP16 "
                    "kept FP32), builds a TensorRT engine from it (--runner tensorrt) or runs "
                    "it on ONNX Runtime's CPU (--runner onnxruntime), and compares it as "
                    "'edgepose compare' does. The graph with those layers in FP32 is written "
                    "to --out. Exit status 1 when even every layer in FP32 fails.")
    parser.add_argument("candidate", type=path_argument, metavar="CANDIDATE",
                        help="the FP16 or INT8 (Q/DQ) ONNX graph that breaks the tolerances")
    parser.add_argument("--against", type=path_argument, required=True, metavar="REFERENCE",
                        help="the FP32 edgepose ONNX graph CANDIDATE was calibrated from; each "
                             "trial is rewritten from it")
    parser.add_argument("--data", type=path_argument, required=True,
                        help="images to crop (a folder) or a video, preprocessed as the runtime "
                             "does")
    parser.add_argument("--out", type=path_argument, required=True,
                        help="the repaired ONNX graph to write (never an input)")
    parser.add_argument("--runner", choices=["auto", "tensorrt", "onnxruntime"], default="auto",
                        help="what runs each trial: tensorrt (an engine built from the trial "
                             "graph, on this GPU), onnxruntime (the trial graph on the CPU, "
                             "FP16 emulated), or auto: tensorrt when it imports, else "
                             "onnxruntime (default %(default)s)")
    parser.add_argument("--direction", choices=["forward", "reverse"], default="forward",
                        help="bisect over prefixes from the inputs (forward) or suffixes from "
                             "the outputs (reverse) of the layer order (default %(default)s)")
    parser.add_argument("--no-refine", dest="refine", action="store_false",
                        help="stop at the shortest passing prefix (suffix), as Polygraphy does: "
                             "fewer builds, usually more layers in FP32; by default the prefix "
                             "is narrowed to the layers it needs")
    parser.add_argument("--seed", type=int, default=0, help="which crops (default 0)")
    parser.add_argument("--json", type=path_argument,
                        help="write the search (every trial and its verdict) here")
    engine = parser.add_argument_group("engine builds (--runner tensorrt), as 'edgepose build'")
    engine.add_argument("--engine-batch", default="1", metavar="MIN:OPT:MAX",
                        help="batch range of each trial engine, or N for 1:N:N (default 1)")
    engine.add_argument("--workspace",
                        help="largest GPU scratch memory a kernel may use, e.g. 2GiB")
    engine.add_argument("--timing-cache", type=path_argument,
                        help="layer timing cache shared by the trial builds (read, then written "
                             "back): later trials skip most kernel timing")
    engine.add_argument("--opt-level", type=int, default=3, choices=range(6), metavar="0-5",
                        help="builder optimisation level (default 3)")
    add_tolerance_options(parser)
    parser.set_defaults(run=run_debug_precision)


def _runner(choice: str) -> str:
    if choice != "auto":
        return choice
    import importlib.util

    return "tensorrt" if importlib.util.find_spec("tensorrt") is not None else "onnxruntime"


def run_debug_precision(args: argparse.Namespace) -> int:
    try:
        import onnx

        from calib.precision_search import PrecisionSearchError, TrialJudge, search_fp32_layers
    except ImportError as exc:
        raise EdgeposeError(f"'edgepose debug-precision' needs the workstation packages "
                            f"({exc.name} is missing); install them with: "
                            "pip install 'edgepose[calib]'") from None
    from edgepose.io import atomic_path, json_bytes, scratch_folder

    check_paths({"--out": args.out, "--json": args.json, "--timing-cache": args.timing_cache},
                {"candidate": args.candidate, "--against": args.against, "--data": args.data,
                 "--annotations": args.annotations})
    tolerances = tolerances_from(args)
    if not (tolerances.outputs_checked or tolerances.max_kpt_error is not None
            or tolerances.max_ap_drop is not None):
        raise InputError("state what the engine must meet (--atol, --rtol, --max-kpt-error or "
                         "--max-ap-drop); with none, every trial passes")
    runner = _runner(args.runner)
    config = None
    if runner == "tensorrt":
        from export.engine.tensorrt import BuildConfig, parse_batch_range, parse_size

        config = BuildConfig(batch=parse_batch_range(args.engine_batch),
                             workspace=parse_size(args.workspace) if args.workspace else None,
                             timing_cache=args.timing_cache, opt_level=args.opt_level)
    candidate, reference = (_load(args.candidate), _load(args.against))
    print(f"trials run on {'TensorRT engines' if runner == 'tensorrt' else 'ONNX Runtime CPU'}",
          file=sys.stderr)

    def show(kept, report) -> None:
        figure = ("" if report.displacement is None
                  else f", p90 displacement {report.displacement[1]:.3f} px")
        print(f"trial: {len(kept)} layer(s) in FP32{figure}: "
              f"{'pass' if report.passed else 'FAIL'}", file=sys.stderr, flush=True)

    with scratch_folder(args.out, "debug-precision") as folder:
        judge = TrialJudge(reference=args.against, data=args.data, folder=folder,
                           tolerances=tolerances, runner=runner, annotations=args.annotations,
                           samples=args.samples, seed=args.seed, build_config=config,
                           on_report=show)
        try:
            result, graph = search_fp32_layers(candidate, reference, judge,
                                               direction=args.direction, refine=args.refine)
        except PrecisionSearchError as exc:
            print(f"edgepose: {exc}", file=sys.stderr)
            return 1
    print(f"{len(result.kept)} of {result.layers} layer(s) kept in FP32 after "
          f"{len(result.trials)} trial(s): {', '.join(result.kept) or 'none'}")
    from export.onnx_files.lint import check_onnx_for_tensorrt

    check_onnx_for_tensorrt(graph)
    with atomic_path(args.out) as temporary:
        onnx.save(graph, str(temporary))
    print(f"  graph: {args.out}")
    if args.json:
        write_outputs([("json", args.json, json_bytes(args.json, result.to_dict()))])
    return 0


def _load(path: Path):
    import onnx

    from edgepose.errors import ModelFileError

    try:
        return onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf raises several unrelated types
        raise ModelFileError(f"{path} is not a readable ONNX file: {exc}") from None
