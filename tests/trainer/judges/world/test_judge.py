"""The world judge trains with shift, colour and noise augmentation on renderings only, and its
file says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from trainer.judges import classifier
from trainer.judges.classifier import load_classifier
from trainer.judges.world.judge import (
    JUDGE_TRAINING,
    save_world_judge,
    train_world_judge,
    trained_as_now,
)


def test_the_judge_is_trained_with_shifts_colour_and_noise(
    tiny_world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert JUDGE_TRAINING.shift > 0 and JUDGE_TRAINING.colour > 0 and JUDGE_TRAINING.noise > 0
    seen: list[Any] = []
    augment = classifier.augment_batch

    def spy(images: torch.Tensor, config: Any, generator: torch.Generator) -> torch.Tensor:
        seen.append(config)
        out = augment(images, config, generator)
        assert not torch.equal(out, images)  # every batch is changed
        return out

    monkeypatch.setattr(classifier, "augment_batch", spy)
    judge = train_world_judge(tiny_world, steps=2, width=4, log=lambda _: None)
    assert len(seen) == 2
    assert {(c.shift, c.colour, c.noise) for c in seen} == {
        (JUDGE_TRAINING.shift, JUDGE_TRAINING.colour, JUDGE_TRAINING.noise)
    }
    assert judge.training.steps == 2 and len(judge.losses) == 2
    assert judge.scores.count == 8  # the held-out identity's eight renderings
    saved = load_classifier(save_world_judge(tmp_path / "judge.safetensors", judge))
    assert saved.metadata["training"]["noise"] == JUDGE_TRAINING.noise
    assert trained_as_now(saved.metadata, steps=2, seed=0)
    assert not trained_as_now(saved.metadata, steps=3, seed=0)
    assert not trained_as_now({"held_out_accuracy": 0.9}, steps=2, seed=0)  # an older judge
