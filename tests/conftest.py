"""Markers that skip with a stated reason instead of failing where the hardware is absent."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def _gpu_reason() -> str | None:
    if shutil.which("nvidia-smi") is None and not os.path.exists("/dev/nvidia0"):
        return "gpu test: no NVIDIA GPU on this machine (run tests/gpu on a GPU host)"
    return None


def _tensorrt_reason() -> str | None:
    try:
        import tensorrt  # noqa: F401
    except Exception:  # noqa: BLE001 - the wheels fail in several ways without their libraries
        return "tensorrt test: the TensorRT libraries are not importable here"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reasons = {
        "slow": None if os.environ.get("EDGEPOSE_SLOW") else
        "slow test: skipped by default to keep CI short; run `make test-all`",
        "gpu": _gpu_reason(),
        "tensorrt": _tensorrt_reason(),
    }
    for item in items:
        for marker, reason in reasons.items():
            if reason and item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def exported_hrnet(tmp_path_factory):
    """A random-init HRNet-W8 128x96 exported once through the real CLI (export is slow)."""
    pytest.importorskip("torch")
    from edgepose.cli import main

    path = tmp_path_factory.mktemp("export") / "hrnet_w8_128x96.onnx"
    assert main(["export", "hrnet", "--variant", "w8_128x96", "--random-init",
                 "--out", str(path)]) == 0
    return path


SHIPPED_MODELS = Path(__file__).resolve().parents[1] / "assets/models"
DEMO_VARIANT = "w10_128x96"
DEMO_CHECKPOINT = SHIPPED_MODELS / f"hrnet_{DEMO_VARIANT}_synthetic.pth"
OPENPOSE_DEMO_CHECKPOINT = SHIPPED_MODELS / "openpose_coco18_d8_synthetic.pth"
# The demo checkpoint trained on seed 1; validation draws from a seed it never saw.
VALIDATION_SEED = 2


@pytest.fixture(scope="session")
def demo_checkpoint():
    """Path of the shipped demo checkpoint (HRNet)."""
    return _shipped(DEMO_CHECKPOINT)


@pytest.fixture(scope="session")
def openpose_demo_checkpoint():
    """Path of the shipped OpenPose demo checkpoint."""
    return _shipped(OPENPOSE_DEMO_CHECKPOINT)


def _shipped(checkpoint: Path) -> Path:
    if not checkpoint.is_file():
        pytest.skip(f"demo checkpoint {checkpoint.name} is not in this checkout")
    return checkpoint


@pytest.fixture(scope="session")
def demo_onnx(tmp_path_factory, demo_checkpoint):
    """The shipped demo checkpoint exported to ONNX once per session."""
    pytest.importorskip("torch")
    from export.families import export_model

    path = tmp_path_factory.mktemp("demo") / f"hrnet_{DEMO_VARIANT}.onnx"
    export_model("hrnet", DEMO_VARIANT, path, checkpoint=demo_checkpoint)
    return path


@pytest.fixture(scope="session")
def validation_split(tmp_path_factory):
    """(annotations, images folder) of a 150-image synthetic validation split."""
    from export.training.synthetic import SyntheticConfig, write_coco_dataset

    folder = tmp_path_factory.mktemp("validation")
    annotations = write_coco_dataset(folder, 150, SyntheticConfig(seed=VALIDATION_SEED),
                                     progress=False)
    return annotations, folder / "images"
