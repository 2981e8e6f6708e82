"""Saving the masks the window shows as PNG files (the frame itself: faceedit.media.images)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from faceedit.media.images import save_png
from faceedit.ui.overlay import mask_images


def save_masks(
    path: str | os.PathLike[str],
    labels: np.ndarray,
    region_masks: np.ndarray,
    regions: tuple[str, ...],
) -> list[Path]:
    """Write STEM_parsing.png (coloured classes), STEM_labels.png (class indices 0..18) and
    STEM_mask_REGION.png (soft region masks, 255 = inside) beside `path`; returns the files."""
    base = Path(path).expanduser()
    stem = base.stem if base.suffix.lower() == ".png" else base.name
    return [
        save_png(base.with_name(f"{stem}_{suffix}.png"), image)
        for suffix, image in mask_images(labels, region_masks, regions).items()
    ]
