"""The critics' view: shifts move images and masks together, blur and noise keep gradients."""

from __future__ import annotations

import pytest
import torch

from trainer.config import ConfigError, GanOptimConfig
from trainer.stages.critic_view import AS_IS, CriticView, gaussian_blur, translate


def test_as_is_returns_the_same_tensors() -> None:
    images, masks = torch.randn(2, 3, 8, 8), torch.rand(2, 4, 8, 8)
    seen_images, seen_masks = AS_IS(images, masks)
    assert seen_images is images and seen_masks is masks


def test_translate_moves_each_sample_by_an_integer_offset_within_the_limit() -> None:
    torch.manual_seed(0)
    maps = torch.zeros(16, 1, 21, 21)
    maps[:, :, 10, 10] = 1.0  # a single bright pixel in the middle
    moved = translate(maps, 3)
    for sample in moved:
        assert sample.sum().item() == 1.0  # moved exactly, not resampled
        y, x = divmod(int(sample.flatten().argmax()), 21)
        assert abs(y - 10) <= 3 and abs(x - 10) <= 3
    offsets = {divmod(int(s.flatten().argmax()), 21) for s in moved}
    assert len(offsets) > 1  # samples get their own offsets


def test_masks_move_with_their_images() -> None:
    torch.manual_seed(1)
    images = torch.zeros(8, 3, 16, 16)
    images[:, :, 5:9, 6:10] = 1.0
    masks = (images[:, :1] > 0).float()
    seen_images, seen_masks = CriticView(shift=4)(images, masks)
    assert torch.equal(seen_masks[:, 0] > 0.5, seen_images[:, 0] > 0.5)


def test_blur_keeps_the_mean_and_smooths_speckle() -> None:
    torch.manual_seed(2)
    speckle = torch.randn(1, 3, 32, 32)
    blurred = gaussian_blur(speckle, 1.0)
    assert blurred.shape == speckle.shape
    assert blurred.std() < 0.5 * speckle.std()
    flat = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(gaussian_blur(flat, 1.5), flat, atol=1e-6)


def test_view_is_differentiable_for_the_generator() -> None:
    images = torch.randn(2, 3, 16, 16, requires_grad=True)
    seen, _ = CriticView(shift=2, blur=0.8, noise=0.1)(images, torch.rand(2, 4, 16, 16))
    seen.sum().backward()
    assert images.grad is not None and torch.isfinite(images.grad).all()
    assert images.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "field, value", [("critic_shift", -1), ("critic_shift", 17), ("critic_blur", -0.1)]
)
def test_config_refuses_out_of_range_views(field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=field):
        GanOptimConfig(**{field: value})
