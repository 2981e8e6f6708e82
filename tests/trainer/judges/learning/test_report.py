"""The learning check's verdicts: each target passes and fails on the measured values, the
critic-noise control among them, and the report says what it measured under its old names."""

from __future__ import annotations

from dataclasses import replace

from tests.trainer.judges.learning.reports import check_scores, edit_scores, sample_report
from trainer.judges.controls import CONTROL_MAX_READ
from trainer.judges.learning.report import JudgeRecord, Target, markdown
from trainer.judges.world.judge import judge_training
from trainer.research.critic_probe import CriticProbe, Reading

CONTROL = "control: noise aimed at the model's own critics"


def test_targets_pass_and_fail_on_the_measured_values() -> None:
    report = sample_report()
    assert report.passed
    assert len(report.targets) == 8
    failing = replace(report, scores=replace(report.scores, edits=edit_scores(mean_l1_edit=0.004)))
    assert not failing.passed
    assert [t.passed for t in failing.targets].count(False) == 1
    text = markdown(failing)
    assert "FAIL" in text and "NOT met" in text
    assert "the true rendering of the target" not in text  # no probe, no table
    assert "footprint 0.250, outside it 0.083; the true edit moved 1 px: 1.200" in text


def test_a_control_the_judge_reads_as_the_target_fails_the_check() -> None:
    """Noise aimed at the critics, read as the target more than a quarter of the time: the
    judge measures the critics' shortcut, and the check does not pass."""
    fooled = sample_report(scores=check_scores(control_read=0.55))
    control = next(t for t in fooled.targets if t.name.startswith(CONTROL))
    assert not control.passed and control.measured == 0.55
    assert control.goal == f"<= {CONTROL_MAX_READ}"
    assert "0.140 -> 0.960" in control.detail and "8 grey levels, 20 steps" in control.detail
    assert not fooled.passed
    assert [t.passed for t in fooled.targets].count(False) == 1
    at_the_limit = sample_report(scores=check_scores(control_read=CONTROL_MAX_READ))
    assert at_the_limit.passed
    assert f"| {CONTROL}" in markdown(fooled)


def test_report_json_keeps_its_names_and_adds_the_control() -> None:
    record = sample_report(rescored_by="again").to_dict()
    metrics = record["metrics"]
    assert set(metrics) >= {
        "judge",
        "parser_parser_stage",
        "parser_final",
        "edits",
        "edits_generator_crop",
        "control_critic_noise",
        "locality",
        "curves",
    }
    assert metrics["rescored_by"] == "again" and "critic_probe" not in metrics
    assert metrics["judge"]["scores"]["accuracy"] == 0.97
    assert metrics["edits"]["mean_l1_edit_to_truth"] == 0.002
    assert metrics["edits"]["per_target_accuracy"]["happy"] == 1.0
    assert metrics["locality"]["outside_face_mean_change_x255"] == 0.5
    assert metrics["control_critic_noise"]["read_as_target"] == 0.1
    assert metrics["control_critic_noise"]["critic_target_probability_after"] == 0.96
    assert record["passed"] is True and len(record["targets"]) == 8
    assert JudgeRecord.from_dict(metrics["judge"]) == JudgeRecord(0.97, {"happy": 1.0}, 96)


def test_the_report_says_how_its_judge_was_trained() -> None:
    training = judge_training(steps=1000)
    text = markdown(sample_report(judge=JudgeRecord(0.97, training=training)))
    assert "1000 steps on train identities' renderings with flips, shifts up to 4 px" in text
    assert "colour jitter 0.3 and noise up to std 0.1" in text
    assert "flips only" in markdown(sample_report())  # a judge without a training record


def test_the_report_shows_whether_the_critics_reward_the_truth() -> None:
    def reading(cross_entropy: float) -> Reading:
        return Reading(cross_entropy, 0.1, 0.6, 0.05)

    probe = CriticProbe(
        frame="landmarks",
        pairs=56,
        real_accuracy={"global": 0.97, "mouth": 0.8},
        truth={"global": reading(5.54), "mouth": reading(12.7)},
        edit={"global": reading(0.1), "mouth": reading(1.72)},
    )
    report = sample_report(scores=check_scores(critic_probe=probe))
    text = markdown(report)
    assert "landmarks frame" in text and "the input's masks" in text
    assert (
        "| global | 0.970 | 5.540 | 0.100 |" in text
        and "| mouth | 0.800 | 12.700 | 1.720 |" in text
    )
    probe.masks = "own"
    assert "each image's own masks" in markdown(report)
    assert report.to_dict()["metrics"]["critic_probe"]["frame"] == "landmarks"


def test_target_lines_are_dataclasses() -> None:
    target = Target("x", ">= 1", 0.5, False)
    assert not target.passed and target.detail == ""
