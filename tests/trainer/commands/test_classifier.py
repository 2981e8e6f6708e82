"""`faceedit-train classifier`: trains on expression folders and writes its held-out accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.trainer.fixtures import write_folders
from trainer.commands.cli import main as train_main
from trainer.judges.classifier import load_classifier


def test_command_trains_on_folders_and_saves_accuracy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "faces"
    write_folders(
        root,
        {"train": {"happy": 6, "sad": 6}, "test": {"happy": 3, "sad": 3}},
        size=32,
    )
    out = tmp_path / "judge.safetensors"
    code = train_main(
        [
            *("classifier", "--folders", str(root), "--out", str(out), "--size", "32"),
            *("--width", "8", "--steps", "3", "--batch-size", "4", "--num-workers", "0"),
            *("--device", "cpu"),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "held-out accuracy (test, 6 images)" in printed
    loaded = load_classifier(out)
    assert loaded.metadata["held_out_split"] == "test"
    assert loaded.metadata["dataset"]["kind"] == "folders"
    assert 0.0 <= loaded.held_out_accuracy <= 1.0  # type: ignore[operator]  # not None here
    assert json.dumps(loaded.metadata)  # plain JSON all the way down


def test_command_reports_a_wrong_output_suffix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_folders(tmp_path / "f", {"happy": 3, "sad": 3}, size=32)
    code = train_main(
        ["classifier", "--folders", str(tmp_path / "f"), "--out", str(tmp_path / "x.pth")]
    )
    assert code == 2
    assert ".safetensors" in capsys.readouterr().err
