"""Does a trained GAN's objective reward the right edit? Its critics, probed with the answer.

The generator learns which expression to draw only through the critics' expression heads. On
the procedural world the right edit is known: an identity's own rendering of the target
expression. Showing the critics that truth exactly as they see an edit (the same frame, the
same region masks, those of the input) and comparing their cross-entropy towards the target
with the one they give the generator's edit answers the question directly. Where the truth
scores worse than the edit, the objective's minimum is not the expression, and more training
against those critics cannot find it.

Two frames: "rendered" (the world's images as they are, which the learning check edits) and
"landmarks" (each input aligned by its own 5 annotated points, as `data.align=landmarks`
trains; the truth is warped with the input's transform, so the pair stays pixel-aligned).

Two ways of masking, as the region critics saw fakes in training (gan_optim.critic_masks):
"input" shows the truth and the edit through the input's region masks; "own" shows each
through its own parse, as an edit that reshapes a part is judged with critic_masks "own".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from faceedit.errors import ConfigError, DatasetError
from faceedit.faces.align import align
from faceedit.model.unified import UnifiedModel
from faceedit.vocab.expressions import EXPRESSIONS
from faceedit.weights.checkpoint import LoadedCheckpoint
from trainer.config import CRITIC_MASKS
from trainer.data.common import read_image
from trainer.judges.evaluation import from_uint8_crops
from trainer.judges.world.editors import mean_conditions
from trainer.judges.world.renderings import (
    as_crop,
    held_out_identities,
    world_landmarks,
    world_valence_arousal,
)

Frame = Literal["rendered", "landmarks"]
FRAMES: tuple[Frame, ...] = ("rendered", "landmarks")
BATCH = 256


@dataclass
class Reading:
    """One critic's view of a set of images, each with its target and its source expression."""

    cross_entropy: float  # towards the target: the generator's classification loss
    target_probability: float
    source_probability: float
    accuracy: float  # argmax is the target


@dataclass
class CriticProbe:
    """Per critic ("global", then each region's): accuracy on the held-out inputs (real faces,
    their own expression), and its reading of the true target rendering and of the model's
    edit, both seen through the input's region masks ("input") or each through its own
    parse ("own")."""

    frame: str
    pairs: int
    masks: str = "input"
    real_accuracy: dict[str, float] = field(default_factory=dict)
    truth: dict[str, Reading] = field(default_factory=dict)
    edit: dict[str, Reading] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame": self.frame,
            "pairs": self.pairs,
            "masks": self.masks,
            "real_accuracy": self.real_accuracy,
            "truth": {k: vars(v) for k, v in self.truth.items()},
            "edit": {k: vars(v) for k, v in self.edit.items()},
        }


def held_out_pairs(
    world: Path, identities: int, size: int, frame: Frame
) -> tuple[Tensor, Tensor, Tensor]:
    """(inputs, truths, labels) over every (source, target) pair of every held-out identity:
    its rendering of the source expression (repeated for each target), its rendering of the
    target in the input's frame, and the (source, target) labels (P, 2)."""
    table = held_out_identities(world, identities)
    points = world_landmarks(world) if frame == "landmarks" else {}
    inputs: list[np.ndarray] = []
    truths: list[np.ndarray] = []
    labels: list[tuple[int, int]] = []
    for renders in table.values():
        images = {e: read_image(row.image) for e, row in renders.items()}
        for source in range(len(EXPRESSIONS)):
            for target in range(len(EXPRESSIONS)):
                if target == source:
                    continue
                if frame == "landmarks":
                    source_points = points.get(renders[source].image.resolve())
                    if source_points is None:
                        raise DatasetError(
                            f"{renders[source].image} has no landmarks in the world's AffectNet "
                            "lists; the landmarks frame needs them (use --frame rendered)"
                        )
                    inputs.append(align(images[source], source_points, size).crop)
                    truths.append(align(images[target], source_points, size).crop)
                else:
                    inputs.append(as_crop(images[source], size))
                    truths.append(as_crop(images[target], size))
                labels.append((source, target))
    return from_uint8_crops(inputs), from_uint8_crops(truths), torch.tensor(labels)


@torch.no_grad()
def probe_critics(
    loaded: LoadedCheckpoint,
    world: Path,
    identities: int = 24,
    frame: Frame = "rendered",
    masks: str = "input",
) -> CriticProbe:
    """Read `loaded`'s critics on held-out identities of `world` (see the module docstring)."""
    if loaded.discriminator is None or loaded.parser is None or loaded.generator is None:
        raise ConfigError(
            "the checkpoint has no critics, or no parser or generator: the probe needs all "
            "three (a gan or joint run's model.safetensors)"
        )
    if loaded.config.region_source == "boxes":
        raise ConfigError("the probe reads parser-mask models; this one edits keypoint boxes")
    if frame not in FRAMES:
        raise ConfigError(f"frame must be one of {FRAMES}, got {frame!r}")
    if masks not in CRITIC_MASKS:
        raise ConfigError(f"masks must be one of {CRITIC_MASKS}, got {masks!r}")
    own = masks == "own"
    config = loaded.config
    model = UnifiedModel(config, loaded.parser, loaded.generator).eval()
    critics = loaded.discriminator.eval()
    inputs, truths, labels = held_out_pairs(world, identities, config.crop_size, frame)
    source, target = labels[:, 0], labels[:, 1]
    va = world_valence_arousal(world)
    logits: dict[str, dict[str, list[Tensor]]] = {"real": {}, "truth": {}, "edit": {}}
    for start in range(0, len(labels), BATCH):
        part = slice(start, start + BATCH)
        input_masks = model.region_masks(inputs[part]).masks
        edit = model.generate(
            inputs[part], input_masks, mean_conditions(target[part], config, va)
        ).image.clamp(-1, 1)
        truth = truths[part]
        seen = {
            "real": critics(inputs[part], input_masks),
            "truth": critics(truth, model.region_masks(truth).masks if own else input_masks),
            "edit": critics(edit, model.region_masks(edit).masks if own else input_masks),
        }
        for kind, output in seen.items():
            heads = {
                "global": output.global_.logits,
                **{k: v.logits for k, v in output.local.items()},
            }
            for name, value in heads.items():
                logits[kind].setdefault(name, []).append(value.float())
    probe = CriticProbe(frame=frame, pairs=len(labels), masks=masks)
    for name, parts in logits["real"].items():  # the inputs: real faces in their own frame
        probe.real_accuracy[name] = float((torch.cat(parts).argmax(1) == source).float().mean())
    for kind, readings in (("truth", probe.truth), ("edit", probe.edit)):
        for name, parts in logits[kind].items():
            readings[name] = _reading(torch.cat(parts), source, target)
    return probe


def _reading(logits: Tensor, source: Tensor, target: Tensor) -> Reading:
    probabilities = logits.softmax(1)
    rows = torch.arange(len(target))
    return Reading(
        cross_entropy=float(F.cross_entropy(logits, target)),
        target_probability=float(probabilities[rows, target].mean()),
        source_probability=float(probabilities[rows, source].mean()),
        accuracy=float((logits.argmax(1) == target).float().mean()),
    )
