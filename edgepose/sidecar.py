"""The engine sidecar `<engine>.json`: the ModelCard plus an `engine` block.

A TensorRT plan only runs on the TensorRT version and GPU it was built for
(unless built version- or hardware-compatible). The sidecar records both, and
the plan's sha256, so the runtime refuses a mismatch with a message instead of
letting deserialisation fail obscurely or crash.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from edgepose.card import ModelCard
from edgepose.errors import CardError, ModelFileError
from edgepose.io import write_json_atomic

HARDWARE_COMPATIBILITY = ("none", "ampere_plus", "same_compute_capability")


@dataclass(frozen=True)
class EngineInfo:
    """What a plan was built for.

    profiles: one entry per optimisation profile, {input name: {"min", "opt", "max"} shapes}.
    """

    tensorrt_version: str
    device: str
    compute_capability: str  # "major.minor", e.g. "8.7" for Orin
    plan_sha256: str
    version_compatible: bool = False
    hardware_compatibility: str = "none"
    profiles: tuple[Mapping[str, Mapping[str, list[int]]], ...] = field(default_factory=tuple)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.hardware_compatibility not in HARDWARE_COMPATIBILITY:
            raise CardError(f"engine field 'hardware_compatibility' is "
                            f"{self.hardware_compatibility!r}; expected one of "
                            f"{HARDWARE_COMPATIBILITY}")
        object.__setattr__(self, "profiles", tuple(self.profiles))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        data["profiles"] = [dict(p) for p in self.profiles]
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EngineInfo":
        names = {"tensorrt_version", "device", "compute_capability", "plan_sha256",
                 "version_compatible", "hardware_compatibility", "profiles"}
        absent = sorted({"tensorrt_version", "device", "compute_capability", "plan_sha256"}
                        - set(data))
        if absent:
            raise CardError(f"engine block lacks {', '.join(absent)}")
        known = {k: v for k, v in data.items() if k in names}
        return cls(**known, extra={k: v for k, v in data.items() if k not in names})


def sidecar_path(engine_path: str | Path) -> Path:
    """`model.engine` → `model.engine.json`."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".json")


def sha256_of_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_sidecar(engine_path: str | Path, card: Any, info: EngineInfo) -> Path:
    """Write `card` (a ModelCard or DetectorCard) with the engine block beside the plan."""
    card = card.with_updates(engine=info.to_dict())
    return write_json_atomic(sidecar_path(engine_path), card.to_dict())


def read_sidecar(engine_path: str | Path, card_type: Any = ModelCard) -> tuple[Any, EngineInfo]:
    """(card, engine facts) from `<engine>.json`; card_type: ModelCard for pose models,
    DetectorCard for detectors."""
    path = sidecar_path(engine_path)
    if not path.is_file():
        raise ModelFileError(
            f"{engine_path} has no sidecar {path.name}: edgepose needs the card written by "
            "'edgepose build' beside the engine (rebuild it, or copy the .json along)"
        )
    try:
        card = card_type.from_json(path.read_bytes())
    except CardError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    if card.engine is None:
        raise ModelFileError(f"{path} has no 'engine' block; rebuild with 'edgepose build'")
    return card, EngineInfo.from_dict(card.engine)


def _release(version: str) -> tuple[int, int]:
    """(major, minor) of a TensorRT version string such as "10.3.0.30"."""
    numbers = ["".join(ch for ch in piece if ch.isdigit()) for piece in version.split(".")[:2]]
    major, minor = ([int(n) if n else 0 for n in numbers] + [0, 0])[:2]
    return major, minor


def check_plan(plan: bytes, info: EngineInfo, *, engine_path: str | Path,
               runtime_version: str, compute_capability: str) -> None:
    """Refuse a plan that was altered, or built for another TensorRT or GPU."""
    digest = sha256_of_bytes(plan)
    if digest != info.plan_sha256:
        raise ModelFileError(
            f"{engine_path}: plan sha256 {digest[:12]}… differs from the sidecar's "
            f"{info.plan_sha256[:12]}…; the engine was changed or the sidecar belongs to "
            "another engine — rebuild with 'edgepose build'"
        )
    if info.version_compatible and (_release(info.tensorrt_version) > _release(runtime_version)):
        # Version compatibility only runs forward: an older runtime never loads a newer plan.
        raise ModelFileError(
            f"{engine_path} was built with TensorRT {info.tensorrt_version}, newer than this "
            f"TensorRT {runtime_version}; version-compatible plans run on the same or newer "
            "TensorRT only — rebuild it with this version"
        )
    if not info.version_compatible and runtime_version != info.tensorrt_version:
        raise ModelFileError(
            f"{engine_path} was built with TensorRT {info.tensorrt_version} but this is "
            f"TensorRT {runtime_version}; rebuild it here, or build with "
            "--version-compatible to run on newer TensorRT versions"
        )
    if info.hardware_compatibility == "ampere_plus":
        if float(compute_capability) < 8.0:
            raise ModelFileError(
                f"{engine_path} was built hardware-compatible for Ampere and newer GPUs "
                f"(compute capability >= 8.0) but this GPU is {compute_capability}; rebuild it "
                "on this device"
            )
    elif compute_capability != info.compute_capability:
        raise ModelFileError(
            f"{engine_path} was built for compute capability {info.compute_capability} "
            f"({info.device}) but this GPU is {compute_capability}; rebuild it on this "
            "device, or build with --hardware-compatible"
        )
