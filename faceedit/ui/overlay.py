"""Segmentation overlays and mask images, drawn with numpy alone so they are fast and testable.

The widgets only turn the arrays made here into pixmaps; every pixel decision (which classes,
how opaque, filled or outlined) lives in these pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

import cv2
import numpy as np

from faceedit.media.masks import colorize, mask_to_uint8
from faceedit.vocab.labels import CLASS_NAMES, NUM_CLASSES, REGION_GROUPS, palette

OverlayMode = Literal["filled", "outline"]
OVERLAY_MODES: Final[tuple[OverlayMode, ...]] = ("filled", "outline")
# Background and skin cover most of a crop; showing them by default would hide the face.
HIDDEN_BY_DEFAULT: Final[frozenset[int]] = frozenset({0, 1})


def _default_visible() -> tuple[bool, ...]:
    return tuple(i not in HIDDEN_BY_DEFAULT for i in range(NUM_CLASSES))


@dataclass(frozen=True)
class OverlaySettings:
    """What the overlay shows: one visibility flag per class, the opacity and the drawing mode."""

    visible: tuple[bool, ...] = field(default_factory=_default_visible)
    opacity: float = 0.5
    mode: OverlayMode = "filled"
    enabled: bool = True

    def __post_init__(self) -> None:
        if len(self.visible) != NUM_CLASSES:
            raise ValueError(f"visible needs {NUM_CLASSES} flags, got {len(self.visible)}")
        if not 0.0 <= self.opacity <= 1.0:
            raise ValueError(f"opacity must be in [0, 1], got {self.opacity}")
        if self.mode not in OVERLAY_MODES:
            raise ValueError(f"mode must be one of {OVERLAY_MODES}, got {self.mode!r}")

    def with_classes(self, classes: tuple[int, ...] | range, shown: bool) -> OverlaySettings:
        """A copy with the given classes shown or hidden."""
        flags = list(self.visible)
        for c in classes:
            flags[c] = shown
        return OverlaySettings(tuple(flags), self.opacity, self.mode, self.enabled)


def boundaries(labels: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels whose right or lower neighbour has another class (1-pixel outlines)."""
    edge = np.zeros(labels.shape, dtype=bool)
    horizontal = labels[:, 1:] != labels[:, :-1]
    vertical = labels[1:, :] != labels[:-1, :]
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    return edge


def render_overlay(image: np.ndarray, labels: np.ndarray, settings: OverlaySettings) -> np.ndarray:
    """Blend the class colours of the visible classes over `image` (H, W, 3 uint8 RGB).

    `labels` may be smaller or larger than the image (a crop-size parse over a display-size
    crop); it is resized by nearest neighbour so class borders stay crisp. Runs once per shown
    frame in the GUI thread, so it stays in whole-image vectorised operations (~1 ms at 256 px).
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    labels = resize_nearest(labels, image.shape[:2])
    out = image.copy()
    if not settings.enabled or settings.opacity == 0.0:
        return out
    labels = np.ascontiguousarray(np.minimum(labels, NUM_CLASSES - 1), dtype=np.uint8)
    table = np.zeros(256, dtype=np.uint8)
    table[:NUM_CLASSES] = np.asarray(settings.visible, dtype=np.uint8) * 255
    shown = cv2.LUT(labels, table)  # (H, W) 255 where the class is visible
    if settings.mode == "outline":
        shown[~boundaries(labels)] = 0
    if not shown.any():
        return out
    alpha = settings.opacity
    blended = cv2.addWeighted(image, 1.0 - alpha, colorize(labels), alpha, 0.0)
    cv2.copyTo(blended, shown, out)
    return out


def resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize the first two axes of `array` to `size` (H, W) by nearest neighbour (pixel centres)."""
    if array.shape[:2] == tuple(size):
        return array
    return cv2.resize(array, (size[1], size[0]), interpolation=cv2.INTER_NEAREST_EXACT)


def attention_image(attention: np.ndarray) -> np.ndarray:
    """(H, W) attention in [0, 1] (1 keeps the input pixel) -> (H, W, 3) uint8; edited = bright."""
    grey = mask_to_uint8(1.0 - attention)
    return np.repeat(grey[:, :, None], 3, axis=2)


def legend_entries() -> list[tuple[int, str, tuple[int, int, int]]]:
    """(class index, name, RGB colour) for every class, in label order."""
    colours = palette()
    return [
        (i, name, (int(colours[i][0]), int(colours[i][1]), int(colours[i][2])))
        for i, name in enumerate(CLASS_NAMES)
    ]


def group_classes() -> dict[str, tuple[int, ...]]:
    """Region groups for the legend: the expression regions, then every other face class."""
    grouped = {c for classes in REGION_GROUPS.values() for c in classes}
    rest = tuple(i for i in range(1, NUM_CLASSES) if i not in grouped)
    return {**REGION_GROUPS, "other": rest}
