"""`faceedit-train learning-check`: prove that training learns, on a procedural world.

Makes a world (as `faceedit-train synth` does), trains parser, gan and joint at 64 px through
the real stages with the settings of a recipe (world-64 by default; trainer/recipes/), trains a
judge classifier on real renderings of train identities (with shift, colour and noise
augmentation), and scores the final model on held-out identities against the world's ground
truth, beside a control the judge must not read as the target. Writes DIR/report.md, DIR/report.json,
DIR/edits.png and DIR/curves_<stage>.png. See docs/learning.md and trainer/judges/learning/.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import torch

from faceedit.device import resolve_device
from faceedit.errors import ConfigError
from faceedit.fileio import check_output_folder
from faceedit.limits import bounded_int, seed_argument, steps_argument
from trainer.config import apply_overrides
from trainer.judges.learning.check import rescore_learning_check, run_learning_check
from trainer.judges.learning.plan import QUICK, RECIPE, CheckPlan
from trainer.recipes import load_recipe

logger = logging.getLogger("trainer.judges.learning")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Make a procedural world, train parser, gan and joint on it at 64 px, and check on "
        "held-out identities that the model learned: parser mIoU, edits judged as their target "
        "(beside noise aimed at the model's critics, which must not be), L1 to the true "
        "rendering, region-lock locality. Writes report.md/.json and PNGs."
    )
    parser.add_argument("--out", required=True, type=Path, help="folder for everything it makes")
    parser.add_argument(
        "--seed", type=seed_argument, default=0, help="seed of world and training (default 0)"
    )
    parser.add_argument(
        "--recipe",
        metavar="NAME|FILE",
        default=RECIPE,
        help=f"the stages' settings, the world's size and the judge's (its `check` section): a "
        f"recipe in trainer/recipes/ or a file (default {RECIPE})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"the recipe's variant {QUICK!r}: a smaller world and fewer steps (minutes, for CI)",
    )
    parser.add_argument(
        "--threads",
        type=bounded_int(1, 1024),
        default=2,
        help="torch CPU threads (default 2, the target machine)",
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="where the stages and the judge train (default cpu, the target machine); the "
        "evaluation runs on the CPU either way",
    )
    parser.add_argument(
        "--scale",
        type=bounded_int(1, 1000),
        default=1,
        help="multiply every step budget (parser, gan, joint, judge): the longer runs a GPU "
        "affords; warm-up settings are not scaled (default 1)",
    )
    parser.add_argument(
        "--gan-steps",
        type=steps_argument,
        default=None,
        help="gan-stage iterations, the critic warm-up included (default the recipe's: "
        "world-64 5000 with a 1500-step warm-up, --quick 200 with 100; times --scale): with a "
        "longer warm-up (--set gan_optim.critic_warmup=N) GAN iterations are left only if this "
        "is larger",
    )
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="score the check already in --out again without training (after the evaluation "
        "changed, or where it trained on a machine whose evaluation did not finish); its "
        "report.json's plan wins over the flags",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra training setting for the gan and joint stages (repeatable; experiments)",
    )


def command_line() -> str:
    """How this check was asked for, as report.md and report.json record it."""
    return shlex.join(["faceedit-train", *sys.argv[1:]]) if sys.argv else "faceedit-train"


def run(args: argparse.Namespace) -> int:
    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    out = check_output_folder(args.out, "--out")
    if args.rescore:
        if not out.is_dir():
            raise ConfigError(f"--out {out} does not exist: --rescore needs a check's folder")
    elif out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out} is not empty; choose a new folder (or --rescore it)")
    resolve_device(args.device)  # a missing GPU is refused before the world is made
    torch.set_num_threads(args.threads)
    base = CheckPlan.for_mode(args.seed, args.quick, args.recipe)
    if args.gan_steps is not None:
        base = replace(base, gan_steps=args.gan_steps)
    plan = replace(base.scaled(args.scale), extra_settings=tuple(args.set), device=args.device)
    # a bad --set is refused now, not after the world is made and the parser trained
    apply_overrides(load_recipe(plan.recipe).config("gan"), plan.extra_settings)
    check = rescore_learning_check if args.rescore else run_learning_check
    report = check(out, plan, command_line(), log=logger.info)
    for target in report.targets:
        verdict = "PASS" if target.passed else "FAIL"
        logger.info("%s  %s: %.4f (goal %s)", verdict, target.name, target.measured, target.goal)
    return 0 if report.passed else 1
