"""The paired ceiling: a generator trained with the true renderings, scored like the check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from faceedit.weights import checkpoint
from trainer.commands.cli import main
from trainer.research.paired_ceiling import PairedPlan, identity_stacks, train_paired


@pytest.mark.slow
def test_training_with_the_answer_lowers_the_distance_to_it(check_folder: Path) -> None:
    faces = identity_stacks(check_folder / "world", "train", 64)
    assert faces.shape[1:] == (8, 3, 64, 64)
    parser_file = check_folder / "runs" / "parser" / "parser.safetensors"
    parser_before = checkpoint.load(parser_file).parser.state_dict()
    run = train_paired(check_folder / "world", parser_file, PairedPlan(steps=40, lr=1e-3))
    assert len(run.losses) == 40
    first, last = sum(run.losses[:8]) / 8, sum(run.losses[-8:]) / 8
    assert last < 0.8 * first  # it learns from the truth (mostly: keep what does not change)
    # no --conditioning: the parser checkpoint's own (world-64's FiLM)
    assert run.model.generator.global_generator.condition_film is not None
    for name, tensor in run.model.parser.state_dict().items():  # the parser only supplies masks
        assert torch.equal(tensor, parser_before[name]), name


@pytest.mark.slow
def test_command_scores_the_model_like_the_check(check_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "ceiling"
    code = main(
        [
            "paired-ceiling",
            "--check",
            str(check_folder),
            "--out",
            str(out),
            "--steps",
            "3",
            "--identities",
            "1",
            "--threads",
            "1",
            "--lr",
            "1e-3",
            "--conditioning",
            "input",
        ]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["edits"]["edits"] == 8 * 7  # one identity, every source to every other target
    assert len(report["losses"]) == 3 and report["plan"]["steps"] == 3
    assert report["plan"]["lr"] == 1e-3 and report["plan"]["conditioning"] == "input"
    assert report["l1_ratio"] > 0 and report["machine"]["cpu_count"] >= 1
    model = checkpoint.load(out / "model.safetensors")
    assert model.generator is not None and model.config.global_generator.conditioning == "input"
    assert model.generator.global_generator.condition_film is None


def test_command_refuses_a_folder_that_is_not_a_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["paired-ceiling", "--check", str(tmp_path), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "run 'faceedit-train learning-check' first" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
