"""The paper's comparisons as named experiments: train each variant, evaluate, one table.

Every variant runs the trainer's own commands (`faceedit-train parser`, `gan`, `joint`) with the
same preset, steps, batch size and seed; it differs only in the `--set` overrides that define
it. Runs two variants have in common (the parser of joint-vs-frozen, say) train once and are
shared. Each run folder keeps its `state.pt`, so a stopped comparison picks up where it was:
finished runs are not trained again, unfinished ones resume. The checkpoints are then scored
by `trainer.judges.evaluation` with the same data, classifier and FID network.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from torch import nn

from faceedit.errors import ConfigError, TrainingError
from faceedit.fileio import atomic_write_text
from trainer.judges.classifier import ExpressionClassifier
from trainer.judges.evaluation import (
    SUMMARY_METRICS,
    EvaluationReport,
    evaluate_checkpoint,
    markdown_table,
    summary_row,
    write_report,
)

logger = logging.getLogger("trainer.judges.experiments")

RUNS_DIR: Final[str] = "runs"
EVAL_DIR: Final[str] = "eval"
PARSER_CHECKPOINT: Final[str] = "parser.safetensors"
MODEL_CHECKPOINT: Final[str] = "model.safetensors"
STATE_FILE: Final[str] = "state.pt"
# The stage commands, called in-process exactly as `faceedit-train STAGE ...` would run them.
STAGE_MODULES: Final[dict[str, str]] = {
    "parser": "trainer.commands.parser",
    "gan": "trainer.commands.gan",
    "joint": "trainer.commands.joint",
}


@dataclass(frozen=True)
class Variant:
    """One row of a comparison: the runs it is made of and the settings that define it.

    Runs with equal names are shared between variants, so their settings must be equal too.
    """

    name: str
    parser_run: str = "parser"
    parser_set: tuple[str, ...] = ()
    gan_run: str = "gan"
    gan_set: tuple[str, ...] = ()
    joint_set: tuple[str, ...] = ()

    @property
    def joint_run(self) -> str:
        return f"joint-{self.name}"


@dataclass(frozen=True)
class Experiment:
    name: str
    question: str
    variants: tuple[Variant, ...]


EXPERIMENTS: Final[dict[str, Experiment]] = {
    "joint-vs-frozen": Experiment(
        "joint-vs-frozen",
        "Does training the parser with the GAN (joint) beat keeping it frozen? Same parser and "
        "GAN runs; the joint stage fine-tunes the parser in one variant and not in the other.",
        (
            Variant("joint"),
            Variant("frozen", joint_set=("model.freeze_parser=true",)),
        ),
    ),
    "masks-vs-boxes": Experiment(
        "masks-vs-boxes",
        "Do soft parser masks beat keypoint boxes as the local generators' regions? Same parser "
        "run; the GAN and joint stages use masks in one variant and boxes in the other.",
        (
            Variant("masks", gan_run="gan-masks", gan_set=("model.region_source=masks",)),
            Variant("boxes", gan_run="gan-boxes", gan_set=("model.region_source=boxes",)),
        ),
    ),
    "bisenet-vs-unet": Experiment(
        "bisenet-vs-unet",
        "Which parser architecture serves the method better? Each variant trains its own "
        "parser, GAN and joint runs.",
        (
            Variant(
                "bisenet",
                parser_run="parser-bisenet",
                parser_set=("model.parser.kind=bisenet",),
                gan_run="gan-bisenet",
            ),
            Variant(
                "unet",
                parser_run="parser-unet",
                parser_set=("model.parser.kind=unet",),
                gan_run="gan-unet",
            ),
        ),
    ),
}


@dataclass(frozen=True)
class Budget:
    """What every run of a comparison shares: model size, steps, batch, seed and device.

    `steps` None means each stage's own default (the paper's schedule for the preset).
    """

    preset: str = "paper-128"
    steps: int | None = None
    batch_size: int | None = None
    seed: int = 0
    device: str = "auto"
    num_workers: int | None = None

    def flags(self, stage: str) -> list[str]:
        out = ["--seed", str(self.seed), "--device", self.device]
        if stage != "joint":  # the joint stage takes its model, preset included, from --init
            out += ["--preset", self.preset]
        for flag, value in (
            ("--steps", self.steps),
            ("--batch-size", self.batch_size),
            ("--num-workers", self.num_workers),
        ):
            if value is not None:
                out += [flag, str(value)]
        return out


@dataclass(frozen=True)
class Data:
    """The user's datasets: CelebAMask-HQ and one expression dataset (kind, root)."""

    celebamask_hq: str
    expression: tuple[str, str]

    def flags(self, stage: str) -> list[str]:
        kind, root = self.expression
        if stage == "parser":
            return ["--celebamask-hq", self.celebamask_hq]
        if stage == "gan":
            return [f"--{kind}", root]
        return [f"--{kind}", root, "--celebamask-hq", self.celebamask_hq]


@dataclass
class Judges:
    """What scores the variants (shared by all of them)."""

    classifier: ExpressionClassifier | None = None
    fid_network: nn.Module | None = None
    reasons: dict[str, str] = field(default_factory=dict)
    split: str = "test"
    limit: int | None = None
    targets: tuple[str, ...] | None = None
    batch_size: int = 16
    num_workers: int = 0


@dataclass
class ComparisonResult:
    experiment: Experiment
    reports: dict[str, EvaluationReport]
    table: str
    paths: dict[str, Path]


def get_experiment(name: str) -> Experiment:
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ConfigError(
            f"unknown experiment {name!r}; choose one of {sorted(EXPERIMENTS)}"
        ) from None


