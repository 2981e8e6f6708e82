"""`faceedit-train paired-ceiling`: how far the world-64 generator gets with the answer given.

Reads a finished learning check's folder (its world, parser and judge), trains a fresh
generator for --steps updates with the L1 distance to the true rendering of the target
(trainer/research/paired_ceiling.py), and scores it exactly as the learning check scores its joint model:
held-out identities, every source towards every other expression, through the app's engine.
Writes OUT/report.json (scores, loss curve, machine, wall time) and OUT/model.safetensors.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from faceedit.errors import ConfigError
from faceedit.fileio import check_output_folder
from faceedit.limits import (
    batch_argument,
    bounded_int,
    positive_float,
    seed_argument,
    steps_argument,
)
from faceedit.model.config import CONDITIONING_MODES
from trainer.research.paired_ceiling import PairedPlan, check_files, run_paired_ceiling

logger = logging.getLogger("trainer.research.paired_ceiling")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Train the world-64 generator WITH the ground truth (L1 to the true rendering of the "
        "target) for as many updates as an unpaired run, and score it like the learning check: "
        "the ceiling an unpaired run of that length can reach. A diagnostic, not a recipe."
    )
    parser.add_argument(
        "--check",
        required=True,
        type=Path,
        help="a learning-check folder (world/, runs/parser/, judge.safetensors)",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="folder for report.json and model.safetensors"
    )
    parser.add_argument(
        "--steps",
        type=steps_argument,
        default=500,
        help="generator updates (default 500, the check's)",
    )
    parser.add_argument("--batch-size", type=batch_argument, default=8)
    parser.add_argument("--seed", type=seed_argument, default=0)
    parser.add_argument(
        "--lr",
        type=positive_float,
        default=PairedPlan.lr,
        help=f"Adam learning rate (default {PairedPlan.lr}, the gan stage's)",
    )
    parser.add_argument(
        "--conditioning",
        choices=CONDITIONING_MODES,
        default=None,
        help="how the editors take the target (GeneratorConfig.conditioning; default the parser "
        "checkpoint's preset's: film for world-64)",
    )
    parser.add_argument(
        "--identities",
        type=bounded_int(1, 100_000),
        default=24,
        help="held-out identities scored (default 24)",
    )
    parser.add_argument(
        "--threads", type=bounded_int(1, 1024), default=2, help="torch CPU threads (default 2)"
    )


def run(args: argparse.Namespace) -> int:
    files = check_files(Path(args.check))
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise ConfigError(
            f"--check {args.check}: {', '.join(missing)} missing; run 'faceedit-train "
            "learning-check' first"
        )
    out = check_output_folder(args.out, "--out")
    torch.set_num_threads(args.threads)
    plan = PairedPlan(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        conditioning=args.conditioning,
    )
    report = run_paired_ceiling(files, out, plan, args.identities, log=logger.info)
    logger.info(
        "paired ceiling after %d updates: judged as target %.3f, L1 ratio %.3f as the app "
        "shows them (the generator's crop: %.3f, %.3f; report %s)",
        plan.steps,
        report["edits"]["judge_accuracy"],
        report["l1_ratio"],
        report["edits_generator_crop"]["judge_accuracy"],
        report["l1_ratio_generator_crop"],
        out / "report.json",
    )
    return 0
