"""Measure the world's speed on one core: `python -m trainer.world.bench [--count N] [--size S]`.

Prints faces per second for rendering alone and for rendering plus writing every file (JPEG,
PNG masks, CSV), each the best of a few repeats, both per wall-clock second and per CPU second of
this process (the per-core rate, which other processes sharing the core disturb far less), with
OpenCV held to one thread, and the CPU model (lscpu) they were measured on.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2

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


Rates = tuple[float, float]  # faces per wall-clock second, per CPU second


def _rates(config: WorldConfig, work: Callable[[], object]) -> Rates:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    faces = config.count * faces_per_identity(config)
    return faces / (time.perf_counter() - wall), faces / (time.process_time() - cpu)


def render_rate(config: WorldConfig) -> Rates:
    """Faces per second of rendering alone (identities 0..count-1, nothing written)."""

    def work() -> None:
        for index in range(config.count):
            render_identity(config, index)

    return _rates(config, work)


def write_rate(config: WorldConfig) -> Rates:
    """Faces per second of a whole `build_world` into a temporary folder."""
    with tempfile.TemporaryDirectory() as folder:
        return _rates(config, lambda: build_world(config, Path(folder) / "world"))


def best(rates: list[Rates]) -> Rates:
    return max(r[0] for r in rates), max(r[1] for r in rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="identities per repeat")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    config = WorldConfig(count=args.count, size=args.size)
    render = best([render_rate(config) for _ in range(args.repeats)])
    write = best([write_rate(config) for _ in range(args.repeats)])
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores visible; one used)")
    print(f"{args.size} px, {args.count} identities x {faces_per_identity(config)} faces:")
    for name, (wall, cpu) in (("render only", render), ("render + write", write)):
        print(f"  {name:15s} {wall:6.0f} faces/s wall clock, {cpu:6.0f} faces per CPU second")


if __name__ == "__main__":
    main()
