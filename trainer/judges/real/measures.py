"""Pure measurements on photos and label maps: what changed where, colour, and parse scores.

Images are (H, W, 3) uint8 RGB; masks (H, W) bool. Changes are in grey levels (0-255).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import cv2
import numpy as np

from trainer.data.facial_expressions import is_greyscale
from trainer.judges.metrics import confusion_matrix

IGNORE: Final[int] = 255  # unlabelled pixels of the landmark label maps


def face_mask(points: np.ndarray, shape: tuple[int, ...], grow: float = 0.15) -> np.ndarray:
    """(H, W) bool: the convex hull of a face's 68 landmarks (jaw to brows) in an image of
    `shape`, grown by `grow` eye distances so the face's own edges count as face."""
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    mask = np.zeros(shape[:2], dtype=np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)
    eyes = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
    reach = round(grow * float(np.hypot(*(eyes[1] - eyes[0]))))
    if reach > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
        return np.asarray(cv2.dilate(mask, kernel), dtype=bool)
    return mask.astype(bool)


def mean_change(before: np.ndarray, after: np.ndarray, where: np.ndarray) -> float:
    """Mean absolute change over the channels and the pixels of `where`, grey levels (0 when
    `where` is empty)."""
    if not where.any():
        return 0.0
    diff = np.abs(after.astype(np.int16) - before.astype(np.int16)).mean(axis=2)
    return float(diff[where].mean())


def changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels whose value changed in any channel."""
    return np.asarray((before != after).any(axis=2))


def channel_spread(image: np.ndarray, where: np.ndarray | None = None) -> float:
    """Mean over pixels of max - min over the channels, grey levels: 0 for a grey photo."""
    pixels = image.astype(np.int16)
    spread = pixels.max(axis=2) - pixels.min(axis=2)
    return float(spread.mean() if where is None else spread[where].mean())


def white_balance(image: np.ndarray) -> np.ndarray:
    """(3,) each channel's mean minus the mean over channels, grey levels (grey-world)."""
    means = image.reshape(-1, 3).astype(np.float64).mean(axis=0)
    balance: np.ndarray = means - means.mean()
    return balance


def balance_shift(before: np.ndarray, after: np.ndarray) -> float:
    """Largest change of any channel's white balance (`white_balance`), grey levels."""
    return float(np.abs(white_balance(after) - white_balance(before)).max())


def stays_grey(before: np.ndarray, after: np.ndarray) -> bool | None:
    """Whether a greyscale photo stays greyscale; None when `before` is not greyscale."""
    if not is_greyscale(before):
        return None
    return is_greyscale(after)


def share_inside(footprint: np.ndarray, region: np.ndarray, band: int = 0) -> float | None:
    """Share of the `footprint` pixels that lie in `region` grown by `band` pixels; None when
    the footprint is empty."""
    total = int(footprint.sum())
    if total == 0:
        return None
    grown = region
    if band > 0:
        kernel = np.ones((2 * band + 1, 2 * band + 1), np.uint8)
        grown = cv2.dilate(region.astype(np.uint8), kernel).astype(bool)
    return float((footprint & grown).sum() / total)


def labelled_confusion(prediction: np.ndarray, truth: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts of a predicted label map against a landmark label map, IGNORE skipped."""
    return confusion_matrix(prediction, truth, num_classes, ignore_index=IGNORE)


def labelled_iou(matrix: np.ndarray) -> dict[int, float]:
    """Class -> IoU for every class present in the truth (a row with pixels): the classes the
    labels name. A class predicted on unlabelled-class pixels counts as their error."""
    matrix = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(matrix)
    truth = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    return {
        int(c): float(tp[c] / (truth[c] + predicted[c] - tp[c])) for c in np.flatnonzero(truth > 0)
    }


def mean_iou(ious: dict[int, float]) -> float | None:
    """Mean of per-class IoUs, None when there are none."""
    return float(np.mean(list(ious.values()))) if ious else None


def spread_indices(count: int, limit: int | None) -> list[int]:
    """`limit` indices spread evenly over range(count) (all of them without a limit): a sample
    that reaches every identity of a sorted file list, not the first names alphabetically."""
    if limit is None or limit >= count:
        return list(range(count))
    if limit <= 0:
        return []
    return sorted({round(float(v)) for v in np.linspace(0, count - 1, limit)})


def fraction(flags: Sequence[bool]) -> float | None:
    """Share of True, None for no values."""
    return float(np.mean(flags)) if len(flags) else None
