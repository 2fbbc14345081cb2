"""`edgepose infer --source SRC`: every frame of a source through the model, into
JSON lines, COCO results, an annotated video or a window."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from edgepose.cli.arguments import path_argument
from edgepose.errors import InputError


def add_stream_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("streams (with --source)")
    group.add_argument("--jsonl", type=path_argument,
                       help="write one JSON line per frame: frame index, timestamp, and per "
                            "person the box, keypoints [x, y, score], score and track id")
    group.add_argument("--video-out", type=path_argument,
                       help="write the frames with the poses drawn, as .mp4 (mp4v) or .avi "
                            "(MJPG), at the source's frame rate")
    group.add_argument("--show", action="store_true",
                       help="show the drawn frames in a window (needs a display); q or Esc "
                            "stops")
    group.add_argument("--det-interval", type=int, default=1, metavar="K",
                       help="with --detector: run it every K frames; in between, each "
                            "person's box comes from their keypoints in the previous frame "
                            "(default 1: every frame)")
    group.add_argument("--no-track", action="store_true",
                       help="no track ids (default: people keep an id across frames)")
    group.add_argument("--pipelined", action="store_true",
                       help="overlap reading and detecting, the pose model, and drawing and "
                            "writing of consecutive frames on threads (same poses as the "
                            "default serial loop)")
    group.add_argument("--max-frames", type=int, metavar="N",
                       help="stop after N frames (default: the whole source; live sources run "
                            "until stopped with Ctrl-C)")


def stream_only_flags(args: argparse.Namespace) -> list[str]:
    """The stream flags given to a one-image infer (refused there)."""
    given = [("--jsonl", args.jsonl), ("--video-out", args.video_out),
             ("--show", args.show or None), ("--no-track", args.no_track or None),
             ("--pipelined", args.pipelined or None), ("--max-frames", args.max_frames),
             ("--det-interval", None if args.det_interval == 1 else args.det_interval)]
    return [flag for flag, value in given if value is not None]


class _Rate:
    """Frames per second: a progress bar for files, a rolling line for live sources."""

    def __init__(self, source: Any, enabled: bool) -> None:
        self.live = source.live
        self.bar = None
        self.count = 0
        self.window: list[float] = []
        self.enabled = enabled
        if enabled and not self.live:
            try:
                from tqdm import tqdm

                self.bar = tqdm(total=source.total, unit="frame", desc=source.description,
                                file=sys.stderr)
            except ImportError:
                self.bar = None

    def tick(self) -> None:
        self.count += 1
        now = time.perf_counter()
        self.window = [t for t in self.window if now - t < 2.0] + [now]
        if self.bar is not None:
            self.bar.update()
        elif self.enabled and self.live and self.count % 10 == 0 and len(self.window) > 1:
            fps = (len(self.window) - 1) / (self.window[-1] - self.window[0])
            print(f"\r{self.count} frames, {fps:.1f} fps", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.live:
            print(file=sys.stderr)


def check_stream_outputs(args: argparse.Namespace) -> None:
    if not (args.json or args.jsonl or args.video_out or args.show):
        raise InputError("--source needs somewhere to put the poses: --jsonl, --json, "
                         "--video-out or --show")
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames is {args.max_frames}; expected at least 1")
    if args.video_out is not None:
        from edgepose.sinks import VIDEO_CODECS

        if args.video_out.suffix.lower() not in VIDEO_CODECS:
            raise InputError(f"--video-out must end in {', '.join(VIDEO_CODECS)}, got "
                             f"{args.video_out.name!r}")


def run_source(args: argparse.Namespace, estimator: Any, source: Any) -> int:
    """Run `estimator` over the opened `source` into the requested sinks; returns the
    exit status. The caller checked the paths (check_stream_outputs, check_paths)."""
    from edgepose.sinks import CocoResultsSink, JsonLinesSink, VideoSink, WindowSink

    outputs = {"--json": args.json, "--jsonl": args.jsonl, "--video-out": args.video_out}
    sinks: list[Any] = []
    complete = False
    try:
        if args.jsonl:
            sinks.append(JsonLinesSink(args.jsonl))
        if args.json:
            sinks.append(CocoResultsSink(args.json))
        if args.video_out:
            sinks.append(VideoSink(args.video_out, source.fps))
        window = WindowSink() if args.show else None
        if window is not None:
            sinks.append(window)
        drawing_needed = bool(args.video_out or args.show)
        rate = _Rate(source, sys.stderr.isatty())
        frames = people = 0
        began = time.perf_counter()
        try:
            for frame, poses in estimator.stream(source, det_interval=args.det_interval,
                                                 track=not args.no_track,
                                                 pipelined=args.pipelined):
                drawing = estimator.draw(frame.image, poses) if drawing_needed else None
                for sink in sinks:
                    sink.write(frame, poses, drawing)
                frames += 1
                people += len(poses)
                rate.tick()
                if (args.max_frames is not None and frames >= args.max_frames) or \
                        (window is not None and window.stopped):
                    break
        except KeyboardInterrupt:
            # Stopping a live source is how it ends: what was seen is kept.
            print("\nstopped", file=sys.stderr)
        finally:
            rate.close()
        complete = True
    finally:
        for sink in sinks:
            sink.finish(complete)
    seconds = time.perf_counter() - began
    print(f"{frames} frame(s) from {source.description}, {people} person detections, "
          f"{frames / seconds if seconds > 0 else 0:.1f} frames/s"
          f"{' (pipelined)' if args.pipelined else ''}")
    for flag, path in outputs.items():
        if path is not None:
            print(f"  {flag}: {path}")
    return 0
