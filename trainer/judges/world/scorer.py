"""The world scorer: edits of held-out identities against the world's ground truth.

`score_edits` edits each identity's rendering of each source expression towards every other
expression and reads the edit with the judge (judged as target), against the identity's true
rendering of the target (L1, split by the expression's footprint) and against the input over
fixed pixels (identity error, held_out.py). `score_critic_noise` scores the control the same
way, `score_locality` the region lock and the change outside the face. The learning check and
the comparisons both score through these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import cv2
import numpy as np
import torch
from torch import Tensor

from faceedit.faces.align import REGION_LEVEL
from faceedit.inference.engine import EditEngine
from faceedit.model.discriminator import HierarchicalDiscriminator
from faceedit.model.unified import UnifiedModel
from faceedit.vocab.expressions import EXPRESSIONS
from faceedit.vocab.labels import CLASS_INDEX, region_classes
from trainer.judges.classifier import ExpressionClassifier
from trainer.judges.controls import NOISE_LEVELS, NOISE_STEPS
from trainer.judges.evaluation import from_uint8_crops
from trainer.judges.world.editors import (
    EDIT_BATCH,
    CriticNoiseEditor,
    EditFunction,
    as_pair,
    shown_crop,
)
from trainer.judges.world.held_out import ALL_SOURCES, OUTSIDE_FACE, HeldOut, PairKey
from trainer.judges.world.scores import CriticNoiseScores, EditScores, LocalityScores

# More than two grey levels in some channel: the renderer's anti-aliasing and noise stay out.
_FOOTPRINT_LEVELS: Final[float] = 2.5 / 127.5


def expression_footprint(original: Tensor, truth: Tensor) -> Tensor:
    """(B, 1, S, S) bool: where the input and the truth of the target differ, images in
    [-1, 1]; the pixels an edit must redraw."""
    return (original - truth).abs().amax(1, keepdim=True) > _FOOTPRINT_LEVELS


def truth_moved(original: Tensor, truth: Tensor, footprint: Tensor) -> Tensor:
    """The true edit misplaced by one pixel to the right: the truth's changed pixels moved over
    the input. How the L1 ratio scores a perfect expression drawn one pixel off."""
    moved = torch.roll(footprint, 1, dims=3)
    return torch.where(moved, torch.roll(truth, 1, dims=3), original)


def _summed_mean_l1(a: Tensor, b: Tensor, where: Tensor | None = None) -> float:
    """Sum over the batch of each image's mean |a - b| in [0, 1] units (zero outside `where`)."""
    difference = (a - b).abs() / 2
    if where is not None:
        difference = difference * where
    return float(difference.flatten(1).mean(1).sum())


@dataclass
class _EditTally:
    """Running sums of score_edits, in the order they are added (the figures depend on it)."""

    edits: int = 0
    hits: int = 0
    target_probability: float = 0.0
    l1_edit: float = 0.0
    l1_input: float = 0.0
    l1_in_footprint: float = 0.0
    l1_off_footprint: float = 0.0
    l1_truth_moved: float = 0.0
    face: float = 0.0
    background: float = 0.0
    face_pixels: int = 0
    background_pixels: int = 0
    per_target: dict[str, list[int]] = field(
        default_factory=lambda: {name: [0, 0] for name in EXPRESSIONS}
    )

    def scores(self) -> EditScores:
        n = max(self.edits, 1)
        return EditScores(
            edits=self.edits,
            judge_accuracy=self.hits / n,
            mean_target_probability=self.target_probability / n,
            mean_l1_edit=self.l1_edit / n,
            mean_l1_input=self.l1_input / n,
            mean_l1_edit_in_footprint=self.l1_in_footprint / n,
            mean_l1_edit_off_footprint=self.l1_off_footprint / n,
            mean_l1_truth_moved=self.l1_truth_moved / n,
            per_target_accuracy={
                name: hits / max(count, 1) for name, (hits, count) in self.per_target.items()
            },
            identity_face=self.face / self.face_pixels if self.face_pixels else None,
            identity_background=(
                self.background / self.background_pixels if self.background_pixels else None
            ),
            face_pixels=self.face_pixels,
            background_pixels=self.background_pixels,
        )


@torch.no_grad()
def score_edits(
    edit: EditFunction,
    judge: ExpressionClassifier,
    held_out: HeldOut,
    sources: Sequence[int] = ALL_SOURCES,
) -> tuple[EditScores, dict[PairKey, np.ndarray]]:
    """Edit each held-out identity's rendering of each of `sources` towards every other
    expression, and score the edits. Returns the scores and the edits keyed (identity, source,
    target), for the image grid."""
    judge.eval()
    tally = _EditTally()
    edits: dict[PairKey, np.ndarray] = {}
    for target in range(len(EXPRESSIONS)):
        keys = held_out.pairs(target, sources)
        if not keys:
            continue
        inputs = [held_out.crops[k] for k in keys]
        outputs = edit(inputs, [held_out.points[k] for k in keys], target)
        truth = from_uint8_crops([held_out.crops[(ident, target)] for ident, _ in keys])
        edited = from_uint8_crops(outputs)
        original = from_uint8_crops(inputs)
        probs = judge.probabilities(edited)
        hits = int((probs.argmax(1) == target).sum())
        tally.edits += len(keys)
        tally.hits += hits
        tally.target_probability += float(probs[:, target].sum())
        footprint = expression_footprint(original, truth)
        tally.l1_edit += _summed_mean_l1(edited, truth)
        tally.l1_input += _summed_mean_l1(original, truth)
        tally.l1_in_footprint += _summed_mean_l1(edited, truth, footprint)
        tally.l1_off_footprint += _summed_mean_l1(edited, truth, ~footprint)
        tally.l1_truth_moved += _summed_mean_l1(truth_moved(original, truth, footprint), truth)
        counts = tally.per_target[EXPRESSIONS[target]]
        counts[0] += hits
        counts[1] += len(keys)
        for (ident, source), out, before in zip(keys, outputs, inputs, strict=True):
            face, background = held_out.identity_pixels[(ident, source, target)]
            change = np.abs(out.astype(np.int16) - before).mean(2) / 255
            tally.face += float(change[face].sum())
            tally.background += float(change[background].sum())
            tally.face_pixels += int(face.sum())
            tally.background_pixels += int(background.sum())
            edits[(ident, source, target)] = out
    return tally.scores(), edits


