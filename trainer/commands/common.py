"""What the training commands share: their flags (run, expression data, evaluation inputs) and
config resolution. Resolving and training are trainer/stages/api.py's (`stage_config`,
`train_stage`); a command only turns its flags into their arguments.

Precedence when resolving a config: stage defaults for the preset < --recipe (trainer/recipes/)
< --config YAML file < flags like --steps < --set KEY=VALUE; with --resume the saved run's
config takes the place of the first two.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from faceedit.errors import ConfigError, DatasetError
from faceedit.fileio import check_output_folder
from faceedit.limits import (
    batch_argument,
    positive_int,
    seed_argument,
    steps_argument,
    workers_argument,
)
from faceedit.model.config import PRESETS
from faceedit.vocab.expressions import EXPRESSIONS
from trainer.config import DEFAULT_PRESET, EXPRESSION_SOURCES, Stage, TrainConfig, load_yaml
from trainer.judges.fid import WEIGHTS_FILE_NAME
from trainer.recipes import load_recipe, recipe_names
from trainer.stages.api import InitSource, saved_config, stage_config
from trainer.stages.preemption import EXIT_REQUEUE
from trainer.stages.state import STATE_FILE

# The training stages' expression flags: needed for a new run, not for --resume.
RESUME_YES: Final[str] = "yes"
RESUME_AUTO: Final[str] = "auto"
EXPRESSION_GROUP: Final[str] = "expression data (give one; not needed with --resume)"

# flag attribute -> config key
_FLAG_KEYS: dict[str, str] = {
    "steps": "steps",
    "batch_size": "batch_size",
    "num_workers": "num_workers",
    "seed": "seed",
    "checkpoint_every": "checkpoint_every",
    "log_every": "log_every",
    "image_every": "image_every",
}


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The run flags every stage takes."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    run = parser.add_argument_group("run")
    run.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="run folder: config.yaml, state.pt (resumable state), the inference checkpoint "
        "and tensorboard/ events are written here",
    )
    run.add_argument(
        "--resume",
        nargs="?",
        const=RESUME_YES,
        choices=(RESUME_YES, RESUME_AUTO),
        help="continue the run in --out from its state.pt, exactly where it stopped; its saved "
        "settings are used (only --steps, the logging/checkpoint intervals, --num-workers and "
        "dataset locations may change). `--resume auto`: continue where a state.pt exists, "
        "else start the run as the other options say (one command for a job a scheduler "
        f"requeues: SIGTERM saves the state and exits {EXIT_REQUEUE})",
    )
    run.add_argument(
        "--recipe",
        metavar="NAME|FILE",
        help="every setting of a trained model, from a recipe file: "
        f"{', '.join(recipe_names())} (trainer/recipes/NAME.yaml), NAME:VARIANT "
        "(world-64:quick), or any recipe file; the other options apply on top. New runs only",
    )
    run.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help=f"model size without a recipe (the stage defaults at that size): 'tiny' (32 px, "
        f"seconds per step on a CPU), 'world-64' or 'paper-128'; default {DEFAULT_PRESET}, or "
        "the recipe's",
    )
    run.add_argument(
        "--config",
        metavar="FILE",
        help="YAML file of settings, with the keys of config.yaml (a run's config.yaml works)",
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting by its dotted key, e.g. --set model.parser.kind=unet "
        "--set loss.cycle=5 --set model.region_source=boxes (repeatable; see docs/training.md)",
    )
    run.add_argument(
        "--steps", type=steps_argument, help="training iterations (default: the stage's)"
    )
    run.add_argument(
        "--batch-size", type=batch_argument, help="images per batch per process (default 16)"
    )
    run.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where to train: auto = CUDA when available (bf16 autocast), else CPU",
    )
    run.add_argument(
        "--num-workers",
        type=workers_argument,
        help="DataLoader worker processes per training process (default -1: this machine's "
        "cores shared by its training processes, less one, at most 8; 0 = load in the main "
        "process)",
    )
    run.add_argument(
        "--seed", type=seed_argument, help="seed of initialisation, sampling and augmentation"
    )
    run.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the parser (parser stage) or the generator (gan, joint): faster "
        "steps on a GPU after a slow first few; the discriminators stay eager",
    )
    run.add_argument(
        "--checkpoint-every",
        type=steps_argument,
        metavar="N",
        help="write state.pt and the checkpoint every N steps (and at the end)",
    )
    run.add_argument(
        "--log-every",
        type=steps_argument,
        metavar="N",
        help="log losses to TensorBoard every N steps",
    )
    run.add_argument(
        "--image-every", type=steps_argument, metavar="N", help="log image grids every N steps"
    )
    run.add_argument(
        "--deterministic",
        action="store_true",
        default=None,
        help="bitwise-repeatable kernels (torch.use_deterministic_algorithms); slower on GPU",
    )


def existing_folder(flag: str, path: str) -> str:
    """`path` as an absolute string if it is a folder; DatasetError naming the flag otherwise."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise DatasetError(f"{flag} {path}: no such folder; give the dataset's root folder")
    if not folder.is_dir():
        raise DatasetError(f"{flag} {path}: not a folder; give the dataset's root folder")
    return str(folder.resolve())


