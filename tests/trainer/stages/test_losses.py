"""The training losses against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from trainer.stages import losses


def _logits_for(probabilities: torch.Tensor) -> torch.Tensor:
    """(B, 2, H, W) logits whose class-0 softmax probability is `probabilities` (B, H, W)."""
    p = probabilities.clamp(1e-6, 1 - 1e-6)
    return torch.stack([torch.log(p), torch.log(1 - p)], dim=1)


def test_ohem_averages_only_the_hard_pixels_when_enough_are_hard() -> None:
    probs = torch.full((1, 4, 4), 0.95)
    probs.view(-1)[:8] = 0.2  # 8 hard pixels: loss -log 0.2 > -log 0.7
    logits = _logits_for(probs).requires_grad_(True)
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    loss = losses.ohem_cross_entropy(logits, target, threshold=0.7, min_kept=4)
    assert loss.item() == pytest.approx(-math.log(0.2), rel=1e-5)
    loss.backward()
    grad = logits.grad.abs().sum(1).view(-1)
    assert (grad[:8] > 0).all() and (grad[8:] == 0).all()


def test_ohem_keeps_at_least_min_kept_pixels_hardest_first() -> None:
    probs = torch.full((1, 4, 4), 0.95)
    # With threshold 0.5 only the first pixel is hard; the next three largest losses fill up
    # the 4 pixels that must be kept.
    probs.view(-1)[:4] = torch.tensor([0.1, 0.6, 0.8, 0.9])
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    loss = losses.ohem_cross_entropy(_logits_for(probs), target, threshold=0.5, min_kept=4)
    expected = -(math.log(0.1) + math.log(0.6) + math.log(0.8) + math.log(0.9)) / 4
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_ohem_default_min_kept_is_a_sixteenth_of_the_pixels() -> None:
    # Nothing is hard: the 8 largest of 2 * 8 * 8 = 128 pixel losses are averaged.
    probs = torch.linspace(0.80, 0.99, 128).view(2, 8, 8)
    target = torch.zeros(2, 8, 8, dtype=torch.long)
    loss = losses.ohem_cross_entropy(_logits_for(probs), target, threshold=0.7)
    expected = -torch.log(torch.linspace(0.80, 0.99, 128)[:8]).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)


def test_ohem_skips_ignored_pixels() -> None:
    probs = torch.full((1, 2, 2), 0.9)
    probs[0, 0, 0] = 0.01
    target = torch.zeros(1, 2, 2, dtype=torch.long)
    target[0, 0, 0] = losses.IGNORE_INDEX
    loss = losses.ohem_cross_entropy(_logits_for(probs), target, threshold=0.7, min_kept=1)
    assert loss.item() == pytest.approx(-math.log(0.9), rel=1e-5)


def test_the_parser_step_of_a_unet_is_one_ohem_term() -> None:
    from faceedit.model.config import preset
    from faceedit.model.parsing import build_parser
    from trainer.config import ParserOptimConfig
    from trainer.stages.steps import parser_step

    torch.manual_seed(0)
    parser = build_parser(preset("tiny").parser)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    labels = torch.randint(0, 19, (2, 32, 32))
    named = parser_step(parser, images, labels, ParserOptimConfig())
    assert set(named) == {"parser/ohem"}


def test_gradient_penalty_of_a_linear_critic_is_analytic() -> None:
    torch.manual_seed(1)
    w = torch.randn(3, 4, 4)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    scores = (x * w).sum(dim=(1, 2, 3)).view(5, 1, 1, 1)  # f(x) = <w, x>, gradient w everywhere
    penalty = losses.gradient_penalty(scores, x)
    assert penalty.item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-5)


def test_gradient_penalty_uses_the_mean_of_patch_scores() -> None:
    w1, w2 = torch.randn(2, 8), torch.randn(2, 8)
    x = torch.randn(3, 2, 8, requires_grad=True)
    patches = torch.stack([(x * w1).sum((1, 2)), (x * w2).sum((1, 2))], 1).view(3, 1, 1, 2)
    penalty = losses.gradient_penalty(patches, x)
    assert penalty.item() == pytest.approx((((w1 + w2) / 2).norm().item() - 1) ** 2, rel=1e-5)


def test_gradient_penalty_backpropagates_into_the_critic() -> None:
    w = torch.tensor([3.0, 4.0], requires_grad=True)  # |w| = 5
    x = torch.randn(4, 2, requires_grad=True)
    losses.gradient_penalty(x @ w, x).backward()
    # d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w|
    assert torch.allclose(w.grad, 2 * 4 * torch.tensor([3.0, 4.0]) / 5)


def test_interpolate_spans_real_to_fake() -> None:
    real, fake = torch.ones(3, 2, 2, 2), torch.zeros(3, 2, 2, 2)
    mixed = losses.interpolate(real, fake, torch.tensor([1.0, 0.0, 0.25]))
    assert mixed[0].eq(1).all() and mixed[1].eq(0).all() and mixed[2].eq(0.25).all()


def test_wgan_losses_have_the_right_signs() -> None:
    real, fake = torch.full((2, 1, 2, 2), 3.0), torch.full((2, 1, 2, 2), -1.0)
    assert losses.wgan_critic_loss(real, fake).item() == -4.0
    assert losses.wgan_generator_loss(fake).item() == 1.0


def test_total_variation_of_a_constant_map_is_zero_and_of_a_step_is_known() -> None:
    assert losses.total_variation(torch.full((2, 1, 5, 5), 0.3)).item() == 0.0
    step = torch.zeros(1, 1, 4, 4)
    step[..., 2:] = 1.0  # one vertical edge: horizontal differences 0, 1, 0 per row
    assert losses.total_variation(step).item() == pytest.approx(1 / 3)


def test_masked_regression_ignores_missing_labels() -> None:
    prediction = torch.tensor([[0.5, 0.5], [0.0, 0.0]], requires_grad=True)
    target = torch.tensor([[1.0, float("nan")], [float("nan"), float("nan")]])
    loss = losses.masked_regression_loss(prediction, target)
    assert loss.item() == pytest.approx(0.25)
    loss.backward()
    assert prediction.grad.tolist() == [[-1.0, 0.0], [0.0, 0.0]]


def test_masked_regression_with_nothing_annotated_is_zero_but_connected() -> None:
    prediction = torch.ones(3, 2, requires_grad=True)
    loss = losses.masked_regression_loss(prediction, torch.full((3, 2), float("nan")))
    assert loss.item() == 0.0
    loss.backward()  # still part of the graph, so DDP sees every head used
    assert prediction.grad is not None and prediction.grad.eq(0).all()


def test_cycle_attention_and_classification_losses() -> None:
    assert losses.cycle_loss(torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2)).item() == 1.0
    assert losses.attention_mean_loss(torch.tensor([0.2, 0.4])).item() == pytest.approx(0.3)
    logits = torch.tensor([[0.0, 0.0]])
    assert losses.classification_loss(logits, torch.tensor([1])).item() == pytest.approx(
        math.log(2)
    )


def _pair(size: int = 16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    edit = torch.rand(2, 3, size, size) * 2 - 1
    parts = torch.zeros(2, 1, size, size, dtype=torch.bool)
    parts[:, :, 4:12, 4:12] = True
    return edit, edit.clone(), parts


def test_paired_loss_ignores_lighting_colour_and_what_lies_outside_the_parts() -> None:
    edit, partner, parts = _pair()
    brighter = partner + 0.3  # another photo's lighting: the mean is taken away
    grey = partner.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    outside = partner.clone()
    outside[:, :, :4] = -1.0  # all 4x4 blocks of the first rows lie outside the parts
    both = torch.tensor([True, True])
    for other in (partner, brighter, outside):
        assert float(losses.paired_loss(edit, other, parts, both)) == pytest.approx(0, abs=1e-6)
    luma_only = losses.paired_loss(
        edit.mean(1, keepdim=True).expand(-1, 3, -1, -1), grey, parts, both
    )
    assert float(luma_only) == pytest.approx(0, abs=1e-6)


def test_paired_loss_counts_only_samples_with_a_partner_and_trains_only_the_edit() -> None:
    edit, partner, parts = _pair()
    partner[0] = -partner[0]
    edit.requires_grad_(True)
    partner.requires_grad_(True)
    first_only = losses.paired_loss(edit, partner, parts, torch.tensor([True, False]))
    second_only = losses.paired_loss(edit, partner, parts, torch.tensor([False, True]))
    assert float(first_only.detach()) > 0.05 and float(second_only.detach()) == pytest.approx(
        0, abs=1e-6
    )
    first_only.backward()
    assert edit.grad is not None and float(edit.grad[0].abs().sum()) > 0
    assert float(edit.grad[1].abs().sum()) == 0 and partner.grad is None
    nobody = losses.paired_loss(edit, partner, parts, torch.tensor([False, False]))
    assert float(nobody.detach()) == 0 and nobody.requires_grad
