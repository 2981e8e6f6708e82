"""The cameras this machine has, by index and name, for the app's Open Camera list.

On Linux the video4linux devices are listed from sysfs (no device is opened, so the list is
instant); a camera's capture node is the one with index 0 (the others carry its metadata).
Elsewhere nothing is listed and the app asks for a number instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

V4L_ROOT: Final[Path] = Path("/sys/class/video4linux")
_NODE: Final[re.Pattern[str]] = re.compile(r"video(\d+)")


def list_cameras(root: Path = V4L_ROOT) -> list[tuple[int, str]]:
    """(index, name) of every capture camera, by index; empty when none is known."""
    cameras = []
    try:
        nodes = sorted(root.iterdir()) if root.is_dir() else []
    except OSError:
        return []
    for node in nodes:
        match = _NODE.fullmatch(node.name)
        if match is None:
            continue
        if _read(node / "index", "0") != "0":
            continue  # a metadata node of a camera listed already
        cameras.append((int(match.group(1)), _read(node / "name", f"camera {match.group(1)}")))
    return sorted(cameras)


def _read(path: Path, default: str) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip() or default
    except OSError:
        return default