def settle_resume(args: argparse.Namespace) -> bool:
    """args.resume as a bool: `--resume auto` is True where --out holds a state.pt."""
    if args.resume == RESUME_AUTO:
        args.resume = (Path(args.out).expanduser() / STATE_FILE).is_file()
        args.resume_auto = True  # the same command starts and continues: --recipe stays
    else:
        args.resume = bool(args.resume)
    return bool(args.resume)


def resolve_config(
    args: argparse.Namespace,
    stage: Stage,
    data: Mapping[str, str],
    init: InitSource | None = None,
) -> TrainConfig:
    """The stage's config from the run flags (trainer.stages.api.stage_config does the work).

    `data` holds the dataset roots given on the command line (config keys under `data.`);
    `init` is what a new run starts from (the gan stage's parser, the joint stage's gan run).
    """
    settle_resume(args)
    out = check_output_folder(args.out, "--out")
    yaml_updates = load_yaml(args.config) if args.config else {}
    flags = {key: getattr(args, attr) for attr, key in _FLAG_KEYS.items()}
    if args.deterministic:
        flags["deterministic"] = True
    updates = [yaml_updates, {k: v for k, v in flags.items() if v is not None}]
    if args.resume:
        # A recipe cannot change a saved run: refused, except in the one requeued command of
        # `--resume auto`, where the saved settings win (and any flag that differs is refused).
        if args.recipe and not getattr(args, "resume_auto", False):
            raise ConfigError(
                f"--recipe {args.recipe}: a resumed run continues with its saved settings; "
                "drop --recipe (only --steps, the intervals, --num-workers and dataset "
                "folders may change)"
            )
        saved = saved_config(out, stage)
        if args.preset and args.preset != saved.preset:
            raise ConfigError(
                f"--preset {args.preset}: the run in {out} was made with preset {saved.preset}"
            )
        return stage_config(stage, base=saved, data=data, updates=updates, sets=args.set)
    recipe = load_recipe(args.recipe) if args.recipe else None
    return stage_config(
        stage,
        recipe=recipe,
        preset_name=args.preset,
        init=init,
        data=data,
        updates=updates,
        sets=args.set,
    )


