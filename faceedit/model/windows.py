"""Fixed-size windows around each region, for the local editors and critics (`local_windows`).

A local network only owns its region, yet on the whole crop it spends most of its arithmetic
on zeros (its input is x * m_k). On a window around the region it computes the same kind of
edit for a fraction of the cost, as the paper's local generators work on crops. Each region's
window has a fixed size at a given crop size, so shapes stay static (batching, grouped
execution, CUDA graphs); only its position changes per image: from the region's place in the
aligned crop's template onto the centroid of its mask, inside the crop. The position is an
integer, chosen without gradients; cropping and pasting are differentiable in the images.
"""

from __future__ import annotations

import math
from typing import Final, NamedTuple

import torch
from torch import Tensor

from faceedit.model.config import ModelConfig

# Window (height, width) per region, as fractions of the crop's side. Measured extents (bounding
# boxes of the labels, as fractions of the crop, the largest over all training images): real
# photos at 128 (trainer/data landmark labels, 11,116 crops) brows 0.16 x 0.51, eyes 0.09 x 0.38,
# nose 0.24 x 0.21, mouth 0.21 x 0.31; the procedural world at 64 (2,000 renderings) brows
# 0.06 x 0.38, eyes 0.14 x 0.52 (glasses frames count as eyes), nose 0.16 x 0.11, mouth
# 0.11 x 0.25. The windows leave room around those for soft masks, faces off the template and
# rescaling augmentation. Brows and eyes share a shape, so grouped execution runs them as one
# network.
WINDOW_FRACTIONS: Final[dict[str, tuple[float, float]]] = {
    "brows": (0.25, 0.6875),
    "eyes": (0.25, 0.6875),
    "nose": (0.375, 0.3125),
    "mouth": (0.3125, 0.4375),
}
# Where each region's centre lies in an aligned crop (faceedit/faces/align.py's template), as
# (row, column) fractions of the crop's side: the medians of the labels' box centres, which the
# real photos at 128 and the world at 64 share to within 0.01.
REGION_CENTRES: Final[dict[str, tuple[float, float]]] = {
    "brows": (0.355, 0.5),
    "eyes": (0.4, 0.5),
    "nose": (0.48, 0.5),
    "mouth": (0.655, 0.5),
}
# A window starts at its region's template centre and is then centred this many times on the
# centroid of the mask it holds.
CENTRING_STEPS: Final[int] = 2
# Pixels below this share of their mask's peak do not move a window: a parser's soft masks hold
# a little probability everywhere, which would pull the centroid towards the window's middle.
PEAK_SHARE: Final[float] = 0.5
# The local editor halves twice (its windows' sides: multiples of 4).
EDITOR_HALVINGS: Final[int] = 2


class WindowSpec(NamedTuple):
    """One region's window in a crop: its size, and where its centre starts, in pixels."""

    height: int
    width: int
    start: tuple[float, float]  # (row, column) of the region's template centre


def window_specs(config: ModelConfig) -> tuple[WindowSpec, ...]:
    """Each region's window, in config order.

    Sides are rounded up to a multiple that both the editor and the region critic
    (local_num_layers halvings) tile, and at most the crop.
    """
    size = config.crop_size
    step = math.lcm(2**EDITOR_HALVINGS, 2**config.discriminator.local_num_layers)

    def side(fraction: float) -> int:
        return min(size, math.ceil(fraction * size / step) * step)

    return tuple(
        WindowSpec(
            side(WINDOW_FRACTIONS[name][0]),
            side(WINDOW_FRACTIONS[name][1]),
            (REGION_CENTRES[name][0] * size - 0.5, REGION_CENTRES[name][1] * size - 0.5),
        )
        for name in config.regions
    )


