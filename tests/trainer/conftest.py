"""Fixtures shared by tests/trainer/stages and tests/trainer/commands."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.trainer.stage_runs import make_runs


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Datasets, a 2-step parser run and a 2-step gan run on AffectNet, made once per session
    (on one thread: tiny models train fastest so, and a busy machine is not oversubscribed)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return make_runs(tmp_path_factory.mktemp("stages"))
    finally:
        torch.set_num_threads(saved)
