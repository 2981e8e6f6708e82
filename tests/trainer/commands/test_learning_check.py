"""`faceedit-train learning-check`: its flags reach the plan, and bad input gets a clear message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.trainer.judges.learning.reports import check_scores, sample_report
from trainer.commands import learning_check
from trainer.commands.cli import main
from trainer.judges.learning.plan import CheckPlan
from trainer.judges.learning.report import LearningReport


def test_help_lists_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["learning-check", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "--seed" in out and "held-out" in out


@pytest.mark.slow
def test_flags_build_the_plan_and_the_verdict_is_the_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def fake_check(out: Path, plan: CheckPlan, command: str, log: Any) -> LearningReport:
        seen.update(out=out, plan=plan)
        control = 0.1 if seen.get("ok", True) else 0.9  # a fooled judge fails the check
        return sample_report(plan, command=command, scores=check_scores(control_read=control))

    monkeypatch.setattr(learning_check, "run_learning_check", fake_check)
    code = main(
        [
            "learning-check",
            "--out",
            str(tmp_path / "a"),
            "--seed",
            "7",
            "--quick",
            "--set",
            "loss.cycle=5",
            "--threads",
            "1",
        ]
    )
    assert code == 0
    assert seen["out"] == tmp_path / "a"
    quick, full = CheckPlan.for_mode(7, quick=True), CheckPlan.for_mode(7, quick=False)
    assert seen["plan"].seed == 7 and seen["plan"].recipe == "world-64:quick"
    assert seen["plan"].gan_steps == quick.gan_steps < full.gan_steps
    assert seen["plan"].extra_settings == ("loss.cycle=5",)
    seen["ok"] = False
    assert main(["learning-check", "--out", str(tmp_path / "b"), "--threads", "1"]) == 1
    scaled = ["--out", str(tmp_path / "c"), "--threads", "1", "--scale", "3", "--device", "cpu"]
    main(["learning-check", *scaled])
    assert seen["plan"].parser_steps == 3 * full.parser_steps
    assert seen["plan"].device == "cpu"
    longer_gan = [
        "--out",
        str(tmp_path / "d"),
        "--threads",
        "1",
        "--gan-steps",
        "2000",
        "--scale",
        "2",
    ]
    main(["learning-check", *longer_gan])
    assert seen["plan"].gan_steps == 2 * 2000
    assert seen["plan"].parser_steps == 2 * full.parser_steps


def test_the_recipe_flag_and_a_bad_setting_are_checked_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--recipe takes a recipe file too (its plan from its stages and `check` section); a bad
    --set or a recipe without a `check` section is refused before the world is made."""
    import yaml

    from trainer.recipes import RECIPES_DIR

    seen: dict[str, Any] = {}

    def fake_check(out: Path, plan: CheckPlan, command: str, log: Any) -> LearningReport:
        seen["plan"] = plan
        return sample_report(plan, command=command)

    monkeypatch.setattr(learning_check, "run_learning_check", fake_check)
    mine = yaml.safe_load((RECIPES_DIR / "world-64.yaml").read_text())
    mine["stages"]["parser"]["steps"] = 123
    mine["check"]["identities"] = 77
    recipe = tmp_path / "mine.yaml"
    recipe.write_text(yaml.safe_dump(mine))
    assert main(["learning-check", "--out", str(tmp_path / "a"), "--recipe", str(recipe)]) == 0
    plan = seen["plan"]
    assert (plan.parser_steps, plan.identities, plan.recipe) == (123, 77, str(recipe))
    code = main(["learning-check", "--out", str(tmp_path / "b"), "--set", "loss.cyclee=5"])
    assert code == 2 and "loss.cyclee" in capsys.readouterr().err
    code = main(["learning-check", "--out", str(tmp_path / "c"), "--recipe", "paper-128"])
    assert code == 2 and "no `check` section" in capsys.readouterr().err
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()


def test_a_missing_gpu_is_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = main(["learning-check", "--out", str(tmp_path / "g"), "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 2 and "no usable GPU" in err and "Traceback" not in err
    assert not (tmp_path / "g").exists() or not any((tmp_path / "g").iterdir())


def test_refuses_a_folder_that_is_not_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "old.txt").write_text("x")
    code = main(["learning-check", "--out", str(tmp_path)])
    assert code != 0
    err = capsys.readouterr().err
    assert "not empty" in err and "Traceback" not in err


def test_refuses_zero_threads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:  # argparse: the flag's range
        main(["learning-check", "--out", str(tmp_path / "x"), "--threads", "0"])
    assert refused.value.code == 2
    assert "--threads" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_rescore_scores_an_existing_folder_and_refuses_one_that_is_not_a_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["learning-check", "--out", str(tmp_path / "none"), "--rescore", "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "none").exists()
    (tmp_path / "old.txt").write_text("x")
    code = main(["learning-check", "--out", str(tmp_path), "--rescore", "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "not a finished learning check" in err and "judge.safetensors" in err

    seen: dict[str, Any] = {}

    def fake_rescore(out: Path, plan: CheckPlan, command: str, log: Any) -> LearningReport:
        seen.update(out=out, plan=plan)
        return sample_report(plan, command=command)

    monkeypatch.setattr(learning_check, "rescore_learning_check", fake_rescore)
    assert main(["learning-check", "--out", str(tmp_path), "--rescore", "--seed", "3"]) == 0
    assert seen["out"] == tmp_path and seen["plan"].seed == 3  # the fallback plan, from flags
