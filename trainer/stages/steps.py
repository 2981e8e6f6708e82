"""One optimisation phase each: `parser_step`, `discriminator_step`, `generator_step`.

Each returns a dict of named, already weighted losses: their sum is what gets backpropagated,
and each key is logged. They compute losses only; the stage zeroes gradients, sums them with
`NonFiniteGuard.total` (trainer/stages/nonfinite.py: a NaN or inf stops the run), calls backward
and steps its optimiser, so the joint stage can let the parser's own loss and the GAN's
gradients meet in one parser update.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faceedit.model.config import ModelConfig
from faceedit.model.discriminator import HierarchicalDiscriminator, PatchOutput
from faceedit.model.unified import UnifiedModel, UnifiedOutput
from trainer.config import LossWeights, ParserOptimConfig
from trainer.stages import losses
from trainer.stages.distributed import unwrap

# ---------------------------------------------------------------------------- shared helpers


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    """Toggle a network between being trained (its phase) and being a fixed function."""
    for parameter in module.parameters():
        parameter.requires_grad_(flag)


@contextmanager
def evaluating(module: nn.Module) -> Iterator[None]:
    """`module` in eval mode for a pass that must not train it (its BatchNorms use, and do not
    update, their running statistics); its previous mode is restored afterwards."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


# ---------------------------------------------------------------------------- parser


def parser_step(
    parser: nn.Module,
    images: Tensor,
    labels: Tensor,
    settings: ParserOptimConfig,
    weight: float = 1.0,
) -> dict[str, Tensor]:
    """OHEM cross-entropy of the main head and (BiSeNet) the two auxiliary heads.

    images (B, 3, H, W) in [-1, 1] at the parser's resolution; labels (B, H, W) int64.
    """
    output = parser(images)
    batch, _, height, width = output.logits.shape
    min_kept = max(1, int(batch * height * width * settings.ohem_min_fraction))

    def ohem(logits: Tensor) -> Tensor:
        return losses.ohem_cross_entropy(logits, labels, settings.ohem_threshold, min_kept)

    named = {"parser/ohem": weight * ohem(output.logits)}
    for k, aux in enumerate(output.aux):
        named[f"parser/ohem_aux{k + 1}"] = weight * settings.aux_weight * ohem(aux)
    return named


# ---------------------------------------------------------------------------- conditions


@dataclass
class SamePersonPairs:
    """Per sample, a photo of the same person with the target expression (trainer/data/pairs.py)."""

    images: Tensor  # (B, 3, S, S) in [-1, 1]; the sample itself where it has no partner
    has_partner: Tensor  # (B,) bool
    parts: Tensor  # (B, 1, S, S) bool: both photos' brows, eyes, nose, lips and inner mouth


@dataclass
class ExpressionBatch:
    """One batch of expression data on the device, with the source and target conditions."""

    images: Tensor  # (B, 3, S, S) in [-1, 1]
    labels: Tensor  # (B,) int64 expression indices
    valence_arousal: Tensor  # (B, 2); NaN where not annotated
    target_labels: Tensor  # (B,) what the generator is asked to make
    target_valence_arousal: Tensor  # (B, 2); NaN where not annotated
    source: Tensor  # (B, C) condition of the input as it is (for the cycle back)
    target: Tensor  # (B, C) condition to edit towards
    landmarks: Tensor | None = None  # (B, 5, 2) crop pixels, for keypoint-box regions
    pairs: SamePersonPairs | None = None  # same-person targets (loss.paired), where known


def condition(labels: Tensor, valence_arousal: Tensor, model: ModelConfig) -> Tensor:
    """(B, C) one-hot expression, plus valence and arousal (0 where unknown) if the model has them."""
    one_hot = F.one_hot(labels, model.num_expressions).float()
    if not model.valence_arousal:
        return one_hot
    return torch.cat([one_hot, torch.nan_to_num(valence_arousal.float(), nan=0.0)], dim=1)


