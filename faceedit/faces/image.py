"""Images as arrays: any image-like numpy array -> a contiguous (H, W, 3) uint8 RGB array.

Colour order: every array in faceedit's API is RGB. numpy arrays do not record their channel
order, so this is a contract, not a check: `faceedit.media.sources.read_image` and every frame
source return RGB, and every cv2 call in faceedit converts explicitly.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from faceedit.errors import InputError

MIN_IMAGE_SIDE: Final[int] = 16


def as_rgb_uint8(image: Any, *, source: str = "image") -> np.ndarray:
    """The image as a contiguous (H, W, 3) uint8 RGB array, or an InputError naming `source`.

    Accepted: grayscale (H, W) or (H, W, 1), gray + alpha (H, W, 2), RGB (H, W, 3) and RGBA
    (H, W, 4) in uint8, uint16 (divided by 257, rounded) or float in [0, 1] (times 255,
    rounded). Alpha is composited onto white, which is how image viewers show transparent
    images. An array that needs no conversion is returned as is (not copied).
    """
    if not isinstance(image, np.ndarray):
        raise InputError(f"{source}: expected a numpy array, got {type(image).__name__}")
    if image.dtype == np.bool_:
        raise InputError(
            f"{source}: a boolean array is a mask, not an image; "
            "convert it with .astype(np.uint8) * 255 if you meant black and white"
        )
    if image.ndim not in (2, 3):
        hint = " (a batch of images? pass them one at a time)" if image.ndim == 4 else ""
        raise InputError(
            f"{source}: expected an (H, W) or (H, W, C) image, got shape {image.shape}{hint}"
        )
    if image.size == 0:
        raise InputError(f"{source}: the image is empty (shape {image.shape})")
    height, width = image.shape[:2]
    if height < MIN_IMAGE_SIDE or width < MIN_IMAGE_SIDE:
        raise InputError(
            f"{source}: the image is only {width}x{height} pixels; faceedit needs at least "
            f"{MIN_IMAGE_SIDE} pixels on each side (and a face of about 40 pixels or more)"
        )
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels > 4:
        raise InputError(
            f"{source}: {channels} channels; expected 1 (gray), 2 (gray + alpha), 3 (RGB) "
            "or 4 (RGBA)"
        )
    pixels = _to_uint8(image, source)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if channels in (2, 4):
        pixels = _composite_on_white(pixels)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels)


def _to_uint8(image: np.ndarray, source: str) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(image.dtype, np.floating):
        if not np.all(np.isfinite(image)):
            raise InputError(f"{source}: the float image contains NaN or infinite values")
        low, high = float(image.min()), float(image.max())
        if low < -1e-3 or high > 1 + 1e-3:
            raise InputError(
                f"{source}: float images must lie in [0, 1], this one spans "
                f"[{low:.3g}, {high:.3g}]; divide by 255 if it holds 0..255 values"
            )
        scaled: np.ndarray = np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)
        return scaled
    raise InputError(
        f"{source}: unsupported pixel type {image.dtype}; use uint8, uint16 or float in [0, 1] "
        "(for 0..255 integers, convert with .astype(np.uint8))"
    )


def _composite_on_white(pixels: np.ndarray) -> np.ndarray:
    """(H, W, C+1) uint8 with alpha last -> (H, W, C) composited onto white."""
    colour = pixels[:, :, :-1].astype(np.uint16)
    alpha = pixels[:, :, -1:].astype(np.uint16)
    # c * a / 255 + 255 * (1 - a / 255), rounded, in integers.
    blended = (colour * alpha + 255 * (255 - alpha) + 127) // 255
    return blended.astype(np.uint8)
