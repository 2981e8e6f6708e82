"""The learning check: does faceedit's training actually learn? (`faceedit-train learning-check`)

It makes a procedural world (trainer/world), trains parser, gan and joint at 64 px through the
trainer's own stage API (trainer.stages.api: `stage_config`, `train_stage`, as `faceedit-train
parser|gan|joint` do) with the settings of a recipe (trainer/recipes/world-64.yaml, whose
`check` section also sizes the world and the judge; its `quick` variant is `--quick`), trains a
judge classifier on the world's real renderings of train identities, and scores the final model
on held-out identities against the world's ground truth: parser mIoU, the judge's verdict on
edits, the L1 distance of edits to the true rendering of their target, and locality (the region
lock is exact; outside the face barely changes). Everything is written to one folder:
report.md, report.json, an edit grid and loss curves.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from faceedit.errors import ConfigError
from faceedit.fileio import atomic_write_text
from faceedit.inference.engine import EditEngine
from faceedit.vocab.expressions import EXPRESSIONS
from faceedit.weights import checkpoint
from trainer.config import Stage, TrainConfig, load_yaml
from trainer.judges import plots
from trainer.judges.classifier import (
    ClassifierConfig,
    ClassifierTrainConfig,
    ExpressionClassifier,
    load_classifier,
    save_classifier,
    train_classifier,
)
from trainer.judges.evaluation import evaluate_parser, to_uint8_crops
from trainer.judges.world_scores import (
    PAIRS_FILE,
    EditScores,
    RenderingSet,
    engine_editor,
    held_out_identities,
    load_crop,
    read_pairs,
    score_edits,
    score_locality,
    world_valence_arousal,
)
from trainer.recipes import Recipe, load_recipe
from trainer.research.critic_probe import Frame, probe_critics
from trainer.stages.api import stage_config, train_stage
from trainer.stages.runner import CONFIG_FILE
from trainer.world.world import WorldConfig, build_world

# The recipe whose stages the check trains; `--quick` is its variant QUICK.
RECIPE: Final[str] = "world-64"
QUICK: Final[str] = "quick"
SIZE: Final[int] = 64
LOCK_REGIONS: Final[tuple[str, ...]] = ("mouth",)  # the region-lock test edits only these
GRID_ROWS: Final[int] = 6
# The judge looks at crops upsampled to this size: at 64 px its ResNet stem (stride 4) would
# average away the few pixels by which the world's expressions differ.
JUDGE_SIZE: Final[int] = 128
# Targets on held-out identities (the brief of the learning check).
MIOU_TARGET: Final[float] = 0.90
JUDGE_SELF_TARGET: Final[float] = 0.95
JUDGE_EDIT_TARGET: Final[float] = 0.80
L1_RATIO_TARGET: Final[float] = 0.5
OUTSIDE_FACE_TARGET: Final[float] = 1.0 / 255.0
# How the report names the masks the critics saw (gan_optim.critic_masks).
_MASKS_SEEN: Final[dict[str, str]] = {
    "input": "the input's masks",
    "own": "each image's own masks",
}


@dataclass(frozen=True)
class CheckPlan:
    """Sizes and step counts of one check, all from its recipe (`from_recipe`); report.json
    keeps the plan a check trained with."""

    identities: int  # of the world: train, val and held-out test identities
    parser_steps: int
    gan_steps: int  # the critic warm-up (gan_optim.critic_warmup) included
    joint_steps: int
    batch_size: int  # the parser stage's
    gan_batch_size: int  # the gan and joint stages'
    judge_steps: int
    judge_width: int
    eval_identities: int  # held-out identities scored (all 8 sources each)
    seed: int = 0
    extra_settings: tuple[str, ...] = ()  # --set KEY=VALUE for the gan and joint stages
    device: str = (
        "cpu"  # where the stages and the judge train; the evaluation always runs on the CPU
    )
    recipe: str = RECIPE  # NAME, NAME:VARIANT or a file: the stages' settings

    def scaled(self, factor: int) -> CheckPlan:
        """Every step budget (parser, gan, joint, judge) times `factor`: the same check with the
        longer training a GPU affords. Warm-up settings (critic_warmup) are not scaled."""
        return replace(
            self,
            parser_steps=self.parser_steps * factor,
            gan_steps=self.gan_steps * factor,
            joint_steps=self.joint_steps * factor,
            judge_steps=self.judge_steps * factor,
        )

    @classmethod
    def from_recipe(cls, recipe: Recipe, seed: int = 0) -> CheckPlan:
        """The plan of `recipe`: its stages' steps and batch sizes and its `check` section."""
        check = recipe.check
        if check is None:
            raise ConfigError(
                f"recipe {recipe.name} ({recipe.path}) has no `check` section: the learning "
                "check needs its world's identities and its judge's steps and width"
            )
        if check.gan_identities is not None or check.world_seed is not None:
            raise ConfigError(
                f"recipe {recipe.name}: its check gives the stages worlds of their own "
                "(world_seed, gan_identities: the CI's short check); the learning check makes "
                "one world, from its --seed"
            )
        configs = {stage: recipe.config(stage) for stage in ("parser", "gan", "joint")}
        if configs["parser"].model.crop_size != SIZE:
            raise ConfigError(
                f"recipe {recipe.name}: the learning check's world is {SIZE} px; the recipe's "
                f"model crops {configs['parser'].model.crop_size} px"
            )
        return cls(
            identities=check.identities,
            parser_steps=configs["parser"].steps,
            gan_steps=configs["gan"].steps,
            joint_steps=configs["joint"].steps,
            batch_size=configs["parser"].batch_size,
            gan_batch_size=configs["gan"].batch_size,
            judge_steps=check.judge_steps,
            judge_width=check.judge_width,
            eval_identities=check.eval_identities,
            seed=seed,
            recipe=recipe.spec,
        )

    @classmethod
    def for_mode(cls, seed: int, quick: bool, recipe: str = RECIPE) -> CheckPlan:
        """The plan of `recipe` (a name or a file), or of its quick variant (`--quick`)."""
        return cls.from_recipe(load_recipe(f"{recipe}:{QUICK}" if quick else recipe), seed)


