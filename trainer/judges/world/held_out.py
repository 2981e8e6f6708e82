"""The held-out identities a world is scored on, and the fixed pixels its identity error reads.

Every model is scored on the same edits and the same pixels. The identity error, |edit - input|,
is read over two pixel sets that do not depend on the model: the face outside every model's
possible edit regions, and the background. Those regions are covered by the union, for source
and target rendering, of the true brow, eye, nose and mouth classes grown by the world's blur
reach (BLUR_REACH), which soft-mask models aim at, and the keypoint boxes of the true
landmarks, which box models edit; a model without regions is scored on the same pixels.
(Measuring each model outside its own regions would score models over different pixels.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import cv2
import numpy as np
import torch

from faceedit.errors import DatasetError
from faceedit.model.regions import box_region_masks
from faceedit.vocab.expressions import EXPRESSIONS
from faceedit.vocab.labels import CLASS_INDEX, REGION_GROUPS, region_classes
from trainer.judges.world.renderings import (
    Rendering,
    held_out_identities,
    load_crop,
    world_landmarks,
    world_size,
)

# Classes that are not part of the face: what a local expression edit must leave alone.
OUTSIDE_FACE: Final[tuple[str, ...]] = ("background", "neck", "neck_l", "cloth", "hair", "hat")
BLUR_REACH: Final[int] = 3  # px a changed part's blur reaches in the world (docs/world.md)
ALL_SOURCES: Final[tuple[int, ...]] = tuple(range(len(EXPRESSIONS)))

Key = tuple[str, int]  # (identity, expression)
PairKey = tuple[str, int, int]  # (identity, source, target)


@dataclass(frozen=True)
class HeldOut:
    """Held-out identities, each rendered in every expression: crops at `size`, their 5
    alignment points, and per (identity, source, target) the (face, background) pixels the
    identity error is read over, (S, S) bool each."""

    world: Path
    size: int
    table: Mapping[str, Mapping[int, Rendering]]
    crops: Mapping[Key, np.ndarray]
    points: Mapping[Key, np.ndarray]
    identity_pixels: Mapping[PairKey, tuple[np.ndarray, np.ndarray]]

    def pairs(self, target: int, sources: Sequence[int] = ALL_SOURCES) -> list[Key]:
        """(identity, source) of every edit towards `target`, in scoring order."""
        return [(ident, s) for ident in self.table for s in sources if s != target]

    def pixel_shares(self) -> tuple[float, float]:
        """The mean share of the crop the face and the background pixels cover."""
        face = np.mean([f.mean() for f, _ in self.identity_pixels.values()])
        background = np.mean([b.mean() for _, b in self.identity_pixels.values()])
        return float(face), float(background)


def load_held_out(world: Path, identities: int) -> HeldOut:
    """The first `identities` held-out identities of `world` at the world's size."""
    world = Path(world)
    size = world_size(world)
    table = held_out_identities(world, identities)
    if not table:
        raise DatasetError(f"{world} has no held-out identity rendered in all expressions")
    marks = world_landmarks(world)
    outside = [CLASS_INDEX[name] for name in OUTSIDE_FACE]
    crops: dict[Key, np.ndarray] = {}
    points: dict[Key, np.ndarray] = {}
    zones: dict[Key, np.ndarray] = {}
    not_face: dict[Key, np.ndarray] = {}
    for ident, renders in table.items():
        for e, row in renders.items():
            key = (ident, e)
            label = _label_map(row)
            crops[key] = np.array(load_crop(row.image, size))  # writable
            points[key] = _points(marks, row)
            zones[key] = edit_zone(label, points[key])
            not_face[key] = np.isin(label, outside)
    pixels: dict[PairKey, tuple[np.ndarray, np.ndarray]] = {}
    for target in range(len(EXPRESSIONS)):
        for ident, source in [(i, s) for i in table for s in ALL_SOURCES if s != target]:
            excluded = zones[(ident, source)] | zones[(ident, target)]
            face = ~not_face[(ident, source)] & ~excluded
            background = not_face[(ident, source)] & not_face[(ident, target)] & ~excluded
            pixels[(ident, source, target)] = (face, background)
    return HeldOut(world, size, table, crops, points, pixels)


def edit_zone(labels: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(S, S) bool: where any model may edit this rendering: its true region classes grown by
    the blur's reach, and the keypoint boxes of its true landmarks."""
    size = labels.shape[0]
    regions = tuple(REGION_GROUPS)
    classes = [c for group in region_classes(regions) for c in group]
    kernel = np.ones((2 * BLUR_REACH + 1,) * 2, np.uint8)
    parts = cv2.dilate(np.isin(labels, classes).astype(np.uint8), kernel).astype(bool)
    boxes = box_region_masks(torch.as_tensor(points, dtype=torch.float32)[None], size, regions)
    return parts | (boxes[0].amax(0).numpy() > 0)


def _label_map(row: Rendering) -> np.ndarray:
    if row.labels is None:
        raise DatasetError(
            f"{row.image}: pairs.csv gives no label map (its `labels` column); remake the world "
            "with 'faceedit-train synth'"
        )
    label = cv2.imread(str(row.labels), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise DatasetError(f"{row.labels}: the label map cannot be read")
    return np.asarray(label)


def _points(marks: Mapping[Path, np.ndarray], row: Rendering) -> np.ndarray:
    found = marks.get(row.image.resolve())
    if found is None:
        raise DatasetError(f"{row.image} has no landmarks in the world's AffectNet-layout lists")
    return found
