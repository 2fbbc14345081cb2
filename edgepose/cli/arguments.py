"""argparse types shared by the CLI's verbs."""

from __future__ import annotations

import argparse
import re
from pathlib import Path


def path_argument(text: str) -> Path:
    # Path("") is ".", the current folder: an empty argument would silently name it.
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give a file path")
    return Path(text)


def size_argument(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if match is None or 0 in (int(match.group(1)), int(match.group(2))):
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 640x640, got {text!r}")
    return int(match.group(1)), int(match.group(2))
