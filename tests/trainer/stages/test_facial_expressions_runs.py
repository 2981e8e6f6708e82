"""All three stages train from one prepared facial_expressions folder: the parser on its landmark
label maps (255 ignored), the gan and joint stages on its expressions, the joint stage's parser
supervision on its label maps again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from faceedit.weights import checkpoint
from tests.trainer.data.test_facial_expressions import EXTRA_ROWS, FakePredictor
from tests.trainer.fixtures import facial_expressions_photos, write_facial_expressions
from tests.trainer.stage_runs import FAST
from tests.trainer.stages.test_stages import one_thread  # noqa: F401 (an autouse fixture)
from trainer.commands.cli import main
from trainer.data import dlib_landmarks
from trainer.judges.learning.figures import read_scalars
from trainer.stages.state import load_state


def run_cli(*argv: Any) -> int:
    return main([str(a) for a in argv])


@pytest.mark.slow
def test_every_stage_trains_from_one_prepared_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dlib_landmarks, "available", lambda: True)
    monkeypatch.setattr(dlib_landmarks, "shared_predictor", FakePredictor)
    write_facial_expressions(tmp_path / "fe", facial_expressions_photos(), EXTRA_ROWS)
    prepared = tmp_path / "fe32"
    assert run_cli("prepare", "--facial-expressions", tmp_path / "fe", "--out", prepared,
                   "--size", 32, "--workers", 0, "--splits", "train") == 0  # fmt: skip

    assert run_cli("parser", "--facial-expressions", prepared, *FAST, "--steps", 2,
                   "--out", tmp_path / "p") == 0  # fmt: skip
    assert checkpoint.load(tmp_path / "p" / "parser.safetensors").parser is not None

    gan = ["gan", "--facial-expressions", prepared, "--parser", tmp_path / "p", *FAST]
    assert (
        run_cli(*gan, "--steps", 2, "--set", "gan_optim.n_critic=1", "--out", tmp_path / "g") == 0
    )
    assert checkpoint.load(tmp_path / "g" / "model.safetensors").generator is not None
    # Same-person pairs read the folder's file names and label maps (trainer/data/pairs.py).
    paired = ["--set", "gan_optim.n_critic=1", "--set", "loss.paired=10", "--out", tmp_path / "gp"]
    assert run_cli(*gan, "--steps", 2, *paired) == 0
    assert "g/paired" in read_scalars(tmp_path / "gp" / "tensorboard")

    joint = ["joint", "--facial-expressions", prepared, "--init", tmp_path / "g", *FAST]
    assert (
        run_cli(*joint, "--steps", 2, "--set", "gan_optim.n_critic=1", "--out", tmp_path / "j") == 0
    )
    state = load_state(tmp_path / "j" / "state.pt")
    assert state["config"]["data"]["facial_expressions"] == str(prepared)
    assert "celebamask_hq" in state["loaders"]  # the parser was supervised by its label maps
