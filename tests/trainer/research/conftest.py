"""A learning-check folder in miniature, shared by the research diagnostics' tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from faceedit.model.config import preset
from faceedit.model.parsing import build_parser
from faceedit.weights import checkpoint
from trainer.judges.classifier import ClassifierConfig, ExpressionClassifier, save_classifier
from trainer.world.world import WorldConfig, build_world


@pytest.fixture(scope="session")
def check_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """world/ (12 identities at 64 px), runs/parser/parser.safetensors and judge.safetensors,
    both untrained: what `faceedit-train learning-check` leaves, minus the training."""
    root = tmp_path_factory.mktemp("check")
    build_world(WorldConfig(count=12, size=64, seed=3), root / "world")
    config = preset("world-64")
    torch.manual_seed(0)
    parser_dir = root / "runs" / "parser"
    parser_dir.mkdir(parents=True)
    checkpoint.save(parser_dir / "parser.safetensors", config, parser=build_parser(config.parser))
    judge = ExpressionClassifier(ClassifierConfig(base_channels=4, image_size=64))
    save_classifier(root / "judge.safetensors", judge, {"held_out_accuracy": 0.0})
    return root