def expression_batch(
    images: Tensor,
    labels: Tensor,
    valence_arousal: Tensor,
    model: ModelConfig,
    landmarks: Tensor | None = None,
    pairs: SamePersonPairs | None = None,
    pair_labels: Tensor | None = None,
) -> ExpressionBatch:
    """Pair every image with the expression of another image of the batch (StarGAN's targets).

    Taking targets from a shuffled batch keeps them distributed like the (class-balanced)
    data, and gives valence/arousal targets that belong to a real face of that expression.
    The shuffle draws from the global torch RNG, which the training state saves. With `pairs`,
    a sample that has a same-person partner takes the partner's expression (`pair_labels`).
    """
    order = torch.randperm(labels.shape[0]).to(labels.device)
    target_labels, target_va = labels[order], valence_arousal[order]
    if pairs is not None and pair_labels is not None:
        target_labels = torch.where(pairs.has_partner, pair_labels, target_labels)
        nan = torch.full_like(target_va, float("nan"))
        target_va = torch.where(pairs.has_partner[:, None], nan, target_va)
    return ExpressionBatch(
        images=images,
        labels=labels,
        valence_arousal=valence_arousal,
        target_labels=target_labels,
        target_valence_arousal=target_va,
        source=condition(labels, valence_arousal, model),
        target=condition(target_labels, target_va, model),
        landmarks=landmarks,
        pairs=pairs,
    )


# ---------------------------------------------------------------------------- GAN


def _critic_terms(
    output: PatchOutput, labels: Tensor, valence_arousal: Tensor
) -> tuple[Tensor, Tensor, Tensor | None]:
    """(patch scores, classification loss, valence/arousal loss or None) of one critic."""
    cls = losses.classification_loss(output.logits, labels)
    va = (
        None
        if output.valence_arousal is None
        else losses.masked_regression_loss(output.valence_arousal, valence_arousal)
    )
    return output.patch, cls, va


def _mean(values: list[Tensor]) -> Tensor:
    return torch.stack(values).mean()


@dataclass
class EditPass:
    """The generator's edit of one batch towards its targets, made once per iteration.

    With the parser frozen (the gan stage) the discriminator phase would make exactly this edit
    again without gradients, and parse the input and the edit again: sharing one pass, made
    with gradients and seen detached by the critics' phase, leaves the losses as they were and
    saves a generator and two parser passes per iteration (docs/training.md, "One edit per GAN
    iteration").
    """

    output: UnifiedOutput  # the edit, with its region masks (those of the input)
    seen_through: Tensor  # (B, K, S, S) the masks the critics see the edit through


def edit_pass(model: UnifiedModel, batch: ExpressionBatch, own_masks: bool = False) -> EditPass:
    """Edit the batch towards its targets (with gradients), and the masks the critics use for
    the edit: its own parse with `own_masks`, else the input's."""
    out = model(batch.images, batch.target, landmarks=batch.landmarks)
    seen_through = (
        fake_region_masks(model, out.image, batch.landmarks) if own_masks else out.region_masks
    )
    return EditPass(out, seen_through)


def fake_region_masks(model: UnifiedModel, fake: Tensor, landmarks: Tensor | None) -> Tensor:
    """The region masks of an edit, as the region critics see it with critic_masks="own".

    The parser runs in eval mode, so a trainable (joint) parser's BatchNorm statistics are not
    moved by fakes; gradients still flow through it into the edit (and, in joint training,
    into the parser's weights). Keypoint boxes come from the input's landmarks, as before.
    """
    with evaluating(model.parser):
        return model.region_masks(fake, landmarks).masks


