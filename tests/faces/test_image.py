"""faceedit.faces.image: conversion of image-like arrays to (H, W, 3) uint8 RGB."""

from __future__ import annotations

import numpy as np
import pytest

from faceedit.errors import InputError
from faceedit.faces.image import as_rgb_uint8


def test_conversions_to_rgb_uint8() -> None:
    gray = np.arange(32 * 32, dtype=np.uint8).reshape(32, 32)
    rgb = as_rgb_uint8(gray)
    assert rgb.shape == (32, 32, 3) and np.array_equal(rgb[..., 1], gray)
    assert as_rgb_uint8(gray[:, :, None]).shape == (32, 32, 3)

    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:10, :, 3] = 255  # top half opaque red, bottom half fully transparent
    out = as_rgb_uint8(rgba)
    assert out[0, 0].tolist() == [200, 0, 0] and out[-1, -1].tolist() == [255, 255, 255]

    deep = np.full((16, 16, 3), 257 * 100, dtype=np.uint16)
    deep[0, 0] = [0, 65535, 257 * 100 + 128]
    out = as_rgb_uint8(deep)
    assert out[0, 0].tolist() == [0, 255, 100] and out[5, 5, 0] == 100

    floats = np.full((16, 16, 3), 0.5, dtype=np.float32)
    assert as_rgb_uint8(floats)[0, 0].tolist() == [128, 128, 128]

    ready = np.zeros((16, 16, 3), dtype=np.uint8)
    assert as_rgb_uint8(ready) is ready


@pytest.mark.parametrize(
    ("array", "words"),
    [
        (np.zeros((1, 1, 3), np.uint8), "1x1 pixels"),
        (np.zeros((2, 32, 32, 3), np.uint8), "one at a time"),
        (np.zeros((32, 32), bool), "boolean"),
        (np.full((32, 32, 3), np.nan, np.float32), "NaN"),
        (np.full((32, 32, 3), 200.0), "divide by 255"),
        (np.zeros((32, 32, 5), np.uint8), "5 channels"),
        (np.zeros((0, 32, 3), np.uint8), "empty"),
        (np.zeros((32, 32, 3), np.int64), "int64"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
)
def test_bad_arrays_are_refused_with_a_reason(array: object, words: str) -> None:
    with pytest.raises(InputError, match=words) as raised:
        as_rgb_uint8(array, source="my_frame")
    assert "my_frame" in str(raised.value)
