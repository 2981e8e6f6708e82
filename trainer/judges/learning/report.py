"""The learning check's report: what was measured (typed), the targets it must meet, and the
report.md and report.json it writes. report.json keeps the names it has always had."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import torch

from faceedit.errors import ConfigError
from trainer.judges.classifier import ClassifierTrainConfig
from trainer.judges.controls import CONTROL_MAX_READ
from trainer.judges.learning.plan import CheckPlan
from trainer.judges.metrics import SegmentationScores
from trainer.judges.world.judge import WorldJudge
from trainer.judges.world.scores import CriticNoiseScores, EditScores, LocalityScores
from trainer.research.critic_probe import CriticProbe

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
class Target:
    """One pass/fail line of the report."""

    name: str
    goal: str
    measured: float
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class JudgeRecord:
    """The check's judge: its accuracy on held-out identities' real renderings, and how it was
    trained (None for a judge from before that was recorded)."""

    accuracy: float
    per_class: Mapping[str, float | None] = field(default_factory=dict)
    count: int = 0
    training: ClassifierTrainConfig | None = None

    @classmethod
    def of(cls, judge: WorldJudge) -> JudgeRecord:
        scores = judge.scores
        return cls(scores.accuracy, scores.per_class, scores.count, judge.training)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JudgeRecord:
        """From report.json's `metrics.judge`."""
        scores = data["scores"]
        return cls(
            float(scores["accuracy"]),
            dict(scores.get("per_class") or {}),
            int(scores.get("count") or 0),
            training_config(data.get("training")),
        )

    def to_dict(self) -> dict[str, Any]:
        scores = {"accuracy": self.accuracy, "per_class": dict(self.per_class), "count": self.count}
        return {
            "scores": scores,
            "training": None if self.training is None else asdict(self.training),
        }

    def describe(self) -> str:
        """How the judge was trained, in words."""
        t = self.training
        if t is None:
            return "a judge from before its training was recorded (flips only)"
        return (
            f"{t.steps} steps on train identities' renderings with flips, shifts up to "
            f"{t.shift} px, colour jitter {t.colour:g} and noise up to std {t.noise:g}"
        )


def training_config(data: Mapping[str, Any] | None) -> ClassifierTrainConfig | None:
    """A judge's recorded training (report.json, a judge file's metadata), None if none."""
    return None if data is None else ClassifierTrainConfig(**data)


@dataclass(frozen=True)
class CheckScores:
    """Everything the evaluation measured on the check's models (held-out identities)."""

    parser_stage: SegmentationScores  # the parser stage's parser
    parser_final: SegmentationScores  # the final (joint) model's
    edits: EditScores  # as the app shows them
    edits_generator_crop: EditScores  # the generator's own crops
    critic_noise: CriticNoiseScores  # the control
    locality: LocalityScores
    critic_probe: CriticProbe | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "parser_parser_stage": self.parser_stage.to_dict(),
            "parser_final": self.parser_final.to_dict(),
            "edits": self.edits.to_dict(),
            "edits_generator_crop": self.edits_generator_crop.to_dict(),
            "control_critic_noise": self.critic_noise.to_dict(),
            "locality": self.locality.to_dict(),
        }
        if self.critic_probe is not None:
            out["critic_probe"] = self.critic_probe.to_dict()
        return out


@dataclass(frozen=True)
class LearningReport:
    """One check: its plan, how it was run, its judge and scores, and the files it wrote."""

    plan: CheckPlan
    command: str
    machine: Mapping[str, Any]
    timings_s: Mapping[str, float]
    judge: JudgeRecord
    scores: CheckScores
    curves: Mapping[str, Mapping[str, Sequence[Any]]] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    rescored_by: str | None = None  # the command that scored it again, without training

    @property
    def targets(self) -> list[Target]:
        return judge_targets(self.judge, self.scores)

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.targets)

    def to_dict(self) -> dict[str, Any]:
        metrics: dict[str, Any] = {"judge": self.judge.to_dict(), **self.scores.to_dict()}
        metrics["curves"] = {k: dict(v) for k, v in self.curves.items()}
        if self.rescored_by is not None:
            metrics["rescored_by"] = self.rescored_by
        return {
            "passed": self.passed,
            "seed": self.plan.seed,
            "command": self.command,
            "plan": asdict(self.plan),
            "machine": dict(self.machine),
            "timings_s": dict(self.timings_s),
            "targets": [asdict(t) for t in self.targets],
            "metrics": metrics,
            "files": dict(self.files),
        }


