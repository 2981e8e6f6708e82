"""The paper's comparisons as named experiments: train each variant with several seeds, score
every final checkpoint with the same judges, write tables (mean +- std) and figures.

Every variant runs the trainer's own commands (`faceedit-train parser`, `gan`, `joint`) with the
same preset, steps, batch size and seed; it differs only in the `--set` overrides that define
it. Runs two variants have in common (the parser of joint-vs-frozen, say) train once per seed
and are shared, across experiments too. Each seed's runs live under `runs/s{seed}/`.

Resuming: a run whose folder holds its final checkpoint and a `done.json` written with the same
options is not trained again; an unfinished one (a `state.pt`, no `done.json`) resumes; a
variant/seed whose `eval/{variant}/s{seed}/scores.json` exists is not scored again. Tables and
figures are rewritten after every seed, so a stopped comparison still leaves what finished.
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
from typing import Any, Final, Protocol

import numpy as np

from faceedit.errors import ConfigError, TrainingError
from faceedit.fileio import atomic_write_text
from trainer.judges import plots
from trainer.judges.tables import Metric, comparison_tables, summarise

logger = logging.getLogger("trainer.judges.experiments")

RUNS_DIR: Final[str] = "runs"
EVAL_DIR: Final[str] = "eval"
PARSER_CHECKPOINT: Final[str] = "parser.safetensors"
MODEL_CHECKPOINT: Final[str] = "model.safetensors"
STATE_FILE: Final[str] = "state.pt"
DONE_FILE: Final[str] = "done.json"
SCORES_FILE: Final[str] = "scores.json"
FINAL_CHECKPOINT: Final[dict[str, str]] = {
    "parser": PARSER_CHECKPOINT,
    "gan": MODEL_CHECKPOINT,
    "joint": MODEL_CHECKPOINT,
}
# The stage commands, called in-process exactly as `faceedit-train STAGE ...` would run them.
STAGE_MODULES: Final[dict[str, str]] = {
    "parser": "trainer.commands.parser",
    "gan": "trainer.commands.gan",
    "joint": "trainer.commands.joint",
}
DEFAULT_SEEDS: Final[int] = 3
FREEZE: Final[str] = "model.freeze_parser=true"
LOW_LABEL_FRACTION: Final[float] = 0.1
LOW: Final[str] = f"data.parser_label_fraction={LOW_LABEL_FRACTION}"


@dataclass(frozen=True)
class Variant:
    """One row of a comparison: the runs it is made of and the settings that define it.

    Runs with equal names are shared between variants, so their settings must be equal too.
    Every variant gets the same GAN budget: gan steps, then joint steps (with the parser
    frozen in all but the joint variants), so only the parts under comparison differ.
    """

    name: str
    description: str
    parser_run: str = "parser"
    parser_set: tuple[str, ...] = ()
    gan_run: str = "gan"
    gan_set: tuple[str, ...] = ()
    joint_set: tuple[str, ...] = ()

    @property
    def joint_run(self) -> str:
        return f"joint-{self.name}"


VARIANTS: Final[dict[str, Variant]] = {
    v.name: v
    for v in (
        Variant(
            "global",
            "global editor only (StarGAN/GANimation style): no regions, no local critics",
            gan_run="gan-global",
            gan_set=("model.regions=",),
            joint_set=(FREEZE,),
        ),
        Variant(
            "boxes",
            "hierarchical, keypoint boxes from each face's own landmarks",
            gan_run="gan-boxes",
            gan_set=("model.region_source=boxes",),
            joint_set=(FREEZE,),
        ),
        Variant("frozen", "hierarchical, soft parser masks, parser frozen", joint_set=(FREEZE,)),
        Variant("joint", "hierarchical, soft parser masks, parser trained jointly"),
        Variant(
            "bisenet",
            "joint model with a BiSeNet parser",
            parser_run="parser-bisenet",
            parser_set=("model.parser.kind=bisenet",),
            gan_run="gan-bisenet",
        ),
        Variant(
            "unet",
            "joint model with a UNet parser",
            parser_run="parser-unet",
            parser_set=("model.parser.kind=unet",),
            gan_run="gan-unet",
        ),
        Variant(
            "low-frozen",
            f"parser labels for {LOW_LABEL_FRACTION:.0%} of the images; parser frozen",
            parser_run="parser-low",
            parser_set=(LOW,),
            gan_run="gan-low",
            joint_set=(FREEZE, LOW),
        ),
        Variant(
            "low-joint",
            f"parser labels for {LOW_LABEL_FRACTION:.0%} of the images, GAN data for all; "
            "parser trained jointly",
            parser_run="parser-low",
            parser_set=(LOW,),
            gan_run="gan-low",
            joint_set=(LOW,),
        ),
    )
}


@dataclass(frozen=True)
class Experiment:
    name: str
    question: str
    variants: tuple[str, ...]  # keys of VARIANTS, in table order


EXPERIMENTS: Final[dict[str, Experiment]] = {
    e.name: e
    for e in (
        Experiment(
            "hierarchy",
            "Does the hierarchy help, and which regions serve it best? Global-only editing "
            "against hierarchical editing with keypoint boxes, frozen soft masks and the joint "
            "model; same losses, GAN steps and seeds.",
            ("global", "boxes", "frozen", "joint"),
        ),
        Experiment(
            "joint-vs-frozen",
            "Does training the parser with the GAN (joint) beat keeping it frozen? Same parser "
            "and GAN runs; the joint stage fine-tunes the parser in one variant only.",
            ("frozen", "joint"),
        ),
        Experiment(
            "masks-vs-boxes",
            "Do soft parser masks beat keypoint boxes (from each face's own landmarks) as the "
            "local generators' regions? Parser frozen in both.",
            ("boxes", "frozen"),
        ),
        Experiment(
            "bisenet-vs-unet",
            "Which parser architecture serves the method better? Each variant trains its own "
            "parser, GAN and joint runs.",
            ("bisenet", "unet"),
        ),
        Experiment(
            "low-label",
            f"With parser labels for only {LOW_LABEL_FRACTION:.0%} of the images (GAN data for "
            "all), does joint training help the parser, as the paper claims?",
            ("low-frozen", "low-joint"),
        ),
    )
}
ALL: Final[str] = "all"


@dataclass(frozen=True)
class Budget:
    """What every run of a comparison shares: model size, steps, batch, device, settings.

    `steps` None means each stage's own default; `stage_steps` overrides it per stage
    ({"gan": 300}), `stage_batch` likewise the batch size. `settings` are `--set KEY=VALUE` for the gan and joint stages of every
    variant (a shorter critic warm-up for a short budget, say).
    """

    preset: str = "paper-128"
    steps: int | None = None
    stage_steps: Mapping[str, int] = field(default_factory=dict)
    batch_size: int | None = None
    stage_batch: Mapping[str, int] = field(default_factory=dict)
    device: str = "auto"
    num_workers: int | None = None
    settings: tuple[str, ...] = ()
    log_every: int | None = None

    def flags(self, stage: str, seed: int) -> list[str]:
        out = ["--seed", str(seed), "--device", self.device]
        if stage != "joint":  # the joint stage takes its model, preset included, from --init
            out += ["--preset", self.preset]
        steps = self.stage_steps.get(stage, self.steps)
        for flag, value in (
            ("--steps", steps),
            ("--batch-size", self.stage_batch.get(stage, self.batch_size)),
            ("--num-workers", self.num_workers),
            ("--log-every", self.log_every),
        ):
            if value is not None:
                out += [flag, str(value)]
        if steps is not None:  # one checkpoint and one image set, at the end
            out += ["--checkpoint-every", str(steps), "--image-every", str(steps)]
        if stage != "parser":
            out += _sets(self.settings)
        return out

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stage_steps"] = dict(self.stage_steps)
        data["stage_batch"] = dict(self.stage_batch)
        return data


@dataclass(frozen=True)
class Data:
    """The datasets: CelebAMask-HQ and one expression dataset (kind, root); `align` is the
    expression crops' data.align ("" for the loader's default)."""

    celebamask_hq: str
    expression: tuple[str, str]
    align: str = ""

    def flags(self, stage: str) -> list[str]:
        kind, root = self.expression
        kind = kind.replace("_", "-")  # the config key facial_expressions is --facial-expressions
        align = ["--set", f"data.align={self.align}"] if self.align else []
        if stage == "parser":
            return ["--celebamask-hq", self.celebamask_hq]
        if stage == "gan":
            return [f"--{kind}", root, *align]
        return [f"--{kind}", root, "--celebamask-hq", self.celebamask_hq, *align]


class Scorer(Protocol):
    """What scores a final checkpoint; the same one scores every variant and seed."""

    metrics: Mapping[str, Metric]  # key -> header and direction, in table order
    notes: list[str]  # lines for every table (what a metric means, what was not measured)

    def score(self, checkpoint: Path, folder: Path) -> dict[str, Any]:
        """Scores of `checkpoint` (metric key -> value or None), with the scorer's files
        written into `folder`; extra keys are kept in scores.json."""
        ...

    def grid(self, checkpoints: Mapping[str, Path]) -> np.ndarray | None:
        """Same inputs edited by every variant (rows), or None."""
        ...


@dataclass
class ComparisonResult:
    experiments: list[Experiment]
    scores: dict[str, dict[int, dict[str, Any]]]  # variant -> seed -> scores
    tables: dict[str, str]  # experiment -> Markdown table
    paths: dict[str, dict[str, Path]]  # experiment -> kind -> file


def get_experiments(name: str) -> list[Experiment]:
    if name == ALL:
        return list(EXPERIMENTS.values())
    try:
        return [EXPERIMENTS[name]]
    except KeyError:
        raise ConfigError(
            f"unknown experiment {name!r}; choose one of {[*EXPERIMENTS, ALL]}"
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
    """Train one run into `folder` unless it is finished; resume it if a state file is there.

    Its options are recorded with the comparison's folder written `{out}`, so a moved or
    copied comparison folder still knows its finished runs.
    """
    root = str(folder.parent.parent.parent)  # runs/s{seed}/{run} under the comparison folder
    key = tuple(a.replace(root, "{out}") for a in argv)
    if folder in done:
        if done[folder] != key:
            raise ConfigError(f"run {folder} is shared by variants that configure it differently")
        return
    marker = folder / DONE_FILE
    if marker.is_file() and (folder / FINAL_CHECKPOINT[stage]).is_file():
        recorded = tuple(json.loads(marker.read_text())["argv"])
        if recorded != key:
            raise ConfigError(
                f"{folder} was trained with other options ({list(recorded)}), not {list(key)}; "
                "use another --out for another budget"
            )
        log(f"{stage} run {folder} is finished: not trained again")
        done[folder] = key
        return
    resume = (folder / STATE_FILE).is_file()
    log(f"{'resuming' if resume else 'training'} {stage} run {folder}")
    runner(stage, [*argv, "--out", str(folder), *(["--resume"] if resume else [])])
    atomic_write_text(marker, json.dumps({"stage": stage, "argv": list(key)}, indent=2) + "\n")
    done[folder] = key


def train_variant(
    variant: Variant,
    runs: Path,
    data: Data,
    budget: Budget,
    seed: int,
    done: dict[Path, tuple[str, ...]],
    runner: Callable[[str, Sequence[str]], None],
    log: Callable[[str], None],
) -> Path:
    """The variant's three stages for one seed; returns its final checkpoint."""
    parser_dir, gan_dir, joint_dir = (
        runs / variant.parser_run,
        runs / variant.gan_run,
        runs / variant.joint_run,
    )
    parser_argv = [
        *data.flags("parser"), *budget.flags("parser", seed), *_sets(variant.parser_set)
    ]  # fmt: skip
    train_run("parser", parser_dir, parser_argv, done, runner, log)
    gan_argv = [
        *data.flags("gan"),
        *("--parser", str(parser_dir / PARSER_CHECKPOINT)),
        *budget.flags("gan", seed),
        *_sets(variant.gan_set),
    ]
    train_run("gan", gan_dir, gan_argv, done, runner, log)
    joint_argv = [
        *data.flags("joint"),
        *("--init", str(gan_dir)),
        *budget.flags("joint", seed),
        *_sets(variant.joint_set),
    ]
    train_run("joint", joint_dir, joint_argv, done, runner, log)
    return joint_dir / MODEL_CHECKPOINT


