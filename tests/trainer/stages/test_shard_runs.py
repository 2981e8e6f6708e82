"""Stages train from prepared shards, and a run interrupted mid-way resumes from shards at the
same sample as an uninterrupted one (bitwise equal weights, optimiser states and position)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from faceedit.weights import checkpoint
from tests.trainer.fixtures import AffectNetRow, write_affectnet, write_celebamask_hq
from tests.trainer.stages.test_resume import assert_same_state, deterministic  # noqa: F401
from tests.trainer.stages.test_stages import FAST, one_thread  # noqa: F401 (an autouse fixture)
from trainer.commands.cli import main
from trainer.stages.parser import ParserStage
from trainer.stages.state import load_state


def run_cli(*argv: Any) -> int:
    return main([str(a) for a in argv])


@pytest.fixture
def prepared(tmp_path: Path) -> dict[str, Path]:
    write_celebamask_hq(tmp_path / "celeb", range(20))
    rows = [AffectNetRow(path=f"a/f{i}.jpg", expression=i % 8) for i in range(16)]
    write_affectnet(tmp_path / "affectnet", rows)
    common = ["--size", 32, "--workers", 0, "--splits", "train", "--shard-mb", 0.02]
    assert (
        run_cli("prepare", "--celebamask-hq", tmp_path / "celeb", "--out", tmp_path / "cs", *common)
        == 0
    )
    assert (
        run_cli("prepare", "--affectnet", tmp_path / "affectnet", "--out", tmp_path / "as", *common)
        == 0
    )
    return {"celeb": tmp_path / "cs", "affectnet": tmp_path / "as"}


def parser_args(data: Path, out: Path) -> list[Any]:
    return ["parser", "--celebamask-hq", data, *FAST, "--steps", 6, "--checkpoint-every", 1,
            "--deterministic", "--out", out]  # fmt: skip


def test_a_parser_run_resumed_from_shards_continues_at_the_same_sample(
    prepared: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    deterministic: None,  # noqa: F811
) -> None:
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert run_cli(*parser_args(prepared["celeb"], straight)) == 0

    real_step = ParserStage.train_step

    def interrupted(self: ParserStage, step: int) -> Any:
        if step == 4:
            raise KeyboardInterrupt
        return real_step(self, step)

    monkeypatch.setattr(ParserStage, "train_step", interrupted)
    assert run_cli(*parser_args(prepared["celeb"], stopped)) != 0  # "interrupted"
    monkeypatch.undo()
    assert load_state(stopped / "state.pt")["step"] == 4
    assert run_cli("parser", "--out", stopped, "--resume") == 0
    expected, resumed = load_state(straight / "state.pt"), load_state(stopped / "state.pt")
    assert resumed["loaders"]["celebamask_hq"]["epoch"] >= 1  # 16 faces / 4: crossed an epoch
    assert_same_state(expected, resumed)


@pytest.mark.slow
def test_the_gan_and_joint_stages_train_from_shards(
    prepared: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("parser", "--celebamask-hq", prepared["celeb"], *FAST, "--steps", 1,
                   "--out", tmp_path / "p") == 0  # fmt: skip
    args = ["gan", "--affectnet", prepared["affectnet"], "--parser", tmp_path / "p", *FAST]
    assert (
        run_cli(*args, "--steps", 2, "--set", "gan_optim.n_critic=1", "--out", tmp_path / "g") == 0
    )
    assert checkpoint.load(tmp_path / "g" / "model.safetensors").generator is not None
    joint = ["joint", "--affectnet", prepared["affectnet"], "--celebamask-hq", prepared["celeb"]]
    joint += ["--init", tmp_path / "g", *FAST, "--steps", 2, "--out", tmp_path / "j"]
    assert run_cli(*joint, "--set", "gan_optim.n_critic=1") == 0
    assert load_state(tmp_path / "j" / "state.pt")["loaders"]["celebamask_hq"]["index"] == 2
    # Keypoint boxes need each face's own points, which shards do not hold: a clear refusal.
    boxes = [*args, "--steps", 1, "--set", "model.region_source=boxes", "--out", tmp_path / "b"]
    capsys.readouterr()
    assert run_cli(*boxes) != 0
    assert "prepared folder does not hold" in capsys.readouterr().err
    assert not (tmp_path / "b" / "model.safetensors").exists()
