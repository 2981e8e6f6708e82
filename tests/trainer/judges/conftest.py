"""A tiny procedural world and a tiny judge, shared by the world scorer's, the comparisons' and
the learning check's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainer.judges.classifier import ClassifierConfig, ExpressionClassifier
from trainer.world.world import WorldConfig, build_world

SIZE = 64


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10-identity world at 64 px (8 train, 1 val, 1 test identities)."""
    out = tmp_path_factory.mktemp("world") / "w"
    build_world(WorldConfig(count=10, size=SIZE, seed=3), out)
    return out


def tiny_judge() -> ExpressionClassifier:
    """An untrained judge 4 channels wide: its verdicts are arbitrary but fixed."""
    torch.manual_seed(0)
    return ExpressionClassifier(ClassifierConfig(base_channels=4, image_size=SIZE)).eval()
