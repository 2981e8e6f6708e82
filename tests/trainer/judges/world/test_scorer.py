"""The world scorer on known answers: editors whose every figure is known (the input itself, the
truth, a one-grey-level change, a judge that always reads one expression), the footprint by
hand, and the critic-noise control computed on the same edits."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from faceedit.model.config import preset
from faceedit.model.discriminator import HierarchicalDiscriminator
from faceedit.model.unified import UnifiedModel
from faceedit.vocab.expressions import EXPRESSION_INDEX, EXPRESSIONS
from tests.trainer.judges.conftest import tiny_judge
from trainer.judges.controls import NOISE_LEVELS
from trainer.judges.world.held_out import HeldOut, load_held_out
from trainer.judges.world.scorer import (
    expression_footprint,
    score_critic_noise,
    score_edits,
    truth_moved,
)

PAIRS = 8 * 7  # one held-out identity: every source towards every other expression


@pytest.fixture(scope="module")
def held_out(tiny_world: Path) -> HeldOut:
    return load_held_out(tiny_world, 1)


def unchanged(crops: Sequence[np.ndarray], points: Sequence[np.ndarray], target: int) -> list:
    return list(crops)


class ReadsHappy:
    """A judge that reads every image as happy, with certainty."""

    def eval(self) -> ReadsHappy:
        return self

    def probabilities(self, x: Tensor) -> Tensor:
        out = torch.zeros(len(x), len(EXPRESSIONS))
        out[:, EXPRESSION_INDEX["happy"]] = 1.0
        return out


def test_the_footprint_and_the_misplaced_truth_by_hand() -> None:
    """Input black; the truth adds one white pixel at column 2 and one grey level at column 5.
    The footprint is the white pixel only; moved one pixel right, the true edit misses it and
    lights column 3 instead: two pixels wrong, each by the full range."""
    original = -torch.ones(1, 3, 2, 8)
    truth = original.clone()
    truth[0, :, 0, 2] = 1.0
    truth[0, :, 1, 5] += 1 / 127.5  # anti-aliasing noise: not part of the expression
    footprint = expression_footprint(original, truth)
    assert footprint.shape == (1, 1, 2, 8)
    assert footprint.sum() == 1 and bool(footprint[0, 0, 0, 2])
    moved = truth_moved(original, truth, footprint)
    assert bool((moved[0, :, 0, 3] == 1.0).all()) and bool((moved[0, :, 0, 2] == -1.0).all())
    wrong = ((moved - truth).abs() / 2).sum() / 3  # in [0, 1] units per channel
    assert float(wrong) == pytest.approx(2.0 + 1 / 255, abs=1e-6)


def test_the_input_itself_scores_an_l1_ratio_of_one_and_no_identity_error(
    held_out: HeldOut,
) -> None:
    scores, edits = score_edits(unchanged, tiny_judge(), held_out)
    assert scores.edits == PAIRS and len(edits) == PAIRS
    assert scores.mean_l1_input > 0
    assert scores.mean_l1_edit == pytest.approx(scores.mean_l1_input)
    assert scores.l1_ratio == pytest.approx(1.0)
    # the split adds up; an unchanged input differs from the truth only by the renderer's
    # last grey levels outside the expression's footprint
    inside, outside, moved = scores.footprint_ratios()
    assert inside + outside == pytest.approx(1.0)
    assert outside < 0.1 * inside
    assert moved > 0
    assert scores.identity_face == 0.0 and scores.identity_background == 0.0
    assert scores.face_pixels > 0 and scores.background_pixels > 0


def test_the_truth_scores_zero_and_every_edit_is_kept(held_out: HeldOut) -> None:
    ident = next(iter(held_out.table))

    def oracle(crops: Sequence[np.ndarray], points: Sequence[np.ndarray], target: int) -> list:
        return [held_out.crops[(ident, target)] for _ in crops]

    scores, edits = score_edits(oracle, tiny_judge(), held_out)
    assert scores.mean_l1_edit == 0.0 and scores.l1_ratio == 0.0
    assert set(edits) == {(ident, s, t) for s in range(8) for t in range(8) if s != t}
    assert set(scores.per_target_accuracy) == set(EXPRESSIONS)


def test_a_one_level_change_is_an_identity_error_of_one_level(held_out: HeldOut) -> None:
    def one_level(crops: Sequence[np.ndarray], points: Sequence[np.ndarray], target: int) -> list:
        return [np.where(c < 255, c + 1, c - 1).astype(np.uint8) for c in crops]

    scores, _ = score_edits(one_level, tiny_judge(), held_out)
    assert scores.identity_face == pytest.approx(1 / 255)
    assert scores.identity_background == pytest.approx(1 / 255)


def test_the_judges_verdicts_are_counted_per_target(held_out: HeldOut) -> None:
    """A judge that reads everything as happy is right on the 7 edits towards happy only."""
    judge = ReadsHappy()
    scores, _ = score_edits(unchanged, judge, held_out)  # type: ignore[arg-type]
    assert scores.judge_accuracy == pytest.approx(7 / PAIRS)
    assert scores.mean_target_probability == pytest.approx(7 / PAIRS)
    assert scores.per_target_accuracy["happy"] == 1.0
    assert sum(scores.per_target_accuracy.values()) == 1.0
    neutral_only, edits = score_edits(unchanged, judge, held_out, sources=(0,))  # type: ignore[arg-type]
    assert neutral_only.edits == 7 and len(edits) == 7
    assert neutral_only.judge_accuracy == pytest.approx(1 / 7)
    assert neutral_only.per_target_accuracy["neutral"] == 0.0  # no edit towards its source


def test_the_critic_noise_control_is_scored_on_the_same_inputs(held_out: HeldOut) -> None:
    """Noise aimed at fresh critics: every input towards every other target, within the noise
    budget, the global critic's P(target) raised; the judge reads it as edits are read."""
    config = preset("world-64")
    torch.manual_seed(0)
    model, critics = UnifiedModel(config), HierarchicalDiscriminator(config)
    control = score_critic_noise(model, critics, tiny_judge(), held_out, steps=3)
    assert control.edits.edits == PAIRS and control.steps == 3
    assert control.levels == NOISE_LEVELS
    assert control.critic_after > control.critic_before
    assert 0.0 <= control.read_as_target <= 1.0
    record = control.to_dict()
    assert record["read_as_target"] == control.edits.judge_accuracy
    # the noise stays within its budget: no pixel moves by more than NOISE_LEVELS grey levels
    assert control.edits.identity_face is not None
    assert 0 < 255 * control.edits.identity_face <= NOISE_LEVELS + 0.5
