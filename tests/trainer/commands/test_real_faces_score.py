"""`faceedit-train real-faces-score`: its flags reach the library function, and the report
lands in --out (the scoring itself: tests/trainer/judges/real/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trainer.commands import real_faces_score
from trainer.commands.cli import main as train_main
from trainer.judges.real.scorer import (
    EditorScores,
    FoundScores,
    LockScores,
    RealFaceReport,
    TargetScores,
)


def _empty_scores(name: str) -> EditorScores:
    target = {t: TargetScores(t, 0, None, None, {}) for t in ("happy", "surprised")}
    lock = LockScores("happy", ("mouth",), target["happy"], 0, 0, None, None, 0, None, 0)
    return EditorScores(name, 0, target, lock, None, None, None, None, None, None, 0)


def test_flags_reach_the_scorer_and_the_report_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, Any] = {}

    def fake_score(*args: Any, **kwargs: Any) -> RealFaceReport:
        seen["args"], seen["kwargs"] = args, kwargs
        judge = {
            "path": "j",
            "image_size": 64,
            "test_accuracy": None,
            "test_count": 0,
            "teachable": {"teachable": [], "accuracy": None, "per_class": {}},
        }
        return RealFaceReport(
            "ck", judge, (), {}, (_empty_scores("product"),), None, FoundScores(0, 0)
        )

    monkeypatch.setattr(real_faces_score, "score_real_faces", fake_score)
    out = tmp_path / "report"
    code = train_main(
        [
            *("real-faces-score", "--checkpoint", "ck.safetensors", "--data", "fe"),
            *("--prepared", "fe128", "--judge", "j.safetensors", "--out", str(out)),
            *("--limit", "5", "--colour-limit", "0", "--no-controls"),
        ]
    )
    assert code == 0
    assert [str(a) for a in seen["args"]] == ["ck.safetensors", "fe", "fe128", "j.safetensors"]
    assert seen["kwargs"]["limit"] == 5 and seen["kwargs"]["colour_limit"] is None
    assert seen["kwargs"]["controls"] is False
    assert (out / "report.json").is_file() and (out / "report.md").is_file()
    assert "n/a  happy=1: read as happy" in capsys.readouterr().out
