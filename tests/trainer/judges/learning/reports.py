"""A learning check's report with known figures: every target met unless told otherwise."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from faceedit.vocab.expressions import EXPRESSIONS
from trainer.judges.learning.plan import CheckPlan
from trainer.judges.learning.report import CheckScores, JudgeRecord, LearningReport
from trainer.judges.metrics import SegmentationScores
from trainer.judges.world.scores import CriticNoiseScores, EditScores, LocalityScores

MACHINE = {"cpu_model": "x", "cpu_count": 2, "torch": "2", "torch_threads": 2}


def full_plan(**changes: Any) -> CheckPlan:
    """The check's plan from the world-64 recipe, with `changes`."""
    return replace(CheckPlan.for_mode(0, quick=False), **changes)


def edit_scores(**changes: Any) -> EditScores:
    """Edits judged as target 0.9 of the time, at L1 ratio 1/3 (0.002 / 0.006)."""
    scores = EditScores(
        edits=10,
        judge_accuracy=0.9,
        mean_target_probability=0.8,
        mean_l1_edit=0.002,
        mean_l1_input=0.006,
        mean_l1_edit_in_footprint=0.0015,
        mean_l1_edit_off_footprint=0.0005,
        mean_l1_truth_moved=0.0072,
        per_target_accuracy={name: 1.0 for name in EXPRESSIONS},
        identity_face=0.001,
        identity_background=0.0005,
        face_pixels=100,
        background_pixels=50,
    )
    return replace(scores, **changes)


def parser_scores(miou: float) -> SegmentationScores:
    return SegmentationScores((miou,), (miou,), miou, miou, 0.99, ("skin",))


def check_scores(control_read: float = 0.1, **changes: Any) -> CheckScores:
    """Scores meeting every target; the control read as its target `control_read` of the time."""
    control = CriticNoiseScores(
        edits=edit_scores(judge_accuracy=control_read, mean_target_probability=control_read),
        critic_before=0.14,
        critic_after=0.96,
        levels=8.0,
        steps=20,
    )
    locality = LocalityScores(
        allowed=("mouth",),
        band=2,
        locked_pixels=100,
        locked_changed=0,
        locked_band_pixels=90,
        locked_band_changed=0,
        locked_parse_pixels=95,
        locked_parse_changed=0,
        locked_changed_raw=3,
        outside_pixels=1000,
        outside_mean_change=0.5 / 255,
        outside_mean_change_raw=1.5 / 255,
    )
    scores = CheckScores(
        parser_stage=parser_scores(0.93),
        parser_final=parser_scores(0.95),
        edits=edit_scores(),
        edits_generator_crop=edit_scores(judge_accuracy=0.5, mean_l1_edit=0.006),
        critic_noise=control,
        locality=locality,
    )
    return replace(scores, **changes)


def sample_report(plan: CheckPlan | None = None, **changes: Any) -> LearningReport:
    """A report of `plan` (the full plan) whose targets are all met, with `changes`."""
    report = LearningReport(
        plan=plan or full_plan(),
        command="c",
        machine=MACHINE,
        timings_s={},
        judge=JudgeRecord(0.97, {"happy": 1.0}, 96),
        scores=check_scores(),
    )
    return replace(report, **changes)