def discriminator_step(
    model: UnifiedModel,
    discriminator: nn.Module,
    batch: ExpressionBatch,
    weights: LossWeights,
    own_masks: bool = False,
    edit: EditPass | None = None,
) -> dict[str, Tensor]:
    """WGAN-GP critic losses, expression classification and valence/arousal on real images.

    `model` makes the fakes (without gradients: this phase trains only the critics), using
    the region masks of the real images for both, so a region critic compares x * m_k with
    G(x) * m_k; with `own_masks` each fake is seen through its own parse instead, m_k(G(x)),
    so an edit that reshapes a part (an opened mouth, a raised brow) is judged by the shape it
    has, not cut to the input's outline (GanOptimConfig.critic_masks). Reals and fakes go
    through `discriminator` (DDP-wrapped in multi-process runs) in one concatenated pass; the
    gradient penalties run on the unwrapped critics, each at its own input (x for the global
    critic, the masked inputs for region k's), and their gradients reach the weights in the
    same backward pass, which DDP synchronises.
    """
    x = batch.images
    if edit is not None:  # the iteration's shared edit (EditPass), seen as a fixed input
        masks = edit.output.region_masks.detach()
        fake = edit.output.image.detach()
        fake_masks = edit.seen_through.detach()
    else:
        # The parser only supplies masks here: in eval mode, so a trainable (joint) parser's
        # BatchNorm statistics are not moved by expression batches it is not trained on here.
        with torch.no_grad(), evaluating(model.parser):
            masks = model.region_masks(x, batch.landmarks).masks  # (B, K, S, S)
            fake = model.generate(x, masks, batch.target).image.detach()
            fake_masks = fake_region_masks(model, fake, batch.landmarks) if own_masks else masks
    both = discriminator(torch.cat([x, fake]), torch.cat([masks, fake_masks]))
    n = x.shape[0]

    fake_source = weights.fake_source_classification > 0

    def critic_losses(output: PatchOutput) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        va_real = None if output.valence_arousal is None else output.valence_arousal[:n]
        real = PatchOutput(output.patch[:n], output.logits[:n], va_real)
        adv = losses.wgan_critic_loss(real.patch, output.patch[n:])
        _, cls, va = _critic_terms(real, batch.labels, batch.valence_arousal)
        # each fake still showing its input's expression (LossWeights.fake_source_classification)
        fake_cls = (
            losses.classification_loss(output.logits[n:], batch.labels) if fake_source else None
        )
        return adv, cls, va, fake_cls

    adv, cls, va, fake_cls = critic_losses(both.global_)
    local = [critic_losses(out) for out in both.local.values()]
    named = {"d/adv": weights.adversarial * adv, "d/cls": weights.classification * cls}
    if local:
        named["d/local_adv"] = weights.local_adversarial * _mean([t[0] for t in local])
        named["d/local_cls"] = weights.classification * _mean([t[1] for t in local])
    if fake_cls is not None:
        named["d/fake_cls"] = weights.fake_source_classification * fake_cls
        local_fake = [t[3] for t in local if t[3] is not None]
        if local_fake:
            named["d/local_fake_cls"] = weights.fake_source_classification * _mean(local_fake)
    if va is not None:
        local_va = [t[2] for t in local if t[2] is not None]
        named["d/va"] = weights.valence_arousal * (va + (_mean(local_va) if local_va else 0.0))

    # Gradient penalties on points between real and fake.
    critic = cast(HierarchicalDiscriminator, unwrap(discriminator))
    alpha = torch.rand(n, device=x.device)
    interp = losses.interpolate(x, fake, alpha).detach().requires_grad_(True)
    penalties = [losses.gradient_penalty(critic.global_discriminator(interp).patch, interp)]
    # Between the two masked inputs: (x * m) and (fake * m') mixed by alpha, which is interp * m
    # when both are seen through the same masks m = m'; with local windows, both in the windows
    # the real images' masks place, so the same pixels are mixed.
    windows = critic.region_windows(masks)
    real_ins = critic.region_inputs(x, masks, windows)
    fake_ins = critic.region_inputs(fake, fake_masks, windows)
    for region_critic, real_in, fake_in in zip(
        critic.local_discriminators.values(), real_ins, fake_ins, strict=True
    ):
        masked = losses.interpolate(real_in, fake_in, alpha).detach().requires_grad_(True)
        penalties.append(losses.gradient_penalty(region_critic(masked).patch, masked))
    named["d/gp"] = weights.gradient_penalty * penalties[0]
    if len(penalties) > 1:
        named["d/local_gp"] = weights.gradient_penalty * _mean(penalties[1:])
    return named


