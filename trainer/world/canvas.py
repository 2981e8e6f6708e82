"""Pixel grids in a face's own coordinates, signed distances and anti-aliased painting.

A face is drawn in its *face frame*: the coordinates of an upright face in a unit crop, where
faceedit's aligned-crop template puts the eyes, nose tip and mouth corners. A `Placement` (small
rotation, scale and shift, one per identity) maps that frame into the image, so every rendering of
one identity is warped identically and stays pixel-aligned with the others.

Shapes are signed distances d (negative inside, in face-frame units); their coverage of a pixel is
a smoothstep of d over one pixel, so image edges are anti-aliased, while the label map takes, per
pixel, the topmost shape covering at least half of it (the per-pixel argmax class).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

# The point the placement rotates and scales about: the centre of the aligned-crop template.
PLACEMENT_CENTRE: Final[tuple[float, float]] = (0.5, 0.53)
# Pixels added around each painted window, so anti-aliased and blurred edges are never clipped.
WINDOW_PAD: Final[int] = 2
Window = tuple[slice, slice]


@dataclass(frozen=True)
class Placement:
    """Similarity from the face frame to crop units: rotation (radians), scale, shift."""

    angle: float = 0.0
    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)

    def matrix(self) -> np.ndarray:
        """(2, 3) float64 affine taking face-frame points to crop units."""
        cos, sin = math.cos(self.angle) * self.scale, math.sin(self.angle) * self.scale
        linear = np.array([[cos, -sin], [sin, cos]])
        centre = np.asarray(PLACEMENT_CENTRE)
        offset = centre + np.asarray(self.shift) - linear @ centre
        return np.concatenate([linear, offset[:, None]], axis=1)

    def to_pixels(self, points: np.ndarray, size: int) -> np.ndarray:
        """(N, 2) face-frame points -> pixel coordinates (pixel centres at integers), float64."""
        matrix = self.matrix()
        crop = np.asarray(points, dtype=np.float64) @ matrix[:, :2].T + matrix[:, 2]
        return crop * size - 0.5


def smoothstep(t: np.ndarray) -> np.ndarray:
    """3t^2 - 2t^3 of t clipped to [0, 1]."""
    # minimum/maximum, not np.clip: its Python wrapper costs more than the arithmetic here.
    t = np.maximum(np.minimum(t, 1.0), 0.0)
    return t * t * (3.0 - 2.0 * t)


class Canvas:
    """An RGB float image in [0, 1] (H, W, 3), its label map and its face-frame grid X, Y."""

    def __init__(self, size: int, placement: Placement) -> None:
        self.size = size
        self.placement = placement
        matrix = placement.matrix()
        inverse = np.linalg.inv(matrix[:, :2])
        centres = (np.arange(size, dtype=np.float64) + 0.5) / size
        ux = centres[None, :] - matrix[0, 2]
        uy = centres[:, None] - matrix[1, 2]
        self.x = (inverse[0, 0] * ux + inverse[0, 1] * uy).astype(np.float32)
        self.y = (inverse[1, 0] * ux + inverse[1, 1] * uy).astype(np.float32)
        # One pixel in face-frame units: the width over which edges are smoothed.
        self.pixel = 1.0 / (size * placement.scale)
        self.color = np.zeros((size, size, 3), dtype=np.float32)
        self.labels = np.zeros((size, size), dtype=np.uint8)
        # Face frame -> pixel coordinates, as nested tuples of floats.
        pixel = matrix * size
        pixel[:, 2] -= 0.5
        self._pixel_matrix = tuple(tuple(float(v) for v in row) for row in pixel)

    def window(self, x0: float, y0: float, x1: float, y1: float) -> Window | None:
        """The pixel window holding the face-frame box [x0, x1] x [y0, y1]; None when off-image."""
        # Plain floats: called a few dozen times per rendering, where numpy's overhead dominates.
        (a, b, tx), (c, d, ty) = self._pixel_matrix
        xs = (a * x0 + b * y0, a * x1 + b * y0, a * x0 + b * y1, a * x1 + b * y1)
        ys = (c * x0 + d * y0, c * x1 + d * y0, c * x0 + d * y1, c * x1 + d * y1)
        left = max(0, math.floor(min(xs) + tx) - WINDOW_PAD)
        top = max(0, math.floor(min(ys) + ty) - WINDOW_PAD)
        right = min(self.size, math.ceil(max(xs) + tx) + WINDOW_PAD + 1)
        bottom = min(self.size, math.ceil(max(ys) + ty) + WINDOW_PAD + 1)
        if right <= left or bottom <= top:
            return None
        return slice(top, bottom), slice(left, right)

    def full(self) -> Window:
        return slice(0, self.size), slice(0, self.size)

    def grid(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Face-frame coordinates (X, Y) of the window's pixel centres."""
        return self.x[window], self.y[window]

    def coverage(self, distance: np.ndarray, softness: float = 1.0) -> np.ndarray:
        """How much of each pixel a shape with signed distance `distance` covers, in [0, 1];
        `softness` widens the ramp (in pixels) for soft shading such as folds and blush."""
        return smoothstep(0.5 - distance / (self.pixel * softness))

    def paint(
        self,
        window: Window,
        alpha: np.ndarray,
        color: np.ndarray | tuple[float, float, float],
        label: int | None = None,
    ) -> None:
        composite(self.color, self.labels, window, alpha, color, label)


