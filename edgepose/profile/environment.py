"""Where the figures were measured: CPU, clocks, load, GPU and driver, library versions,
and this process's memory (Linux /proc where it exists, None elsewhere).
"""

from __future__ import annotations

import logging
import os
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from edgepose.profile.stats import Environment, ModelProfile

_log = logging.getLogger(__name__)


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip("\x00 \n")
    except OSError:
        return None


def _cpu_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {"cpu_count": os.cpu_count()}
    try:
        facts["cpus_usable"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        facts["cpus_usable"] = None
    info = _read("/proc/cpuinfo") or ""
    fields: dict[str, str] = {}
    for line in info.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    facts["cpu"] = (fields.get("model name") or fields.get("Model") or fields.get("Hardware")
                    or platform.processor() or None)
    current = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")
    maximum = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    try:
        facts["cpu_mhz"] = (int(current) / 1000 if current else
                            float(fields["cpu MHz"]) if "cpu MHz" in fields else None)
    except ValueError:
        facts["cpu_mhz"] = None
    facts["cpu_max_mhz"] = int(maximum) / 1000 if maximum and maximum.isdigit() else None
    facts["cpu_governor"] = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    facts["board"] = _read("/proc/device-tree/model")  # Jetson: "NVIDIA Jetson AGX Orin …"
    return facts


def read_load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except (AttributeError, OSError):  # Windows
        return None


def _gpu_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {}
    driver = _read("/proc/driver/nvidia/version")
    if driver:
        match = re.search(r"Kernel Module(?: for \S+)?\s+(\S+)", driver)
        facts["gpu_driver"] = match.group(1) if match else driver.splitlines()[0]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return facts
    query = "name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,clocks.max.mem"
    try:
        done = subprocess.run([smi, f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        _log.debug("nvidia-smi failed: %r", exc)
        return facts
    line = done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() \
        else ""
    values = [v.strip() for v in line.split(",")]
    if len(values) == 6:
        name, version, sm, sm_max, mem, mem_max = values
        facts["gpu"] = name
        facts["gpu_driver"] = version
        facts["gpu_clocks"] = f"SM {sm}/{sm_max} MHz, memory {mem}/{mem_max} MHz"
    return facts


def _distribution_version(*names: str) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def collect_environment(models: Sequence[ModelProfile] = (),
                        load_average: tuple[float, float, float] | None = None) -> Environment:
    """What this machine is: CPU, clocks, load, GPU and driver, library versions.

    TensorRT's version is the TensorRT module loaded in this process (the one that ran
    the engines; nothing is imported to find it), the CUDA devices those of the
    engines profiled, ONNX Runtime's version that of its installed distribution.
    load_average: os.getloadavg() from before the runs; None reads it now.
    """
    tensorrt = None
    loaded = [sys.modules[n] for n in ("tensorrt", "tensorrt_lean", "tensorrt_dispatch")
              if n in sys.modules]
    for module in loaded:
        version = getattr(module, "__version__", None)
        if version:
            tensorrt = f"{module.__name__} {version}"
            break
    onnxruntime = (getattr(sys.modules["onnxruntime"], "__version__", None)
                   if "onnxruntime" in sys.modules else None) or \
        _distribution_version("onnxruntime", "onnxruntime-gpu")
    devices = tuple(dict.fromkeys(m.device for m in models if m.backend == "tensorrt"))
    return Environment(
        python=platform.python_version(), platform=platform.platform(), numpy=np.__version__,
        opencv=cv2.__version__, onnxruntime=onnxruntime, tensorrt=tensorrt,
        cuda_devices=devices, load_average=load_average or read_load_average(), **_cpu_facts(),
        **_gpu_facts())



def host_memory() -> tuple[int | None, int | None]:
    """(resident set, peak resident set) of this process in bytes; None where unreadable."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        text = ""
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM") and rest.strip().endswith("kB"):
            values[key] = int(rest.split()[0]) * 1024
    if values:
        return values.get("VmRSS"), values.get("VmHWM")
    try:
        import resource
    except ImportError:  # Windows
        return None, None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    return None, int(peak if sys.platform == "darwin" else peak * 1024)



def available_memory() -> int | None:
    """Bytes of memory the system can still give (Linux MemAvailable); None where unknown."""
    text = _read("/proc/meminfo") or ""
    for line in text.splitlines():
        if line.startswith("MemAvailable:") and line.rstrip().endswith("kB"):
            return int(line.split()[1]) * 1024
    return None

