"""Writing images: the one encoder and atomic writer behind every PNG or JPEG faceedit saves.

The command line, the window's Save buttons and the trainer's evaluation grid all write through
here, so every image file is encoded alike (RGB arrays in, the right channel order on disk),
written atomically with ordinary permissions (faceedit.fileio), and fails with an InputError
that names the file. No torch and no Qt: numpy arrays in, files out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import cv2
import numpy as np

from faceedit.errors import InputError
from faceedit.fileio import atomic_write_bytes

PNG: Final[str] = ".png"
# What OpenCV encodes everywhere faceedit runs; others (.webp, .tiff) depend on the build.
WRITABLE_SUFFIXES: Final[frozenset[str]] = frozenset({".png", ".jpg", ".jpeg", ".bmp"})
# Extensions that name an image file, whether or not this build can write them.
IMAGE_SUFFIXES: Final[frozenset[str]] = WRITABLE_SUFFIXES | {".tif", ".tiff", ".webp"}


JPEG_SUFFIXES: Final[frozenset[str]] = frozenset({".jpg", ".jpeg"})
DEFAULT_JPEG_QUALITY: Final[int] = 95  # OpenCV's own default


def encode_image(image: np.ndarray, suffix: str = PNG, quality: int | None = None) -> bytes:
    """(H, W, 3) RGB or (H, W) grey uint8 -> the bytes of an image file of type `suffix`;
    `quality` (1-100) for JPEG, ignored for the lossless formats."""
    params: list[int] = []
    if quality is not None and suffix.lower() in JPEG_SUFFIXES:
        params = [cv2.IMWRITE_JPEG_QUALITY, min(max(int(quality), 1), 100)]
    if image.dtype != np.uint8 or not (
        image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)
    ):
        raise InputError(
            f"cannot encode an image of shape {image.shape} and type {image.dtype}; "
            "expected (H, W, 3) RGB or (H, W) grey uint8"
        )
    pixels = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    try:
        ok, data = cv2.imencode(suffix.lower(), np.ascontiguousarray(pixels), params)
    except cv2.error:
        ok = False
    if not ok:
        raise InputError(
            f"OpenCV cannot encode {suffix} images; use one of {', '.join(sorted(WRITABLE_SUFFIXES))}"
        )
    return data.tobytes()


def encode_png(image: np.ndarray) -> bytes:
    """(H, W, 3) RGB or (H, W) grey uint8 -> PNG bytes (lossless: grey values read back exactly)."""
    return encode_image(image, PNG)


def save_image(path: str | os.PathLike[str], image: np.ndarray, quality: int | None = None) -> Path:
    """Write `image` to `path` atomically, encoded by the path's extension; returns the path.

    Missing parent folders are created. An unknown extension is an InputError, a path that cannot
    be written (a read-only folder, a full disk, a folder of that name) an OutputError, both
    naming the file.
    """
    target = Path(path).expanduser()
    try:
        data = encode_image(image, target.suffix or PNG, quality)
    except InputError as error:
        raise InputError(f"{target}: {error}") from None
    return atomic_write_bytes(target, data)  # an OutputError names the file and the reason


def save_png(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write `image` as PNG; `.png` is appended when the name does not already end in it."""
    target = Path(path).expanduser()
    if target.suffix.lower() != PNG:
        target = target.with_name(target.name + PNG)
    return save_image(target, image)
