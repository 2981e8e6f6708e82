"""A miniature facial_expressions folder, a face finder and a describer that need neither
MTCNN nor dlib: what the real-face scorer's fast tests edit."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceedit.faces.detect import Face
from tests.trainer.fixtures import (
    FacialExpressionsPhoto,
    synthetic_landmarks,
    write_facial_expressions,
)
from trainer.judges.real.editors import Edit

SIDE = 80  # the fixture photos' size
BOX = (12.0, 8.0, 68.0, 72.0)


def fixed_face(photo: np.ndarray, key: object = None) -> list[Face]:
    """The same face in every 80 px photo: box and five points where the sample face is."""
    x1, y1, x2, y2 = BOX
    w, h = x2 - x1, y2 - y1
    rel = np.array([[0.32, 0.4], [0.68, 0.4], [0.5, 0.6], [0.35, 0.78], [0.65, 0.78]])
    return [Face(np.array(BOX), 1.0, rel * (w, h) + (x1, y1))]


class BoxDescriber:
    """Stands in for dlib: 68 points laid out in the box; the descriptor is the face's
    pixels at 8 x 8, so identical photos give identical descriptors."""

    def landmarks(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = (float(v) for v in box)
        return synthetic_landmarks((x1, y1, x2 - x1, y2 - y1))

    def describe(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = (round(float(v)) for v in box)
        small = cv2.resize(image[y1:y2, x1:x2], (8, 8), interpolation=cv2.INTER_AREA)
        return small.astype(np.float64).ravel() / 255.0


class CornerPainter:
    """A control that paints the photo's top-left corner white: background change."""

    name = "corner paint"

    def __call__(
        self,
        photo: np.ndarray,
        face: Face,
        target: str,
        editable: Sequence[str] | None = None,
        key: object = None,
    ) -> Edit:
        out = photo.copy()
        out[:8, :8] = 255
        return Edit(out)


class Tinter:
    """A control that warms the whole photo: a grey photo becomes colourful."""

    name = "tint"

    def __call__(
        self,
        photo: np.ndarray,
        face: Face,
        target: str,
        editable: Sequence[str] | None = None,
        key: object = None,
    ) -> Edit:
        out = photo.astype(np.int16)
        out[..., 0] += 25
        out[..., 2] -= 25
        return Edit(np.clip(out, 0, 255).astype(np.uint8))


class CornerLocker:
    """A control whose lock footprint is the crop's top-left corner, far from any mouth; it
    changes nothing."""

    name = "corner lock"

    def __call__(
        self,
        photo: np.ndarray,
        face: Face,
        target: str,
        editable: Sequence[str] | None = None,
        key: object = None,
    ) -> Edit:
        if editable is None:
            return Edit(photo.copy())
        corner = np.zeros((64, 64), bool)  # the scorer's crop size in these tests
        corner[:6, :6] = True
        return Edit(photo.copy(), np.zeros(photo.shape[:2], bool), corner)


@pytest.fixture
def photo_root(tmp_path: Path) -> Path:
    """Two grey neutral photos and a colour one, facial_expressions' layout."""
    root = tmp_path / "fe"
    write_facial_expressions(
        root,
        [
            FacialExpressionsPhoto("Ann_Able_0001.jpg", "neutral", grey=True),
            FacialExpressionsPhoto("Bob_Baker_0001.jpg", "neutral", grey=True),
            FacialExpressionsPhoto("Cy_Colour_0001.jpg", "neutral"),
        ],
    )
    return root