def run_stage_command(stage: str, argv: Sequence[str]) -> None:
    """Run `faceedit-train STAGE argv` in this process (its errors propagate as exceptions)."""
    module = importlib.import_module(STAGE_MODULES[stage])
    parser = argparse.ArgumentParser(prog=f"faceedit-train {stage}")
    module.add_arguments(parser)
    try:
        args = parser.parse_args(list(argv))
    except SystemExit:  # argparse has printed what is wrong with the flags
        raise TrainingError(f"faceedit-train {stage} refused the options {list(argv)}") from None
    code = int(module.run(args) or 0)
    if code != 0:
        raise TrainingError(f"faceedit-train {stage} {' '.join(argv)} exited with status {code}")


def train_run(
    stage: str,
    folder: Path,
    argv: Sequence[str],
    done: dict[Path, tuple[str, ...]],
    runner: Callable[[str, Sequence[str]], None],
    log: Callable[[str], None],
) -> None:
    """Train one run into `folder`, once per comparison; resume it if a state file is there."""
    key = tuple(argv)
    if folder in done:
        if done[folder] != key:
            raise ConfigError(f"run {folder} is shared by variants that configure it differently")
        return
    resume = (folder / STATE_FILE).is_file()
    log(f"{'resuming' if resume else 'training'} {stage} run {folder}")
    runner(stage, [*argv, "--out", str(folder), *(["--resume"] if resume else [])])
    done[folder] = key


def run_comparison(
    experiment: Experiment,
    out: str | os.PathLike[str],
    data: Data,
    budget: Budget,
    judges: Judges,
    *,
    runner: Callable[[str, Sequence[str]], None] = run_stage_command,
    log: Callable[[str], None] = logger.info,
) -> ComparisonResult:
    """Train every variant's runs, evaluate each final checkpoint, write one table."""
    root = Path(out)
    runs = root / RUNS_DIR
    done: dict[Path, tuple[str, ...]] = {}
    reports: dict[str, EvaluationReport] = {}
    for variant in experiment.variants:
        # ---- the variant's three stages, each with the shared budget and its own overrides
        parser_dir, gan_dir, joint_dir = (
            runs / variant.parser_run,
            runs / variant.gan_run,
            runs / variant.joint_run,
        )
        parser_argv = [*data.flags("parser"), *budget.flags("parser"), *_sets(variant.parser_set)]
        train_run("parser", parser_dir, parser_argv, done, runner, log)
        gan_argv = [
            *data.flags("gan"),
            *("--parser", str(parser_dir / PARSER_CHECKPOINT)),
            *budget.flags("gan"),
            *_sets(variant.gan_set),
        ]
        train_run("gan", gan_dir, gan_argv, done, runner, log)
        joint_argv = [
            *data.flags("joint"),
            *("--init", str(gan_dir)),
            *budget.flags("joint"),
            *_sets(variant.joint_set),
        ]
        train_run("joint", joint_dir, joint_argv, done, runner, log)

        # ---- the variant's evaluation, with the shared judges
        log(f"evaluating {variant.name}")
        report = evaluate_checkpoint(
            joint_dir / MODEL_CHECKPOINT,
            celebamask_hq=data.celebamask_hq,
            expression=data.expression,
            classifier=judges.classifier,
            fid_network=judges.fid_network,
            reasons=judges.reasons,
            split=judges.split,
            limit=judges.limit,
            targets=judges.targets,
            batch_size=judges.batch_size,
            num_workers=judges.num_workers,
            device=budget.device,
            log=log,
        )
        write_report(report, root / EVAL_DIR / variant.name)
        reports[variant.name] = report
    return _write_comparison(experiment, root, budget, reports)


def comparison_table(reports: Mapping[str, EvaluationReport]) -> str:
    """Rows: variants; columns: SUMMARY_METRICS."""
    rows = [[name, *summary_row(report.summary)] for name, report in reports.items()]
    return markdown_table(["variant", *SUMMARY_METRICS.values()], rows)


def _write_comparison(
    experiment: Experiment,
    root: Path,
    budget: Budget,
    reports: Mapping[str, EvaluationReport],
) -> ComparisonResult:
    table = comparison_table(reports)
    missing = {
        f"{SUMMARY_METRICS[k]}: {reason}"
        for report in reports.values()
        for k, reason in report.not_computed().items()
    }
    notes = "".join(f"\n- not computed: {line}" for line in sorted(missing))
    markdown = (
        f"# {experiment.name}\n\n{experiment.question}\n\n"
        f"Budget (every run): {json.dumps(asdict(budget))}\n\n{table}\n{notes}\n"
    )
    payload = {
        "experiment": experiment.name,
        "question": experiment.question,
        "budget": asdict(budget),
        "metrics": SUMMARY_METRICS,
        "variants": {
            variant.name: {
                "settings": {
                    "parser": list(variant.parser_set),
                    "gan": list(variant.gan_set),
                    "joint": list(variant.joint_set),
                },
                "runs": {
                    "parser": f"{RUNS_DIR}/{variant.parser_run}",
                    "gan": f"{RUNS_DIR}/{variant.gan_run}",
                    "joint": f"{RUNS_DIR}/{variant.joint_run}",
                },
                **_report_fields(reports[variant.name]),
            }
            for variant in experiment.variants
            if variant.name in reports
        },
    }
    paths = {
        "markdown": atomic_write_text(root / f"{experiment.name}.md", markdown),
        "json": atomic_write_text(
            root / f"{experiment.name}.json", json.dumps(payload, indent=2) + "\n"
        ),
    }
    return ComparisonResult(experiment, dict(reports), table, paths)


def _report_fields(report: EvaluationReport) -> dict[str, Any]:
    return {
        "checkpoint": report.checkpoint,
        "summary": report.summary,
        "not_computed": report.not_computed(),
    }


def _sets(assignments: Sequence[str]) -> list[str]:
    return [part for text in assignments for part in ("--set", text)]
