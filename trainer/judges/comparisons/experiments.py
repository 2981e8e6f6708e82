"""The paper's comparisons as named experiments: train each variant with several seeds, score
every final checkpoint with the same judges, write tables (mean +- std) and figures.

Every variant trains the trainer's own stages (trainer.stages.api: `stage_config`, then
`train_stage`, as `faceedit-train parser`, `gan` and `joint` do) with the same recipe or
preset, steps, batch size and seed; it differs only in the settings (KEY=VALUE, as `--set`)
that define it. Runs two variants have in common (the parser of joint-vs-frozen, say) train once
per seed and are shared, across experiments too. Each seed's runs live under `runs/s{seed}/`.

Resuming: a run whose folder holds its final checkpoint and a `done.json` written with the same
request (`StageRun.key`) is not trained again; an unfinished one (a `state.pt`, no `done.json`)
resumes; a variant/seed whose `eval/{variant}/s{seed}/scores.json` exists is not scored again.
Tables and figures are rewritten after every seed, so a stopped comparison still leaves what
finished.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np

from faceedit.errors import ConfigError
from faceedit.fileio import atomic_write_text
from trainer.config import Stage, TrainConfig
from trainer.judges import plots
from trainer.judges.comparisons.tables import Metric, comparison_tables, summarise
from trainer.recipes import load_recipe
from trainer.stages.api import stage_config, train_stage

logger = logging.getLogger("trainer.judges.comparisons.experiments")

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
    """What every run of a comparison shares: recipe or model size, steps, batch, device,
    settings.

    `recipe` (a name in trainer/recipes/ or a file) gives every stage its settings; without
    one, `preset` (None: paper-128) gives the stage defaults at that size. `steps` None means
    each stage's own (the recipe's, else the default); `stage_steps` overrides it per stage
    ({"gan": 300}), `stage_batch` likewise the batch size. `settings` are KEY=VALUE (as
    `--set`) for the gan and joint stages of every variant (a shorter critic warm-up for a
    short budget, say).
    """

    preset: str | None = None
    recipe: str | None = None
    steps: int | None = None
    stage_steps: Mapping[str, int] = field(default_factory=dict)
    batch_size: int | None = None
    stage_batch: Mapping[str, int] = field(default_factory=dict)
    device: str = "auto"
    num_workers: int | None = None
    settings: tuple[str, ...] = ()
    log_every: int | None = None

    def run_settings(self, stage: str, seed: int) -> dict[str, Any]:
        """The config keys every run of `stage` shares (as the stage's flags would set them)."""
        out: dict[str, Any] = {"seed": seed}
        steps = self.stage_steps.get(stage, self.steps)
        for key, value in (
            ("steps", steps),
            ("batch_size", self.stage_batch.get(stage, self.batch_size)),
            ("num_workers", self.num_workers),
            ("log_every", self.log_every),
        ):
            if value is not None:
                out[key] = value
        if steps is not None:  # one checkpoint and one image set, at the end
            out["checkpoint_every"] = out["image_every"] = steps
        return out

    def sets(self, stage: str) -> tuple[str, ...]:
        return self.settings if stage != "parser" else ()

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

    def folders(self, stage: str) -> dict[str, str]:
        """The dataset folders `stage` reads, by their config keys under `data.`."""
        kind, root = self.expression
        if stage == "parser":
            return {"celebamask_hq": self.celebamask_hq}
        if stage == "gan":
            return {kind: root}
        return {kind: root, "celebamask_hq": self.celebamask_hq}

    def settings(self, stage: str) -> dict[str, Any]:
        return {"data.align": self.align} if self.align and stage != "parser" else {}


@dataclass(frozen=True)
class StageRun:
    """One run of a comparison: its stage, folder and start, and everything that defines it.

    `settings` are config keys given as values (the budget's steps, batch, seed; the data's
    crop alignment), `sets` KEY=VALUE texts applied after them (the budget's, then the
    variant's), as `faceedit-train STAGE` applies its flags and then `--set`.
    """

    stage: Stage
    out: Path
    init: Path | None
    recipe: str | None
    preset: str | None
    settings: Mapping[str, Any]
    data: Mapping[str, str]
    sets: tuple[str, ...]
    device: str = "auto"

    def config(self) -> TrainConfig:
        """The run's resolved config (trainer.stages.api.stage_config)."""
        recipe = load_recipe(self.recipe) if self.recipe else None
        return stage_config(
            self.stage,
            recipe=recipe,
            preset_name=self.preset,
            init=self.init,
            data=self.data,
            updates=[self.settings],
            sets=self.sets,
        )

    def key(self, root: Path) -> dict[str, Any]:
        """What identifies the run in its done.json (the device left out: a finished run is
        finished wherever it trained), with the comparison's folder written `{out}` so a moved
        or copied comparison still knows its finished runs."""
        record = {
            "stage": self.stage,
            "init": str(self.init) if self.init is not None else None,
            "recipe": self.recipe,
            "preset": self.preset,
            "settings": dict(self.settings),
            "data": dict(self.data),
            "sets": list(self.sets),
        }
        text = json.dumps(record, sort_keys=True).replace(json.dumps(str(root))[1:-1], "{out}")
        loaded: dict[str, Any] = json.loads(text)
        return loaded


def train_stage_run(run: StageRun, resume: bool) -> None:
    """Resolve and train one run (the default runner of a comparison)."""
    train_stage(run.config(), run.init, run.out, device=run.device, resume=resume)


class Scorer(Protocol):
    """What scores a final checkpoint; the same one scores every variant and seed."""

    metrics: Mapping[str, Metric]  # key -> header and direction, in table order
    notes: list[str]  # lines for every table (what a metric means, what was not measured)

    def score(self, checkpoint: Path, folder: Path) -> dict[str, Any]:
        """Scores of `checkpoint`: every key of `metrics` (its value, or None where it could
        not be measured) and any extra keys, kept in scores.json; the scorer's files are
        written into `folder`."""
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


def train_run(
    run: StageRun,
    root: Path,
    done: dict[Path, dict[str, Any]],
    runner: Callable[[StageRun, bool], None],
    log: Callable[[str], None],
) -> None:
    """Train one run into its folder unless it is finished; resume it if a state file is there."""
    key = run.key(root)
    folder = run.out
    if folder in done:
        if done[folder] != key:
            raise ConfigError(f"run {folder} is shared by variants that configure it differently")
        return
    marker = folder / DONE_FILE
    if marker.is_file() and (folder / FINAL_CHECKPOINT[run.stage]).is_file():
        recorded = json.loads(marker.read_text())
        if "run" not in recorded:
            raise ConfigError(
                f"{marker} was written by an older faceedit (it records a command line); delete "
                "it and the run is resumed instead, which checks its saved settings against "
                "these"
            )
        if recorded["run"] != key:
            raise ConfigError(
                f"{folder} was trained with other options ({recorded['run']}), not {key}; use "
                "another --out for another budget"
            )
        log(f"{run.stage} run {folder} is finished: not trained again")
        done[folder] = key
        return
    resume = (folder / STATE_FILE).is_file()
    log(f"{'resuming' if resume else 'training'} {run.stage} run {folder}")
    runner(run, resume)
    atomic_write_text(marker, json.dumps({"stage": run.stage, "run": key}, indent=2) + "\n")
    done[folder] = key


def train_variant(
    variant: Variant,
    root: Path,
    seed: int,
    data: Data,
    budget: Budget,
    done: dict[Path, dict[str, Any]],
    runner: Callable[[StageRun, bool], None],
    log: Callable[[str], None],
) -> Path:
    """The variant's three stages for one seed; returns its final checkpoint."""
    runs = root / RUNS_DIR / f"s{seed}"
    folders = {
        "parser": runs / variant.parser_run,
        "gan": runs / variant.gan_run,
        "joint": runs / variant.joint_run,
    }
    inits = {"parser": None, "gan": folders["parser"] / PARSER_CHECKPOINT, "joint": folders["gan"]}
    variant_sets = {
        "parser": variant.parser_set,
        "gan": variant.gan_set,
        "joint": variant.joint_set,
    }
    stage: Stage
    for stage in ("parser", "gan", "joint"):
        run = StageRun(
            stage=stage,
            out=folders[stage],
            init=inits[stage],
            recipe=budget.recipe,
            # the joint stage takes its model, preset included, from its init
            preset=budget.preset if stage != "joint" else None,
            settings={**budget.run_settings(stage, seed), **data.settings(stage)},
            data=data.folders(stage),
            sets=(*budget.sets(stage), *variant_sets[stage]),
            device=budget.device,
        )
        train_run(run, root, done, runner, log)
    return folders["joint"] / MODEL_CHECKPOINT


def run_comparison(
    experiments: Sequence[Experiment],
    out: str | os.PathLike[str],
    data: Data,
    budget: Budget,
    seeds: Sequence[int],
    scorer: Scorer,
    *,
    runner: Callable[[StageRun, bool], None] = train_stage_run,
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
        done: dict[Path, dict[str, Any]] = {}
        for name in names:
            variant = VARIANTS[name]
            checkpoint = train_variant(variant, root, seed, data, budget, done, runner, log)
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
    missing = [key for key in scorer.metrics if key not in values]
    if missing:  # found at the first score, not when the tables are drawn after every run
        raise ConfigError(
            f"{type(scorer).__name__} scored {checkpoint} without {missing}, metrics its "
            "tables show (None marks a metric it could not measure)"
        )
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