def add_expression_arguments(
    parser: argparse._ActionsContainer, title: str | None = None, required: bool = False
) -> None:
    """--affectnet ROOT | --rafd ROOT | --folders ROOT | --facial-expressions ROOT (one of them),
    for every command that reads expression data; `title` puts them in an argument group of
    their own."""
    container = parser.add_argument_group(title) if title else parser
    choice = container.add_mutually_exclusive_group(required=required)
    choice.add_argument(
        "--affectnet",
        metavar="ROOT",
        help="AffectNet root (Manually_Annotated_file_lists/, Manually_Annotated_Images/); "
        "training stages use its valence/arousal labels too",
    )
    choice.add_argument(
        "--rafd", metavar="ROOT", help="RaFD root (its Rafd*.jpg files, any nesting)"
    )
    choice.add_argument(
        "--folders",
        metavar="ROOT",
        help="your own photos in one folder per expression: " + ", ".join(EXPRESSIONS),
    )
    choice.add_argument(
        "--facial-expressions",
        metavar="ROOT",
        help="real faces: the facial_expressions dataset (images/, data/legend.csv) or, "
        "faster, its folder prepared by 'faceedit-train prepare --facial-expressions'",
    )


def expression_roots(args: argparse.Namespace) -> dict[str, str]:
    """The expression dataset roots given, as absolute folders (DatasetError if one is missing)."""
    return {
        name: existing_folder(f"--{name}", getattr(args, name))
        for name in EXPRESSION_SOURCES
        if getattr(args, name)
    }


def expression_source(args: argparse.Namespace) -> tuple[str, str] | None:
    """(kind, root) of the expression dataset named on the command line, or None."""
    for kind in EXPRESSION_SOURCES:
        root = getattr(args, kind, None)
        if root:
            return kind, root
    return None


def add_evaluation_inputs(parser: argparse.ArgumentParser) -> None:
    """Datasets, judges and limits shared by `eval` and `compare`."""
    data = parser.add_argument_group("data")
    data.add_argument(
        "--celebamask-hq", metavar="ROOT", help="score the parser (mIoU, per-class F1)"
    )
    add_expression_arguments(data)
    judges = parser.add_argument_group("judges")
    judges.add_argument(
        "--classifier",
        type=Path,
        metavar="FILE",
        help="expression classifier from 'faceedit-train classifier' (expression accuracy)",
    )
    judges.add_argument(
        "--fid-weights",
        type=Path,
        metavar="PTH",
        help=f"pytorch-fid's Inception weights ({WEIGHTS_FILE_NAME}) for FID",
    )
    scope = parser.add_argument_group("scope")
    scope.add_argument("--split", choices=("train", "val", "test"), default="test")
    scope.add_argument(
        "--limit", type=positive_int, metavar="N", help="score at most N images per dataset"
    )
    scope.add_argument(
        "--targets",
        metavar="NAMES",
        help="comma-separated target expressions (default: those present in the split)",
    )
    scope.add_argument("--batch-size", type=batch_argument, default=16)
    scope.add_argument(
        "--num-workers",
        type=workers_argument,
        help="DataLoader worker processes (default: 0 to score; each stage's own to train)",
    )
    scope.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA if present"
    )


def check_evaluation_inputs(args: argparse.Namespace) -> tuple[str, str] | None:
    """The expression dataset of `eval`/`compare` flags, once they name something to score."""
    expression = expression_source(args)
    if args.celebamask_hq is None and expression is None:
        raise ConfigError(
            "nothing to evaluate: give --celebamask-hq ROOT (parser) and/or --affectnet, "
            "--rafd or --folders ROOT (edits)"
        )
    if args.limit is not None and args.limit <= 0:
        raise ConfigError(f"--limit must be a positive number of images, got {args.limit}")
    return expression


def parse_targets(text: str | None) -> tuple[str, ...] | None:
    """--targets happy,sad as expression names (None: every expression in the split)."""
    if not text:
        return None
    names = tuple(t.strip().lower() for t in text.split(",") if t.strip())
    unknown = [t for t in names if t not in EXPRESSIONS]
    if unknown:
        raise ConfigError(
            f"--targets: unknown expression(s) {unknown}; choose from {list(EXPRESSIONS)}"
        )
    return names
