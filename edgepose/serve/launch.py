"""Start a real `tritonserver` on this machine's loopback, for tests, benchmarks and a
first look at a repository before it goes to a GPU server.

The server is the one the `nvidia-pytriton` wheel bundles (Triton 2.51 with the Python
backend only), installed apart from the project's environment by `make triton-server`:
the wheel pins numpy below 2, and its Python-backend stub is built against numpy 1, so
the models' Python packages (numpy 1, OpenCV, ONNX Runtime) live in a folder of their
own (`site-packages` of the server home) that the repository's model files put on
`sys.path` (the stub does not inherit a virtual environment). Facts from trying it:
see ../shared/reference/triton.md and the README's "Serving with Triton".
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from edgepose._closing import Closeable
from edgepose.errors import BackendError, InputError

#: Where `make triton-server` puts the bundled server and the models' packages.
DEFAULT_HOME = Path(__file__).resolve().parents[2] / ".venv" / "triton-server"
HOME_VARIABLE = "EDGEPOSE_TRITON_HOME"


@dataclass(frozen=True)
class ServerHome:
    """A folder holding the unpacked `nvidia-pytriton` wheel (`pytriton/`,
    `nvidia_pytriton.libs/`) and, under `site-packages/`, the Python packages the
    repository's Python models import on the server."""

    root: Path

    @property
    def binary(self) -> Path:
        return self.root / "wheel" / "pytriton" / "tritonserver" / "bin" / "tritonserver"

    @property
    def libraries(self) -> Path:
        return self.root / "wheel" / "nvidia_pytriton.libs"

    @property
    def python_backend(self) -> Path:
        return self.root / "wheel" / "pytriton" / "tritonserver" / "backends" / "python"

    @property
    def stub(self) -> Path:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        return (self.root / "wheel" / "pytriton" / "tritonserver" / "python_backend_stubs"
                / version / "triton_python_backend_stub")

    @property
    def site_packages(self) -> Path:
        return self.root / "site-packages"

    def missing(self) -> str | None:
        """Why this home cannot start a server, or None."""
        for path, what in ((self.binary, "the tritonserver binary"),
                           (self.libraries, "the wheel's libraries"),
                           (self.python_backend / "libtriton_python.so", "the Python backend"),
                           (self.stub, f"a Python {sys.version_info.major}."
                                       f"{sys.version_info.minor} backend stub"),
                           (self.site_packages / "numpy", "numpy for the server's models")):
            if not path.exists():
                return f"{what} is not in {self.root} ({path.name}); run `make triton-server`"
        return None


