"""A Triton server against the local pipeline under 1, 4 and 16 concurrent clients.

    .venv/bin/python benchmarks/triton_serving.py          # after `make triton-server`
    .venv/bin/python benchmarks/triton_serving.py --model m.onnx --protocol grpc --no-detector

Exports a model repository (`edgepose triton`'s export_repository) for the model, by
default the shipped demo checkpoint exported to ONNX (needs torch) with the demo person
detector, starts a local tritonserver on it (edgepose.serve.launch, the server
`make triton-server` installs), and at each concurrency level N, in this order:
(1) N threads, each with its own TritonPoseClient, send the image in a closed loop;
(2) N threads call the local pipeline on the same image, each with its own Estimator
(edgepose.load per thread: ONNX Runtime releases the GIL while it runs, so the threads
overlap as far as the cores allow). Latencies are per request as the caller sees them:
for Triton that includes sending the PNG, the server decoding it and the answer coming
back; the local pipeline gets the decoded frame. Both share this machine's cores with
the server, so on a small CPU-only host the figures say how the two compare here, not
what a GPU server reaches. Nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from benchmarks.timing import machine, write_report  # noqa: E402
from edgepose.errors import EdgeposeError  # noqa: E402

DEMO_CHECKPOINT = ROOT / "assets" / "models" / "hrnet_w10_128x96_synthetic.pth"
DEMO_DETECTOR = ROOT / "assets" / "models" / "person_detector_synthetic.onnx"
DEMO_IMAGE = ROOT / "assets" / "demo" / "people" / "images" / "000000.jpg"
WORK = ROOT / "out" / "benchmarks" / "triton_serving"
DEFAULT_JSON = ROOT / "out" / "benchmarks" / "triton_serving.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path,
                        help="pose model, .onnx or an engine (default: the demo checkpoint "
                             f"exported to {(WORK / 'hrnet_w10_128x96.onnx').relative_to(ROOT)})")
    parser.add_argument("--detector", type=Path, default=DEMO_DETECTOR,
                        help="person detector served beside the pose model and loaded by the "
                             "local estimators (default: the demo detector)")
    parser.add_argument("--no-detector", action="store_true",
                        help="no detector: a top-down model runs the whole image as one person")
    parser.add_argument("--image", type=Path, default=DEMO_IMAGE,
                        help="the image every request carries (default: the first demo image)")
    parser.add_argument("--concurrency", default="1,4,16",
                        help="client threads per level, in order (default 1,4,16)")
    parser.add_argument("--requests", type=int, default=200,
                        help="timed requests per level and side, shared by its threads "
                             "(default 200)")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed requests per thread before each level (default 3)")
    parser.add_argument("--protocol", choices=["http", "grpc"], default="http",
                        help="how the Triton clients talk to the server (default http)")
    parser.add_argument("--network-backend", default="python",
                        choices=["auto", "tensorrt", "onnxruntime", "python"],
                        help="how the server runs the networks (default python: ONNX Runtime "
                             "in the Python backend, the only backend the bundled server has)")
    parser.add_argument("--max-batch", type=int, default=8,
                        help="max_batch_size of the network models: dynamic batching groups "
                             "concurrent requests' crops up to this (default 8)")
    parser.add_argument("--pose-instances", type=int, default=2,
                        help="instances of the served pose model (default 2)")
    parser.add_argument("--local-threads", type=int,
                        help="ONNX Runtime intra-op threads of each local Estimator (default: "
                             "ONNX Runtime's, every core per Estimator)")
    parser.add_argument("--repository", type=Path,
                        help="write the repository here and keep it (default: a temporary "
                             "folder, removed at the end)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON,
                        help=f"report JSON (default {DEFAULT_JSON.relative_to(ROOT)})")
    return parser


def _demo_model() -> Path:
    path = WORK / "hrnet_w10_128x96.onnx"
    if not path.is_file():
        try:
            from export.families import export_model
        except ImportError as exc:
            raise EdgeposeError(f"exporting the demo model needs the workstation packages "
                                f"({exc.name} is missing); pass --model") from None
        path.parent.mkdir(parents=True, exist_ok=True)
        export_model("hrnet", "w10_128x96", path, checkpoint=DEMO_CHECKPOINT)
    return path


class _LocalRequest:
    """One thread's own Estimator on the decoded frame."""

    def __init__(self, model: Path, detector: Path | None, threads: int | None,
                 frame: object) -> None:
        import edgepose

        self.estimator = edgepose.load(model, detector=detector, threads=threads)
        self.frame = frame

    def __call__(self) -> None:
        self.estimator(self.frame)

    def close(self) -> None:
        self.estimator.close()


