"""Running the learning check: make the world, train the stages and the judge, score, report.

The stages train through trainer.stages.api (`train_stage`, as `faceedit-train parser|gan|joint`
do) with the settings of the plan's recipe; the judge is the world judge
(trainer/judges/world/judge.py, trained here on the world's renderings of train identities);
the scores are the world scorer's (trainer/judges/world/scorer.py), with the critic-noise
control beside the edits.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from faceedit.errors import ConfigError
from faceedit.fileio import atomic_write_text
from faceedit.inference.engine import EditEngine
from faceedit.weights import checkpoint
from trainer.config import Stage, TrainConfig, load_yaml
from trainer.judges.classifier import ExpressionClassifier, load_classifier
from trainer.judges.evaluation import evaluate_parser, to_uint8_crops
from trainer.judges.learning.figures import write_figures
from trainer.judges.learning.plan import SIZE, CheckPlan, check_stage_config, run_paths
from trainer.judges.learning.report import (
    CheckScores,
    JudgeRecord,
    LearningReport,
    load_average,
    machine_description,
    markdown,
    read_report,
    training_config,
)
from trainer.judges.world.editors import engine_editor
from trainer.judges.world.held_out import HeldOut, PairKey, load_held_out
from trainer.judges.world.judge import (
    JUDGE_FILE,
    save_world_judge,
    train_world_judge,
    trained_as_now,
)
from trainer.judges.world.renderings import PAIRS_FILE, world_valence_arousal
from trainer.judges.world.scorer import score_critic_noise, score_edits, score_locality
from trainer.recipes import load_recipe
from trainer.research.critic_probe import Frame, probe_critics
from trainer.stages.api import train_stage
from trainer.stages.runner import CONFIG_FILE
from trainer.world.world import WorldConfig, build_world

LOCK_REGIONS: Final[tuple[str, ...]] = ("mouth",)  # the region-lock test edits only these

Log = Callable[[str], None]


@dataclass(frozen=True)
class Evaluation:
    """What `evaluate` measured, and the held-out set and edits the figures draw."""

    scores: CheckScores
    held_out: HeldOut
    edits: dict[PairKey, np.ndarray]


def train_stages(plan: CheckPlan, out: Path, timings: dict[str, float], log: Log) -> None:
    """The world, then parser, gan and joint (trainer.stages.api), into run_paths(out)."""
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


def train_judge(
    plan: CheckPlan, out: Path, timings: dict[str, float], log: Log, device: str
) -> tuple[ExpressionClassifier, JudgeRecord, list[float]]:
    """The world judge of the plan's steps, width and seed, saved as out/judge.safetensors;
    returns it with its record and its loss per step."""
    started = time.perf_counter()
    judge = train_world_judge(
        run_paths(out)["world"], plan.judge_steps, plan.judge_width, plan.seed, device, log
    )
    timings["judge"] = time.perf_counter() - started
    save_world_judge(out / JUDGE_FILE, judge)
    return judge.model, JudgeRecord.of(judge), list(judge.losses)


def evaluate(plan: CheckPlan, paths: dict[str, Path], judge: ExpressionClassifier) -> Evaluation:
    """Parser mIoU (parser stage and final model), edits against the truth and the control,
    locality, and the critic probe."""
    from trainer.data import CelebAMaskHQ

    world = paths["world"]
    final = checkpoint.load(paths["joint"] / "model.safetensors")
    first = checkpoint.load(paths["parser"] / "parser.safetensors")
    if final.discriminator is None:
        raise ConfigError(f"{paths['joint']}: the final model has no critics for the control")
    assert first.parser is not None and final.parser is not None
    test_parsing = CelebAMaskHQ(world / "celebamask-hq", "test", size=SIZE, augment=False)
    parser_stage = evaluate_parser(first.parser, test_parsing).scores
    parser_final = evaluate_parser(final.parser, test_parsing).scores

    engine = EditEngine(final, device="cpu", precision="float32", optimize_networks=False)
    va = world_valence_arousal(world)
    held_out = load_held_out(world, plan.eval_identities)
    # Scored as the app shows each edit (paste-back onto the aligned crop); the generator's own
    # crops, which the app never shows as they are, are kept alongside.
    edits, images = score_edits(engine_editor(engine, va), judge, held_out)
    raw, _ = score_edits(engine_editor(engine, va, shown=False), judge, held_out)
    control = score_critic_noise(final.unified(), final.discriminator, judge, held_out)

    parsed = [test_parsing[i] for i in range(len(test_parsing))]
    crops = to_uint8_crops(torch.stack([image for image, _ in parsed]))
    labels = [label.numpy() for _, label in parsed]
    locality = score_locality(engine, crops, labels, LOCK_REGIONS, va)
    # Whether the trained objective rewards the true edit (docs/learning.md), in the frame and
    # through the masks the joint stage trained with (its config.yaml, --set included).
    trained = TrainConfig.from_dict(load_yaml(paths["joint"] / CONFIG_FILE))
    frame: Frame = "landmarks" if trained.data.align == "landmarks" else "rendered"
    probe = probe_critics(
        final, world, plan.eval_identities, frame=frame, masks=trained.gan_optim.critic_masks
    )
    scores = CheckScores(parser_stage, parser_final, edits, raw, control, locality, probe)
    return Evaluation(scores, held_out, images)


def run_learning_check(
    out: Path, plan: CheckPlan, command: str, log: Log = print
) -> LearningReport:
    """Make the world, train every stage and the judge, score, and write the report into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    machine = machine_description()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    train_stages(plan, out, timings, log)
    judge, record, losses = train_judge(plan, out, timings, log, plan.device)
    scored = score_check(out, plan, judge, losses, timings, log)
    timings["total"] = time.perf_counter() - started
    machine["load_average"] = load_average()
    report = LearningReport(plan, command, machine, timings, record, *scored)
    _write_report(report, out, log)
    return report


