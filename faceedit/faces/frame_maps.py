"""A face's parse in frame pixels: the crop's label map and soft masks warped onto the photo.

The parser sees the aligned S x S crop; the photo is often 1024 px or more, so a label map
drawn or saved at the photo's own size must be warped back. Labels are the argmax of the
bilinearly warped class probabilities (smooth boundaries, not nearest-neighbour staircases of
one crop pixel), and outside the crop every pixel is background (class 0) with masks 0.
Computed only on the frame rectangle the crop covers (docs/architecture.md §3).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import cv2
import numpy as np

from faceedit.faces.align import Alignment, crop_rectangle, warp_to_frame

# cv2.remap's maps must have fewer than 2**15 rows and columns: a list of points is laid out
# in rows of this many.
_REMAP_ROW: Final[int] = 1024
_NEIGHBOURS: Final[np.ndarray] = np.ones((3, 3), np.uint8)


def labels_to_frame(
    alignment: Alignment, probabilities: np.ndarray, frame_shape: tuple[int, ...]
) -> np.ndarray:
    """(H, W) uint8 class indices: argmax of the crop's (C, S, S) probabilities warped into the
    frame (bilinear), background (0) outside the crop."""
    labels = np.zeros(frame_shape[:2], dtype=np.uint8)
    _paint_labels(labels, alignment, probabilities)
    return labels


def masks_to_frame(
    alignment: Alignment, masks: np.ndarray, frame_shape: tuple[int, ...]
) -> np.ndarray:
    """(K, H, W) float32: the crop's (K, S, S) soft masks warped into the frame (bilinear),
    0 outside the crop."""
    out = np.zeros((len(masks), *frame_shape[:2]), dtype=np.float32)
    _paint_masks(out, alignment, masks, np.maximum)
    return out


def frame_parse(
    faces: Iterable[tuple[Alignment, np.ndarray, np.ndarray]],
    frame_shape: tuple[int, ...],
    regions: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The parse of every face, (alignment, (C, S, S) probabilities, (K, S, S) region masks),
    in one frame: (H, W) uint8 labels (a later face's crop covers an earlier one's) and
    (K, H, W) float32 region masks (their maximum)."""
    labels = np.zeros(frame_shape[:2], dtype=np.uint8)
    masks = np.zeros((regions, *frame_shape[:2]), dtype=np.float32)
    for alignment, probabilities, region_masks in faces:
        _paint_labels(labels, alignment, probabilities)
        _paint_masks(masks, alignment, region_masks, np.maximum)
    return labels, masks


def _paint_labels(labels: np.ndarray, alignment: Alignment, probabilities: np.ndarray) -> None:
    """Write the face's frame labels into `labels` where its crop covers the frame."""
    probabilities = _at_crop_size(np.asarray(probabilities, dtype=np.float32), alignment.size)
    roi = crop_rectangle(alignment, labels.shape)
    if roi is None:
        return
    rows, cols = roi
    crop_labels = probabilities.argmax(axis=0).astype(np.uint8)
    nearest = warp_to_frame(crop_labels, alignment, rows, cols, cv2.INTER_NEAREST)
    covered = warp_to_frame(
        np.ones_like(crop_labels), alignment, rows, cols, cv2.INTER_NEAREST
    ).astype(bool)
    # Where a crop pixel's 3x3 neighbourhood holds one class, every bilinear mix of its
    # neighbours' probabilities has that class as its argmax too (a convex combination keeps a
    # shared maximum), so nearest-neighbour is exact there; only the band along class
    # boundaries needs the warped probabilities.
    mixed = cv2.dilate(crop_labels, _NEIGHBOURS) != cv2.erode(crop_labels, _NEIGHBOURS)
    band = warp_to_frame(mixed.astype(np.uint8), alignment, rows, cols, cv2.INTER_NEAREST)
    ys, xs = np.nonzero(band)
    if len(ys):
        m = alignment.matrix
        fx, fy = xs + cols.start, ys + rows.start
        crop_x = (m[0, 0] * fx + m[0, 1] * fy + m[0, 2]).astype(np.float32)
        crop_y = (m[1, 0] * fx + m[1, 1] * fy + m[1, 2]).astype(np.float32)
        sampled = _sample(np.ascontiguousarray(probabilities.transpose(1, 2, 0)), crop_x, crop_y)
        nearest[ys, xs] = sampled.argmax(axis=1).astype(np.uint8)
    region = labels[rows, cols]
    region[covered] = nearest[covered]


def _paint_masks(
    out: np.ndarray, alignment: Alignment, masks: np.ndarray, combine: np.ufunc
) -> None:
    masks = _at_crop_size(np.asarray(masks, dtype=np.float32), alignment.size)
    roi = crop_rectangle(alignment, out.shape[1:])
    if roi is None:
        return
    rows, cols = roi
    for k, mask in enumerate(masks):
        warped = warp_to_frame(mask, alignment, rows, cols, cv2.INTER_LINEAR)
        combine(out[k, rows, cols], warped, out=out[k, rows, cols])


def _at_crop_size(maps: np.ndarray, size: int) -> np.ndarray:
    """(N, h, w) maps resized (bilinear) to the alignment's (N, size, size) when they differ."""
    if maps.ndim != 3:
        raise ValueError(f"expected (N, H, W) maps, got shape {maps.shape}")
    if maps.shape[1:] == (size, size):
        return maps
    return np.stack([cv2.resize(m, (size, size), interpolation=cv2.INTER_LINEAR) for m in maps])


def _sample(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """(N, C) bilinear samples of an (S, S, C) float32 image at N points; 0 outside it."""
    count = len(xs)
    rows = -(-count // _REMAP_ROW)
    map_x = np.full(rows * _REMAP_ROW, -10.0, dtype=np.float32)
    map_y = np.full(rows * _REMAP_ROW, -10.0, dtype=np.float32)
    map_x[:count], map_y[:count] = xs, ys
    sampled = cv2.remap(
        image,
        map_x.reshape(rows, _REMAP_ROW),
        map_y.reshape(rows, _REMAP_ROW),
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    out: np.ndarray = sampled.reshape(rows * _REMAP_ROW, -1)[:count]
    return out
