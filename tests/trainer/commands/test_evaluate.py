"""`faceedit-train eval`: the command end to end on fixture datasets and tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from torch import nn

from faceedit.vocab.labels import CLASS_NAMES
from tests.trainer.evaluation_fixtures import StubInception, write_workspace
from trainer.commands.cli import main as train_main
from trainer.judges.evaluation import SUMMARY_METRICS


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> dict[str, Path]:
    return write_workspace(tmp_path_factory.mktemp("eval"), tiny_model)


def run_eval(args: list[str]) -> int:
    return train_main(["eval", *args, "--device", "cpu"])


def test_eval_command_end_to_end(
    workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    code = run_eval(
        [
            *("--checkpoint", str(workspace["checkpoint"]), "--out", str(out)),
            *("--celebamask-hq", str(workspace["celeba"]), "--folders", str(workspace["folders"])),
            *("--classifier", str(workspace["classifier"]), "--split", "test", "--limit", "4"),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    header = printed.splitlines()[0]
    for title in SUMMARY_METRICS.values():
        assert title in header
    assert "FID: not computed: no --fid-weights given" in printed
    results = json.loads((out / "evaluation.json").read_text())
    summary = results["summary"]
    assert set(summary) == set(SUMMARY_METRICS)
    assert summary["fid"] is None and "fid" in results["not_computed"]
    assert 0.0 <= summary["miou"] <= 1.0 and 0.0 <= summary["expression_accuracy"] <= 1.0
    assert results["editing"]["images"] == 4 and results["parser"]["images"] >= 1
    assert set(results["parser"]["iou"]) == set(CLASS_NAMES)
    assert results["parser"]["iou"]["hat"] is None  # the fixture has no hats: n/a
    matrix = np.load(out / "confusion_matrix.npy")
    assert matrix.shape == (19, 19) and matrix.sum() == results["parser"]["images"] * 32 * 32
    assert (out / "confusion_matrix.csv").read_text().startswith("truth \\ prediction,background")
    grid = cv2.imread(str(out / "edits.png"))
    assert grid is not None and grid.shape[1] == 3 * 32  # input, happy, sad
    assert "| mIoU" in (out / "evaluation.md").read_text()
    assert not list(out.glob(".*.tmp"))


def test_eval_command_computes_fid_with_the_given_network(
    workspace: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trainer.judges import loading

    weights = tmp_path / "pt_inception.pth"
    weights.write_bytes(b"stub")
    seen: list[Path] = []

    def fake_loader(path: Path, device: object) -> nn.Module:
        seen.append(Path(path))
        return StubInception()

    monkeypatch.setattr(loading, "load_fid_inception", fake_loader)
    out = tmp_path / "fid"
    code = run_eval(
        [
            *("--checkpoint", str(workspace["checkpoint"]), "--out", str(out)),
            *("--folders", str(workspace["folders"]), "--fid-weights", str(weights)),
        ]
    )
    assert code == 0 and seen == [weights]
    results = json.loads((out / "evaluation.json").read_text())
    assert results["summary"]["fid"] is not None and results["summary"]["fid"] >= 0
    assert results["summary"]["miou"] is None
    assert "no --celebamask-hq" in results["not_computed"]["miou"]
    assert "no --classifier" in results["not_computed"]["expression_accuracy"]


def test_eval_command_explains_what_is_missing(
    workspace: dict[str, Path],
    tiny_parser: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_eval(["--checkpoint", str(workspace["checkpoint"]), "--out", str(tmp_path)]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err
    code = run_eval(
        [
            *("--checkpoint", str(workspace["checkpoint"]), "--out", str(tmp_path)),
            *("--folders", str(workspace["folders"]), "--fid-weights", str(tmp_path / "no.pth")),
        ]
    )
    assert code == 2
    assert "downloads nothing" in capsys.readouterr().err
    parser_only = tiny_parser
    code = run_eval(
        [
            *("--checkpoint", str(parser_only), "--out", str(tmp_path / "p")),
            *("--folders", str(workspace["folders"])),
        ]
    )
    assert code == 0
    results = json.loads((tmp_path / "p" / "evaluation.json").read_text())
    assert "expression generator" in results["not_computed"]["identity_l1"]