@dataclass
class Target:
    """One pass/fail line of the report."""

    name: str
    goal: str
    measured: float
    passed: bool
    detail: str = ""


@dataclass
class LearningReport:
    plan: CheckPlan
    command: str
    machine: dict[str, Any]
    timings_s: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.targets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "seed": self.plan.seed,
            "command": self.command,
            "plan": asdict(self.plan),
            "machine": self.machine,
            "timings_s": self.timings_s,
            "targets": [asdict(t) for t in self.targets],
            "metrics": self.metrics,
            "files": self.files,
        }


def machine_description() -> dict[str, Any]:
    """CPU model (lscpu), cores and torch threads: what the wall times were measured on."""
    model = platform.processor() or platform.machine()
    try:
        text = subprocess.run(
            ["lscpu"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        for line in text.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
                break
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def run_settings(plan: CheckPlan, steps: int, batch: int) -> dict[str, Any]:
    """What the check sets beyond the recipe for one stage: its budget, seed and reporting."""
    return {
        "steps": steps,
        "batch_size": batch,
        "seed": plan.seed,
        # loader processes only where the GPU would otherwise wait; the CPU check loads in-process
        "num_workers": 0 if plan.device == "cpu" else -1,
        "log_every": max(1, steps // 30),
        "checkpoint_every": steps,
        "image_every": steps,
    }


def run_paths(out: Path) -> dict[str, Path]:
    """Where a check keeps its world and its stages' runs."""
    runs = out / "runs"
    return {
        "world": out / "world",
        "parser": runs / "parser",
        "gan": runs / "gan",
        "joint": runs / "joint",
    }


def check_stage_config(
    plan: CheckPlan, stage: Stage, out: Path, recipe: Recipe | None = None
) -> tuple[TrainConfig, Path | None]:
    """One stage's resolved config and what it starts from: the recipe, then the plan's
    budget, the world's folders and the plan's extra settings (stage_config). The stage before
    it must have run (the gan stage takes the parser run's parser, the joint stage the gan run)."""
    recipe = recipe if recipe is not None else load_recipe(plan.recipe)
    paths = run_paths(out)
    world = paths["world"]
    celeba = {"celebamask_hq": str(world / "celebamask-hq")}
    affectnet = {"affectnet": str(world / "affectnet")}
    init, data, steps, batch = {
        "parser": (None, celeba, plan.parser_steps, plan.batch_size),
        "gan": (paths["parser"], affectnet, plan.gan_steps, plan.gan_batch_size),
        "joint": (paths["gan"], {**affectnet, **celeba}, plan.joint_steps, plan.gan_batch_size),
    }[stage]
    config = stage_config(
        stage,
        recipe=recipe,
        init=init,
        data=data,
        updates=[run_settings(plan, steps, batch)],
        sets=plan.extra_settings if stage != "parser" else (),
    )
    return config, init


def train_stages(
    plan: CheckPlan, out: Path, timings: dict[str, float], log: Callable[[str], None]
) -> dict[str, Path]:
    """The world, then parser, gan and joint (trainer.stages.api); returns the run folders."""
    paths = run_paths(out)
    log(f"learning-check: world: {plan.identities} identities at {SIZE} px, seed {plan.seed}")
    started = time.perf_counter()
    build_world(WorldConfig(count=plan.identities, size=SIZE, seed=plan.seed), paths["world"])
    timings["world"] = time.perf_counter() - started
    recipe = load_recipe(plan.recipe)
    stage: Stage
    for stage in ("parser", "gan", "joint"):
        config, init = check_stage_config(plan, stage, out, recipe)
        extra = plan.extra_settings if stage != "parser" else ()
        settings = f" and {' '.join(extra)}" if extra else ""
        log(
            f"learning-check: {stage}: {config.steps} steps at batch {config.batch_size}, recipe "
            f"{plan.recipe}{settings}, into {paths[stage]}"
        )
        started = time.perf_counter()
        train_stage(config, init, paths[stage], device=plan.device)
        timings[stage] = time.perf_counter() - started
    return paths


def train_judge(
    plan: CheckPlan, world: Path, log: Callable[[str], None]
) -> tuple[ExpressionClassifier, dict[str, Any]]:
    """The judge: a small ResNet trained on real renderings of train identities only, scored on
    the held-out (test) identities' real renderings."""
    rows = read_pairs(world)
    train = RenderingSet([r for r in rows if r.split == "train"], SIZE, JUDGE_SIZE)
    held_out = RenderingSet([r for r in rows if r.split == "test"], SIZE, JUDGE_SIZE)
    model = ExpressionClassifier(
        ClassifierConfig(base_channels=plan.judge_width, image_size=JUDGE_SIZE)
    )
    config = ClassifierTrainConfig(
        steps=plan.judge_steps,
        batch_size=32,
        lr=2e-3,
        seed=plan.seed,
        num_workers=0,
        log_every=max(1, plan.judge_steps // 5),
    )
    trained = train_classifier(model, train, held_out, config, device=plan.device, log=log)
    losses = list(enumerate(trained.losses, start=1))
    # scored and saved on the CPU, where the evaluation runs
    return trained.model.cpu(), {"scores": trained.scores.to_dict(), "losses": losses}


def evaluate(
    plan: CheckPlan,
    paths: dict[str, Path],
    judge: ExpressionClassifier,
    out: Path,
) -> tuple[dict[str, Any], EditScores, dict[tuple[str, int, int], np.ndarray], Any]:
    """Parser mIoU (parser stage and final model), edits against the truth, locality."""
    from trainer.data import CelebAMaskHQ

    world = paths["world"]
    final = checkpoint.load(paths["joint"] / "model.safetensors")
    first = checkpoint.load(paths["parser"] / "parser.safetensors")
    test_parsing = CelebAMaskHQ(world / "celebamask-hq", "test", size=SIZE, augment=False)
    metrics: dict[str, Any] = {}
    for name, loaded in (("parser_stage", first), ("final", final)):
        assert loaded.parser is not None
        metrics[f"parser_{name}"] = evaluate_parser(loaded.parser, test_parsing).scores.to_dict()

    engine = EditEngine(final, device="cpu", precision="float32", optimize_networks=False)
    va = world_valence_arousal(world)
    table = held_out_identities(world, plan.eval_identities)
    # Scored as the app shows each edit (paste-back onto the aligned crop); the generator's own
    # crops, which the app never shows as they are, are kept alongside.
    scores, edits = score_edits(engine_editor(engine, va), judge, table, SIZE)
    metrics["edits"] = scores.to_dict()
    raw, _ = score_edits(engine_editor(engine, va, shown=False), judge, table, SIZE)
    metrics["edits_generator_crop"] = raw.to_dict()

    images, labels = zip(*(test_parsing[i] for i in range(len(test_parsing))), strict=True)
    crops = to_uint8_crops(torch.stack(images))
    locality = score_locality(engine, crops, [lb.numpy() for lb in labels], LOCK_REGIONS, va)
    metrics["locality"] = locality.to_dict()
    # Whether the trained objective rewards the true edit (docs/learning.md), in the frame and
    # through the masks the joint stage trained with (its config.yaml, --set included).
    trained = TrainConfig.from_dict(load_yaml(paths["joint"] / CONFIG_FILE))
    frame: Frame = "landmarks" if trained.data.align == "landmarks" else "rendered"
    probe = probe_critics(
        final, world, plan.eval_identities, frame=frame, masks=trained.gan_optim.critic_masks
    )
    metrics["critic_probe"] = probe.to_dict()
    return metrics, scores, edits, table


def judge_targets(report: LearningReport) -> list[Target]:
    m = report.metrics
    miou = m["parser_final"]["miou"] or 0.0
    judge_self = m["judge"]["scores"]["accuracy"]
    edits = m["edits"]
    raw = m["edits_generator_crop"]
    ratio, raw_ratio = l1_ratio(edits), l1_ratio(raw)
    loc = m["locality"]
    regions = ", ".join(LOCK_REGIONS)
    return [
        Target(
            "parser mIoU (held-out, final model)",
            f">= {MIOU_TARGET}",
            miou,
            miou >= MIOU_TARGET,
            f"after the parser stage: {m['parser_parser_stage']['miou']:.4f}",
        ),
        Target(
            "judge accuracy on held-out real renderings",
            f">= {JUDGE_SELF_TARGET}",
            judge_self,
            judge_self >= JUDGE_SELF_TARGET,
        ),
        Target(
            "edits judged as their target",
            f">= {JUDGE_EDIT_TARGET}",
            edits["judge_accuracy"],
            edits["judge_accuracy"] >= JUDGE_EDIT_TARGET,
            f"{edits['edits']} edits; mean target probability "
            f"{edits['mean_target_probability']:.3f}; generator's crop: "
            f"{raw['judge_accuracy']:.3f}",
        ),
        Target(
            "L1(edit, truth) / L1(input, truth)",
            f"<= {L1_RATIO_TARGET}",
            ratio,
            ratio <= L1_RATIO_TARGET,
            f"{edits['mean_l1_edit_to_truth']:.5f} / {edits['mean_l1_input_to_truth']:.5f}; "
            f"generator's crop: {raw_ratio:.3f}{l1_parts(edits)}",
        ),
        Target(
            f"region lock ({regions}): pixels of other true classes unchanged",
            "= 1 (bit-exact)",
            loc["locked_exact_fraction"],
            loc["locked_changed"] == 0,
            f"{loc['locked_changed']} of {loc['locked_pixels']} changed; beyond a "
            f"{loc['band_px']}-px band: {loc['locked_beyond_band_changed']} of "
            f"{loc['locked_beyond_band_pixels']}; generator's crop: "
            f"{loc['locked_changed_generator_crop']}",
        ),
        Target(
            f"region lock ({regions}): pixels outside its footprint in the model's parse",
            "= 1 (bit-exact)",
            loc["locked_outside_parse_exact_fraction"],
            loc["locked_outside_parse_changed"] == 0,
            f"{loc['locked_outside_parse_changed']} of "
            f"{loc['locked_outside_parse_pixels']} changed",
        ),
        Target(
            "outside the face: mean change (x255)",
            "<= 1",
            loc["outside_face_mean_change_x255"],
            loc["outside_face_mean_change"] <= OUTSIDE_FACE_TARGET,
            f"generator's crop: {loc['outside_face_mean_change_x255_generator_crop']:.3f}",
        ),
    ]


def l1_ratio(edits: dict[str, Any]) -> float:
    """Mean L1(edit, truth) over mean L1(input, truth): below 1, edits move towards the truth."""
    return float(edits["mean_l1_edit_to_truth"]) / max(edits["mean_l1_input_to_truth"], 1e-12)


def l1_parts(edits: dict[str, Any]) -> str:
    """Where the L1 ratio comes from, in units of L1(input, truth): inside the expression's
    footprint and outside it, beside the true edit misplaced by one pixel (the metric's
    sensitivity). Empty for reports written before these were measured."""
    keys = (
        "mean_l1_edit_to_truth_in_footprint",
        "mean_l1_edit_to_truth_off_footprint",
        "mean_l1_truth_moved_1px",
    )
    if not all(k in edits for k in keys):
        return ""
    inside, outside, moved = (
        float(edits[k]) / max(edits["mean_l1_input_to_truth"], 1e-12) for k in keys
    )
    return (
        f"; inside the expression's footprint {inside:.3f}, outside it {outside:.3f}; "
        f"the true edit moved 1 px: {moved:.3f}"
    )


def write_figures(
    report: LearningReport,
    paths: dict[str, Path],
    table: dict[str, Any],
    edits: dict[tuple[str, int, int], np.ndarray],
    out: Path,
) -> None:
    """edits.png (rows: held-out inputs; input, 8 edits, 8 truths) and curves_<stage>.png."""
    rows = []
    for ident in list(table)[:GRID_ROWS]:
        source = 0  # neutral inputs
        renders = table[ident]
        inp = load_crop(renders[source].image, SIZE)
        row = [inp]
        row += [edits.get((ident, source, t), inp) for t in range(len(EXPRESSIONS))]
        row += [load_crop(renders[t].image, SIZE) for t in range(len(EXPRESSIONS))]
        rows.append(row)
    titles = ["input", *[f">{e[:7]}" for e in EXPRESSIONS], *[f"={e[:7]}" for e in EXPRESSIONS]]
    report.files["edits"] = str(plots.save_png(out / "edits.png", plots.image_grid(rows, titles)))
    for stage in ("parser", "gan", "joint"):
        scalars = read_scalars(paths[stage] / "tensorboard")  # read once: figure and metrics
        report.metrics.setdefault("curves", {})[stage] = {
            k: [v[0], v[-1]] for k, v in scalars.items() if v
        }
        series = {k: v for k, v in scalars.items() if not k.startswith(("lr/", "speed/"))}
        figure = plots.curves_figure(f"{stage} stage (seed {report.plan.seed})", series)
        report.files[f"curves_{stage}"] = str(plots.save_png(out / f"curves_{stage}.png", figure))
    judge_losses = report.metrics["judge"].pop("losses", None)
    if judge_losses is not None:  # a rescored check keeps the curve its training drew
        every = max(1, len(judge_losses) // 60)
        smoothed = [
            (s, float(np.mean([v for _, v in judge_losses[max(0, i - every) : i + 1]])))
            for i, (s, _) in enumerate(judge_losses)
        ][::every]
        figure = plots.curves_figure("judge classifier", {"judge/cross_entropy": smoothed})
        report.files["curves_judge"] = str(plots.save_png(out / "curves_judge.png", figure))
    elif (out / "curves_judge.png").is_file():
        report.files["curves_judge"] = str(out / "curves_judge.png")


def read_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """TensorBoard scalars of a run: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    # TensorBoard's directory watcher says "No path found after <file>" at INFO for every
    # events file it has read to the end: noise in the check's output, not a problem
    quiet = logging.getLogger("tensorboard")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        accumulator.Reload()
    finally:
        quiet.setLevel(level)
    return {
        tag: [(int(e.step), float(e.value)) for e in accumulator.Scalars(tag)]
        for tag in accumulator.Tags().get("scalars", [])
    }


def markdown(report: LearningReport) -> str:
    lines = [
        "# faceedit learning check",
        "",
        f"Result: **{'all targets met' if report.passed else 'some targets NOT met'}**",
        "",
        f"- command: `{report.command}`",
        f"- seed: {report.plan.seed}",
        f"- machine: {report.machine['cpu_model']}, {report.machine['cpu_count']} cores, "
        f"torch {report.machine['torch']} with {report.machine['torch_threads']} threads, "
        f"load average at the end {report.machine.get('load_average')}",
        f"- trained on: {report.plan.device}"
        + (
            f" ({report.machine['gpu']}, bf16 autocast)"
            if report.machine.get("gpu") and report.plan.device == "cuda"
            else ""
        ),
        f"- plan: {json.dumps(asdict(report.plan))}",
        *(
            [f"- scored again, without training: `{report.metrics['rescored_by']}`"]
            if "rescored_by" in report.metrics
            else []
        ),
        "",
        "| target (held-out identities) | goal | measured | pass | detail |",
        "|---|---|---|---|---|",
    ]
    for t in report.targets:
        lines.append(
            f"| {t.name} | {t.goal} | {t.measured:.4f} | {'PASS' if t.passed else 'FAIL'} | "
            f"{t.detail} |"
        )
    lines += [
        "",
        "Edits and locality are scored as the app shows them: the edit's change pasted back onto "
        "the aligned crop (weighted by where the model edits; under a region lock, by the lock's "
        "footprint). The generator's own crop, before paste-back, is in each detail.",
    ]
    lines += ["", "| stage | wall time (s) |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in report.timings_s.items()]
    lines += ["", "Per-target judge accuracy of edits:", ""]
    lines += [
        f"- {name}: {value:.3f}"
        for name, value in report.metrics["edits"]["per_target_accuracy"].items()
    ]
    probe = report.metrics.get("critic_probe")
    if probe:
        lines += [
            "",
            "The critics' cross-entropy towards the target (the generator's classification loss) "
            "on the true rendering of the target and on the model's edit, both seen through "
            f"{_MASKS_SEEN[probe.get('masks', 'input')]} ({probe['frame']} frame; "
            "docs/learning.md, `critic-probe`):",
            "",
            "| critic | accuracy on real faces | truth | the edit |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {name} | {probe['real_accuracy'][name]:.3f} | {truth['cross_entropy']:.3f} | "
            f"{probe['edit'][name]['cross_entropy']:.3f} |"
            for name, truth in probe["truth"].items()
        ]
    parser_iou = report.metrics["parser_final"].get("iou") or {}
    scored = {k: v for k, v in parser_iou.items() if v is not None}
    if scored:
        lines += ["", "Parser IoU per class (final model, held-out):", ""]
        lines += [f"- {name}: {value:.3f}" for name, value in scored.items()]
    lines += ["", "Files:", ""]
    lines += [f"- {k}: `{Path(v).name}`" for k, v in report.files.items()]
    return "\n".join(lines) + "\n"


def run_learning_check(
    out: Path, plan: CheckPlan, command: str, log: Callable[[str], None] = print
) -> LearningReport:
    """Make the world, train every stage, judge, score, and write the report into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = LearningReport(plan=plan, command=command, machine=machine_description())
    started = time.perf_counter()
    paths = train_stages(plan, out, report.timings_s, log)
    t0 = time.perf_counter()
    judge, judge_metrics = train_judge(plan, paths["world"], log)
    report.timings_s["judge"] = time.perf_counter() - t0
    accuracy = judge_metrics["scores"]["accuracy"]
    save_classifier(out / "judge.safetensors", judge, {"held_out_accuracy": accuracy})
    report.metrics["judge"] = judge_metrics
    score_and_report(report, paths, judge, out, log)
    report.timings_s["total"] = time.perf_counter() - started
    report.machine["load_average"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    _write_report(report, out, log)
    return report


def score_and_report(
    report: LearningReport,
    paths: dict[str, Path],
    judge: ExpressionClassifier,
    out: Path,
    log: Callable[[str], None],
) -> None:
    """Evaluate the check's final model, draw its figures and judge the targets."""
    log("learning-check: scoring held-out identities")
    t0 = time.perf_counter()
    metrics, _, edits, table = evaluate(report.plan, paths, judge, out)
    report.metrics.update(metrics)
    report.timings_s["evaluation"] = time.perf_counter() - t0
    write_figures(report, paths, table, edits, out)
    report.targets = judge_targets(report)


def _write_report(report: LearningReport, out: Path, log: Callable[[str], None]) -> None:
    report.files["report"] = str(out / "report.md")
    atomic_write_text(out / "report.json", json.dumps(report.to_dict(), indent=2) + "\n")
    atomic_write_text(out / "report.md", markdown(report))
    log(f"learning-check: report in {out / 'report.md'}")


def rescore_learning_check(
    out: Path, plan: CheckPlan, command: str, log: Callable[[str], None] = print
) -> LearningReport:
    """Score a finished check's models again without training anything: after the evaluation
    changed, or where training ran on a machine whose evaluation did not finish (a GPU's).

    The plan, training timings, machine and judge figures come from `out`/report.json when
    there is one (`plan` is used only where there is none); the training runs are left as
    they are."""
    out = Path(out)
    paths = run_paths(out)
    needed = (
        paths["world"] / PAIRS_FILE,
        paths["parser"] / "parser.safetensors",
        paths["joint"] / "model.safetensors",
        paths["joint"] / CONFIG_FILE,
        out / "judge.safetensors",
    )
    missing = [str(p.relative_to(out)) for p in needed if not p.is_file()]
    if missing:
        raise ConfigError(
            f"{out} is not a finished learning check's folder: {', '.join(missing)} missing "
            "(--rescore scores the world, runs and judge that a check wrote there)"
        )
    loaded = load_classifier(out / "judge.safetensors")
    previous = _previous_report(out / "report.json")
    if previous is None:
        report = LearningReport(plan=plan, command=command, machine={})
        accuracy = float(loaded.metadata.get("held_out_accuracy", float("nan")))
        report.metrics["judge"] = {"scores": {"accuracy": accuracy}}
    else:
        record, trained_plan = previous
        report = LearningReport(
            plan=trained_plan,
            command=record["command"],
            machine=record["machine"],
            timings_s=dict(record["timings_s"]),
        )
        report.metrics["judge"] = record["metrics"]["judge"]
    report.metrics["rescored_by"] = command
    evaluation_before = report.timings_s.get("evaluation", 0.0)
    score_and_report(report, paths, loaded.model.eval(), out, log)
    if "total" in report.timings_s:
        report.timings_s["total"] += report.timings_s["evaluation"] - evaluation_before
    # the machine that scored, with its load at the end; a trained check keeps its own record
    scorer = machine_description()
    if previous is None:
        report.machine = scorer
    else:
        report.machine["rescored_on"] = scorer
    _write_report(report, out, log)
    return report


def _previous_report(path: Path) -> tuple[dict[str, Any], CheckPlan] | None:
    """A check's report.json and the plan it trained with; None where there is none."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        fields = record["plan"]
        plan = CheckPlan(**{**fields, "extra_settings": tuple(fields["extra_settings"])})
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigError(
            f"{path} is not a learning check's report ({error}); move it away to "
            "rescore with the plan from the command line"
        ) from error
    return record, plan
