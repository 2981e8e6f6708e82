"""Where a fresh GAN starts: editors that keep most of each pixel, critics that know expressions.

A GANimation editor returns A * input + (1 - A) * colour. Freshly initialised, its attention
head outputs about 0, so A is about 0.5 everywhere: the first edits repaint the whole crop with
random colour, and the critics, the cycle loss and the attention losses spend the start of the
run undoing that, everywhere, before any expression is learned. Setting the head's bias to
logit(p) starts every editor close to the identity (A = p) instead, so training only has to
open the attention where the expression needs it. The colour head and every weight are left
as initialised; a run that loads generator weights is not touched.

The generator learns an expression only through the critics' expression heads (its
classification loss). A fresh critic's head knows nothing, so until it has learned from real
images, every generator update is spent on realism and the cycle alone, and the edits do not
depend on the target. `critic_warmup_step` trains just those heads (and the trunks under them)
on real images; a critic step without the generator costs a fraction of a GAN iteration.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from faceedit.model.generator import ATTENTION_CHANNEL, HierarchicalGenerator
from faceedit.model.unified import UnifiedModel
from trainer.config import LossWeights
from trainer.stages import losses
from trainer.stages.steps import ExpressionBatch


@torch.no_grad()
def start_attention(generator: HierarchicalGenerator, keep: float) -> int:
    """Set every editor's attention bias to logit(keep); returns how many editors were set.

    keep in (0, 1); 0 means "leave the initialisation alone" and sets nothing.
    """
    if keep == 0.0:
        return 0
    if not 0.0 < keep < 1.0:
        raise ValueError(f"keep must be in (0, 1), got {keep}")
    bias = math.log(keep / (1.0 - keep))
    editors = [generator.global_generator, *generator.local_generators.values()]
    for editor in editors:
        heads = editor.heads
        assert isinstance(heads, nn.Conv2d) and heads.bias is not None
        heads.bias[ATTENTION_CHANNEL] = bias
    return len(editors)


def critic_warmup_losses(
    model: UnifiedModel,
    discriminator: nn.Module,
    batch: ExpressionBatch,
    weights: LossWeights,
) -> dict[str, torch.Tensor]:
    """Expression classification (and valence/arousal) of every critic on real images only.

    The region critics see x * m_k with the parser's masks (or the keypoint boxes), as in the
    discriminator step; no fake image is made, so neither adversarial term nor penalty enters.
    """
    with torch.no_grad():
        masks = model.region_masks(batch.images, batch.landmarks).masks
    judged = discriminator(batch.images, masks)
    named = {
        "d/cls": weights.classification
        * losses.classification_loss(judged.global_.logits, batch.labels)
    }
    local = [losses.classification_loss(o.logits, batch.labels) for o in judged.local.values()]
    if local:
        named["d/local_cls"] = weights.classification * torch.stack(local).mean()
    outputs = [judged.global_, *judged.local.values()]
    va = [
        losses.masked_regression_loss(o.valence_arousal, batch.valence_arousal)
        for o in outputs
        if o.valence_arousal is not None
    ]
    if va:
        named["d/va"] = weights.valence_arousal * torch.stack(va).sum()
    return named
