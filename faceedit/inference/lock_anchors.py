"""A region lock keeps only the parts of its footprint that lie at the face's own features.

The parser labels by appearance, and the aligned crop of a tight photo is padded by mirroring
(faceedit.faces.align): below a chin the photo cut off lies a mirrored copy of the mouth, which
is labelled "mouth" too, so `--editable mouth` would repaint the copy as well. The alignment
puts the face's own eyes, nose and mouth at the template's landmarks: each editable region
keeps the footprint components at its anchors (points derived from those landmarks) and drops
the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

import cv2
import numpy as np

from faceedit.faces.align import REGION_LEVEL, template_landmarks

# A footprint component this close to one of a region's anchors is the region's own, besides
# the nearest one (a parse split in two: upper and lower lip apart), in eye distances.
ANCHOR_REACH: Final[float] = 0.15
# The brows' anchors: the eyes' landmarks moved up by this many eye distances.
BROW_RISE: Final[float] = 0.3


def _eye_distance(size: int) -> float:
    """The template's distance between the eyes in a size x size crop, in pixels."""
    eye_left, eye_right = template_landmarks(size)[:2]
    return float(np.hypot(*(eye_right - eye_left)))


def region_anchors(region: str, size: int) -> np.ndarray:
    """(N, 2) pixel points of a size x size aligned crop where `region` of the face lies."""
    eye_left, eye_right, nose, mouth_left, mouth_right = template_landmarks(size)
    eyes = np.stack([eye_left, eye_right])
    rise = BROW_RISE * _eye_distance(size)
    anchors: dict[str, np.ndarray] = {
        "brows": eyes - np.array([0.0, rise]),
        "eyes": eyes,
        "nose": nose[None],
        "mouth": np.stack([mouth_left, (mouth_left + mouth_right) / 2, mouth_right]),
    }
    if region not in anchors:
        raise ValueError(f"no anchors for region {region!r}")
    return anchors[region]


def keep_at_anchors(lock: np.ndarray, regions: Iterable[str]) -> np.ndarray:
    """`lock` (S, S) with its footprint (lock >= REGION_LEVEL) cut to the components at the
    anchors of `regions`: for each anchor the nearest component, and every component within
    ANCHOR_REACH of one. Below REGION_LEVEL the lock changes nothing and is left as it is."""
    footprint = (lock >= REGION_LEVEL).astype(np.uint8)
    count, labels = cv2.connectedComponents(footprint, connectivity=8)
    if count <= 2:  # background and at most one component: nothing to choose
        return lock
    size = lock.shape[-1]
    anchors = np.concatenate([region_anchors(r, size) for r in regions])
    rows, cols = np.nonzero(footprint)
    # (P, N): each footprint pixel's distance to each anchor
    distances = np.hypot(cols[:, None] - anchors[None, :, 0], rows[:, None] - anchors[None, :, 1])
    owners = labels[rows, cols]
    keep = set(owners[distances.argmin(axis=0)].tolist())
    reach = ANCHOR_REACH * _eye_distance(size)
    keep.update(owners[distances.min(axis=1) <= reach].tolist())
    dropped = (footprint > 0) & ~np.isin(labels, list(keep))
    kept: np.ndarray = np.where(dropped, 0.0, lock).astype(lock.dtype)
    return kept


def locks_at_anchors(locks: np.ndarray, editable: np.ndarray, regions: Sequence[str]) -> np.ndarray:
    """keep_at_anchors for each (S, S) lock of a batch (B, S, S), at the `regions` (the model's
    K, in order) that its row of `editable` ((K,) or (B, K) weights) leaves editable."""
    rows = np.broadcast_to(editable, (len(locks), len(regions)))
    kept = []
    for lock, row in zip(locks, rows, strict=True):
        names = [region for region, weight in zip(regions, row, strict=True) if weight > 0]
        kept.append(keep_at_anchors(lock, names) if names else lock)
    return np.stack(kept)