def run_comparison(
    experiments: Sequence[Experiment],
    out: str | os.PathLike[str],
    data: Data,
    budget: Budget,
    seeds: Sequence[int],
    scorer: Scorer,
    *,
    runner: Callable[[str, Sequence[str]], None] = run_stage_command,
    log: Callable[[str], None] = logger.info,
) -> ComparisonResult:
    """Train and score every variant of `experiments` for every seed (seed by seed, so early
    seeds of all variants finish first), rewriting the tables after each seed."""
    if not seeds:
        raise ConfigError("give at least one seed")
    root = Path(out)
    names = list(dict.fromkeys(v for e in experiments for v in e.variants))
    scores: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in names}
    for name in names:  # what earlier invocations scored, so every table shows all of it
        for seed in seeds:
            path = root / EVAL_DIR / name / f"s{seed}" / SCORES_FILE
            if path.is_file():
                scores[name][seed] = json.loads(path.read_text())
    checkpoints: dict[int, dict[str, Path]] = {}
    result = ComparisonResult(list(experiments), scores, {}, {})
    for seed in seeds:
        done: dict[Path, tuple[str, ...]] = {}
        runs = root / RUNS_DIR / f"s{seed}"
        for name in names:
            variant = VARIANTS[name]
            checkpoint = train_variant(variant, runs, data, budget, seed, done, runner, log)
            checkpoints.setdefault(seed, {})[name] = checkpoint
            scores[name][seed] = score_run(
                scorer, checkpoint, root / EVAL_DIR / name / f"s{seed}", log
            )
        result = write_comparison(
            experiments, root, budget, seeds, scorer, scores, checkpoints[seeds[0]]
        )
    return result


