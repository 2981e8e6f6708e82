"""Running the learning check without training anything: what each stage is given, and
`--rescore` (the check's record kept, the scores replaced, an outdated judge trained again)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from faceedit.errors import ConfigError
from tests.trainer.judges.conftest import tiny_judge
from tests.trainer.judges.learning.reports import check_scores, full_plan, sample_report
from trainer.judges.classifier import save_classifier
from trainer.judges.learning import check
from trainer.judges.learning.plan import CheckPlan, run_paths
from trainer.judges.learning.report import JudgeRecord, read_report
from trainer.judges.world.held_out import HeldOut
from trainer.judges.world.judge import judge_training


@pytest.mark.slow
def test_the_gan_and_joint_stages_train_on_the_crops_as_rendered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check edits the world's images as the aligned crops they are, so the GAN stages
    train in that frame too (the recipe's data.align); --set settings come after and can
    change it, and reach the gan and joint stages only."""
    from tests.trainer.world_runs import record_stages

    calls = record_stages(monkeypatch, check)
    check.train_stages(full_plan(), tmp_path / "a", {}, lambda _: None)
    assert [c["config"].data.align for c in calls] == ["", "aligned", "aligned"]
    calls.clear()
    plan = full_plan(extra_settings=("data.align=landmarks", "loss.cycle=5"))
    check.train_stages(plan, tmp_path / "b", {}, lambda _: None)
    parser, gan, joint = (c["config"] for c in calls)
    assert gan.data.align == joint.data.align == "landmarks" and gan.loss.cycle == 5.0
    assert parser.data.align == "" and parser.loss.cycle == 10.0
    assert [str(c["init"]) for c in calls[1:]] == [
        str(tmp_path / "b" / "runs" / "parser"),
        str(tmp_path / "b" / "runs" / "gan"),
    ]


def finished_check(out: Path) -> None:
    """Stand-ins for the files a finished check leaves (evaluate() is replaced in the tests)."""
    paths = run_paths(out)
    for file in (
        paths["world"] / "pairs.csv",
        paths["parser"] / "parser.safetensors",
        paths["joint"] / "model.safetensors",
        paths["joint"] / "config.yaml",
    ):
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text("stand-in: evaluate() is replaced")


