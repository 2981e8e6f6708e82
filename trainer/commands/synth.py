"""`faceedit-train synth`: render the procedural face world (trainer/world/, docs/world.md).

It writes DIR/celebamask-hq/ and DIR/affectnet/ in the real datasets' on-disk formats (the
loaders read them unchanged), DIR/pairs.csv (every identity in all 8 expressions, pixel-aligned:
the ground truth of an edit) and DIR/world.json. Same seed, same bytes.

Speed at 128 px on an AMD EPYC (lscpu; KVM guest, 2 cores shared with other jobs, load ~10),
measured with `python -m trainer.world.bench --count 100`: rendering 462 faces per CPU second
(220 per wall-clock second on the busy machine), rendering plus writing every file 295 per CPU
second (113 wall clock). See docs/world.md.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import cast

from faceedit.fileio import check_output_folder
from faceedit.limits import bounded_int, image_size_argument, seed_argument
from faceedit.progress import ProgressBar
from trainer.world.world import MIN_COUNT, MIN_SIZE, WorldConfig, build_world

logger = logging.getLogger("trainer.world")
PROGRESS_EVERY_S = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Render the procedural face world: faces whose parts and expressions are known, in the "
        "CelebAMask-HQ and AffectNet formats, with pixel-aligned expression pairs."
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="folder to create (must not exist or be empty)"
    )
    parser.add_argument(
        "--count",
        type=bounded_int(1, 10**7),
        default=1000,
        help=f"number of IDENTITIES (default 1000, at least {MIN_COUNT}); each gives 8 AffectNet "
        "images (one per expression) and 2 CelebAMask-HQ images",
    )
    parser.add_argument(
        "--size",
        type=image_size_argument,
        default=128,
        help=f"image side in px (default 128, at least {MIN_SIZE})",
    )
    parser.add_argument(
        "--seed",
        type=seed_argument,
        default=0,
        help="world seed (default 0); same seed, same bytes",
    )


def run(args: argparse.Namespace) -> int:
    check_output_folder(args.out, "--out")
    config = WorldConfig(count=args.count, size=args.size, seed=args.seed)
    bar = ProgressBar(config.count, "identities")
    last = [0.0]

    def progress(done: int, total: int, rate: float) -> None:
        now = time.perf_counter()
        if done == total or now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            bar.goto(done, f"{rate:.0f} faces/s")

    started = time.perf_counter()
    manifest = build_world(config, args.out, progress)
    bar.close()
    counts = cast("dict[str, int]", manifest["counts"])
    logger.info(
        "synth: wrote %s in %.1f s: identities %s, %d pairs",
        args.out,
        time.perf_counter() - started,
        counts["identities"],
        counts["pairs"],
    )
    return 0