class _TritonRequest:
    """One thread's own client, sending the same encoded image."""

    def __init__(self, url: str, model: str, encoded: bytes) -> None:
        from edgepose.serve.client import TritonPoseClient

        self.client = TritonPoseClient(url, model=model)
        self.encoded = encoded

    def __call__(self) -> None:
        self.client.estimate(self.encoded)

    def close(self) -> None:
        self.client.close()


def _row(clients: int, triton: object, local: object) -> str:
    ratio = triton.requests_per_s / local.requests_per_s if local.requests_per_s else 0.0
    return (f"{clients:>7}{triton.requests_per_s:>13.1f}{triton.latency.p50:>9.1f}"
            f"{triton.latency.p99:>9.1f}{local.requests_per_s:>13.1f}{local.latency.p50:>9.1f}"
            f"{local.latency.p99:>9.1f}{ratio:>9.2f}x")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    scratch = None
    try:
        from edgepose.io import read_image
        from edgepose.profile.concurrency import measure_concurrency, parse_concurrency
        from edgepose.serve.client import encode_frame
        from edgepose.serve.launch import LocalTritonServer, find_home
        from edgepose.serve.repository import ServingOptions, export_repository

        levels = parse_concurrency(args.concurrency)
        detector = None if args.no_detector else args.detector
        for what, path in (("--detector", detector), ("--image", args.image),
                           ("--model", args.model)):
            if path is not None and not path.is_file():
                raise EdgeposeError(f"{what} {path} does not exist")
        home = find_home()
        why = home.missing()
        if why is not None:
            raise EdgeposeError(f"no local Triton server: {why}")
        model = args.model or _demo_model()
        frame = read_image(args.image)
        encoded = encode_frame(frame)
        if args.repository is None:
            scratch = Path(tempfile.mkdtemp(prefix="triton-serving-"))
        repository = args.repository or scratch / "repository"
        options = ServingOptions(network_backend=args.network_backend, max_batch=args.max_batch,
                                 pose_instances=args.pose_instances,
                                 python_path=(str(home.site_packages), str(ROOT)))
        exported = export_repository(model, repository, detector=detector, name="pose",
                                     options=options)
        print(exported.describe())
        triton_levels, local_levels = [], []
        with LocalTritonServer(repository, home=home.root) as server:
            url = f"{args.protocol}://" + (server.http_url if args.protocol == "http"
                                           else server.grpc_url)
            for clients in levels:
                triton_levels.append(measure_concurrency(
                    lambda: _TritonRequest(url, exported.pose_model, encoded), clients,
                    requests=args.requests, warmup=args.warmup))
                local_levels.append(measure_concurrency(
                    lambda: _LocalRequest(model, detector, args.local_threads, frame), clients,
                    requests=args.requests, warmup=args.warmup))
                print(f"  {clients} client(s) done", file=sys.stderr)
    except EdgeposeError as exc:
        print(f"triton_serving: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    threads = args.local_threads or "ONNX Runtime's default"
    print(f"{model.name}{' + ' + detector.name if detector else ''} on {args.image.name} "
          f"({frame.shape[1]}x{frame.shape[0]}, {len(encoded) / 1024:.0f} KiB as PNG); "
          f"{args.requests} requests per level and side, {args.warmup} warm-up per thread")
    print(f"Triton: {args.protocol}, networks on {args.network_backend}, max batch "
          f"{args.max_batch}, {args.pose_instances} pose instance(s); local: one Estimator "
          f"per thread, {threads} intra-op threads")
    print(f"{'clients':>7}{'triton req/s':>13}{'p50 ms':>9}{'p99 ms':>9}{'local req/s':>13}"
          f"{'p50 ms':>9}{'p99 ms':>9}{'tr/local':>10}")
    for clients, triton, local in zip(levels, triton_levels, local_levels):
        print(_row(clients, triton, local))
    write_report(args.json, {
        "model": str(model), "detector": None if detector is None else str(detector),
        "image": str(args.image), "protocol": args.protocol,
        "serving": {"network_backend": args.network_backend, "max_batch": args.max_batch,
                    "pose_instances": args.pose_instances},
        "local": {"estimators": "one per thread", "intra_op_threads": args.local_threads},
        "repository": exported.summary,
        "triton_levels": [level.to_dict() for level in triton_levels],
        "local_levels": [level.to_dict() for level in local_levels],
        "machine": machine()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
