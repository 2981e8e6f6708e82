"""Saving what the window shows: the edited frame and the masks as PNG files, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from faceedit.errors import InputError
from faceedit.fileio import atomic_write_bytes
from faceedit.ui.overlay import mask_images


def encode_png(image: np.ndarray) -> bytes:
    """(H, W, 3) RGB or (H, W) grey uint8 -> PNG bytes."""
    pixels = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    ok, data = cv2.imencode(".png", np.ascontiguousarray(pixels))
    if not ok:
        raise InputError(f"could not encode a {image.shape} image as PNG")
    return data.tobytes()


def save_png(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write `image` to `path` (a .png is appended when the name has no image extension)."""
    target = Path(path).expanduser()
    if target.suffix.lower() != ".png":
        target = target.with_name(target.name + ".png")
    if not target.parent.is_dir():
        raise InputError(f"{target}: the folder {target.parent} does not exist")
    try:
        return atomic_write_bytes(target, encode_png(image))
    except OSError as error:
        raise InputError(f"{target}: cannot write the file ({error.strerror or error})") from None


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
