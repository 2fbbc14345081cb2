"""`edgepose infer --triton URL` and `edgepose profile --triton URL`: the same verbs with
the pose model on a Triton server (a repository from `edgepose triton`) instead of a
local file."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from edgepose.cli.common import (check_paths, read_image_and_boxes, report_people,
                                 write_outputs)
from edgepose.cli.streaming import stream_only_flags
from edgepose.errors import InputError

#: Why the model's own flags are refused with --triton.
_SERVER_DECIDES = ("the served pose model's settings (flip test, refinement, grouping, "
                   "detector) are fixed when 'edgepose triton' writes the repository")


def add_triton_options(parser: argparse.ArgumentParser, *, instead_of: str
                       ) -> argparse._ArgumentGroup:
    """--triton, --triton-model, --triton-protocol, --triton-timeout; returns their group."""
    group = parser.add_argument_group(f"Triton server (instead of {instead_of})")
    group.add_argument("--triton", metavar="URL",
                       help="send the images to the pose model of a Triton server instead "
                            f"of opening {instead_of}: http://HOST:PORT, grpc://HOST:PORT or "
                            "HOST:PORT (HTTP unless --triton-protocol grpc); the port "
                            "defaults to Triton's 8000 (HTTP) or 8001 (gRPC). The repository "
                            "comes from 'edgepose triton'")
    group.add_argument("--triton-model", metavar="NAME",
                       help="the pose model's name on the server (default: the only model "
                            "whose config carries edgepose's keypoint-set parameter)")
    group.add_argument("--triton-protocol", choices=["http", "grpc"],
                       help="protocol for a URL without a scheme (default http); a URL with "
                            "one must agree")
    group.add_argument("--triton-timeout", type=float, metavar="SECONDS",
                       help="longest wait for the server to connect or answer one request "
                            "(default 60)")
    return group


def triton_flags_without_server(args: argparse.Namespace) -> list[str]:
    """The --triton-* flags given without --triton (refused)."""
    if args.triton is not None:
        return []
    given = [("--triton-model", args.triton_model), ("--triton-protocol", args.triton_protocol),
             ("--triton-timeout", args.triton_timeout)]
    return [flag for flag, value in given if value is not None]


def _detector_flags(args: argparse.Namespace) -> list[str]:
    return [f"--{name.replace('_', '-')}" for name, value in sorted(vars(args).items())
            if name.startswith("detector") and value is not None]


def _refuse(flags: list[str]) -> None:
    if flags:
        raise InputError(f"{', '.join(flags)} do(es) not apply to --triton: {_SERVER_DECIDES}")


def _open_client(args: argparse.Namespace, model: str | None = None) -> Any:
    from edgepose.serve.client import DEFAULT_TIMEOUT_S, TritonPoseClient

    timeout_s = DEFAULT_TIMEOUT_S if args.triton_timeout is None else args.triton_timeout
    return TritonPoseClient(args.triton, model=model or args.triton_model,
                            protocol=args.triton_protocol, timeout_s=timeout_s)


def run_infer_triton(args: argparse.Namespace) -> int:
    """`edgepose infer --triton URL --image IMG`: the outputs of a local infer."""
    from edgepose.io import image_bytes, json_bytes

    if args.source is not None:
        raise InputError("--source does not apply to --triton yet: send one --image at a time")
    refused = stream_only_flags(args)
    if refused:
        raise InputError(f"{', '.join(refused)} apply to --source, not to one --image")
    _refuse([flag for flag, value in (
        ("--model", args.model), ("--flip/--no-flip", args.flip), ("--refine", args.refine),
        ("--preset", args.preset), ("--integer-coords", args.integer_coords or None),
        ("--cuda-graph", args.cuda_graph or None),
        ("--cuda", None if args.cuda == "auto" else args.cuda)) if value is not None]
        + _detector_flags(args))
    check_paths({"--json": args.json, "--draw": args.draw},
                {"--image": args.image, "--boxes-json": args.boxes_json}, images=("--draw",))
    image, boxes, scores = read_image_and_boxes(args)
    with _open_client(args) as client:
        # The decoded pixels travel as PNG: the server decodes exactly what a local run
        # would see, whatever its own JPEG decoder.
        poses = client.estimate(image, boxes, scores)
    warnings = client.warnings(boxes)
    results = poses.to_coco_results(0 if args.image_id is None else args.image_id)
    outputs = []
    if args.json:
        payload: object = results
        if warnings or client.detector_model:
            payload = {"warnings": warnings, "results": results}
            if client.detector_model:
                payload["detector"] = {"triton_model": client.detector_model}
        outputs.append(("json", args.json, json_bytes(args.json, payload)))
    if args.draw:
        outputs.append(("drawing", args.draw, image_bytes(args.draw, client.draw(image, poses))))
    report_people(len(poses), args.image, client.describe(), warnings, client.random_init,
                  results)
    write_outputs(outputs)
    return 0


def add_concurrency_option(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--concurrency", metavar="N,N,...",
                        help="with --triton: client threads, each sending requests in a closed "
                             "loop (the next when its last is answered), one level after "
                             "another, e.g. 1,4,16 (default 1,4,16); --iters counts the "
                             "requests of each level, --warmup the untimed ones per client")


class _Requester:
    """One client thread's request: its own connection, the same image every time."""

    def __init__(self, args: argparse.Namespace, model: str, payload: bytes,
                 boxes: Any) -> None:
        self.client = _open_client(args, model)
        self.payload = payload
        self.boxes = boxes

    def __call__(self) -> None:
        self.client.estimate(self.payload, self.boxes)

    def close(self) -> None:
        self.client.close()


