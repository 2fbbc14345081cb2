"""The official code itself, from a checkout the user names, for the benchmarks to time.

The repository carries no official code: its references are the official
algorithms written out in tests/edgepose/decode/. Given a checkout, the PAF and AE
benchmarks also run the originals on the same maps and check that edgepose
returns what they return before timing them:

- Hzzone/pytorch-openpose (the Python OpenPose port): src/body.py's Body.__call__,
  its network replaced by a function returning the recorded network maps, so that
  what is timed is everything the port does after the network (resizes,
  Gaussian smoothing, peaks, limb scores, assembly).
- HRNet/HigherHRNet-Human-Pose-Estimation: lib/core/group.py's HeatmapParser.parse
  (NMS and top-k in torch, grouping with the munkres package, adjust, refine).

A module the original imports but never calls on this path (torchvision in
body.py) is stood in for when it is not installed; nothing in the checkout is
changed or copied.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Callable

import numpy as np


class OfficialCodeError(Exception):
    """The named directory does not hold the official code, or it cannot be imported."""


def revision(checkout: Path) -> str:
    """The checkout's git commit, or 'unknown' (an exported tree has none)."""
    try:
        return subprocess.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _require(path: Path, repository: str) -> None:
    if not path.is_file():
        raise OfficialCodeError(f"{path.parent.parent} is not a checkout of {repository}: "
                                f"no {path.parent.name}/{path.name}")


def _import_torch():
    try:
        import torch
    except ImportError as error:
        raise OfficialCodeError(f"the official code needs torch ({error}); `make test` "
                                f"installs it in .venv") from None
    torch.set_num_threads(1)  # the comparisons are single-threaded
    return torch


def openpose_post_network(checkout: Path | str
                          ) -> Callable[[np.ndarray, np.ndarray, tuple[int, int]],
                                        tuple[np.ndarray, np.ndarray]]:
    """run(pafs (38, h, w), heatmaps (19, h, w), (height, width)) → the port's
    (candidate, subset) for an image of that size whose network maps are the given ones."""
    checkout = Path(checkout).resolve()
    _require(checkout / "src" / "body.py", "Hzzone/pytorch-openpose")
    torch = _import_torch()
    stand_ins = {}
    if "torchvision" not in sys.modules and importlib.util.find_spec("torchvision") is None:
        stand_ins["torchvision"] = types.ModuleType("torchvision")
        stand_ins["torchvision.transforms"] = stand_ins["torchvision"].transforms = \
            types.ModuleType("torchvision.transforms")
    os.environ.setdefault("MPLBACKEND", "Agg")  # body.py imports pyplot; no screen here
    # body.py imports its siblings as the package `src`, which must be this checkout's.
    if "src" in sys.modules and not str(getattr(sys.modules["src"], "__file__", "")).startswith(
            str(checkout)):
        raise OfficialCodeError("another package named 'src' is already imported")
    sys.path.insert(0, str(checkout))
    sys.modules.update(stand_ins)
    try:
        body_module = importlib.import_module("src.body")
    except ImportError as error:
        raise OfficialCodeError(f"cannot import {checkout}/src/body.py: {error}") from None
    finally:
        sys.path.remove(str(checkout))
        for name in stand_ins:  # only body.py holds them: others must not find them
            del sys.modules[name]
    body = body_module.Body.__new__(body_module.Body)  # no weights: the network is replaced

    def run(pafs: np.ndarray, heatmaps: np.ndarray, image_size: tuple[int, int]
            ) -> tuple[np.ndarray, np.ndarray]:
        outputs = torch.from_numpy(pafs[None]), torch.from_numpy(heatmaps[None])
        body.model = lambda data: outputs
        return body(np.zeros((*image_size, 3), np.uint8))

    return run


def higherhrnet_parse(checkout: Path | str, params, num_joints: int
                      ) -> Callable[[np.ndarray, np.ndarray], tuple[list, list]]:
    """run(heatmaps (K, H, W), tags (K, H, W, D)) → HeatmapParser.parse's (ans, scores),
    with the parser configured from edgepose's AeParams as HigherHRNet's config sets it."""
    checkout = Path(checkout).resolve()
    path = checkout / "lib" / "core" / "group.py"
    _require(path, "HRNet/HigherHRNet-Human-Pose-Estimation")
    torch = _import_torch()
    spec = importlib.util.spec_from_file_location("higherhrnet_official_group", path)
    group = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(group)
    except ImportError as error:
        raise OfficialCodeError(f"cannot import {path}: {error}") from None
    # HeatmapParser has one max_num_people for both, no clip, no score for refined
    # keypoints other than the heatmap's, and the L2 tag distance.
    if (params.top_k != params.max_people or params.heatmap_max is not None
            or params.refined_score is not None or params.tag_distance != "l2"
            or params.ties != "official"):
        raise OfficialCodeError("HeatmapParser runs the constants of the higherhrnet preset, "
                                "not these")
    space = types.SimpleNamespace
    config = space(
        DATASET=space(NUM_JOINTS=num_joints, MAX_NUM_PEOPLE=params.max_people,
                      WITH_CENTER=False),
        TEST=space(DETECTION_THRESHOLD=params.detection_threshold,
                   TAG_THRESHOLD=params.tag_threshold,
                   USE_DETECTION_VAL=params.use_detection_val,
                   IGNORE_TOO_MUCH=params.ignore_too_much, IGNORE_CENTER=True,
                   NMS_KERNEL=params.nms_kernel, NMS_PADDING=(params.nms_kernel - 1) // 2),
        MODEL=space(TAG_PER_JOINT=True))
    parser = group.HeatmapParser(config)
    if [int(j) for j in parser.params.joint_order] != list(params.joint_order):
        raise OfficialCodeError("the preset's joint order is not HeatmapParser's")

    def run(heatmaps: np.ndarray, tags: np.ndarray) -> tuple[list, list]:
        return parser.parse(torch.from_numpy(heatmaps[None]), torch.from_numpy(tags[None]),
                            params.adjust, params.refine)

    return run
