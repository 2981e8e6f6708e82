"""Every training loss as a pure function of tensors: no modules, no optimisers, no state.

The step functions in trainer/stages/steps.py weight and combine these; keeping them here makes each
one testable against a value worked out by hand.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

IGNORE_INDEX = 255


# ---------------------------------------------------------------------------- face parsing


def ohem_cross_entropy(
    logits: Tensor,
    target: Tensor,
    threshold: float = 0.7,
    min_kept: int | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> Tensor:
    """Cross-entropy averaged over the hard pixels only (online hard example mining).

    A pixel is hard when its loss exceeds -log(threshold), i.e. the predicted probability of
    its true class is below `threshold`. At least `min_kept` pixels are averaged (default: a
    sixteenth of the batch's pixels, as in face-parsing.PyTorch): when fewer are hard, the
    `min_kept` largest losses are used, so a nearly solved batch still teaches something.
    logits (B, C, H, W), target (B, H, W) int64 class indices (`ignore_index` is skipped).
    """
    batch, _, height, width = logits.shape
    if min_kept is None:
        min_kept = batch * height * width // 16
    pixel_loss = F.cross_entropy(
        logits.float(), target, ignore_index=ignore_index, reduction="none"
    ).flatten()
    valid = pixel_loss[target.flatten() != ignore_index]
    if valid.numel() == 0:
        return logits.sum() * 0.0  # keeps the graph (and DDP's bookkeeping) intact
    min_kept = max(1, min(int(min_kept), valid.numel()))
    hard_threshold = -math.log(threshold)
    ranked, order = torch.sort(valid, descending=True)
    # The community rule: if even the min_kept-th largest loss is hard, keep every hard pixel.
    if ranked[min_kept - 1] > hard_threshold:
        kept = order[ranked > hard_threshold]
    else:
        kept = order[:min_kept]
    return valid[kept].mean()


# ---------------------------------------------------------------------------- adversarial


def wgan_critic_loss(real_scores: Tensor, fake_scores: Tensor) -> Tensor:
    """WGAN critic loss E[D(fake)] - E[D(real)]: minimised by scoring reals high.

    Scores may be patch maps (B, 1, h, w): every patch counts equally.
    """
    return fake_scores.float().mean() - real_scores.float().mean()


def wgan_generator_loss(fake_scores: Tensor) -> Tensor:
    """WGAN generator loss -E[D(fake)]."""
    return -fake_scores.float().mean()


def interpolate(real: Tensor, fake: Tensor, alpha: Tensor) -> Tensor:
    """Points on the lines between real and fake samples: alpha (B,) in [0, 1], 1 = real."""
    alpha = alpha.to(real.dtype).view(-1, *([1] * (real.dim() - 1)))
    return alpha * real + (1 - alpha) * fake


def gradient_penalty(scores: Tensor, inputs: Tensor) -> Tensor:
    """WGAN-GP: E[(||d critic(x) / d x||_2 - 1)^2] over the samples, at the given inputs.

    `scores` (B, ...) must have been computed from `inputs` (requires_grad) with the graph
    kept; a patch critic's value for a sample is the mean of its patch scores (what the
    adversarial losses use), so that is the function whose gradient is constrained. The
    gradient is taken with create_graph, so the penalty can be backpropagated into the critic.
    """
    critic_values = scores.float().reshape(scores.shape[0], -1).mean(1)  # (B,)
    (grad,) = torch.autograd.grad(
        outputs=critic_values.sum(), inputs=inputs, create_graph=True, retain_graph=True
    )
    norms = grad.float().flatten(1).norm(2, dim=1)  # (B,)
    return ((norms - 1.0) ** 2).mean()


# ---------------------------------------------------------------------------- conditions


def classification_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy of the discriminator's expression head against class indices (B,)."""
    return F.cross_entropy(logits.float(), labels)


def masked_regression_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over the entries whose target is finite (NaN = not annotated).

    Valence and arousal are missing for some AffectNet rows and for every RaFD or folder image;
    those entries contribute nothing. Zero (with a graph) when nothing is annotated.
    """
    known = torch.isfinite(target)
    if not bool(known.any()):
        return prediction.sum() * 0.0
    diff = prediction.float()[known] - target.float()[known]
    return (diff**2).mean()


# ---------------------------------------------------------------------------- reconstruction


def cycle_loss(reconstruction: Tensor, original: Tensor) -> Tensor:
    """L1 between the image edited there and back and the input (StarGAN's reconstruction)."""
    return (reconstruction.float() - original.float()).abs().mean()


def attention_mean_loss(attention: Tensor) -> Tensor:
    """Mean of the attention maps (1 = keep the input pixel).

    GANimation penalises it because the cycle loss alone is happiest with attention saturated
    at 1 (change nothing); pushing it down keeps the generators editing.
    """
    return attention.float().mean()


def total_variation(maps: Tensor) -> Tensor:
    """Mean absolute difference between vertical plus horizontal neighbours (..., H, W).

    Smooth attention maps make edits that fade in instead of speckling; 0 for a constant map.
    """
    maps = maps.float()
    dy = (maps[..., 1:, :] - maps[..., :-1, :]).abs().mean()
    dx = (maps[..., :, 1:] - maps[..., :, :-1]).abs().mean()
    return dx + dy


# ---------------------------------------------------------------------------- same-person pairs

PAIRED_BLUR: int = 4  # compare 4x4 block means: two photos of one person never align exactly


LUMA = (0.299, 0.587, 0.114)


def paired_loss(edit: Tensor, partner: Tensor, parts: Tensor, has_partner: Tensor) -> Tensor:
    """Mean |blur(edit) - blur(partner)| of luminance inside `parts`, over samples with a partner.

    Luminance only, each image less its own mean inside `parts`: the two photos' lighting and
    colour differ (one may be greyscale), the shape and shading of their expression is what the
    edit should take. edit, partner (B, 3, S, S); parts (B, 1, S, S) bool or float;
    has_partner (B,) bool. Zero (with a gradient path) when no sample has a partner.
    """
    luma = edit.new_tensor(LUMA).view(1, 3, 1, 1)
    weight = F.avg_pool2d(parts.to(edit.dtype), PAIRED_BLUR)  # share of each block in a part
    area = weight.sum((2, 3), keepdim=True).clamp_min(1e-6)

    def centred(image: Tensor) -> Tensor:
        blurred = F.avg_pool2d((image * luma).sum(1, keepdim=True), PAIRED_BLUR)
        return blurred - (blurred * weight).sum((2, 3), keepdim=True) / area

    difference = centred(edit) - centred(partner).detach()
    per_sample = (difference.abs() * weight).sum((1, 2, 3)) / area.flatten()
    chosen = has_partner.to(edit.dtype)
    return (per_sample * chosen).sum() / chosen.sum().clamp_min(1.0)
