"""Name tables of the real TensorRT Python bindings, from wheels cached outside the repo.

The `tensorrt-cuXX-bindings` wheels download from PyPI without a GPU but cannot be
imported without TensorRT's libraries. Their shared object still holds, as strings,
every name pybind11 registers (classes, methods, properties, enum members, keyword
arguments); the package's __init__.py adds a few Python-level names (__version__).

Wheels are cached in ~/.cache/edgepose/trt-wheels (EDGEPOSE_TRT_WHEELS overrides),
outside the repository, so fresh clones on one machine download them once.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

# version label → (PyPI package, exact version). 10.3 is JetPack 6's TensorRT.
WHEELS = {
    "10.3": ("tensorrt-cu12-bindings", "10.3.0"),
    "11.4": ("tensorrt-cu13-bindings", "11.4.0.106"),
}
PYTHON_VERSION = "3.11"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
PIP_TIMEOUT_S = 30
DOWNLOAD_LIMIT_S = 180


class WheelUnavailable(Exception):
    """The wheel is neither cached nor downloadable (registry unreachable, version gone)."""


def cache_dir() -> Path:
    return Path(os.environ.get("EDGEPOSE_TRT_WHEELS")
                or Path.home() / ".cache" / "edgepose" / "trt-wheels")


def _cached(package: str, version: str, folder: Path) -> Path | None:
    stem = f"{package.replace('-', '_')}-{version}-"
    matches = sorted(p for p in folder.glob("*.whl") if p.name.startswith(stem))
    return matches[0] if matches else None


def fetch_wheel(package: str, version: str) -> Path:
    """The cached wheel, downloading it first if needed (pip, no dependencies, binary only)."""
    folder = cache_dir()
    found = _cached(package, version, folder) if folder.is_dir() else None
    if found is not None:
        return found
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WheelUnavailable(f"cannot create the wheel cache {folder}: {exc}") from None
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as staging:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--python-version", PYTHON_VERSION, *platforms, "--timeout", str(PIP_TIMEOUT_S),
                   "--retries", "1", "--disable-pip-version-check", "--quiet", "-d", staging,
                   f"{package}=={version}"]
        try:
            result = subprocess.run(command, capture_output=True, text=True,
                                    timeout=DOWNLOAD_LIMIT_S)
        except subprocess.TimeoutExpired:
            raise WheelUnavailable(f"pip download {package}=={version} took over "
                                   f"{DOWNLOAD_LIMIT_S} s; is the registry reachable?") from None
        downloaded = _cached(package, version, Path(staging))
        if result.returncode != 0 or downloaded is None:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise WheelUnavailable(f"pip download {package}=={version} failed: {' | '.join(tail)}")
        # Rename into place so a concurrent run never sees a half-written wheel.
        os.replace(downloaded, folder / downloaded.name)
    return folder / downloaded.name


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STRING = re.compile(rb"[\x20-\x7e]{2,}")


@dataclass(frozen=True)
class NameTable:
    """The names one bindings wheel defines.

    `identifiers`: every printable string of the shared object that is a whole
    identifier; `python_names`: names bound at module level of its __init__.py.

    A name counts as present when it is one of those strings, or the tail of one
    where the linker merged it into a longer string ("serialize" is stored inside
    "plugins_to_serialize", "Logger" inside "ILogger"): the tail must start after
    an underscore, or be a CamelCase name. An ALL-CAPS enum member must match whole
    or follow an underscore, so INT8 is not found inside UINT8. Names occurring only
    in docstrings do not count.
    """

    label: str
    identifiers: frozenset[str]
    python_names: frozenset[str]

    def __contains__(self, name: str) -> bool:
        if name in self.identifiers or name in self.python_names:
            return True
        camel = name[:1].isupper() and any(c.islower() for c in name)
        for text in self.identifiers:
            if len(text) > len(name) and text.endswith(name):
                if text[-len(name) - 1] == "_" or camel:
                    return True
        return False


def _module_level_names(source: str) -> set[str]:
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def read_name_table(wheel: Path, label: str = "") -> NameTable:
    identifiers: set[str] = set()
    python_names: set[str] = set()
    with zipfile.ZipFile(wheel) as archive:
        members = archive.namelist()
        shared = [m for m in members if m.count("/") == 1 and ".so" in m.rsplit("/", 1)[-1]]
        inits = [m for m in members if m.count("/") == 1 and m.endswith("/__init__.py")]
        if not shared:
            raise WheelUnavailable(f"{wheel.name} holds no top-level shared object; "
                                   f"members: {members[:8]}")
        for member in shared:
            for match in _STRING.finditer(archive.read(member)):
                text = match.group().decode("ascii")
                if _IDENTIFIER.fullmatch(text):
                    identifiers.add(text)
        for member in inits:
            python_names |= _module_level_names(archive.read(member).decode("utf-8", "replace"))
    return NameTable(label or wheel.name, frozenset(identifiers), frozenset(python_names))


@functools.lru_cache(maxsize=None)
def name_table(label: str) -> NameTable:
    """The name table of WHEELS[label]; WheelUnavailable when it cannot be had."""
    package, version = WHEELS[label]
    return read_name_table(fetch_wheel(package, version), f"{package}=={version}")
