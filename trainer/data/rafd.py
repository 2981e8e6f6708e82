"""The Radboud Faces Database (RaFD), read from its file names.

Every image (681 x 1024 portrait) lies in one folder, or in nested folders, named
`Rafd{angle}_{subject}_{ethnicity}_{gender}_{emotion}_{gaze}.jpg`, e.g.
`Rafd090_28_Caucasian_male_angry_frontal.jpg`: camera angle 000/045/090/135/180 (090 is
frontal), gaze frontal/left/right. Defaults keep the frontal camera and all three gazes (gaze is
not part of the condition, and the averted-gaze shots triple the data). Splits are by subject, a
seeded 80/10/10 of all subjects found (before the angle/gaze filter), so nobody is in two splits.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Final, Literal, NamedTuple

import numpy as np

from faceedit.errors import ConfigError
from faceedit.vocab.expressions import rafd_to_index
from trainer.data.common import (
    ExpressionDataset,
    ExpressionRecord,
    Split,
    crop_square,
    describe_folder,
    detect_and_align,
    list_image_files,
    logger,
    resize_image,
    seeded_split,
)

RafdAlign = Literal["box", "detect"]
ANGLES: Final[tuple[str, ...]] = ("000", "045", "090", "135", "180")
GAZES: Final[tuple[str, ...]] = ("frontal", "left", "right")
# (centre x / width, centre y / height, side / width) of the default face box. Chosen for the
# frontal (090) shots, where the head sits centred and a little above the middle of the frame;
# an estimate, not measured on the dataset: check a few crops, or pass `box=`, or use "detect".
DEFAULT_BOX: Final[tuple[float, float, float]] = (0.5, 0.45, 0.75)


class RafdName(NamedTuple):
    """The fields of one RaFD file name."""

    angle: str
    subject: int
    ethnicity: str
    gender: str
    emotion: str
    gaze: str


def parse_name(stem: str) -> RafdName:
    """Fields of a RaFD file stem; ValueError saying which field is wrong."""
    parts = stem.split("_")
    if len(parts) != 6:
        raise ValueError(f"{len(parts)} '_'-separated fields instead of 6")
    camera, subject, ethnicity, gender, emotion, gaze = parts
    if not camera.lower().startswith("rafd") or camera[4:] not in ANGLES:
        raise ValueError(f"camera field {camera!r} is not Rafd followed by one of {ANGLES}")
    if not subject.isdigit():
        raise ValueError(f"subject {subject!r} is not a number")
    if gender.lower() not in ("male", "female"):
        raise ValueError(f"gender {gender!r} is not male or female")
    rafd_to_index(emotion)  # raises ValueError naming the known emotions
    if gaze.lower() not in GAZES:
        raise ValueError(f"gaze {gaze!r} is not one of {GAZES}")
    return RafdName(
        camera[4:], int(subject), ethnicity, gender.lower(), emotion.lower(), gaze.lower()
    )


class RaFD(ExpressionDataset):
    """RaFD faces: `ds[i]` -> (image (3, S, S) float32 in [-1, 1], expression int64,
    valence_arousal (2,) float32, always NaN: RaFD has none).

    `angles` and `gazes` select shots; `box` (see DEFAULT_BOX) is the face square as fractions
    of the frame, or `align="detect"` runs MTCNN per image (slow; falls back to the box when no
    face is found). `split_seed` picks the subject split.
    """

    kind = "RaFD"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: Split,
        size: int = 128,
        angles: tuple[str, ...] = ("090",),
        gazes: tuple[str, ...] = GAZES,
        align: RafdAlign = "box",
        box: tuple[float, float, float] = DEFAULT_BOX,
        seed: int = 0,
        *,
        split_seed: int = 0,
    ) -> None:
        super().__init__(root, split, size, seed)
        bad = [a for a in angles if a not in ANGLES] + [g for g in gazes if g not in GAZES]
        if bad or not angles or not gazes:
            raise ConfigError(
                f"angles must be from {ANGLES} and gazes from {GAZES} (neither empty), got "
                f"angles={angles}, gazes={gazes}"
            )
        if align not in ("box", "detect"):
            raise ConfigError(f"align must be 'box' or 'detect', got {align!r}")
        if len(box) != 3 or box[2] <= 0:
            raise ConfigError(f"box is (centre x, centre y, side) as fractions, got {box}")
        self.angles, self.gazes = tuple(angles), tuple(gazes)
        self.align, self.box = align, tuple(box)
        self.split_seed = split_seed
        self.subjects: list[int] = []
        self._index()

    def _index(self) -> None:
        parsed: list[tuple[RafdName, Path]] = []
        files = list_image_files(self.root) if self.root.is_dir() else []
        for path in files:
            try:
                parsed.append((parse_name(path.stem), path))
            except ValueError as error:
                self._skips.add("bad file name", path, str(error))
        split_of = seeded_split({name.subject for name, _ in parsed}, seed=self.split_seed)
        for name, path in parsed:
            if split_of[name.subject] != self.split:
                continue
            if name.angle in self.angles and name.gaze in self.gazes:
                va = (math.nan, math.nan)
                self._items.append(ExpressionRecord(path, rafd_to_index(name.emotion), va))
        self.subjects = sorted(s for s, split in split_of.items() if split == self.split)
        expected = (
            "images named Rafd{angle}_{subject}_{ethnicity}_{gender}_{emotion}_{gaze}.jpg "
            f"with angle in {self.angles} and gaze in {self.gazes}"
        )
        found = (
            f"{len(files)} image files, {len(parsed)} with RaFD names, "
            f"{len(self.subjects)} subjects in split {self.split!r}; {describe_folder(self.root)}"
        )
        self._finish_index(expected, found)

    def _crop(self, image: np.ndarray, record: ExpressionRecord) -> np.ndarray:
        if self.align == "detect":
            crop = detect_and_align(image, self.size)
            if crop is not None:
                return crop
            logger.info("RaFD: no face detected in %s; cropping the default box", record.path)
        height, width = image.shape[:2]
        cx, cy, side = self.box[0] * width, self.box[1] * height, self.box[2] * width
        return resize_image(crop_square(image, cx - side / 2, cy - side / 2, side), self.size)
