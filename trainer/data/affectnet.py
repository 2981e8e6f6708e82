"""AffectNet (manually annotated part), read from its own CSV lists and image folders.

Layout under `root` (as distributed):
    Manually_Annotated_file_lists/training.csv     split "train"
    Manually_Annotated_file_lists/validation.csv   split "val", and also "test": AffectNet has
                                                   no public test set, so "test" reads the
                                                   validation list too
    Manually_Annotated_Images/<subDirectory_filePath>
CSV columns (header row first): subDirectory_filePath, face_x, face_y, face_width, face_height,
facial_landmarks (68 points as 136 ';'-separated numbers x1;y1;x2;y2...), expression (0..10),
valence, arousal. Expressions 8..10 (none, uncertain, no face) and rows without a face box are
dropped; valence/arousal of -2 mean "not annotated" and become NaN.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final, Literal

import numpy as np

from faceedit.errors import ConfigError, DatasetError
from faceedit.vocab.expressions import affectnet_to_index
from trainer.data.common import (
    ExpressionDataset,
    ExpressionRecord,
    Split,
    align_five_points,
    align_with_points,
    box_crop,
    box_crop_points,
    describe_folder,
    detect_align_points,
    detect_and_align,
    logger,
    whole_square,
)

AffectNetAlign = Literal["box", "landmarks", "detect", "aligned"]
LIST_DIR: Final[str] = "Manually_Annotated_file_lists"
IMAGE_DIR: Final[str] = "Manually_Annotated_Images"
CSV_FILES: Final[dict[str, str]] = {
    "train": "training.csv",
    "val": "validation.csv",
    "test": "validation.csv",  # no public test split
}
COLUMNS: Final[tuple[str, ...]] = (
    "subDirectory_filePath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "facial_landmarks",
    "expression",
    "valence",
    "arousal",
)
NUM_LANDMARKS: Final[int] = 68
MISSING_VALENCE_AROUSAL: Final[float] = -2.0
# 0-based indices into the 68-point (iBUG 300-W) layout for the 5 alignment points, in the
# order faceedit.faces.detect uses: image-left eye, image-right eye, nose tip, left and right mouth corner.
LEFT_EYE: Final[range] = range(36, 42)
RIGHT_EYE: Final[range] = range(42, 48)
NOSE_TIP: Final[int] = 30
MOUTH_CORNERS: Final[tuple[int, int]] = (48, 54)
KEY_POINTS: Final[tuple[int, ...]] = (*range(36, 48), NOSE_TIP, *MOUTH_CORNERS)


def five_points(landmarks: Mapping[int, Sequence[float]] | np.ndarray) -> np.ndarray:
    """(5, 2) float32 alignment points from 68 landmarks (an (68, 2) array, or a mapping from
    0-based point index to (x, y) holding at least KEY_POINTS): eye centres, nose tip, mouth
    corners. Plain Python arithmetic: called once per row, where numpy's per-call overhead
    would dominate indexing."""

    def centre(points: range) -> tuple[float, float]:
        xs, ys = zip(*(landmarks[i] for i in points), strict=True)
        return sum(map(float, xs)) / len(xs), sum(map(float, ys)) / len(ys)

    key = [centre(LEFT_EYE), centre(RIGHT_EYE), landmarks[NOSE_TIP]]
    key += [landmarks[MOUTH_CORNERS[0]], landmarks[MOUTH_CORNERS[1]]]
    return np.array(key, dtype=np.float32)


class RowError(ValueError):
    """A CSV row that cannot be used; `reason` is the counting key."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RowError("non-numeric field", f"{name}={text!r}") from None
    if not math.isfinite(value):
        raise RowError("non-numeric field", f"{name}={text!r}")
    return value


def _valence_arousal(name: str, text: str) -> float:
    value = _number(name, text)
    if value == MISSING_VALENCE_AROUSAL:
        return math.nan
    if not -1.0 <= value <= 1.0:
        raise RowError("valence/arousal out of range", f"{name}={value} (expected -1..1 or -2)")
    return value


def parse_row(fields: list[str], with_landmarks: bool) -> ExpressionRecord:
    """One CSV row (already split into the 9 columns) -> a record whose path is the CSV's
    relative path (a str; the loader joins it to the image folder).

    Raises RowError with the reason it is skipped. Landmarks are always counted; with
    `with_landmarks` the 14 points alignment uses (KEY_POINTS) are parsed and checked, not all
    68: parsing 136 numbers for each of ~290k rows would triple the indexing time.
    """
    if len(fields) != len(COLUMNS):
        raise RowError("wrong column count", f"{len(fields)} columns instead of {len(COLUMNS)}")
    path, x, y, w, h, marks, code, valence, arousal = (f.strip() for f in fields)
    if not path:
        raise RowError("empty file path")
    try:
        expression = affectnet_to_index(int(code))
    except ValueError:
        raise RowError("unknown expression code", f"expression={code!r}") from None
    if expression is None:
        raise RowError("expression 8-10 (none, uncertain, no face)", f"expression={code}")
    box = tuple(_number(n, v) for n, v in zip(COLUMNS[1:5], (x, y, w, h), strict=True))
    if box[2] <= 0 or box[3] <= 0:
        raise RowError("no face box (face_width or face_height <= 0)", f"box={box}")
    va = (_valence_arousal("valence", valence), _valence_arousal("arousal", arousal))
    marks = marks.strip(";")
    count = marks.count(";") + 1 if marks else 0  # counting is 10x faster than splitting
    if count != 2 * NUM_LANDMARKS:
        raise RowError(
            "wrong number of landmarks", f"{count} numbers instead of {2 * NUM_LANDMARKS}"
        )
    points = None
    if with_landmarks:
        values = marks.split(";")
        try:
            key = {i: (float(values[2 * i]), float(values[2 * i + 1])) for i in KEY_POINTS}
        except ValueError:
            raise RowError("non-numeric field", "facial_landmarks") from None
        if not all(math.isfinite(v) for xy in key.values() for v in xy):
            raise RowError("non-numeric field", "facial_landmarks")
        points = five_points(key)
    return ExpressionRecord(path, expression, va, box, points)  # type: ignore[arg-type]  # 2- and 4-tuples built from the row