def composite(
    image: np.ndarray,
    labels: np.ndarray,
    window: Window,
    alpha: np.ndarray,
    color: np.ndarray | tuple[float, float, float],
    label: int | None = None,
) -> None:
    """Composite `color` over `image`'s window with per-pixel `alpha`, in place; pixels covered
    at least half take `label` in `labels` (None: shading that leaves the labels alone)."""
    region = image[window]
    region += alpha[..., None] * (np.asarray(color, dtype=np.float32) - region)
    if label is not None:
        labels[window][alpha >= 0.5] = label


# ------------------------------------------------------------------------ signed distances


def ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipse (exact on circles)."""
    dx, dy = (x - cx) / rx, (y - cy) / ry
    return (np.sqrt(dx * dx + dy * dy) - 1.0) * min(rx, ry)


def superellipse(
    x: np.ndarray, y: np.ndarray, cx: float, cy: float, rx: float, ry: float, power: float
) -> np.ndarray:
    """Approximate signed distance to |dx/rx|^p + |dy/ry|^p = 1 (p = 2: ellipse; larger: boxier)."""
    dx, dy = np.abs((x - cx) / rx), np.abs((y - cy) / ry)
    radius = (dx**power + dy**power) ** (1.0 / power)
    return (radius - 1.0) * min(rx, ry)


def box(x: np.ndarray, y: np.ndarray, cx: float, cy: float, hx: float, hy: float) -> np.ndarray:
    """Signed distance (Chebyshev) to an axis-aligned rectangle of half-sizes hx, hy."""
    return np.maximum(np.abs(x - cx) - hx, np.abs(y - cy) - hy)


def segment(
    x: np.ndarray, y: np.ndarray, a: tuple[float, float], b: tuple[float, float], radius: float
) -> np.ndarray:
    """Signed distance to a capsule: the segment a-b thickened by `radius`."""
    ax, ay = a
    bx, by = b
    vx, vy = bx - ax, by - ay
    t = np.clip(((x - ax) * vx + (y - ay) * vy) / max(vx * vx + vy * vy, 1e-12), 0.0, 1.0)
    px, py = x - ax - t * vx, y - ay - t * vy
    return np.sqrt(px * px + py * py) - radius


def between(top: np.ndarray, bottom: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed (vertical) distance to the band top <= y <= bottom; empty where bottom <= top."""
    return np.maximum(top - y, y - bottom)