def run_profile_triton(args: argparse.Namespace) -> int:
    """`edgepose profile --triton URL`: throughput and latency per concurrency level."""
    from edgepose.io import json_bytes, parse_boxes, read_image
    from edgepose.profile import collect_environment, parse_duration, synthetic_frame
    from edgepose.profile.concurrency import (DEFAULT_CLIENT_WARMUP, DEFAULT_REQUESTS,
                                              parse_concurrency, profile_concurrency)
    from edgepose.serve.client import encode_frame

    if args.models:
        raise InputError(f"MODEL ({', '.join(map(str, args.models))}) and --triton exclude "
                         "each other: the model is the server's")
    _refuse([flag for flag, value in (
        ("--batch", args.batch), ("--video", args.video), ("--boxes-json", args.boxes_json),
        ("--cuda-graph", args.cuda_graph or None), ("--layers", args.layers or None),
        ("--plot", args.plot)) if value is not None] + _detector_flags(args))
    check_paths({"--json": args.json}, {"--image": args.image})
    levels = parse_concurrency(args.concurrency or "1,4,16")
    duration_s = parse_duration(args.duration) if args.duration else None
    warmup = DEFAULT_CLIENT_WARMUP if args.warmup is None else args.warmup
    requests = args.iters if args.iters is not None or duration_s else DEFAULT_REQUESTS
    boxes = parse_boxes(args.boxes)[0] if args.boxes is not None else None
    if args.image is not None:
        read_image(args.image)      # an unreadable image is refused here, not by the server
        payload, what = Path(args.image).read_bytes(), f"{args.image} as stored"
    else:
        frame = synthetic_frame()
        payload, what = encode_frame(frame), (f"synthetic {frame.shape[1]}x{frame.shape[0]} "
                                              "noise frame as PNG")
    # One client here finds the model and refuses what is wrong before any thread starts.
    with _open_client(args) as probe:
        model, description = probe.model, probe.describe()
        if boxes is not None and not probe.top_down:
            raise InputError(f"--boxes do not apply to the bottom-up model {model!r}")
    environment = collect_environment()
    length = (f"{requests} timed requests per level" if duration_s is None
              else f"requests for {args.duration} per level")
    details = (f"image: {what}, {len(payload) / 1024:.0f} KiB; boxes: "
               f"{'none (the server decides)' if boxes is None else len(boxes)}; "
               f"{warmup} warm-up request(s) per client, {length}",
               f"client: {environment.summary()}")

    def progress(level: Any) -> None:
        print(f"  {level.concurrency} client(s): {level.requests_per_s:.1f} requests/s",
              file=sys.stderr)

    report = profile_concurrency(lambda: _Requester(args, model, payload, boxes), levels,
                                 target=description, requests=requests, duration_s=duration_s,
                                 warmup=warmup, details=details,
                                 progress=progress if sys.stderr.isatty() else None)
    print(report.format_table())
    if args.json:
        data = {**report.to_dict(), "url": args.triton, "model": model,
                "client_environment": asdict(environment)}
        write_outputs([("json", args.json, json_bytes(args.json, data))])
    return 0
