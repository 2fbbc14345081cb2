"""The on-device runtime must import where torch (and the workstation packages) are absent."""

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import edgepose

ROOT = Path(__file__).resolve().parents[2]


def _all_edgepose_modules() -> list[str]:
    names = ["edgepose"]
    for info in pkgutil.walk_packages(edgepose.__path__, prefix="edgepose."):
        if not info.name.endswith("__main__"):  # running it would start the CLI
            names.append(info.name)
    return names


def test_every_edgepose_module_imports_with_torch_blocked():
    modules = _all_edgepose_modules()
    assert "edgepose.pipeline" in modules and "edgepose.cli" in modules
    # A meta-path finder that refuses the workstation packages, as a Jetson without them would,
    # and the accelerator libraries, which the runtime loads only when a runner is opened.
    script = f"""
import importlib, sys
BLOCKED = ("torch", "export", "calib", "onnx", "onnxscript", "onnxruntime", "tensorrt",
           "tensorrt_lean", "pycuda", "cuda", "tritonclient", "grpc",
           "triton_python_backend_utils")
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError("blocked for this test: " + name)
        return None
sys.meta_path.insert(0, Block())
for name in {modules!r}:
    importlib.import_module(name)
leaked = [m for m in sys.modules if m.split(".")[0] in BLOCKED]
assert not leaked, leaked
print("ok", len({modules!r}))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


# The precision room and the engine builder read and write ONNX only: on a Jetson with
# the `trt` extra (no torch), `edgepose build` and `edgepose calibrate` must still load.
TORCH_FREE_ROOMS = ("export.onnx_files", "export.engine", "calib", "export.training.synthetic")


def _modules_of(package: str) -> list[str]:
    module = importlib.import_module(package)
    inside = pkgutil.walk_packages(module.__path__, prefix=package + ".")
    return [package] + [info.name for info in inside if not info.name.endswith("__main__")]


TORCH_FREE_WORKSTATION = [name for room in TORCH_FREE_ROOMS for name in _modules_of(room)]


def _run_with_torch_blocked(body: str) -> subprocess.CompletedProcess:
    script = f"""
import importlib, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "onnxscript"):
            raise ImportError("blocked for this test: " + name)
        return None
sys.meta_path.insert(0, Block())
{body}
"""
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True)


def test_precision_and_engine_rooms_import_with_torch_blocked():
    assert {"export.onnx_files.card", "export.onnx_files.lint", "export.engine.tensorrt",
            "calib.calibrate", "calib.int8"} <= set(TORCH_FREE_WORKSTATION)
    result = _run_with_torch_blocked(f"""
for name in {TORCH_FREE_WORKSTATION!r}:
    importlib.import_module(name)
leaked = [m for m in sys.modules if m.split(".")[0] == "torch"]
assert not leaked, leaked
print("ok")
""")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


def test_build_help_and_its_import_run_without_torch():
    result = _run_with_torch_blocked("""
from edgepose.cli import main
import export.engine.tensorrt  # what 'edgepose build' imports before it builds
try:
    main(["build", "--help"])
except SystemExit as stop:
    assert stop.code == 0, stop.code
""")
    assert result.returncode == 0, result.stderr
    assert "strongly typed TensorRT engine" in result.stdout
