"""Noise aimed at the critics (the controls' shortcut): within its budget, raising the global
critic's P(target), each image on its own whatever the batch it is in."""

from __future__ import annotations

import torch

from faceedit.model.config import preset
from faceedit.model.discriminator import HierarchicalDiscriminator
from faceedit.model.unified import UnifiedModel
from trainer.judges.controls import NOISE_LEVELS, critic_noise


def test_the_noise_raises_the_critics_target_within_its_budget_image_by_image() -> None:
    config = preset("world-64")
    torch.manual_seed(0)
    model, critics = UnifiedModel(config), HierarchicalDiscriminator(config)
    images = torch.rand(3, 3, 64, 64) * 2 - 1
    targets = torch.tensor([1, 3, 6])
    noise = critic_noise(model, critics, images, targets, steps=4)
    assert noise.images.shape == images.shape
    assert bool((noise.after > noise.before).all())
    budget = 2 * NOISE_LEVELS / 255 + 1e-6
    assert float((noise.images - images).abs().max()) <= budget
    with torch.no_grad():  # as a scorer calls it
        alone = critic_noise(model, critics, images[1:2], targets[1:2], steps=4)
    assert torch.allclose(alone.images[0], noise.images[1], atol=1e-6)
    assert torch.allclose(alone.after, noise.after[1:2], atol=1e-5)
