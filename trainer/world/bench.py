"""Measure the world's speed on one core: `python -m trainer.world.bench [--count N] [--size S]`.

Prints faces per second for rendering alone and for rendering plus writing every file (JPEG,
PNG masks, CSV), each the best of a few repeats so that a busy machine disturbs it less, and
the CPU model (lscpu) they were measured on.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from trainer.world.world import WorldConfig, build_world, render_identity


def cpu_model() -> str:
    """lscpu's model name, or the platform's processor string where lscpu is missing."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"
    for line in text.splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def faces_per_identity(config: WorldConfig) -> int:
    return 8 + config.celeba_per_identity


def render_rate(config: WorldConfig) -> float:
    """Faces per second of rendering alone (identities 0..count-1, nothing written)."""
    started = time.perf_counter()
    for index in range(config.count):
        render_identity(config, index)
    return config.count * faces_per_identity(config) / (time.perf_counter() - started)


def write_rate(config: WorldConfig) -> float:
    """Faces per second of a whole `build_world` into a temporary folder."""
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        build_world(config, Path(folder) / "world")
        return config.count * faces_per_identity(config) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="identities per repeat")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    config = WorldConfig(count=args.count, size=args.size)
    render = max(render_rate(config) for _ in range(args.repeats))
    write = max(write_rate(config) for _ in range(args.repeats))
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores visible; one used)")
    print(f"{args.size} px, {args.count} identities x {faces_per_identity(config)} faces:")
    print(f"  render only:    {render:7.0f} faces/s")
    print(f"  render + write: {write:7.0f} faces/s")


if __name__ == "__main__":
    main()