def generator_step(
    model: UnifiedModel,
    critic: nn.Module,
    batch: ExpressionBatch,
    weights: LossWeights,
    own_masks: bool = False,
    edit: EditPass | None = None,
) -> dict[str, Tensor]:
    """Fool the critics towards the target expression, cycle back, keep attention sparse and smooth.

    `critic` is the unwrapped discriminator with requires_grad off: it is a fixed function in
    this phase, and calling it outside DDP keeps its gradient bookkeeping out of the G phase.
    The same region masks serve the edit, the critics (unless `own_masks`) and the cycle back;
    they carry the parser's gradient in joint training, so every term here also trains the parser.
    """
    x = batch.images
    # 1. Edit towards the target (or take the iteration's shared edit, made the same way).
    edit = edit if edit is not None else edit_pass(model, batch, own_masks)
    out, masks = edit.output, edit.output.region_masks
    # 2. Critics on the edit: through the input's masks, or (own_masks) through the edit's own.
    judged = critic(out.image, edit.seen_through)
    adv = losses.wgan_generator_loss(judged.global_.patch)
    _, cls, va = _critic_terms(judged.global_, batch.target_labels, batch.target_valence_arousal)
    local = [
        _critic_terms(o, batch.target_labels, batch.target_valence_arousal)
        for o in judged.local.values()
    ]
    # 3. Back to the original expression with the same masks.
    back = model.generate(out.image, masks, batch.source)
    attention = torch.cat([out.attention, back.attention], 0)  # (2B, 1 + K, 1, S, S)

    named = {"g/adv": weights.adversarial * adv, "g/cls": weights.classification * cls}
    if local:
        named["g/local_adv"] = weights.local_adversarial * _mean(
            [losses.wgan_generator_loss(o.patch) for o in judged.local.values()]
        )
        named["g/local_cls"] = weights.classification * _mean([t[1] for t in local])
    if va is not None:
        local_va = [t[2] for t in local if t[2] is not None]
        named["g/va"] = weights.valence_arousal * (va + (_mean(local_va) if local_va else 0.0))
    named["g/cycle"] = weights.cycle * losses.cycle_loss(back.image, x)
    named["g/attention_mean"] = weights.attention_mean * losses.attention_mean_loss(attention)
    named["g/attention_tv"] = weights.attention_tv * losses.total_variation(attention)
    if weights.edit_tv > 0:
        named["g/edit_tv"] = weights.edit_tv * losses.total_variation(out.image - x)
    if weights.mouth_only_classification > 0:
        mouth = model.generator.regions.index(MOUTH_REGION)
        named["g/mouth_only_cls"] = weights.mouth_only_classification * mouth_only_loss(
            critic, x, out.image, masks[:, mouth : mouth + 1], batch.target_labels
        )
    if weights.paired > 0 and batch.pairs is not None:
        pairs = batch.pairs
        named["g/paired"] = weights.paired * losses.paired_loss(
            out.image, pairs.images, pairs.parts, pairs.has_partner
        )
    return named


# The region `--editable mouth` leaves editable (LossWeights.mouth_only_classification).
MOUTH_REGION = "mouth"


def mouth_only_loss(
    critic: nn.Module, x: Tensor, edit: Tensor, mouth: Tensor, targets: Tensor
) -> Tensor:
    """The global critic's classification loss towards `targets` of the edit with only the
    mouth editable, x + m_mouth (edit - x): the composite HierarchicalGenerator's region lock
    makes, so only the mouth's pixels receive its gradient. mouth (B, 1, S, S)."""
    composite = x + mouth * (edit - x)
    judged = cast(HierarchicalDiscriminator, critic).global_discriminator(composite)
    return losses.classification_loss(judged.logits, targets)
