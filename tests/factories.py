"""Build small real checkpoints inside the tests: tiny networks trained for a few steps.

Nobody has trained weights here, so every test that needs a model makes one: a few optimiser
steps on synthetic faces move every network away from its initialisation, which is enough to
exercise loading, inference and the app end to end.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from faceedit.errors import InputError
from faceedit.faces.align import template_landmarks
from faceedit.faces.detect import Face
from faceedit.media import bundled
from faceedit.model.config import ModelConfig, preset
from faceedit.model.discriminator import HierarchicalDiscriminator
from faceedit.model.unified import UnifiedModel
from faceedit.weights import checkpoint


def synthetic_faces(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    """(B, 3, S, S) in [-1, 1]: a skin-coloured ellipse with dark eyes and a red mouth on noise."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    face = ((xx / 0.7) ** 2 + (yy / 0.9) ** 2 < 1).float()
    eyes = (((xx.abs() - 0.35) / 0.12) ** 2 + ((yy + 0.2) / 0.07) ** 2 < 1).float()
    mouth = ((xx / 0.3) ** 2 + ((yy - 0.45) / 0.08) ** 2 < 1).float()
    base = (
        torch.stack([0.6 * face, 0.3 * face, 0.1 * face])
        - 0.3 * eyes
        + torch.tensor([0.5, -0.4, -0.4])[:, None, None] * mouth
    )
    noise = 0.1 * torch.randn(batch, 3, size, size, generator=gen)
    return (base[None] + noise).clamp(-1, 1)


def train_briefly(
    config: ModelConfig, steps: int = 3, seed: int = 0
) -> tuple[UnifiedModel, HierarchicalDiscriminator]:
    """A unified model and discriminator after `steps` Adam steps of a reconstruction objective."""
    torch.manual_seed(seed)
    model = UnifiedModel(config)
    disc = HierarchicalDiscriminator(config)
    params = list(model.parameters()) + list(disc.parameters())
    optimiser = torch.optim.Adam(params, lr=1e-3)
    for step in range(steps):
        x = synthetic_faces(2, config.crop_size, seed + step)
        cond = torch.eye(config.condition_dim)[torch.tensor([1, 3])]
        landmarks = None
        if config.region_source == "boxes":
            landmarks = (
                torch.from_numpy(template_landmarks(config.crop_size)).float().expand(2, 5, 2)
            )
        out = model(x, cond, landmarks=landmarks)
        d_out = disc(out.image, out.region_masks)
        loss = (
            (out.image - x).abs().mean() + d_out.global_.logits.pow(2).mean() + out.attention.mean()
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval(), disc.eval()


def make_checkpoint(
    path: Path,
    config: ModelConfig | None = None,
    parts: tuple[str, ...] = ("parser", "generator", "discriminator"),
    steps: int = 3,
    metadata: dict[str, object] | None = None,
) -> Path:
    """Write a checkpoint holding `parts` of a briefly trained tiny model (`metadata` is added
    to its own)."""
    config = config or preset("tiny")
    model, disc = train_briefly(config, steps)
    modules = {"parser": model.parser, "generator": model.generator, "discriminator": disc}
    return checkpoint.save(
        path,
        config,
        **{p: modules[p] for p in parts},
        metadata={"trained_steps": steps, **(metadata or {})},
    )


def world_photo(size: int = 1024, index: int = 3) -> tuple[np.ndarray, Face]:
    """A procedural face rendered at `size` px (trainer.world; the product never imports it)
    and its Face, whose five landmarks come from the rendering's 68: a high-resolution photo
    with known landmarks, so tests at 1024 px need no detector."""
    from trainer.world.render import IdentityRenderer
    from trainer.world.world import identity_of

    rendering = IdentityRenderer(identity_of(0, index), size).render({})
    points = rendering.landmarks
    five = np.array(
        [points[36:42].mean(0), points[42:48].mean(0), points[30], points[48], points[54]]
    )
    box = np.array([*points.min(axis=0), *points.max(axis=0)])
    return rendering.image, Face(box=box, score=1.0, landmarks=five)


def demo_at_crop(crop_size: int) -> checkpoint.LoadedCheckpoint:
    """The bundled demo model (world-64) with its crop size changed: every network is
    convolutional, so it runs at 128 or 256 px, with a trained parser's soft masks and trained
    attention maps (its edits there are not what it learnt, which paste-back tests need not)."""
    loaded = checkpoint.load(bundled.bundled_path("demo"), device="cpu")
    return dataclasses.replace(loaded, config=loaded.config.replace(crop_size=crop_size))


def use_bundled(monkeypatch: pytest.MonkeyPatch, **files: Path) -> None:
    """Point the whole product's bundled models at stand-ins (word=file, e.g. demo=path)
    through faceedit.media.bundled.bundled_path, the one function that locates them; the
    bundled models not given are missing, whatever faceedit/assets/ holds."""

    def located(word: str) -> Path:
        model = bundled.bundled_model(word)
        if model.word not in files:
            raise InputError(f"the {model.label} is missing (this test has no stand-in for it)")
        return files[model.word]

    monkeypatch.setattr(bundled, "bundled_path", located)
