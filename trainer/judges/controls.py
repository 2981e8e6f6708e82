"""Controls: what a judge must not be fooled by, for the real-face scorer and the learning check.

A generator trained against critics can raise their P(target) with a faint per-image pattern
instead of drawing the expression. `critic_noise` is that shortcut made on purpose: noise of at
most NOISE_LEVELS grey levels, NOISE_STEPS steps of projected signed-gradient ascent on the
global critic's log P(target) (its expression head; the image seen with its parse's region
masks, as in training). A judge that reads such noise as the target more than CONTROL_MAX_READ
of the time measures the critics, not a drawn expression.

The global head is the one to aim at: on the demo model, 8 levels and 20 steps raise its
P(target) from 0.14 to 0.96 (5 real test photos, happy and surprised), while the mean log P of
all heads, region critics included, only moved their geometric mean from 0.04 to 0.10.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import torch
import torch.nn.functional as F
from torch import Tensor

from faceedit.model.discriminator import HierarchicalDiscriminator
from faceedit.model.unified import UnifiedModel

CONTROL_MAX_READ: Final[float] = 0.25  # a control read as the target more often fools the judge
NOISE_LEVELS: Final[float] = 8.0
NOISE_STEPS: Final[int] = 20


@dataclass(frozen=True)
class CriticNoise:
    """Images with critic-aimed noise, and the global critic's P(target) before and after."""

    images: Tensor  # (B, 3, S, S) in [-1, 1]
    before: Tensor  # (B,)
    after: Tensor  # (B,)


def critic_noise(
    model: UnifiedModel,
    critics: HierarchicalDiscriminator,
    images: Tensor,
    targets: Tensor,
    levels: float = NOISE_LEVELS,
    steps: int = NOISE_STEPS,
) -> CriticNoise:
    """Add to `images` (B, 3, S, S) in [-1, 1], at the model's crop size, the noise of at most
    `levels` grey levels that raises the global critic's log P(`targets`) (B,) most, found in
    `steps` signed-gradient steps of levels / 4 each. The critics see each image with its own
    parse's region masks; images are independent (the critics run in eval mode)."""
    model.eval()
    critics.eval()
    with torch.no_grad():
        masks = model.region_masks(images).masks
    epsilon = 2 * levels / 255
    delta = torch.zeros_like(images, requires_grad=True)
    with torch.enable_grad():  # also where a scorer runs without gradients
        for _ in range(steps):
            objective = _log_probability(critics, (images + delta).clamp(-1, 1), masks, targets)
            (grad,) = torch.autograd.grad(objective.sum(), delta)
            with torch.no_grad():
                delta += (epsilon / 4) * grad.sign()
                delta.clamp_(-epsilon, epsilon)
    noisy = (images + delta.detach()).clamp(-1, 1)
    with torch.no_grad():
        before = _log_probability(critics, images, masks, targets).exp()
        after = _log_probability(critics, noisy, masks, targets).exp()
    return CriticNoise(noisy, before, after)


def _log_probability(
    critics: HierarchicalDiscriminator, x: Tensor, masks: Tensor, targets: Tensor
) -> Tensor:
    """(B,) the global critic's log P(target) of each image."""
    logits = critics(x, masks).global_.logits
    return F.log_softmax(logits.float(), 1).gather(1, targets[:, None])[:, 0]
