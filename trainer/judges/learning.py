"""The learning check: does faceedit's training actually learn? (`faceedit-train learning-check`)

It makes a procedural world (trainer/world), trains parser, gan and joint through the real
`faceedit-train` stages at 64 px, trains a judge classifier on the world's real renderings of
train identities, and scores the final model on held-out identities against the world's ground
truth: parser mIoU, the judge's verdict on edits, the L1 distance of edits to the true rendering
of their target, and locality (the region lock is exact; outside the face barely changes).
Everything is written to one folder: report.md, report.json, an edit grid and loss curves.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
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
from trainer.config import TrainConfig, load_yaml
from trainer.judges import plots
from trainer.judges.classifier import (
    ClassifierConfig,
    ClassifierTrainConfig,
    ExpressionClassifier,
    load_classifier,
    save_classifier,
    train_classifier,
)
from trainer.judges.critic_probe import Frame, probe_critics
from trainer.judges.evaluation import evaluate_parser, to_uint8_crops
from trainer.judges.experiments import run_stage_command
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
from trainer.stages.runner import CONFIG_FILE
from trainer.world.world import WorldConfig, build_world

PRESET: Final[str] = "world-64"
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
# The gan and joint stages read the world's expression images as the aligned crops they are
# (data.align=aligned), the frame the check edits and the app shows: trained on landmark-
# aligned crops, the model edited faces in a frame it never saw in training (docs/learning.md).
ALIGN: Final[str] = "aligned"
# How the report names the masks the critics saw (gan_optim.critic_masks).
_MASKS_SEEN: Final[dict[str, str]] = {
    "input": "the input's masks",
    "own": "each image's own masks",
}


@dataclass(frozen=True)
class CheckPlan:
    """Sizes and step counts of one check; `quick` is the CI-sized version."""

    seed: int = 0
    # 960, not 240: the parser learns from 2 CelebAMask-HQ-layout images per identity, and 4x
    # the identities raised held-out mIoU 0.767 -> 0.804 at the same steps (docs/learning.md);
    # the world costs about 20 s more to make.
    identities: int = 960
    # 3000, not 1500: with flips and jitter the parser no longer overfits, and the second 1500
    # steps raised held-out mIoU 0.804 -> 0.829 (960 identities, docs/learning.md).
    parser_steps: int = 3000
    # 5000: the first 1500 only warm the critics up (world-64's critic_warmup); 500 GAN
    # iterations after them left 0.217 / 0.232 of the edits judged as target (seeds 0 / 2026),
    # 1000 0.561, 1500 0.689, 2500 0.850 / 0.795, 3500 0.839 on seed 31337 (0.749 at 2500;
    # docs/learning.md). The shared edit (trainer.stages.steps.EditPass) and the decoded-sample
    # cache made the 3500 fit the 30 minutes.
    gan_steps: int = 5000
    joint_steps: int = 100
    batch_size: int = 16
    gan_batch_size: int = 8
    judge_steps: int = 1000
    judge_width: int = 16
    eval_identities: int = 24  # held-out identities scored (all 8 sources each)
    extra_settings: tuple[str, ...] = ()  # --set KEY=VALUE for the gan and joint stages
    device: str = "cpu"  # where the stages and the judge train; the evaluation always runs on the CPU

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
    def for_mode(cls, seed: int, quick: bool) -> CheckPlan:
        if not quick:
            return cls(seed=seed)
        return cls(
            seed=seed,
            identities=60,
            parser_steps=150,
            gan_steps=200,
            joint_steps=20,
            judge_steps=150,
            eval_identities=4,
            # world-64 warms the critics up for 1500 iterations; a quick run has 200 in all
            extra_settings=("gan_optim.critic_warmup=100",),
        )


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


def _train(argv: Sequence[str]) -> None:
    """Run one `faceedit-train` command in this process: the world, or a real training stage."""
    if argv[0] == "synth":
        flags = dict(zip(argv[1::2], argv[2::2], strict=True))
        config = WorldConfig(
            count=int(flags["--count"]), size=int(flags["--size"]), seed=int(flags["--seed"])
        )
        build_world(config, flags["--out"])
        return
    run_stage_command(argv[0], argv[1:])


def _stage_flags(plan: CheckPlan, steps: int, batch: int) -> list[str]:
    every = str(max(1, steps // 30))
    return [
        "--preset",
        PRESET,
        "--steps",
        str(steps),
        "--batch-size",
        str(batch),
        "--seed",
        str(plan.seed),
        "--num-workers",
        # loader processes only where the GPU would otherwise wait; the CPU check loads in-process
        "0" if plan.device == "cpu" else "-1",
        "--device",
        plan.device,
        "--log-every",
        every,
        "--checkpoint-every",
        str(steps),
        "--image-every",
        str(steps),
    ]


def run_paths(out: Path) -> dict[str, Path]:
    """Where a check keeps its world and its stages' runs."""
    runs = out / "runs"
    return {"world": out / "world", "parser": runs / "parser", "gan": runs / "gan", "joint": runs / "joint"}