def score_critic_noise(
    model: UnifiedModel,
    critics: HierarchicalDiscriminator,
    judge: ExpressionClassifier,
    held_out: HeldOut,
    levels: float = NOISE_LEVELS,
    steps: int = NOISE_STEPS,
) -> CriticNoiseScores:
    """The control (trainer.judges.controls): every input of score_edits with noise aimed at
    the model's own critics towards each target, read by the judge as edits are."""
    control = CriticNoiseEditor(model, critics, levels, steps)
    scores, _ = score_edits(control, judge, held_out)
    return CriticNoiseScores(
        edits=scores,
        critic_before=float(np.mean(control.before)),
        critic_after=float(np.mean(control.after)),
        levels=levels,
        steps=steps,
    )


def score_locality(
    engine: EditEngine,
    crops: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    allowed: Sequence[str],
    valence_arousal: Sequence[tuple[float, float]],
    band: int = 2,
) -> LocalityScores:
    """Edit every crop towards every expression twice: region-locked to `allowed` (pixels of
    the other classes must not change at all) and unlocked (pixels outside the face should
    barely change), as the app shows them. `labels` are the ground-truth (S, S) class maps of
    the crops."""
    allowed_classes = [c for group in region_classes(tuple(allowed)) for c in group]
    outside_classes = [CLASS_INDEX[name] for name in OUTSIDE_FACE]
    kernel = np.ones((2 * band + 1, 2 * band + 1), np.uint8)
    masks = []
    for label in labels:
        inside = np.isin(label, allowed_classes)
        grown = cv2.dilate(inside.astype(np.uint8), kernel).astype(bool)
        masks.append((~inside, ~grown, np.isin(label, outside_classes)))
    tally = _LocalityTally()
    for target, name in enumerate(EXPRESSIONS):
        va = as_pair(valence_arousal[target])
        for start in range(0, len(crops), EDIT_BATCH):
            batch = list(crops[start : start + EDIT_BATCH])
            locked = engine.edit_batch(
                batch, {name: 1.0}, editable_regions=list(allowed), valence_arousal=va
            )
            free = engine.edit_batch(batch, {name: 1.0}, valence_arousal=va)
            for k, (crop, lock_out, free_out) in enumerate(zip(batch, locked, free, strict=True)):
                outside, beyond, not_face = masks[start + k]
                assert lock_out.lock is not None  # a locked edit reports its lock
                changed = (shown_crop(crop, lock_out) != crop).any(axis=2)
                off_parse = lock_out.lock < REGION_LEVEL
                tally.locked += int(outside.sum())
                tally.changed += int((changed & outside).sum())
                tally.band += int(beyond.sum())
                tally.band_changed += int((changed & beyond).sum())
                tally.parse += int(off_parse.sum())
                tally.parse_changed += int((changed & off_parse).sum())
                changed_raw = (lock_out.crop != crop).any(axis=2)
                tally.changed_raw += int((changed_raw & outside).sum())
                tally.outside += int(not_face.sum())
                tally.outside_change += _mean_change(shown_crop(crop, free_out), crop, not_face)
                tally.outside_change_raw += _mean_change(free_out.crop, crop, not_face)
    pixels = max(tally.outside, 1)
    return LocalityScores(
        allowed=tuple(allowed),
        band=band,
        locked_pixels=tally.locked,
        locked_changed=tally.changed,
        locked_band_pixels=tally.band,
        locked_band_changed=tally.band_changed,
        locked_parse_pixels=tally.parse,
        locked_parse_changed=tally.parse_changed,
        locked_changed_raw=tally.changed_raw,
        outside_pixels=tally.outside,
        outside_mean_change=tally.outside_change / pixels,
        outside_mean_change_raw=tally.outside_change_raw / pixels,
    )


@dataclass
class _LocalityTally:
    """Running counts of score_locality (LocalityScores names what each one is)."""

    locked: int = 0
    changed: int = 0
    band: int = 0
    band_changed: int = 0
    parse: int = 0
    parse_changed: int = 0
    changed_raw: int = 0
    outside: int = 0
    outside_change: float = 0.0
    outside_change_raw: float = 0.0


def _mean_change(edited: np.ndarray, crop: np.ndarray, where: np.ndarray) -> float:
    """Summed (over `where`) mean absolute change over the channels, in [0, 1] units."""
    diff = np.abs(edited.astype(np.int16) - crop.astype(np.int16)).mean(2)
    return float(diff[where].sum()) / 255.0
