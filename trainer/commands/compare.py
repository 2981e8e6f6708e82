"""`faceedit-train compare EXPERIMENT`: the paper's comparisons, trained and scored with seeds.

Each experiment trains its variants with the trainer's own stages under one shared budget
(recipe or preset, steps, batch size), once per seed, scores every final checkpoint with the same judges
over the same pixels, and writes per experiment a table of mean ± std over seeds (Markdown
and LaTeX), JSON, bar plots with error bars and an edit grid (PNG). Resumable: finished runs
and scores are kept (trainer/judges/comparisons/experiments.py).

On the procedural world (`--world DIR`, from `faceedit-train synth`) the judges are the world's
ground truth and the world judge, trained on its train identities
(trainer/judges/comparisons/world_scorer.py); on real data, `faceedit-train eval`'s metrics.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from faceedit.errors import ConfigError
from faceedit.fileio import check_output_folder
from faceedit.limits import batch_argument, bounded_int, steps_argument
from faceedit.model.config import PRESETS
from trainer.commands.common import add_evaluation_inputs, check_evaluation_inputs, parse_targets
from trainer.judges.comparisons.experiments import (
    ALL,
    DEFAULT_SEEDS,
    EXPERIMENTS,
    Budget,
    Data,
    Scorer,
    get_experiments,
    run_comparison,
)
from trainer.recipes import load_recipe
from trainer.stages.distributed import resolve_device

EPILOG = (
    "experiments:\n"
    + "\n".join(f"  {name:<16} {experiment.question}" for name, experiment in EXPERIMENTS.items())
    + f"\n  {ALL:<16} every experiment above (runs they share train once)"
    + """

examples:
  faceedit-train synth --out world64 --count 240 --size 64
  faceedit-train compare all --world world64 --out cmp/world --recipe world-64 --seeds 3 \\
      --parser-steps 600 --gan-steps 400 --joint-steps 100 --set gan_optim.critic_warmup=150
  faceedit-train compare joint-vs-frozen --out cmp/jf --celebamask-hq ~/data/CelebAMask-HQ \\
      --rafd ~/data/RaFD --classifier judge.safetensors --fid-weights pt_inception.pth