def train_stages(plan: CheckPlan, out: Path, timings: dict[str, float], log: Callable[[str], None]) -> dict[str, Path]:
    """World, then parser, gan and joint through `faceedit-train`; returns the run folders."""
    paths = run_paths(out)
    world = paths["world"]
    affectnet = ["--affectnet", str(world / "affectnet"), "--set", f"data.align={ALIGN}"]
    settings = [arg for s in plan.extra_settings for arg in ("--set", s)]
    steps: list[tuple[str, list[str]]] = [
        (
            "world",
            ["synth", "--out", str(world), "--count", str(plan.identities), "--size", str(SIZE),
             "--seed", str(plan.seed)],
        ),
        (
            "parser",
            ["parser", "--celebamask-hq", str(world / "celebamask-hq"), "--out",
             str(paths["parser"]), *_stage_flags(plan, plan.parser_steps, plan.batch_size)],
        ),
        (
            "gan",
            ["gan", *affectnet, "--parser", str(paths["parser"]), "--out", str(paths["gan"]),
             *_stage_flags(plan, plan.gan_steps, plan.gan_batch_size), *settings],
        ),
        (
            "joint",
            ["joint", *affectnet, "--celebamask-hq", str(world / "celebamask-hq"), "--init",
             str(paths["gan"]), "--out", str(paths["joint"]),
             *_stage_flags(plan, plan.joint_steps, plan.gan_batch_size), *settings],
        ),
    ]
    for name, argv in steps:
        log(f"learning-check: {name}: faceedit-train {shlex.join(argv)}")
        started = time.perf_counter()
        _train(argv)
        timings[name] = time.perf_counter() - started
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
        steps=plan.judge_steps, batch_size=32, lr=2e-3, seed=plan.seed, num_workers=0,
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
        Target("parser mIoU (held-out, final model)", f">= {MIOU_TARGET}", miou, miou >= MIOU_TARGET,
               f"after the parser stage: {m['parser_parser_stage']['miou']:.4f}"),
        Target("judge accuracy on held-out real renderings", f">= {JUDGE_SELF_TARGET}", judge_self,
               judge_self >= JUDGE_SELF_TARGET),
        Target("edits judged as their target", f">= {JUDGE_EDIT_TARGET}", edits["judge_accuracy"],
               edits["judge_accuracy"] >= JUDGE_EDIT_TARGET,
               f"{edits['edits']} edits; mean target probability "
               f"{edits['mean_target_probability']:.3f}; generator's crop: "
               f"{raw['judge_accuracy']:.3f}"),
        Target("L1(edit, truth) / L1(input, truth)", f"<= {L1_RATIO_TARGET}", ratio,
               ratio <= L1_RATIO_TARGET,
               f"{edits['mean_l1_edit_to_truth']:.5f} / {edits['mean_l1_input_to_truth']:.5f}; "
               f"generator's crop: {raw_ratio:.3f}{l1_parts(edits)}"),
        Target(f"region lock ({regions}): pixels of other true classes unchanged",
               "= 1 (bit-exact)", loc["locked_exact_fraction"], loc["locked_changed"] == 0,
               f"{loc['locked_changed']} of {loc['locked_pixels']} changed; beyond a "
               f"{loc['band_px']}-px band: {loc['locked_beyond_band_changed']} of "
               f"{loc['locked_beyond_band_pixels']}; generator's crop: "
               f"{loc['locked_changed_generator_crop']}"),
        Target(f"region lock ({regions}): pixels outside its footprint in the model's parse",
               "= 1 (bit-exact)", loc["locked_outside_parse_exact_fraction"],
               loc["locked_outside_parse_changed"] == 0,
               f"{loc['locked_outside_parse_changed']} of "
               f"{loc['locked_outside_parse_pixels']} changed"),
        Target("outside the face: mean change (x255)", "<= 1", loc["outside_face_mean_change_x255"],
               loc["outside_face_mean_change"] <= OUTSIDE_FACE_TARGET,
               "generator's crop: "
               f"{loc['outside_face_mean_change_x255_generator_crop']:.3f}"),
    ]


def l1_ratio(edits: dict[str, Any]) -> float:
    """Mean L1(edit, truth) over mean L1(input, truth): below 1, edits move towards the truth."""
    return float(edits["mean_l1_edit_to_truth"]) / max(edits["mean_l1_input_to_truth"], 1e-12)


def l1_parts(edits: dict[str, Any]) -> str:
    """Where the L1 ratio comes from, in units of L1(input, truth): inside the expression's
    footprint and outside it, beside the true edit misplaced by one pixel (the metric's
    sensitivity). Empty for reports written before these were measured."""
    keys = ("mean_l1_edit_to_truth_in_footprint", "mean_l1_edit_to_truth_off_footprint",
            "mean_l1_truth_moved_1px")
    if not all(k in edits for k in keys):
        return ""
    inside, outside, moved = (float(edits[k]) / max(edits["mean_l1_input_to_truth"], 1e-12)
                              for k in keys)
    return (f"; inside the expression's footprint {inside:.3f}, outside it {outside:.3f}; "
            f"the true edit moved 1 px: {moved:.3f}")


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
        + (f" ({report.machine['gpu']}, bf16 autocast)" if report.machine.get("gpu") and report.plan.device == "cuda" else ""),
        f"- plan: {json.dumps(asdict(report.plan))}",
        *([f"- scored again, without training: `{report.metrics['rescored_by']}`"]
          if "rescored_by" in report.metrics else []),
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
    needed = (paths["world"] / PAIRS_FILE, paths["parser"] / "parser.safetensors",
              paths["joint"] / "model.safetensors", paths["joint"] / CONFIG_FILE,
              out / "judge.safetensors")
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
            plan=trained_plan, command=record["command"], machine=record["machine"],
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
        raise ConfigError(f"{path} is not a learning check's report ({error}); move it away to "
                          "rescore with the plan from the command line") from error
    return record, plan


def command_line() -> str:
    return shlex.join(["faceedit-train", *sys.argv[1:]]) if sys.argv else "faceedit-train"
