"""The real-face judge: trainer/judges/classifier.py's expression classifier, trained on the
prepared facial_expressions train split only, with shifts, colour jitter and noise.

`JUDGE_TRAINING` is the recipe (`faceedit-train classifier --facial-expressions DIR --size 64
--width 32 --steps 1200 --shift 4 --colour 0.3 --noise 0.1 --min-class-images 100` is the
same); `train_real_judge` trains and saves one; `teachable_accuracy` reads a judge's held-out
accuracy on the expressions the data can teach.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from faceedit.vocab.expressions import EXPRESSIONS
from trainer.data import build_expression_dataset
from trainer.data.facial_expressions import MIN_TEACHABLE, expression_counts, teachable_expressions
from trainer.judges.classifier import (
    ClassifierConfig,
    ClassifierTrainConfig,
    ExpressionClassifier,
    TrainedClassifier,
    save_classifier,
    train_classifier,
)

# 64 px and 32 base channels: what one CPU thread trains in about ten minutes (0.43 s a step).
JUDGE_SIZE: Final[int] = 64
JUDGE_WIDTH: Final[int] = 32
JUDGE_TRAINING: Final[ClassifierTrainConfig] = ClassifierTrainConfig(
    steps=1200,
    batch_size=64,
    shift=4,
    colour=0.3,
    noise=0.1,
    min_class_images=MIN_TEACHABLE,
    num_workers=0,
)


@dataclass(frozen=True)
class JudgeAccuracy:
    """Held-out accuracy over the teachable expressions' samples, and per expression."""

    teachable: tuple[str, ...]
    accuracy: float | None
    per_class: dict[str, float | None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "teachable": list(self.teachable),
            "accuracy": self.accuracy,
            "per_class": self.per_class,
        }


def teachable_accuracy(
    confusion: np.ndarray, teachable: tuple[str, ...], names: tuple[str, ...] = EXPRESSIONS
) -> JudgeAccuracy:
    """Accuracy on the held-out samples of the `teachable` expressions (rows of a confusion
    matrix: truth, columns: prediction)."""
    rows = [names.index(n) for n in teachable]
    matrix = np.asarray(confusion)
    hits = sum(int(matrix[r, r]) for r in rows)
    total = sum(int(matrix[r].sum()) for r in rows)
    per_class = {
        names[r]: (float(matrix[r, r] / matrix[r].sum()) if matrix[r].sum() else None) for r in rows
    }
    return JudgeAccuracy(teachable, hits / total if total else None, per_class)


def train_real_judge(
    prepared: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: ClassifierTrainConfig = JUDGE_TRAINING,
    size: int = JUDGE_SIZE,
    width: int = JUDGE_WIDTH,
    device: torch.device | str = "cpu",
) -> tuple[TrainedClassifier, JudgeAccuracy, Path]:
    """Train the judge on `prepared`'s train split, score it on its test split, save it."""
    train_set = build_expression_dataset("facial_expressions", prepared, "train", size)
    held_out = build_expression_dataset("facial_expressions", prepared, "test", size)
    counts = expression_counts({"train": np.asarray(train_set.targets).tolist()})["train"]
    teachable = teachable_expressions(counts, max(config.min_class_images, 1))
    model = ExpressionClassifier(ClassifierConfig(base_channels=width, image_size=size))
    trained = train_classifier(model, train_set, held_out, config, device)
    accuracy = teachable_accuracy(trained.scores.confusion, teachable)
    metadata: Mapping[str, Any] = {
        "held_out_accuracy": trained.scores.accuracy,
        "held_out_split": "test",
        "held_out_count": trained.scores.count,
        "per_class_accuracy": trained.scores.per_class,
        "teachable": accuracy.to_dict(),
        "dataset": {"kind": "facial_expressions", "root": str(prepared)},
        "training": {
            "steps": config.steps,
            "batch_size": config.batch_size,
            "shift": config.shift,
            "colour": config.colour,
            "noise": config.noise,
            "min_class_images": config.min_class_images,
        },
    }
    path = save_classifier(out, trained.model.cpu(), metadata)
    return trained, accuracy, path