def score_run(
    scorer: Scorer, checkpoint: Path, folder: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """The scores of one variant/seed: read back when already written, else computed."""
    path = folder / SCORES_FILE
    if path.is_file():
        log(f"{folder}: already scored")
        loaded: dict[str, Any] = json.loads(path.read_text())
        return loaded
    log(f"scoring {checkpoint}")
    values = scorer.score(checkpoint, folder)
    atomic_write_text(path, json.dumps({"checkpoint": str(checkpoint), **values}, indent=2) + "\n")
    return values


def write_comparison(
    experiments: Sequence[Experiment],
    root: Path,
    budget: Budget,
    seeds: Sequence[int],
    scorer: Scorer,
    scores: Mapping[str, Mapping[int, Mapping[str, Any]]],
    grid_checkpoints: Mapping[str, Path],
) -> ComparisonResult:
    """Per experiment: EXPERIMENT.md, .tex, .json, EXPERIMENT_bars.png and EXPERIMENT_grid.png."""
    tables: dict[str, str] = {}
    paths: dict[str, dict[str, Path]] = {}
    for experiment in experiments:
        per_variant = {
            name: [dict(scores[name][s]) for s in seeds if s in scores.get(name, {})]
            for name in experiment.variants
        }
        stats = {name: summarise(runs, scorer.metrics) for name, runs in per_variant.items()}
        markdown, latex = comparison_tables(stats, scorer.metrics, experiment.name)
        done_seeds = sorted({s for name in experiment.variants for s in scores.get(name, {})})
        notes = "".join(f"\n- {line}" for line in scorer.notes)
        described = "".join(
            f"\n- `{name}`: {VARIANTS[name].description}" for name in experiment.variants
        )
        text = (
            f"# {experiment.name}\n\n{experiment.question}\n\nVariants:{described}\n\n"
            f"Seeds scored: {done_seeds} of {list(seeds)}. Budget (every run): "
            f"`{json.dumps(budget.to_dict())}`\n\n{markdown}\n{notes}\n"
        )
        payload = {
            "experiment": experiment.name,
            "question": experiment.question,
            "budget": budget.to_dict(),
            "seeds": list(seeds),
            "metrics": {k: asdict(m) for k, m in scorer.metrics.items()},
            "notes": scorer.notes,
            "variants": {
                name: {
                    "description": VARIANTS[name].description,
                    "settings": {
                        "parser": list(VARIANTS[name].parser_set),
                        "gan": list(VARIANTS[name].gan_set),
                        "joint": list(VARIANTS[name].joint_set),
                    },
                    "runs": {
                        stage: f"{RUNS_DIR}/s{{seed}}/{run}"
                        for stage, run in (
                            ("parser", VARIANTS[name].parser_run),
                            ("gan", VARIANTS[name].gan_run),
                            ("joint", VARIANTS[name].joint_run),
                        )
                    },
                    "per_seed": {
                        str(s): scores[name][s] for s in seeds if s in scores.get(name, {})
                    },
                    "summary": {k: asdict(v) for k, v in stats[name].items()},
                }
                for name in experiment.variants
            },
        }
        files = {
            "markdown": atomic_write_text(root / f"{experiment.name}.md", text),
            "latex": atomic_write_text(root / f"{experiment.name}.tex", latex),
            "json": atomic_write_text(
                root / f"{experiment.name}.json", json.dumps(payload, indent=2) + "\n"
            ),
        }
        bars = {
            metric.header: [
                (name, stats[name][key].mean, stats[name][key].std) for name in experiment.variants
            ]
            for key, metric in scorer.metrics.items()
        }
        figure = plots.bar_figure(f"{experiment.name} (mean +- std over seeds)", bars)
        files["bars"] = plots.save_png(root / f"{experiment.name}_bars.png", figure)
        chosen = {n: grid_checkpoints[n] for n in experiment.variants if n in grid_checkpoints}
        grid = scorer.grid(chosen) if chosen else None
        if grid is not None:
            files["grid"] = plots.save_png(root / f"{experiment.name}_grid.png", grid)
        tables[experiment.name] = markdown
        paths[experiment.name] = files
    return ComparisonResult(
        list(experiments),
        {k: {seed: dict(values) for seed, values in v.items()} for k, v in scores.items()},
        tables,
        paths,
    )


def _sets(assignments: Sequence[str]) -> list[str]:
    return [part for text in assignments for part in ("--set", text)]
