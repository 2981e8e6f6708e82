"""`faceedit-train parser|gan|joint` on the command line: help, config resolution, clear errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import yaml

from tests.trainer.stage_runs import FAST, train
from trainer.commands.cli import main
from trainer.config import TrainConfig


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """A run in these tests trains a tiny model: fastest on one thread, and a busy CI machine is
    not oversubscribed."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.mark.parametrize("stage", ["parser", "gan", "joint"])
def test_help_explains_every_flag(stage: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([stage, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--out",
        "--resume",
        "--preset",
        "--set",
        "--config",
        "--steps",
        "--batch-size",
        "--device",
        "--num-workers",
        "--seed",
        "--checkpoint-every",
        "--log-every",
    ):
        assert flag in text
    expected = {
        "parser": ["--celebamask-hq"],
        "gan": ["--affectnet", "--rafd", "--folders", "--parser"],
        "joint": ["--init", "--celebamask-hq", "--affectnet"],
    }[stage]
    assert all(flag in text for flag in expected)


def test_a_missing_dataset_root_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = train(
        "parser", "--celebamask-hq", tmp_path / "nowhere", *FAST, "--out", tmp_path / "run"
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "--celebamask-hq" in err and "no such folder" in err and "Traceback" not in err


def test_an_empty_dataset_root_names_what_was_expected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    code = train(
        "gan",
        "--rafd",
        tmp_path / "empty",
        *FAST,
        "--set",
        "model.region_source=boxes",
        "--out",
        tmp_path / "run",
    )
    err = capsys.readouterr().err
    assert code == 2 and "RaFD" in err and "Traceback" not in err


def test_a_bad_crop_alignment_is_a_clear_error(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = train(
        "gan",
        "--rafd",
        runs["rafd"],
        *FAST,
        "--set",
        "model.region_source=boxes",
        "--set",
        "data.align=sideways",
        "--out",
        tmp_path / "run",
    )
    err = capsys.readouterr().err
    assert code == 2 and "sideways" in err and "Traceback" not in err


def test_gan_without_a_parser_says_how_to_get_one(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = train("gan", "--rafd", runs["rafd"], *FAST, "--out", tmp_path / "run")
    assert code == 2 and "--parser" in capsys.readouterr().err


def test_an_existing_run_is_never_overwritten(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = train("parser", "--celebamask-hq", runs["celeb"], *FAST, "--out", runs["parser_run"])
    assert code == 2 and "--resume" in capsys.readouterr().err


def test_a_config_file_and_flags_combine_with_set_winning(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    config_file = tmp_path / "cfg.yaml"
    config_file.write_text("preset: tiny\nsteps: 5\nseed: 7\nloss:\n  parser_loss_weight: 0.5\n")
    out = tmp_path / "run"
    code = train(
        "parser",
        "--celebamask-hq",
        runs["celeb"],
        "--config",
        config_file,
        "--batch-size",
        "4",
        "--num-workers",
        "0",
        "--steps",
        "1",
        "--set",
        "seed=9",
        "--out",
        out,
    )
    assert code == 0
    saved = TrainConfig.from_dict(yaml.safe_load((out / "config.yaml").read_text()))
    assert (saved.preset, saved.steps, saved.seed, saved.loss.parser_loss_weight) == (
        "tiny",
        1,
        9,
        0.5,
    )
