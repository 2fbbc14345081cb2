"""Profile ONNX files or engines side by side: print the table, write JSON (and a PNG).

    .venv/bin/python benchmarks/profile_demo.py                      # out/demo/*.onnx
    .venv/bin/python benchmarks/profile_demo.py a.onnx b.onnx --batch 1,4 --iters 200

Without model arguments it profiles the demo's models (`make demo` writes them to
out/demo/), precision order first: FP32, then FP16, then INT8, so the ratios read
as "compared with FP32". Figures depend on the machine and its load; nothing here
asserts a speed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from edgepose.errors import EdgeposeError  # noqa: E402
from edgepose.profile import (parse_batch_sizes, parse_duration, profile_models,  # noqa: E402
                              write_plot, write_report_json)

DEMO = ROOT / "out" / "demo"
DEFAULT_JSON = ROOT / "out" / "benchmarks" / "profile_demo.json"
PRECISION_ORDER = ("fp32", "fp16", "int8")


def _precision_rank(path: Path) -> tuple[int, str]:
    name = path.name.lower()
    rank = next((i for i, p in enumerate(PRECISION_ORDER) if p in name), len(PRECISION_ORDER))
    return rank, name


def demo_models() -> list[Path]:
    return sorted(DEMO.glob("*.onnx"), key=_precision_rank)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path,
                        help="ONNX files or engines, reference first (default: out/demo/*.onnx)")
    parser.add_argument("--batch", default="1,4", help="batch sizes (default 1,4)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up calls (default 20)")
    runs = parser.add_mutually_exclusive_group()
    runs.add_argument("--iters", type=int, help="timed calls per batch size (default 200)")
    runs.add_argument("--duration", help="time per batch size instead, e.g. 10s")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON,
                        help=f"report JSON (default {DEFAULT_JSON.relative_to(ROOT)})")
    parser.add_argument("--plot", type=Path, help="also write a PNG plot here")
    parser.add_argument("--cuda-graph", action="store_true", help="engines: CUDA graphs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")

    models = args.models or demo_models()
    if not models:
        print(f"no models given and none in {DEMO}; run `make demo` first or name ONNX files",
              file=sys.stderr)
        return 2
    try:
        duration = parse_duration(args.duration) if args.duration else None
        iters = args.iters if args.iters is not None or duration is not None else 200
        report = profile_models(models, batch_sizes=parse_batch_sizes(args.batch),
                                warmup=args.warmup, iters=iters, duration_s=duration,
                                cuda_graph=args.cuda_graph, progress=not args.no_progress)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        write_report_json(report, args.json)
        if args.plot:
            write_plot(report, args.plot)
    except EdgeposeError as exc:
        print(f"profile_demo: error: {exc}", file=sys.stderr)
        return 2
    print(report.format_table())
    print(f"\njson: {args.json}")
    if args.plot:
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
