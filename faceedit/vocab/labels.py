"""The 19 CelebAMask-HQ classes in face-parsing.PyTorch order, their colours and region groups.

This order is the one the community `79999_iter.pth` parser predicts; the official
CelebAMask-HQ `g_mask.py` script uses another one, which faceedit never relies on.
"""

from __future__ import annotations

from typing import Final

import numpy as np

CLASS_NAMES: Final[tuple[str, ...]] = (
    "background",
    "skin",
    "l_brow",
    "r_brow",
    "l_eye",
    "r_eye",
    "eye_g",
    "l_ear",
    "r_ear",
    "ear_r",
    "nose",
    "mouth",
    "u_lip",
    "l_lip",
    "neck",
    "neck_l",
    "cloth",
    "hair",
    "hat",
)
NUM_CLASSES: Final[int] = len(CLASS_NAMES)
CLASS_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(CLASS_NAMES)}

# One overlay colour (RGB) per class, chosen so neighbouring parts contrast.
CLASS_COLORS: Final[tuple[tuple[int, int, int], ...]] = (
    (0, 0, 0),  # background
    (255, 204, 153),  # skin
    (153, 51, 0),  # l_brow
    (204, 102, 0),  # r_brow
    (0, 153, 255),  # l_eye
    (0, 204, 204),  # r_eye
    (102, 102, 255),  # eye_g
    (255, 102, 178),  # l_ear
    (204, 0, 153),  # r_ear
    (255, 255, 0),  # ear_r
    (51, 204, 51),  # nose
    (255, 0, 0),  # mouth
    (204, 0, 51),  # u_lip
    (255, 80, 120),  # l_lip
    (153, 153, 102),  # neck
    (102, 204, 153),  # neck_l
    (102, 102, 102),  # cloth
    (102, 51, 153),  # hair
    (0, 102, 102),  # hat
)

# The parts that carry expression, one local generator each (docs/architecture.md §1).
REGION_GROUPS: Final[dict[str, tuple[int, ...]]] = {
    "brows": (2, 3),
    "eyes": (4, 5, 6),
    "nose": (10,),
    "mouth": (11, 12, 13),
}
REGION_NAMES: Final[tuple[str, ...]] = tuple(REGION_GROUPS)

# Classes that trade places when an image is mirrored left to right.
FLIP_PAIRS: Final[tuple[tuple[int, int], ...]] = ((2, 3), (4, 5), (7, 8))


def flip_permutation() -> np.ndarray:
    """Index array p with p[c] = the class c becomes in a horizontally mirrored image."""
    perm = np.arange(NUM_CLASSES)
    for a, b in FLIP_PAIRS:
        perm[a], perm[b] = b, a
    return perm


def palette() -> np.ndarray:
    """(19, 3) uint8 colour table, indexable by a label map."""
    return np.asarray(CLASS_COLORS, dtype=np.uint8)


def region_classes(regions: tuple[str, ...] = REGION_NAMES) -> tuple[tuple[int, ...], ...]:
    """Class indices of each named region, in the given order; unknown names are refused."""
    unknown = [r for r in regions if r not in REGION_GROUPS]
    if unknown:
        raise ValueError(f"unknown region(s) {unknown}; known regions: {list(REGION_GROUPS)}")
    return tuple(REGION_GROUPS[r] for r in regions)
