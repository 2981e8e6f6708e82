"""Face-parsing labels drawn from 68 facial landmarks, for faces that have no hand labels.

The 68 points follow the iBUG 300-W layout (dlib's shape predictor, AffectNet's annotations):
jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67, each listed from the image's left
to its right. faceedit's `l_*` classes are the parts on the image's left (the subject's right
in an unmirrored photo), as the procedural world renders them (trainer/world/render.py) and as
faceedit.faces.detect names its five points; so points 17-21 and 36-41 draw `l_brow` and
`l_eye`, points 22-26 and 42-47 draw `r_brow` and `r_eye`.

Only what the points outline is labelled: skin (the face inside the jaw line, up to the brows'
upper edge), both brows, both eyes, nose, inner mouth, upper and lower lip. Everything the
points cannot tell (hair, ears, neck, cloth, glasses, hat, the forehead above the brows, the
background beyond the face) is UNLABELLED (255, the parser loss's ignore index), not
background: calling a forehead "background" would teach the parser something false.

Polygons are filled at sub-pixel precision (cv2.fillPoly with fractional bits) in the crop's
own pixels, so labels of a 128 px crop are drawn at 128 px, not resized from elsewhere. The
shapes are approximations of how CelebAMask-HQ's annotators drew the parts; landmark polygons
reach about IoU 0.75 skin, 0.60 brows, 0.77 eyes, 0.63 nose and 0.76 lips against hand labels
(measured on CelebA-HQ; docs/real-faces.md, "Labels").
"""

from __future__ import annotations

from typing import Final

import cv2
import numpy as np

from faceedit.vocab.labels import CLASS_INDEX

UNLABELLED: Final[int] = 255  # trainer.stages.losses.IGNORE_INDEX
NUM_POINTS: Final[int] = 68

JAW: Final[slice] = slice(0, 17)
LEFT_BROW: Final[slice] = slice(17, 22)  # image-left brow, outer (17) to inner (21)
RIGHT_BROW: Final[slice] = slice(22, 27)  # image-right brow, inner (22) to outer (26)
NOSE_BRIDGE: Final[slice] = slice(27, 31)  # 27 between the eyes ... 30 the tip
NOSE_BASE: Final[slice] = slice(31, 36)  # image-left nostril wing (31) to image-right (35)
LEFT_EYE: Final[slice] = slice(36, 42)
RIGHT_EYE: Final[slice] = slice(42, 48)
OUTER_LIPS: Final[slice] = slice(48, 60)  # 48 image-left corner, 51 top, 54 right corner, 57 bottom
INNER_LIPS: Final[slice] = slice(60, 68)  # 60 left corner, 62 top, 64 right corner, 66 bottom

# Brow thickness as a share of the distance between the eye centres, at the brow's inner end;
# it tapers to BROW_TAPER of that at the outer end. iBUG's brow points run along the brow's
# upper edge, so the band hangs below them (BROW_ABOVE of it above the points, for the points'
# own scatter).
BROW_THICKNESS: Final[float] = 0.16
BROW_TAPER: Final[float] = 0.55
BROW_ABOVE: Final[float] = 0.2
# Nose outline half-widths as shares of the nostril span (point 31 to 35): at the bridge's top
# (27), half-way down the bridge (29), across the wings at the tip's height (30), and beyond
# the nostril points at the base.
NOSE_TOP: Final[float] = 0.25
NOSE_MIDDLE: Final[float] = 0.35
NOSE_WINGS: Final[float] = 0.65
NOSE_BASE_OUT: Final[float] = 0.1
# Fractional bits of the fixed-point coordinates cv2.fillPoly draws with (1/16 px).
_SHIFT: Final[int] = 4


