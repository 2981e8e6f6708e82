"""`faceedit-train compare EXPERIMENT`: the paper's comparisons, trained and scored on your data.

Each experiment trains its variants with the trainer's own stages under one shared budget
(preset, steps, batch size, seed), evaluates every final checkpoint with the same judges, and
writes one table (rows: variants; columns: metrics) as EXPERIMENT.md and EXPERIMENT.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from faceedit.commands.argtypes import seed_argument, steps_argument
from faceedit.errors import ConfigError
from faceedit.fileio import check_output_folder
from faceedit.model.config import PRESETS
from trainer.commands.common import add_evaluation_inputs, check_evaluation_inputs, parse_targets
from trainer.judges.experiments import (
    EXPERIMENTS,
    Budget,
    Data,
    Judges,
    get_experiment,
    run_comparison,
)
from trainer.judges.loading import load_judges
from trainer.stages.distributed import resolve_device

EPILOG = (
    "experiments:\n"
    + "\n".join(f"  {name:<16} {experiment.question}" for name, experiment in EXPERIMENTS.items())
    + """

examples:
  faceedit-train compare joint-vs-frozen --out cmp/jf --celebamask-hq ~/data/CelebAMask-HQ \\
      --rafd ~/data/RaFD --classifier judge.safetensors --fid-weights pt_inception.pth
  faceedit-train compare bisenet-vs-unet --out cmp/bu --preset tiny --steps 200 \\
      --celebamask-hq ~/data/CelebAMask-HQ --folders ~/my_faces
"""
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS), help="which comparison")
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="folder for the runs (runs/), the evaluations (eval/) and the table",
    )
    budget = parser.add_argument_group("budget (shared by every variant)")
    budget.add_argument("--preset", choices=sorted(PRESETS), default="paper-128")
    budget.add_argument(
        "--steps", type=steps_argument, help="iterations of every stage (default: each stage's own)"
    )
    budget.add_argument("--seed", type=seed_argument, default=0)
    add_evaluation_inputs(parser)


def run(args: argparse.Namespace) -> int:
    expression = check_evaluation_inputs(args)
    if args.celebamask_hq is None or expression is None:
        raise ConfigError(
            "compare trains parsers and GANs: give --celebamask-hq ROOT and one of --affectnet, "
            "--rafd or --folders ROOT"
        )
    if args.steps is not None and args.steps <= 0:
        raise ConfigError(f"--steps must be a positive number, got {args.steps}")
    experiment = get_experiment(args.experiment)
    check_output_folder(args.out, "--out")
    loaded = load_judges(args.classifier, args.fid_weights, resolve_device(args.device))
    judges = Judges(
        classifier=loaded.classifier,
        fid_network=loaded.fid_network,
        reasons=loaded.reasons,
        split=args.split,
        limit=args.limit,
        targets=parse_targets(args.targets),
        batch_size=args.batch_size,
        num_workers=args.num_workers or 0,
    )
    budget = Budget(
        preset=args.preset,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
        num_workers=args.num_workers,
    )
    data = Data(celebamask_hq=str(args.celebamask_hq), expression=expression)
    result = run_comparison(experiment, args.out, data, budget, judges)
    print(f"{experiment.name}: {experiment.question}\n")
    print(result.table)
    print(f"\ntable: {result.paths['markdown']}  (JSON: {result.paths['json']})")
    return 0