class AffectNet(ExpressionDataset):
    """AffectNet faces: `ds[i]` -> (image (3, S, S) float32 in [-1, 1], expression int64,
    valence_arousal (2,) float32, NaN where not annotated).

    `align`: "box" crops the annotated face box grown by `margin` on each side (made square,
    black beyond the image); "landmarks" warps the 5 points derived from the 68 annotated
    landmarks onto faceedit.faces.align's template (the app's crops); "detect" runs the MTCNN detector
    on every image (slow: about as slow as the app's detection, per sample; falls back to the
    box when no face is found); "aligned" takes every image as an already aligned crop (the
    procedural world's renderings, a pre-aligned copy) and resizes it whole, as the app edits
    such crops (`faceedit edit --aligned`).
    """

    kind = "AffectNet"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: Split,
        size: int = 128,
        align: AffectNetAlign = "box",
        margin: float = 0.1,
        seed: int = 0,
    ) -> None:
        super().__init__(root, split, size, seed)
        if align not in ("box", "landmarks", "detect", "aligned"):
            raise ConfigError(
                f"align must be 'box', 'landmarks', 'detect' or 'aligned', got {align!r}"
            )
        if margin < 0:
            raise ConfigError(f"margin must be >= 0, got {margin}")
        self.align = align
        self.margin = margin
        self._index()

    def _index(self) -> None:
        csv_path = self.root / LIST_DIR / CSV_FILES[self.split]
        image_root = self.root / IMAGE_DIR
        expected = (
            f"{LIST_DIR}/{CSV_FILES[self.split]} with header {','.join(COLUMNS)} and images "
            f"under {IMAGE_DIR}/<subDirectory_filePath>"
        )
        if self.split == "test":
            logger.info("AffectNet has no public test split: 'test' reads %s", csv_path.name)
        if not csv_path.is_file():
            lists = self.root / LIST_DIR
            found = describe_folder(lists if lists.is_dir() else self.root)
            self._finish_index(expected, f"no {csv_path}; found {found}")
            return
        listings: dict[str, frozenset[str]] = {}
        rows = 0
        with open(csv_path, newline="", encoding="utf-8-sig", errors="replace") as handle:
            reader = csv.reader(handle)
            header = [h.strip() for h in next(reader, [])]
            if tuple(header) != COLUMNS:
                raise DatasetError(
                    f"AffectNet list {csv_path} has header {header}, expected {list(COLUMNS)}. "
                    "Is this the manually annotated training.csv / validation.csv?"
                )
            for number, fields in enumerate(reader, start=2):
                if not fields:
                    continue
                rows += 1
                try:
                    record = parse_row(fields, with_landmarks=self.align == "landmarks")
                except RowError as error:
                    self._skips.add(error.reason, f"{csv_path.name}:{number}", str(error))
                    continue
                folder, _, name = str(record.path).rpartition("/")
                if name not in _listing(listings, image_root, folder):
                    self._skips.add(
                        "missing image", image_root / record.path, f"{csv_path.name}:{number}"
                    )
                    continue
                self._items.append(record._replace(path=image_root / record.path))
        self._finish_index(expected, f"{rows} rows in {csv_path}")

    def _crop(self, image: np.ndarray, record: ExpressionRecord) -> np.ndarray:
        assert record.box is not None
        if self.align == "aligned":
            return box_crop(image, whole_square(image), 0.0, self.size)
        if self.align == "landmarks" and record.points is not None:
            return align_five_points(image, record.points, self.size)
        if self.align == "detect":
            crop = detect_and_align(image, self.size)
            if crop is not None:
                return crop
            logger.info("AffectNet: no face detected in %s; cropping its box", record.path)
        return box_crop(image, record.box, self.margin, self.size)

    def _crop_points(
        self, image: np.ndarray, record: ExpressionRecord
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The crop with the face's own 5 points in it: the annotated 68 landmarks' (aligned
        with align="landmarks", or moved with the box crop), or the detector's (align="detect")."""
        assert record.box is not None
        if self.align == "landmarks" and record.points is not None:
            return align_with_points(image, record.points, self.size)
        if self.align == "detect":
            found = detect_align_points(image, self.size)
            if found is not None:
                return found
        crop = (
            self._crop(image, record)
            if self.align != "detect"
            else box_crop(image, record.box, self.margin, self.size)
        )
        if record.points is None:
            return crop, None
        return crop, box_crop_points(record.points, record.box, self.margin, self.size)


def _listing(cache: dict[str, frozenset[str]], root: Path, folder: str) -> frozenset[str]:
    """File names in root/folder, listed once: one listdir per folder instead of a stat per row
    (keyed by the folder's string: hashing Paths is a third of the indexing time)."""
    if folder not in cache:
        try:
            cache[folder] = frozenset(os.listdir(root / folder))
        except OSError:
            cache[folder] = frozenset()
    return cache[folder]