def find_home(home: str | Path | None = None) -> ServerHome:
    """The server home: `home`, else $EDGEPOSE_TRITON_HOME, else .venv/triton-server."""
    chosen = Path(home or os.environ.get(HOME_VARIABLE) or DEFAULT_HOME)
    return ServerHome(chosen)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalTritonServer(Closeable):
    """`with LocalTritonServer(repository) as server:` — a tritonserver on 127.0.0.1 with
    free ports (`server.http_url`, `server.grpc_url`), ready when the block starts, stopped
    when it ends. Its log is `server.log_path` (kept when it fails to start)."""

    def __init__(self, repository: str | Path, *, home: str | Path | None = None,
                 ready_timeout_s: float = 120.0, http_port: int | None = None,
                 grpc_port: int | None = None) -> None:
        repository = Path(repository)
        if not repository.is_dir():
            raise InputError(f"model repository {str(repository)!r} is not a folder")
        self.home = find_home(home)
        why = self.home.missing()
        if why is not None:
            raise BackendError(f"cannot start a local Triton server: {why}")
        self._scratch = Path(tempfile.mkdtemp(prefix="edgepose-triton-"))
        self.log_path = self._scratch / "tritonserver.log"
        self.http_port = http_port or _free_port()
        self.grpc_port = grpc_port or _free_port()
        metrics_port = _free_port()
        backends = self._backend_directory()
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            [str(self.home.libraries)] + [p for p in env.get("LD_LIBRARY_PATH", "").split(
                os.pathsep) if p])
        command = [str(self.home.binary), f"--model-repository={repository.resolve()}",
                   f"--backend-directory={backends}", "--http-address=127.0.0.1",
                   f"--http-port={self.http_port}", "--grpc-address=127.0.0.1",
                   f"--grpc-port={self.grpc_port}", "--metrics-address=127.0.0.1",
                   f"--metrics-port={metrics_port}", "--exit-timeout-secs=5"]
        self._process: subprocess.Popen | None = None
        self._log = open(self.log_path, "wb")
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)
        try:
            self._wait_ready(ready_timeout_s)
        except BaseException:
            self.close()
            raise

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def _backend_directory(self) -> Path:
        """The Python backend with its stub beside it, as tritonserver looks for it; built
        in scratch so the installed wheel stays as pip left it."""
        python = self._scratch / "backends" / "python"
        python.mkdir(parents=True)
        for item in self.home.python_backend.iterdir():
            if item.is_file():
                os.symlink(item, python / item.name)
        shutil.copy2(self.home.stub, python / self.home.stub.name)
        return python.parent

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        url = f"http://{self.http_url}/v2/health/ready"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BackendError(f"tritonserver exited with status {self._process.returncode} "
                                   f"before it was ready: {self.failure_lines()}")
            try:
                with urllib.request.urlopen(url, timeout=1.0) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.2)
        raise BackendError(f"tritonserver was not ready within {timeout_s:.0f} s: "
                           f"{self.failure_lines()}")

    def failure_lines(self, count: int = 5) -> str:
        """The log's last error lines (the harmless no-GPU ones left out)."""
        self._log.flush()
        harmless = ("CudaDriverHelper", "NVML", "DCGM", "GPU metrics", "cuda")
        lines = self.log_path.read_text(errors="replace").splitlines()
        errors = [line for line in lines if line[:1] == "E" and not any(
            word in line for word in harmless)] or [line for line in lines if "error" in line]
        return " | ".join(errors[-count:]) or f"see {self.log_path}"

    def _release(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self._log.close()
        shutil.rmtree(self._scratch / "backends", ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m edgepose.serve.launch REPO`: serve a repository on this machine's
    loopback until Ctrl-C (a first look before it goes to a GPU server)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m edgepose.serve.launch",
        description="Serve a model repository written by 'edgepose triton' with the local "
                    "tritonserver that 'make triton-server' installs (Python backend only: "
                    "write the repository with --network-backend python and "
                    "--server-python-path naming the server home's site-packages and the "
                    "folder edgepose is imported from), on 127.0.0.1 until Ctrl-C.")
    parser.add_argument("repository", type=Path, help="the repository folder")
    parser.add_argument("--http-port", type=int, default=8000,
                        help="HTTP port (default %(default)s)")
    parser.add_argument("--grpc-port", type=int, default=8001,
                        help="gRPC port (default %(default)s)")
    parser.add_argument("--home", type=Path,
                        help=f"the server home (default ${HOME_VARIABLE}, else {DEFAULT_HOME})")
    args = parser.parse_args(argv)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # `kill` stops the server as Ctrl-C does, not orphaned

    signal.signal(signal.SIGTERM, stop)
    try:
        with LocalTritonServer(args.repository, home=args.home, http_port=args.http_port,
                               grpc_port=args.grpc_port) as server:
            print(f"serving {args.repository} at http://{server.http_url} and "
                  f"grpc://{server.grpc_url} (log: {server.log_path}); Ctrl-C stops it",
                  flush=True)
            while server._process.poll() is None:
                time.sleep(0.5)
            print(f"tritonserver exited: {server.failure_lines()}", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        return 0
    except (BackendError, InputError) as exc:
        print(f"edgepose: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
