"""The judge's accuracy on the expressions the data can teach."""

from __future__ import annotations

import numpy as np
import pytest

from faceedit.vocab.expressions import EXPRESSIONS
from trainer.judges.real.judge import JUDGE_TRAINING, teachable_accuracy


def test_teachable_accuracy_counts_only_the_teachable_rows() -> None:
    confusion = np.zeros((len(EXPRESSIONS), len(EXPRESSIONS)), np.int64)
    neutral, happy, fearful = (EXPRESSIONS.index(n) for n in ("neutral", "happy", "fearful"))
    confusion[neutral, neutral], confusion[neutral, happy] = 6, 2  # 6 of 8
    confusion[happy, happy] = 2  # 2 of 2
    confusion[fearful, neutral] = 5  # not teachable: left out
    result = teachable_accuracy(confusion, ("neutral", "happy"))
    assert result.accuracy == pytest.approx(8 / 10)
    assert result.per_class == pytest.approx({"neutral": 0.75, "happy": 1.0})


def test_the_recipe_augments_against_shifts_colour_and_speckle() -> None:
    assert JUDGE_TRAINING.shift > 0 and JUDGE_TRAINING.colour > 0 and JUDGE_TRAINING.noise > 0
    assert JUDGE_TRAINING.flip and JUDGE_TRAINING.min_class_images > 0
