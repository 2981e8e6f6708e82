"""What the world scorer edits with: the app's engine, as the app shows an edit or as the
generator draws it, and the critic-noise control. An editor takes held-out crops, their 5
alignment points and a target expression index, and returns one uint8 crop per input."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import torch
from torch import Tensor

from faceedit.errors import ConfigError
from faceedit.faces.align import align, paste_back, whole_image_face
from faceedit.inference.engine import EditEngine
from faceedit.inference.outputs import EditResult
from faceedit.model.config import ModelConfig
from faceedit.model.discriminator import HierarchicalDiscriminator
from faceedit.model.unified import UnifiedModel
from faceedit.vocab.expressions import EXPRESSIONS
from trainer.judges.controls import NOISE_LEVELS, NOISE_STEPS, critic_noise
from trainer.judges.evaluation import from_uint8_crops, to_uint8_crops
from trainer.stages.steps import condition

EDIT_BATCH: Final[int] = 32

# (crops (S, S, 3) uint8, their (5, 2) alignment points, target index) -> edited crops
EditFunction = Callable[[Sequence[np.ndarray], Sequence[np.ndarray], int], list[np.ndarray]]


def shown_crop(crop: np.ndarray, result: EditResult) -> np.ndarray:
    """What the app shows for an aligned face crop: the edit's change pasted back onto the
    crop as the pipeline's `--aligned` path does (faceedit.faces.align.paste_back), weighted by
    where the model edits (`result.weight`: the attention's leak is dropped) and, under a
    region lock, gated by the locked regions' footprint (`result.lock`)."""
    alignment = align(crop, whole_image_face(crop.shape), size=result.crop.shape[0])
    return paste_back(
        crop, alignment, result.crop, crop_mask=result.weight, region_mask=result.lock
    )


def engine_editor(
    engine: EditEngine, valence_arousal: Sequence[tuple[float, float]], shown: bool = True
) -> EditFunction:
    """Edit crops towards the target with the engine, uint8 out: what the app shows
    (`shown_crop`), or with `shown=False` the generator's own crop, before paste-back.

    `valence_arousal` per expression: models trained on AffectNet-style data take valence and
    arousal in their condition; the world's mean for the target expression is what they saw.
    The landmarks reach keypoint-box models only (EditEngine.edit_batch).
    """

    def edit(
        crops: Sequence[np.ndarray], points: Sequence[np.ndarray], target: int
    ) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for start in range(0, len(crops), EDIT_BATCH):
            batch = list(crops[start : start + EDIT_BATCH])
            results = engine.edit_batch(
                batch,
                {EXPRESSIONS[target]: 1.0},
                valence_arousal=as_pair(valence_arousal[target]),
                landmarks=list(points[start : start + EDIT_BATCH]),
            )
            out += [
                shown_crop(crop, r) if shown else r.crop
                for crop, r in zip(batch, results, strict=True)
            ]
        return out

    return edit


@dataclass
class CriticNoiseEditor:
    """The control as an editor: each crop plus the noise aimed at the model's own critics
    (trainer.judges.controls.critic_noise), no expression drawn. Keeps the global critic's
    P(target) before and after for every crop it returns."""

    model: UnifiedModel
    critics: HierarchicalDiscriminator
    levels: float = NOISE_LEVELS
    steps: int = NOISE_STEPS
    before: list[float] = field(default_factory=list)
    after: list[float] = field(default_factory=list)

    def __call__(
        self, crops: Sequence[np.ndarray], points: Sequence[np.ndarray], target: int
    ) -> list[np.ndarray]:
        size = self.model.config.crop_size
        if any(crop.shape[:2] != (size, size) for crop in crops):
            raise ConfigError(f"the critic-noise control edits crops at the model's {size} px")
        out: list[np.ndarray] = []
        for start in range(0, len(crops), EDIT_BATCH):
            images = from_uint8_crops(crops[start : start + EDIT_BATCH])
            targets = torch.full((len(images),), target, dtype=torch.long)
            noise = critic_noise(self.model, self.critics, images, targets, self.levels, self.steps)
            self.before += noise.before.tolist()
            self.after += noise.after.tolist()
            out += to_uint8_crops(noise.images)
        return out


def mean_conditions(
    targets: Tensor, config: ModelConfig, valence_arousal: Sequence[tuple[float, float]]
) -> Tensor:
    """(B, C) conditions towards `targets`: one-hot, plus each expression's mean valence and
    arousal (world_valence_arousal) if the model takes them, as the engine gets them here."""
    va = torch.tensor([valence_arousal[int(t)] for t in targets], dtype=torch.float32)
    return condition(targets, va, config)


def as_pair(values: Sequence[float]) -> tuple[float, float]:
    """(valence, arousal) as the engine takes it."""
    valence, arousal = values
    return float(valence), float(arousal)
