"""Markers that skip with a stated reason instead of failing where the hardware is absent."""

from __future__ import annotations

import os
import shutil

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