def judge_targets(judge: JudgeRecord, scores: CheckScores) -> list[Target]:
    """The report's pass/fail lines."""
    miou = scores.parser_final.miou or 0.0
    edits, raw = scores.edits, scores.edits_generator_crop
    control = scores.critic_noise
    loc = scores.locality
    regions = ", ".join(loc.allowed)
    return [
        Target(
            "parser mIoU (held-out, final model)",
            f">= {MIOU_TARGET}",
            miou,
            miou >= MIOU_TARGET,
            f"after the parser stage: {scores.parser_stage.miou or 0.0:.4f}",
        ),
        Target(
            "judge accuracy on held-out real renderings",
            f">= {JUDGE_SELF_TARGET}",
            judge.accuracy,
            judge.accuracy >= JUDGE_SELF_TARGET,
        ),
        Target(
            "edits judged as their target",
            f">= {JUDGE_EDIT_TARGET}",
            edits.judge_accuracy,
            edits.judge_accuracy >= JUDGE_EDIT_TARGET,
            f"{edits.edits} edits; mean target probability "
            f"{edits.mean_target_probability:.3f}; generator's crop: {raw.judge_accuracy:.3f}",
        ),
        Target(
            "control: noise aimed at the model's own critics (no expression drawn) judged as "
            "its target",
            f"<= {CONTROL_MAX_READ}",
            control.read_as_target,
            control.read_as_target <= CONTROL_MAX_READ,
            f"{control.edits.edits} inputs, at most {control.levels:g} grey levels, "
            f"{control.steps} steps; the global critic's P(target) "
            f"{control.critic_before:.3f} -> {control.critic_after:.3f}",
        ),
        Target(
            "L1(edit, truth) / L1(input, truth)",
            f"<= {L1_RATIO_TARGET}",
            edits.l1_ratio,
            edits.l1_ratio <= L1_RATIO_TARGET,
            f"{edits.mean_l1_edit:.5f} / {edits.mean_l1_input:.5f}; "
            f"generator's crop: {raw.l1_ratio:.3f}{_l1_parts(edits)}",
        ),
        Target(
            f"region lock ({regions}): pixels of other true classes unchanged",
            "= 1 (bit-exact)",
            loc.locked_exact_fraction,
            loc.locked_changed == 0,
            f"{loc.locked_changed} of {loc.locked_pixels} changed; beyond a "
            f"{loc.band}-px band: {loc.locked_band_changed} of {loc.locked_band_pixels}; "
            f"generator's crop: {loc.locked_changed_raw}",
        ),
        Target(
            f"region lock ({regions}): pixels outside its footprint in the model's parse",
            "= 1 (bit-exact)",
            loc.locked_parse_exact_fraction,
            loc.locked_parse_changed == 0,
            f"{loc.locked_parse_changed} of {loc.locked_parse_pixels} changed",
        ),
        Target(
            "outside the face: mean change (x255)",
            "<= 1",
            255 * loc.outside_mean_change,
            loc.outside_mean_change <= OUTSIDE_FACE_TARGET,
            f"generator's crop: {255 * loc.outside_mean_change_raw:.3f}",
        ),
    ]


def _l1_parts(edits: EditScores) -> str:
    inside, outside, moved = edits.footprint_ratios()
    return (
        f"; inside the expression's footprint {inside:.3f}, outside it {outside:.3f}; "
        f"the true edit moved 1 px: {moved:.3f}"
    )


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
        "load_average": load_average(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def load_average() -> list[float] | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def markdown(report: LearningReport) -> str:
    """report.md: the verdict, how the check ran, the targets, and the details behind them."""
    machine = report.machine
    scores = report.scores
    lines = [
        "# faceedit learning check",
        "",
        f"Result: **{'all targets met' if report.passed else 'some targets NOT met'}**",
        "",
        f"- command: `{report.command}`",
        f"- seed: {report.plan.seed}",
        f"- machine: {machine.get('cpu_model')}, {machine.get('cpu_count')} cores, "
        f"torch {machine.get('torch')} with {machine.get('torch_threads')} threads, "
        f"load average at the end {machine.get('load_average')}",
        f"- trained on: {report.plan.device}"
        + (
            f" ({machine['gpu']}, bf16 autocast)"
            if machine.get("gpu") and report.plan.device == "cuda"
            else ""
        ),
        f"- plan: {json.dumps(asdict(report.plan))}",
        f"- judge: {report.judge.describe()}",
        *(
            [f"- scored again, without training: `{report.rescored_by}`"]
            if report.rescored_by is not None
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
        "footprint). The generator's own crop, before paste-back, is in each detail. The control "
        "is each held-out input with per-image noise aimed at the model's own global critic "
        "towards each target: a judge that reads it as the target measures the critic's "
        "shortcut, not a drawn expression.",
    ]
    lines += ["", "| stage | wall time (s) |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in report.timings_s.items()]
    lines += ["", "Per-target judge accuracy of edits (of the control):", ""]
    control = scores.critic_noise.edits.per_target_accuracy
    lines += [
        f"- {name}: {value:.3f} ({control[name]:.3f})"
        for name, value in scores.edits.per_target_accuracy.items()
    ]
    probe = scores.critic_probe
    if probe is not None:
        lines += [
            "",
            "The critics' cross-entropy towards the target (the generator's classification loss) "
            "on the true rendering of the target and on the model's edit, both seen through "
            f"{_MASKS_SEEN[probe.masks]} ({probe.frame} frame; "
            "docs/learning.md, `critic-probe`):",
            "",
            "| critic | accuracy on real faces | truth | the edit |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {name} | {probe.real_accuracy[name]:.3f} | {truth.cross_entropy:.3f} | "
            f"{probe.edit[name].cross_entropy:.3f} |"
            for name, truth in probe.truth.items()
        ]
    parser = scores.parser_final
    scored = [(parser.class_names[i], parser.iou[i]) for i in parser.scored_classes]
    if scored:
        lines += ["", "Parser IoU per class (final model, held-out):", ""]
        lines += [f"- {name}: {value:.3f}" for name, value in scored if value is not None]
    lines += ["", "Files:", ""]
    lines += [f"- {k}: `{Path(v).name}`" for k, v in report.files.items()]
    return "\n".join(lines) + "\n"


def read_report(path: Path) -> tuple[dict[str, Any], CheckPlan] | None:
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