class Window(NamedTuple):
    """One region's window in every image of a batch: a fixed size, a position per image."""

    origins: Tensor  # (B, 2) int64: top row, left column; the window lies inside the image
    height: int
    width: int

    def crop(self, images: Tensor) -> Tensor:
        """images (B, C, H, W) -> (B, C, height, width), differentiable with respect to images."""
        index = self._index(images)
        return torch.unflatten(images.flatten(2).gather(2, index), 2, (self.height, self.width))

    def paste(self, canvas: Tensor, window: Tensor) -> Tensor:
        """canvas (B, C, H, W) with `window` (B, C, height, width) in place of its window."""
        index = self._index(canvas)
        return canvas.flatten(2).scatter(2, index, window.flatten(2)).view_as(canvas)

    def inside(self, like: Tensor) -> Tensor:
        """(B, 1, H, W) like `like` (B, C, H, W): 1 inside the window, 0 outside."""
        ones = like.new_ones(like.shape[0], 1, self.height, self.width)
        return self.paste(like.new_zeros(like.shape[0], 1, *like.shape[-2:]), ones)

    def _index(self, images: Tensor) -> Tensor:
        """(B, C, height * width) flat indices of the window's pixels in images (B, C, H, W)."""
        device, side = images.device, images.shape[-1]
        rows = self.origins[:, :1] + torch.arange(self.height, device=device)  # (B, h)
        cols = self.origins[:, 1:] + torch.arange(self.width, device=device)  # (B, w)
        flat = (rows[:, :, None] * side + cols[:, None, :]).flatten(1)  # (B, h * w)
        return flat[:, None].expand(-1, images.shape[1], -1)


def region_windows(masks: Tensor, specs: tuple[WindowSpec, ...]) -> list[Window]:
    """Each region's window in each image, placed by its mask and clamped inside the image.

    masks (B, K, H, W) in [0, 1]. A window starts at its region's template centre, then is
    centred CENTRING_STEPS times on the centroid of the mask it holds (pixels of at least
    PEAK_SHARE of the mask's peak): it follows a face off the template, and stray blobs further
    away (a mirrored mouth in an aligned photo's padding) cannot pull it off the region. Where
    it holds none of the mask (an empty mask) it stays where it was.
    """
    sides = masks.shape[-2:]
    if any(spec.height > sides[0] or spec.width > sides[1] for spec in specs):
        raise ValueError(
            f"local windows {[spec[:2] for spec in specs]} do not fit {tuple(sides)} images"
        )
    masks = masks.detach().float()
    peak = masks.amax((-2, -1), keepdim=True)
    weights = torch.where(masks >= PEAK_SHARE * peak, masks, 0.0)
    windows = []
    for k, spec in enumerate(specs):
        centre = [masks.new_full(masks.shape[:1], start) for start in spec.start]  # row, column
        window = _centred(centre, spec, sides)
        for _ in range(CENTRING_STEPS):
            held = window.crop(weights[:, k : k + 1])[:, 0]  # (B, height, width)
            total = held.sum((-2, -1))
            centre = [
                torch.where(
                    total > 0,
                    window.origins[:, axis] + _centroid(held.sum(2 - axis), total),
                    centre[axis],
                )
                for axis in (0, 1)
            ]
            window = _centred(centre, spec, sides)
        windows.append(window)
    return windows


def _centred(centre: list[Tensor], spec: WindowSpec, sides: tuple[int, ...]) -> Window:
    """The window of `spec` centred on (row, column) `centre`, each (B,), inside the image."""
    top = torch.round(centre[0] - (spec.height - 1) / 2).clamp(0, sides[0] - spec.height)
    left = torch.round(centre[1] - (spec.width - 1) / 2).clamp(0, sides[1] - spec.width)
    return Window(torch.stack([top, left], 1).long(), spec.height, spec.width)


def _centroid(profile: Tensor, total: Tensor) -> Tensor:
    """(B,) weighted mean index of profile (B, N), whose sum is total (B,)."""
    coords = torch.arange(profile.shape[-1], dtype=profile.dtype, device=profile.device)
    return (profile * coords).sum(-1) / total.clamp_min(1e-12)


def shape_groups(windows: list[Window]) -> list[list[int]]:
    """Indices of the windows grouped by shape, in order: what one grouped network can run."""
    groups: dict[tuple[int, int], list[int]] = {}
    for k, window in enumerate(windows):
        groups.setdefault((window.height, window.width), []).append(k)
    return list(groups.values())
