"""`edgepose triton`: export a Triton Inference Server model repository."""

from __future__ import annotations

import argparse

from edgepose.cli.arguments import path_argument
from edgepose.errors import InputError


def _sizes(text: str) -> tuple[int, ...]:
    from edgepose.profile.options import check_batch_sizes, parse_integers

    try:
        return check_batch_sizes(parse_integers(text, "preferred batch sizes", "4,8"))
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_triton(subparsers: argparse._SubParsersAction) -> None:
    from edgepose.serve.repository import DEFAULT_MAX_BATCH, NETWORK_BACKENDS

    parser = subparsers.add_parser(
        "triton", help="export a Triton Inference Server model repository",
        description="Write a Triton model repository for a pose model (and its person "
                    "detector): each network as its own model (a TensorRT plan, an ONNX "
                    "graph, or ONNX Runtime in the Python backend) with dynamic batching, "
                    "and one Python-backend pose model that runs edgepose's own pipeline "
                    "and calls the networks through BLS, so a request (one encoded image, "
                    "plus person boxes for a top-down model without a detector) gets the "
                    "poses 'edgepose infer' gives. Serve it with tritonserver "
                    "--model-repository=OUT on a server where edgepose is installed; query "
                    "it with 'edgepose infer --triton' / 'edgepose profile --triton'.")
    parser.add_argument("model", type=path_argument, metavar="MODEL",
                        help="the pose model: an edgepose ONNX file, or a TensorRT engine "
                             "(.engine/.plan) with its .json sidecar")
    parser.add_argument("--out", type=path_argument, required=True,
                        help="the repository folder to create (must not exist; it is built "
                             "beside it and renamed into place when complete)")
    parser.add_argument("--detector", type=path_argument,
                        help="a person detector (.onnx or engine) for a top-down model: the "
                             "server finds the boxes when a request gives none")
    parser.add_argument("--name",
                        help="the pose model's name in the repository (default: MODEL's file "
                             "name without suffix); the networks are NAME_net and "
                             "NAME_detector_net")
    parser.add_argument("--network-backend", choices=("auto",) + NETWORK_BACKENDS,
                        default="auto",
                        help="how the server runs the networks: tensorrt (engines), onnxruntime "
                             "(Triton's onnxruntime backend), python (ONNX Runtime inside the "
                             "Python backend, for servers without that backend); auto: "
                             "tensorrt for engines, onnxruntime for ONNX files")
    parser.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH,
                        help="max_batch_size of a network whose batch axis is dynamic (an "
                             "engine's profile caps it) (default %(default)s)")
    parser.add_argument("--preferred-batch", type=_sizes, default=(),
                        help="dynamic batching's preferred batch sizes, e.g. 4,8 (default: an "
                             "engine's profile opt batch; none for ONNX)")
    parser.add_argument("--queue-delay-us", type=int, default=100,
                        help="dynamic batching's max queue delay in microseconds: how long a "
                             "request may wait for others to batch with (default %(default)s)")
    parser.add_argument("--network-instances", type=int, default=1,
                        help="instances of each network model (default %(default)s)")
    parser.add_argument("--pose-instances", type=int, default=2,
                        help="instances of the pose model, each decoding one request at a time "
                             "on the CPU (default %(default)s)")
    parser.add_argument("--server-python-path", type=str, action="append", default=[],
                        metavar="DIR",
                        help="a folder the server's Python models put first on sys.path, where "
                             "edgepose and numpy are installed on the server (repeatable; "
                             "Triton's Python stub does not inherit a virtual environment); "
                             "not needed when edgepose is installed in the server's Python")
    parser.set_defaults(run=run_triton)


def run_triton(args: argparse.Namespace) -> int:
    from edgepose.serve.repository import ServingOptions, export_repository

    options = ServingOptions(
        network_backend=args.network_backend, max_batch=args.max_batch,
        preferred_batch=tuple(args.preferred_batch), queue_delay_us=args.queue_delay_us,
        network_instances=args.network_instances, pose_instances=args.pose_instances,
        python_path=tuple(args.server_python_path))
    exported = export_repository(args.model, args.out, detector=args.detector, name=args.name,
                                 options=options)
    print(exported.describe())
    return 0