def _fill(labels: np.ndarray, polygon: np.ndarray, cls: int) -> None:
    """Paint one polygon (N, 2 float crop pixels, centres at integers) with class `cls`."""
    if not np.all(np.isfinite(polygon)):
        return
    fixed = np.round(polygon * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(labels, [fixed], int(cls), lineType=cv2.LINE_8, shift=_SHIFT)


def _unit(vector: np.ndarray) -> np.ndarray:
    length = float(np.hypot(*vector))
    return vector / length if length > 1e-9 else np.array([1.0, 0.0])


def brow_band(
    points: np.ndarray, inner_first: bool, across: np.ndarray, scale: float
) -> np.ndarray:
    """(10, 2) polygon of one brow: its 5 points raised a little, then back along them lowered
    by the brow's thickness (thickest at the inner end)."""
    brow = points if inner_first else points[::-1]  # inner end first
    taper = np.linspace(1.0, BROW_TAPER, len(brow))[:, None]
    thickness = BROW_THICKNESS * scale * taper
    top = brow - across * thickness * BROW_ABOVE
    bottom = brow + across * thickness * (1.0 - BROW_ABOVE)
    return np.concatenate([top, bottom[::-1]])


def nose_outline(points: np.ndarray, along: np.ndarray) -> np.ndarray:
    """Polygon of the nose: a narrow bridge from point 27 widening to the wings, closed by the
    nostril base 31-35."""
    bridge, base = points[NOSE_BRIDGE], points[NOSE_BASE]
    span = float(np.hypot(*(base[-1] - base[0])))
    left = [
        bridge[0] - along * NOSE_TOP * span,
        bridge[2] - along * NOSE_MIDDLE * span,
        bridge[3] - along * NOSE_WINGS * span,
        base[0] - along * NOSE_BASE_OUT * span,
    ]
    right = [
        base[-1] + along * NOSE_BASE_OUT * span,
        bridge[3] + along * NOSE_WINGS * span,
        bridge[2] + along * NOSE_MIDDLE * span,
        bridge[0] + along * NOSE_TOP * span,
    ]
    return np.array([*left, *base[1:-1], *right])


def landmark_label_map(points: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """(H, W) uint8 label map from (68, 2) landmarks given in the map's own pixels (centres at
    integers); `size` is S or (W, H). UNLABELLED wherever the points say nothing.

    Skin is the region inside the jaw line closed by the brows' upper edge (point 0 up to the
    image-left brow's outer end, across both brows, down to point 16), minus the parts drawn on
    top of it, in this order: nose, brows, eyes, lips, inner mouth.
    """
    width, height = (size, size) if isinstance(size, int) else size
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape != (NUM_POINTS, 2):
        raise ValueError(f"need ({NUM_POINTS}, 2) landmarks, got {pts.shape}")
    labels = np.full((height, width), UNLABELLED, dtype=np.uint8)
    if not np.all(np.isfinite(pts)):
        return labels
    # The face's own axes: `along` from the image-left eye to the image-right one, `across`
    # perpendicular to it, pointing down the face (image y grows downwards).
    left_eye, right_eye = pts[LEFT_EYE].mean(axis=0), pts[RIGHT_EYE].mean(axis=0)
    along = _unit(right_eye - left_eye)
    across = np.array([-along[1], along[0]])
    scale = float(np.hypot(*(right_eye - left_eye)))
    left_brow = brow_band(pts[LEFT_BROW], inner_first=False, across=across, scale=scale)
    right_brow = brow_band(pts[RIGHT_BROW], inner_first=True, across=across, scale=scale)
    # brow_band lists the raised edge inner -> outer first: the skin's top runs outer-right ->
    # inner-right -> inner-left -> outer-left.
    top = np.concatenate([right_brow[:5][::-1], left_brow[:5]])
    _fill(labels, np.concatenate([pts[JAW], top]), CLASS_INDEX["skin"])
    _fill(labels, nose_outline(pts, along), CLASS_INDEX["nose"])
    _fill(labels, left_brow, CLASS_INDEX["l_brow"])
    _fill(labels, right_brow, CLASS_INDEX["r_brow"])
    _fill(labels, pts[LEFT_EYE], CLASS_INDEX["l_eye"])
    _fill(labels, pts[RIGHT_EYE], CLASS_INDEX["r_eye"])
    outer, inner = pts[OUTER_LIPS], pts[INNER_LIPS]
    # Upper lip: outer 48..54 along the top, back along the inner edge 64..60.
    _fill(labels, np.concatenate([outer[0:7], inner[4::-1]]), CLASS_INDEX["u_lip"])
    # Lower lip: outer 54..59, 48 along the bottom, back along the inner edge 60, 67..64.
    lower_outer = np.concatenate([outer[6:12], outer[0:1]])
    lower_inner = np.concatenate([inner[0:1], inner[7:3:-1]])
    _fill(labels, np.concatenate([lower_outer, lower_inner]), CLASS_INDEX["l_lip"])
    _fill(labels, inner, CLASS_INDEX["mouth"])
    return labels


__all__ = ["UNLABELLED", "landmark_label_map"]