"""
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("experiment", choices=[*sorted(EXPERIMENTS), ALL], help="which comparison")
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="folder for the runs (runs/s{seed}/), the scores (eval/) and the tables and figures",
    )
    parser.add_argument(
        "--world",
        type=Path,
        metavar="DIR",
        help="a procedural world ('faceedit-train synth'): train on its CelebAMask-HQ and "
        "AffectNet layouts, score against its ground truth (replaces the dataset flags)",
    )
    budget = parser.add_argument_group("budget (shared by every variant)")
    budget.add_argument(
        "--recipe",
        metavar="NAME|FILE",
        help="every stage's settings from a recipe (trainer/recipes/NAME.yaml, NAME:VARIANT or "
        "a file); the budget's steps, batch sizes and --set apply on top",
    )
    budget.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="model size without a recipe (the stage defaults at that size; default paper-128)",
    )
    budget.add_argument(
        "--steps", type=steps_argument, help="iterations of every stage (default: each stage's own)"
    )
    for stage in ("parser", "gan", "joint"):
        budget.add_argument(
            f"--{stage}-steps",
            type=steps_argument,
            metavar="N",
            help=f"iterations of the {stage} stage",
        )
    budget.add_argument(
        "--seeds",
        type=bounded_int(1, 64),
        default=DEFAULT_SEEDS,
        help=f"seeds per variant: 0 .. N-1 (default {DEFAULT_SEEDS})",
    )
    budget.add_argument(
        "--train-batch-size",
        type=batch_argument,
        help="batch size of every stage (default: its own)",
    )
    for stage in ("parser", "gan", "joint"):
        budget.add_argument(
            f"--{stage}-batch-size",
            type=batch_argument,
            metavar="N",
            help=f"batch size of the {stage} stage",
        )
    budget.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting for the gan and joint stages of every variant (repeatable)",
    )
    world = parser.add_argument_group("world judges (with --world)")
    world.add_argument(
        "--judge-steps", type=steps_argument, default=1000, help="training steps of the judge"
    )
    world.add_argument(
        "--eval-identities",
        type=bounded_int(1, 100_000),
        default=24,
        help="held-out identities scored (8 x 7 edits each)",
    )
    add_evaluation_inputs(parser)


def _budget(args: argparse.Namespace) -> Budget:
    stage_steps = {
        stage: getattr(args, f"{stage}_steps")
        for stage in ("parser", "gan", "joint")
        if getattr(args, f"{stage}_steps") is not None
    }
    stage_batch = {
        stage: getattr(args, f"{stage}_batch_size")
        for stage in ("parser", "gan", "joint")
        if getattr(args, f"{stage}_batch_size") is not None
    }
    numbers = [("--steps", args.steps), ("--train-batch-size", args.train_batch_size)]
    numbers += [(f"--{k}-steps", v) for k, v in stage_steps.items()]
    numbers += [(f"--{k}-batch-size", v) for k, v in stage_batch.items()]
    for name, value in numbers:
        if value is not None and value <= 0:
            raise ConfigError(f"{name} must be a positive number, got {value}")
    if args.recipe:
        load_recipe(args.recipe)  # a bad recipe is refused before anything trains
    return Budget(
        preset=args.preset,
        recipe=args.recipe,
        steps=args.steps,
        stage_steps=stage_steps,
        batch_size=args.train_batch_size,
        stage_batch=stage_batch,
        device=args.device,
        num_workers=args.num_workers,
        settings=tuple(args.settings),
    )


def _world_scorer(args: argparse.Namespace) -> tuple[Data, Scorer]:
    from trainer.judges.comparisons.world_scorer import WorldScorer, comparison_judge

    world = Path(args.world)
    if not (world / "world.json").is_file():
        raise ConfigError(f"--world {world}: no world.json; make one with 'faceedit-train synth'")
    args.out.mkdir(parents=True, exist_ok=True)
    judge, accuracy = comparison_judge(world, args.out, args.judge_steps, print)
    scorer = WorldScorer(world, judge, args.eval_identities, accuracy, print)
    data = Data(
        str(world / "celebamask-hq"), ("affectnet", str(world / "affectnet")), align="landmarks"
    )
    return data, scorer


def _dataset_scorer(args: argparse.Namespace) -> tuple[Data, Scorer]:
    from trainer.judges.comparisons.dataset_scorer import DatasetScorer
    from trainer.judges.loading import load_judges

    expression = check_evaluation_inputs(args)
    if args.celebamask_hq is None or expression is None:
        raise ConfigError(
            "compare trains parsers and GANs: give --world DIR, or --celebamask-hq ROOT and one "
            "of --affectnet, --rafd or --folders ROOT"
        )
    loaded = load_judges(args.classifier, args.fid_weights, resolve_device(args.device))
    options: dict[str, Any] = {
        "classifier": loaded.classifier,
        "fid_network": loaded.fid_network,
        "reasons": loaded.reasons,
        "split": args.split,
        "limit": args.limit,
        "targets": parse_targets(args.targets),
        "batch_size": args.batch_size,
        "num_workers": args.num_workers or 0,
        "device": args.device,
    }
    scorer = DatasetScorer(str(args.celebamask_hq), expression, options, print)
    return Data(str(args.celebamask_hq), expression), scorer


def run(args: argparse.Namespace) -> int:
    if args.seeds <= 0:
        raise ConfigError(f"--seeds must be a positive number, got {args.seeds}")
    experiments = get_experiments(args.experiment)
    check_output_folder(args.out, "--out")
    budget = _budget(args)
    data, scorer = _world_scorer(args) if args.world is not None else _dataset_scorer(args)
    result = run_comparison(
        experiments, args.out, data, budget, list(range(args.seeds)), scorer, log=print
    )
    for experiment in result.experiments:
        print(f"\n{experiment.name}: {experiment.question}\n")
        print(result.tables[experiment.name])
        files = "  ".join(f"{k}: {v}" for k, v in result.paths[experiment.name].items())
        print(f"\n{files}")
    return 0
