"""Mask files: the one naming and meaning of the parse images faceedit writes.

`faceedit edit --save-masks` and the window's Save masks both write, beside an image NAME.EXT
and at that image's own size (the parse of the aligned crop warped onto the photo,
faceedit.faces.frame_maps; class 0 and mask 0 outside every processed face):

  NAME_labels.png        one channel uint8: the class index 0..18 of every pixel, in
                         faceedit.vocab.labels.CLASS_NAMES order (0 = background). PNG is
                         lossless, so `read_labels` (or cv2.IMREAD_UNCHANGED) gives the exact
                         classes back: this is the file to compute with.
  NAME_labels_color.png  the same map in the faceedit.vocab.labels colours (RGB), to look at.
  NAME_mask_REGION.png   one channel uint8 per expression region (brows, eyes, nose, mouth):
                         the soft region mask, 255 = fully inside.

No torch and no Qt: numpy arrays in, files out through faceedit.media.images.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import cv2
import numpy as np

from faceedit.errors import InputError
from faceedit.fileio import check_output_file
from faceedit.media.images import IMAGE_SUFFIXES, save_png
from faceedit.vocab.labels import NUM_CLASSES, palette

LABELS: Final[str] = "labels"
LABELS_COLOR: Final[str] = "labels_color"
REGION_PREFIX: Final[str] = "mask_"
# cv2.LUT wants a 256-entry table; a lookup is ~4x faster than numpy fancy indexing, and the
# window colours a label map for every shown frame.
_COLOUR_LUT: Final[np.ndarray] = np.zeros((256, 1, 3), dtype=np.uint8)
_COLOUR_LUT[:NUM_CLASSES, 0] = palette()


def colorize(labels: np.ndarray) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) uint8 RGB in the class colours."""
    if labels.ndim != 2:
        raise ValueError(f"a label map is (H, W), got shape {labels.shape}")
    index = np.ascontiguousarray(np.minimum(labels, NUM_CLASSES - 1), dtype=np.uint8)
    return cv2.LUT(cv2.merge([index, index, index]), _COLOUR_LUT)


def mask_to_uint8(mask: np.ndarray) -> np.ndarray:
    """Soft mask in [0, 1] -> uint8 grey (255 = fully inside)."""
    grey: np.ndarray = np.round(np.clip(mask, 0.0, 1.0) * 255.0).astype(np.uint8)
    return grey


def mask_paths(output: str | os.PathLike[str], regions: Sequence[str]) -> dict[str, Path]:
    """The files written beside `output`, by key: "labels", "labels_color", then each region.

    NAME is `output` without its image extension (photo.jpg -> photo_labels.png); a name without
    one is kept whole.
    """
    base = Path(output).expanduser()
    stem = base.stem if base.suffix.lower() in IMAGE_SUFFIXES else base.name
    paths = {key: base.with_name(f"{stem}_{key}.png") for key in (LABELS, LABELS_COLOR)}
    paths.update({r: base.with_name(f"{stem}_{REGION_PREFIX}{r}.png") for r in regions})
    return paths


def mask_images(
    labels: np.ndarray, region_masks: np.ndarray, regions: Sequence[str]
) -> dict[str, np.ndarray]:
    """The images of `mask_paths`, by the same keys, from (H, W) class indices and (K, H, W)
    soft region masks in [0, 1]."""
    if labels.ndim != 2:
        raise ValueError(f"a label map is (H, W), got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError(f"class indices must lie in 0..{NUM_CLASSES - 1}, got {labels.max()}")
    if region_masks.shape[0] != len(regions):
        raise ValueError(
            f"{region_masks.shape[0]} region masks for {len(regions)} regions {tuple(regions)}"
        )
    images = {LABELS: labels.astype(np.uint8), LABELS_COLOR: colorize(labels)}
    for name, mask in zip(regions, region_masks, strict=True):
        images[name] = mask_to_uint8(mask)
    return images


def save_masks(
    output: str | os.PathLike[str],
    labels: np.ndarray,
    region_masks: np.ndarray,
    regions: Sequence[str],
) -> list[Path]:
    """Write the label, colour and region PNGs beside `output`, atomically; returns the files."""
    paths = mask_paths(output, regions)
    images = mask_images(labels, region_masks, regions)
    for path in paths.values():  # all or none: a clash with the third file stops the first
        check_output_file(path, "mask file")
    return [save_png(paths[key], image) for key, image in images.items()]


def read_labels(path: str | os.PathLike[str]) -> np.ndarray:
    """(H, W) uint8 class indices from a NAME_labels.png, refusing a file that is not one."""
    file = Path(path)
    labels = cv2.imread(str(file), cv2.IMREAD_UNCHANGED) if file.is_file() else None
    if labels is None:
        raise InputError(f"{file}: not a readable PNG; expected a NAME_labels.png class map")
    if labels.ndim != 2 or labels.dtype != np.uint8 or labels.max(initial=0) >= NUM_CLASSES:
        raise InputError(
            f"{file}: not a class map (shape {labels.shape}, {labels.dtype}); expected one "
            f"uint8 channel of class indices 0..{NUM_CLASSES - 1}, as in NAME_labels.png "
            "(NAME_labels_color.png is the coloured picture of it)"
        )
    return labels
