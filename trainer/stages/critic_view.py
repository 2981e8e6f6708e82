"""What the critics see: the image after random shifts, blur and noise (differentiable).

A critic's expression head trained only on real images is a classifier like any other, and a
generator trained against it finds the cheapest way to raise its target's probability: pixel
speckle that the head reads as the class (measured on the world: the generator's `g/cls` fell
to 0.05 while an independent judge saw its target in 17 % of the edits). Showing the critic a
randomly shifted, blurred and noisy view of every image, real or fake, in every phase removes
that shortcut: speckle does not survive the blur and the noise, its position is not fixed
under the shifts, and the gradient the generator receives through the blur is low-pass, so
what raises the target's probability is a change of shape and colour at the scale of the
face's parts. Reals and fakes go through the same transformation, so the adversarial game is
unchanged in expectation (DiffAugment, Zhao et al. 2020, for the shifts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class CriticView:
    """shift: largest translation in pixels (each sample its own, reflected at the border);
    blur: Gaussian sigma in pixels (0 = none); noise: std of added Gaussian noise in [-1, 1]
    image units, applied to the image channels only."""

    shift: int = 0
    blur: float = 0.0
    noise: float = 0.0

    @property
    def active(self) -> bool:
        return self.shift > 0 or self.blur > 0 or self.noise > 0

    def __call__(self, images: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
        """images (B, 3, S, S) and region masks (B, K, S, S) seen the same way: shifted
        together (a region critic still sees its region), blurred and noised (images only)."""
        if not self.active:
            return images, masks
        if self.shift > 0:
            both = translate(torch.cat([images, masks], 1), self.shift)
            images, masks = both[:, : images.shape[1]], both[:, images.shape[1] :]
        if self.blur > 0:
            images = gaussian_blur(images, self.blur)
        if self.noise > 0:
            images = images + self.noise * torch.randn_like(images)
        return images, masks


def translate(maps: Tensor, shift: int) -> Tensor:
    """Each sample moved by its own random integer offset in [-shift, shift] on both axes.

    Implemented as reflection padding then a per-sample crop gathered by index, so the values
    are moved exactly (no resampling) and gradients flow back to the moved pixels.
    """
    batch, channels, height, width = maps.shape
    padded = F.pad(maps, (shift, shift, shift, shift), mode="reflect")
    dy = torch.randint(0, 2 * shift + 1, (batch,), device=maps.device)
    dx = torch.randint(0, 2 * shift + 1, (batch,), device=maps.device)
    rows = (dy[:, None] + torch.arange(height, device=maps.device)[None]).view(batch, 1, height, 1)
    cols = (dx[:, None] + torch.arange(width, device=maps.device)[None]).view(batch, 1, 1, width)
    rows = rows.expand(batch, channels, height, padded.shape[-1])
    picked = padded.gather(2, rows)  # (B, C, H, W + 2 shift)
    cols = cols.expand(batch, channels, height, width)
    return picked.gather(3, cols)


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur (radius 3 sigma, reflected border), per channel."""
    radius = max(1, math.ceil(3 * sigma))
    offsets = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    horizontal = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    vertical = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    out = F.conv2d(padded, horizontal, groups=channels)
    return F.conv2d(out, vertical, groups=channels)


AS_IS: CriticView = CriticView()  # the paper: critics see every image unchanged
