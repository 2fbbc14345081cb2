"""Serial loop against the pipelined runtime on one video, side by side in one run.

    .venv/bin/python benchmarks/stream_pipeline.py            # after `make demo`
    .venv/bin/python benchmarks/stream_pipeline.py --video clip.mp4 --model m.onnx --detector d.onnx

Three runs of the same frames through detector → pose → tracker → drawing and JSON
lines: (1) the serial loop with ONNX Runtime's default threads (what a user gets
without --pipelined); (2) the serial loop with --threads intra-op threads per model,
timing each stage; (3) the pipelined runtime with the same threads. The bound for (3)
is 1 / (slowest stage of (2)); efficiency = FPS(3) × slowest stage. On a GPU the
networks leave the CPU to the host stages, so the gain over the serial loop grows;
run this there with engines to see it. Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from benchmarks.timing import machine, write_report  # noqa: E402
from edgepose.errors import EdgeposeError  # noqa: E402

DEMO = ROOT / "out" / "demo"
DEFAULT_JSON = ROOT / "out" / "benchmarks" / "stream_pipeline.json"
GOAL_EFFICIENCY = 0.85


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEMO / "hrnet_w10_128x96.onnx",
                        help="top-down pose model (default: the demo HRNet make demo wrote)")
    parser.add_argument("--detector", type=Path, default=DEMO / "person_detector.onnx",
                        help="person detector (default: the demo detector make demo carded)")
    parser.add_argument("--video", type=Path,
                        help="video to run (default: a 60-frame synthetic video of walking "
                             "people, written to out/benchmarks/stream_video/)")
    parser.add_argument("--frames", type=int, default=60,
                        help="frames of the default synthetic video (default 60)")
    parser.add_argument("--det-interval", type=int, default=1,
                        help="run the detector every K frames (default 1)")
    parser.add_argument("--threads", type=int, default=1,
                        help="ONNX Runtime intra-op threads per model in runs 2 and 3 "
                             "(default 1: the 2 cores go to different stages)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON,
                        help=f"report JSON (default {DEFAULT_JSON.relative_to(ROOT)})")
    return parser


def _default_video(frames: int) -> Path:
    from export.training.synthetic.video import SyntheticVideoConfig, write_synthetic_video

    folder = ROOT / "out" / "benchmarks" / "stream_video"
    folder.mkdir(parents=True, exist_ok=True)
    video, _ = write_synthetic_video(folder, SyntheticVideoConfig(frames=frames, seed=3))
    return video


def _run(args: argparse.Namespace, video: Path, *, threads: int | None,
         pipelined: bool, stages: dict[str, list[int]] | None) -> dict[str, float]:
    import edgepose
    from edgepose.sinks import frame_record

    lines = io.StringIO()
    sink_ns: list[int] = []
    frames = people = 0
    with edgepose.load(args.model, detector=args.detector, threads=threads) as estimator:
        began = time.perf_counter()
        for frame, poses in estimator.stream(video, det_interval=args.det_interval,
                                             pipelined=pipelined, stage_ns=stages):
            drawn = time.perf_counter_ns()
            estimator.draw(frame.image, poses)
            lines.write(json.dumps(frame_record(frame, poses)) + "\n")
            sink_ns.append(time.perf_counter_ns() - drawn)
            frames += 1
            people += len(poses)
        wall = time.perf_counter() - began
    if stages is not None:
        stages["draw+write"] = sink_ns
    return {"frames": frames, "people": people, "wall_s": wall, "fps": frames / wall}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        for what, path in (("--model", args.model), ("--detector", args.detector)):
            if not path.is_file():
                raise EdgeposeError(f"{what} {path} does not exist; run `make demo` first or "
                                    f"name the file")
        video = args.video or _default_video(args.frames)
        serial = _run(args, video, threads=None, pipelined=False, stages=None)
        stages: dict[str, list[int]] = {}
        timed = _run(args, video, threads=args.threads, pipelined=False, stages=stages)
        pipelined = _run(args, video, threads=args.threads, pipelined=True, stages=None)
    except EdgeposeError as exc:
        print(f"stream_pipeline: error: {exc}", file=sys.stderr)
        return 2
    # Reading and detecting share a thread in the pipeline: they are one stage there.
    per_stage = {name: statistics.fmean(values) / 1e6 for name, values in stages.items()}
    pipeline_stages = {"read+detect": per_stage["read"] + per_stage["detect"],
                       "pose": per_stage["pose"], "draw+write": per_stage["draw+write"]}
    slowest = max(pipeline_stages, key=pipeline_stages.get)
    bound_fps = 1e3 / pipeline_stages[slowest]
    efficiency = pipelined["fps"] / bound_fps
    gain = pipelined["fps"] / serial["fps"]
    print(f"{video.name}: {pipelined['frames']} frames, detector every {args.det_interval} "
          f"frame(s), {pipelined['people']} people posed")
    print(f"{'run':<44}{'FPS':>8}")
    print(f"{'1 serial, ONNX Runtime default threads':<44}{serial['fps']:>8.1f}")
    print(f"{f'2 serial, {args.threads} thread(s) per model':<44}{timed['fps']:>8.1f}")
    print(f"{f'3 pipelined, {args.threads} thread(s) per model':<44}{pipelined['fps']:>8.1f}")
    print("stage means in run 2 (ms): " + ", ".join(f"{k} {v:.1f}"
                                                    for k, v in pipeline_stages.items()))
    print(f"slowest stage {slowest}: bound {bound_fps:.1f} FPS; pipelined efficiency "
          f"{efficiency:.2f} (goal >= {GOAL_EFFICIENCY}: "
          f"{'met' if efficiency >= GOAL_EFFICIENCY else 'NOT met'}); gain over the serial "
          f"loop {gain:.2f}x")
    write_report(args.json, {
        "video": str(video), "model": str(args.model), "detector": str(args.detector),
        "det_interval": args.det_interval, "threads": args.threads,
        "runs": {"serial_default_threads": serial, "serial_timed": timed,
                 "pipelined": pipelined},
        "stage_ms": per_stage, "pipeline_stage_ms": pipeline_stages, "slowest_stage": slowest,
        "bound_fps": bound_fps, "efficiency": efficiency, "gain_over_serial": gain,
        "goal_efficiency": GOAL_EFFICIENCY, "machine": machine()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