def score_check(
    out: Path,
    plan: CheckPlan,
    judge: ExpressionClassifier,
    judge_losses: Sequence[float] | None,
    timings: dict[str, float],
    log: Log,
) -> tuple[CheckScores, dict[str, Any], dict[str, str]]:
    """Evaluate the check's final model (its time into `timings`) and draw its figures;
    returns the scores, the curves and the files."""
    log("learning-check: scoring held-out identities")
    started = time.perf_counter()
    paths = run_paths(out)
    evaluation = evaluate(plan, paths, judge)
    timings["evaluation"] = time.perf_counter() - started
    files, curves = write_figures(
        evaluation.held_out, evaluation.edits, paths, judge_losses, plan.seed, out
    )
    files["report"] = str(out / "report.md")
    return evaluation.scores, curves, files


def _write_report(report: LearningReport, out: Path, log: Log) -> None:
    atomic_write_text(out / "report.json", json.dumps(report.to_dict(), indent=2) + "\n")
    atomic_write_text(out / "report.md", markdown(report))
    log(f"learning-check: report in {out / 'report.md'}")


def rescore_learning_check(
    out: Path, plan: CheckPlan, command: str, log: Log = print
) -> LearningReport:
    """Score a finished check's models again without training the stages: after the evaluation
    changed, or where training ran on a machine whose evaluation did not finish (a GPU's).

    The plan, training timings, machine and judge figures come from `out`/report.json when
    there is one (`plan` is used only where there is none); the runs are left as they are. A
    judge trained otherwise than the world judge is now (before its augmentation, say) is
    trained again, so the figures are always read by today's judge."""
    out = Path(out)
    paths = run_paths(out)
    needed = (
        paths["world"] / PAIRS_FILE,
        paths["parser"] / "parser.safetensors",
        paths["joint"] / "model.safetensors",
        paths["joint"] / CONFIG_FILE,
        out / JUDGE_FILE,
    )
    missing = [str(p.relative_to(out)) for p in needed if not p.is_file()]
    if missing:
        raise ConfigError(
            f"{out} is not a finished learning check's folder: {', '.join(missing)} missing "
            "(--rescore scores the world, runs and judge that a check wrote there)"
        )
    previous = read_report(out / "report.json")
    trained_by, machine, timings = command, {}, {}
    judge_before: JudgeRecord | None = None
    if previous is not None:
        document, plan = previous
        trained_by, machine = document["command"], dict(document["machine"])
        timings = {k: float(v) for k, v in document["timings_s"].items()}
        judge_before = JudgeRecord.from_dict(document["metrics"]["judge"])
    before = dict(timings)
    judge, record, losses = _todays_judge(out, plan, judge_before, timings, log)
    scored = score_check(out, plan, judge, losses, timings, log)
    if "total" in timings:  # the stages' time as trained, the judge's and scoring's as now
        timings["total"] += sum(
            timings[k] - before.get(k, 0.0) for k in ("judge", "evaluation") if k in timings
        )
    # the machine that scored, with its load at the end; a trained check keeps its own record
    if previous is None:
        machine = machine_description()
    else:
        machine["rescored_on"] = machine_description()
    report = LearningReport(plan, trained_by, machine, timings, record, *scored, command)
    _write_report(report, out, log)
    return report


def _todays_judge(
    out: Path,
    plan: CheckPlan,
    record: JudgeRecord | None,
    timings: dict[str, float],
    log: Log,
) -> tuple[ExpressionClassifier, JudgeRecord, list[float] | None]:
    """The check's judge file if it was trained as the world judge is now (with `record`, its
    record in report.json, or else what the file says), else a judge trained again."""
    loaded = load_classifier(out / JUDGE_FILE)
    if trained_as_now(loaded.metadata, plan.judge_steps, plan.seed):
        accuracy = float(loaded.metadata.get("held_out_accuracy", float("nan")))
        training = training_config(loaded.metadata.get("training"))
        return loaded.model.eval(), record or JudgeRecord(accuracy, training=training), None
    log(f"learning-check: {out / JUDGE_FILE} was trained otherwise: training the judge again")
    device = "cuda" if plan.device == "cuda" and torch.cuda.is_available() else "cpu"
    return train_judge(plan, out, timings, log, device)