def fake_scoring(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace the evaluation and the figures; returns what the evaluation was given."""
    seen: dict[str, Any] = {}

    def fake_evaluate(plan: CheckPlan, paths: dict[str, Path], judge: Any) -> check.Evaluation:
        seen.update(plan=plan, judge=judge)
        scores = check_scores(control_read=0.6)  # the new score: the control now fails
        return check.Evaluation(scores, HeldOut(paths["world"], 64, {}, {}, {}, {}), {})

    monkeypatch.setattr(check, "evaluate", fake_evaluate)
    monkeypatch.setattr(check, "write_figures", lambda *a: ({}, {}))
    return seen


def current_judge(out: Path, plan: CheckPlan, accuracy: float = 0.9) -> None:
    """judge.safetensors as today's world judge of `plan` would record it."""
    training = asdict(judge_training(plan.judge_steps, plan.seed))
    metadata = {"held_out_accuracy": accuracy, "training": training}
    save_classifier(out / "judge.safetensors", tiny_judge(), metadata)


@pytest.mark.slow
def test_rescoring_keeps_the_training_record_and_scores_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`learning-check --rescore`: a finished check's folder scored again without training; the
    plan, training timings and judge figures come from its report, the new scores replace the
    old ones, and the report says it was scored again."""
    out = tmp_path / "check"
    with pytest.raises(ConfigError, match=r"parser\.safetensors.*missing"):
        check.rescore_learning_check(out, full_plan(), "rescore-cmd", log=lambda _: None)
    finished_check(out)
    trained = sample_report(
        plan=full_plan(seed=5, gan_steps=3000, extra_settings=("loss.cycle=5",)),
        command="faceedit-train learning-check --out check --seed 5",
        timings_s={"parser": 300.0, "gan": 900.0, "evaluation": 100.0, "total": 1400.0},
    )
    current_judge(out, trained.plan)
    (out / "report.json").write_text(json.dumps(trained.to_dict()))
    seen = fake_scoring(monkeypatch)
    report = check.rescore_learning_check(out, full_plan(), "rescore-cmd", log=lambda _: None)
    assert seen["plan"] == trained.plan  # the check's own plan, not the fallback
    written = json.loads((out / "report.json").read_text())
    assert written["command"] == trained.command
    assert written["metrics"]["rescored_by"] == "rescore-cmd"
    assert written["metrics"]["control_critic_noise"]["read_as_target"] == 0.6
    assert written["metrics"]["judge"]["scores"]["accuracy"] == 0.97  # the judge's own record
    # the training machine's record stays; the scoring machine is named beside it
    assert written["machine"]["cpu_model"] == "x" and "load_average" not in written["machine"]
    assert written["machine"]["rescored_on"]["cpu_count"] >= 1
    timings = written["timings_s"]
    assert timings["parser"] == 300.0 and timings["gan"] == 900.0
    assert timings["total"] == pytest.approx(1300.0 + timings["evaluation"])
    assert not report.passed
    assert "scored again, without training: `rescore-cmd`" in (out / "report.md").read_text()

    # a check whose evaluation never finished has no report: the fallback plan, the judge's
    # accuracy from its file
    (out / "report.json").unlink()
    current_judge(out, full_plan(seed=9))
    check.rescore_learning_check(out, full_plan(seed=9), "again", log=lambda _: None)
    written = json.loads((out / "report.json").read_text())
    assert written["plan"]["seed"] == 9 and written["metrics"]["judge"]["scores"]["accuracy"] == 0.9
    assert "rescored_on" not in written["machine"] and written["machine"]["cpu_count"] >= 1
    (out / "report.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not a learning check's report"):
        check.rescore_learning_check(out, full_plan(), "x", log=lambda _: None)


def test_rescoring_a_check_whose_judge_trained_without_augmentation_trains_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check from before the augmented judge: its figures are read by today's judge, trained
    again (and saved) before scoring; the report's judge record is the new one's."""
    out = tmp_path / "check"
    finished_check(out)
    save_classifier(out / "judge.safetensors", tiny_judge(), {"held_out_accuracy": 0.99})
    (out / "report.json").write_text(json.dumps(sample_report().to_dict()))
    seen = fake_scoring(monkeypatch)
    new_judge = tiny_judge()
    trained: list[tuple[Any, ...]] = []

    def fake_train_judge(plan: CheckPlan, out: Path, timings: dict[str, float], *a: Any) -> Any:
        trained.append((plan, out))
        timings["judge"] = 5.0
        training = judge_training(plan.judge_steps, plan.seed)
        return new_judge, JudgeRecord(0.96, training=training), [1.0, 0.5]

    monkeypatch.setattr(check, "train_judge", fake_train_judge)
    check.rescore_learning_check(out, full_plan(), "rescore-cmd", log=lambda _: None)
    assert [plan for plan, _ in trained] == [full_plan()] and seen["judge"] is new_judge
    record = read_report(out / "report.json")
    assert record is not None
    judge = record[0]["metrics"]["judge"]
    assert judge["scores"]["accuracy"] == 0.96 and judge["training"] is not None
    assert record[0]["timings_s"]["judge"] == 5.0


def test_a_report_written_before_the_recipes_still_gives_its_plan(tmp_path: Path) -> None:
    """report.json of a check trained before the recipes: its plan has no `recipe` (it trained
    with the world-64 settings) and the quick plan's warm-up is among its settings."""
    old = full_plan().__dict__ | {"extra_settings": ["gan_optim.critic_warmup=100"]}
    old.pop("recipe")
    (tmp_path / "report.json").write_text(json.dumps({"plan": old}))
    previous = read_report(tmp_path / "report.json")
    assert previous is not None
    plan = previous[1]
    assert plan.recipe == "world-64" and plan.extra_settings == ("gan_optim.critic_warmup=100",)
