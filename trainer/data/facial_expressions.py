"""facial_expressions (github muxspace/facial_expressions): real face photos with an expression
label each, read in the dataset's own layout.

Layout under `root`:
    images/<Name>_<number>.jpg     tight face crops (LFW names such as George_W_Bush_0001.jpg,
                                   others such as HrithikRoshan_116.jpg), many greyscale
    data/legend.csv                header `user.id,image,emotion`, one row per image; the
                                   emotion's letter case varies (happiness, HAPPINESS)
Labels are mapped onto faceedit.vocab.expressions.EXPRESSIONS (LABELS); rows with another label,
files without a row, rows without a file, repeated rows that disagree and unreadable files are
skipped and counted by reason, never fatal.

Splits are by identity (the file name before its last `_`), a seeded 80/10/10 of every
identity with a file in images/, so nobody is in two splits (`identity_splits`,
`split_files`: which people and files are "test" for evaluation code).

Crops are the app's: MTCNN (faceedit.faces.detect, with its padding for faces that touch the
border) and the 5-point similarity alignment (faceedit.faces.align), so a model trained on them
sees what the app feeds it; an image without a detected face is skipped. `prepared_arrays`, what
`faceedit-train prepare --facial-expressions` stores, adds a face-parsing label map drawn from
dlib's 68 landmarks (trainer/data/landmark_labels.py; dlib only here, never in the app) and
whether the photo was greyscale.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple

import cv2
import numpy as np

from faceedit.errors import ConfigError, NoFaceError
from faceedit.vocab.expressions import EXPRESSION_INDEX, EXPRESSIONS
from trainer.data.common import (
    SPLITS,
    ExpressionDataset,
    ExpressionRecord,
    Split,
    describe_folder,
    detect_largest_face,
    list_image_files,
    read_image,
    seeded_split,
)
from trainer.data.landmark_labels import UNLABELLED, landmark_label_map

FacialExpressionsAlign = Literal["detect"]
IMAGE_DIR: Final[str] = "images"
LEGEND: Final[str] = "data/legend.csv"
HEADER: Final[tuple[str, ...]] = ("user.id", "image", "emotion")
# The dataset's labels (any letter case) -> faceedit's expression names.
LABELS: Final[dict[str, str]] = {
    "neutral": "neutral",
    "happiness": "happy",
    "sadness": "sad",
    "surprise": "surprised",
    "fear": "fearful",
    "disgust": "disgusted",
    "anger": "angry",
    "contempt": "contemptuous",
}
# Fewest training images an expression needs before training on it is worth more than
# memorising it: fear (~20 images here) and contempt (9) fall short.
MIN_TEACHABLE: Final[int] = 100
# A photo is greyscale when 99 % of its pixels have channels within this many levels of each
# other (JPEG's colour subsampling leaves a little noise in grey photos stored as RGB).
GREY_TOLERANCE: Final[int] = 12
GREY_QUANTILE: Final[float] = 0.99
# Labels are dropped (all UNLABELLED) when dlib's 68 points put the eyes, nose tip and mouth
# corners, on average, further than this share of the eye distance from MTCNN's five points:
# the two models then disagree about where the face is, and one of them is wrong.
MAX_LANDMARK_DISAGREEMENT: Final[float] = 0.25
# 68-point indices of MTCNN's five points: eye centres, nose tip, mouth corners.
_LEFT_EYE, _RIGHT_EYE, _NOSE_TIP, _MOUTH = range(36, 42), range(42, 48), 30, (48, 54)

# Skip reasons, shared by the loader and `prepare`'s report.
NO_ROW: Final[str] = "image without a legend row"
NO_FILE: Final[str] = "legend row without an image file"
UNKNOWN_LABEL: Final[str] = "unknown expression label"
CONFLICT: Final[str] = "legend rows that disagree"
DUPLICATE: Final[str] = "repeated legend row (same label)"
MALFORMED: Final[str] = "malformed legend row"


def normalise_label(text: str) -> int | None:
    """Unified expression index of a legend label (any case, spaces around ignored), or None."""
    name = LABELS.get(text.strip().lower())
    return None if name is None else EXPRESSION_INDEX[name]


def identity_of(file_name: str) -> str:
    """The person in a file: its stem before the last `_` (George_W_Bush_0001.jpg ->
    George_W_Bush); a stem without `_` is its own identity."""
    stem = Path(file_name).stem
    return stem.rsplit("_", 1)[0] if "_" in stem else stem


def image_names(root: str | os.PathLike[str]) -> list[str]:
    """Names of the image files in root/images, sorted."""
    return [p.name for p in list_image_files(Path(root) / IMAGE_DIR, recursive=False)]


def identity_splits(root: str | os.PathLike[str], split_seed: int = 0) -> dict[str, str]:
    """identity -> "train" / "val" / "test", over every identity with a file in images/ (labelled
    or not, readable or not): the split does not move when labels are fixed or files fail."""
    return seeded_split((identity_of(n) for n in image_names(root)), seed=split_seed)


def split_files(root: str | os.PathLike[str], split_seed: int = 0) -> dict[str, list[str]]:
    """split -> the image file names of its identities, sorted (what evaluation holds out)."""
    names = image_names(root)
    split_of = seeded_split((identity_of(n) for n in names), seed=split_seed)
    out: dict[str, list[str]] = {split: [] for split in SPLITS}
    for name in names:
        out[split_of[identity_of(name)]].append(name)
    return out


def is_greyscale(image: np.ndarray) -> bool:
    """Whether an (H, W, 3) uint8 RGB image is a grey photo (its channels (nearly) equal)."""
    pixels = np.asarray(image, dtype=np.int16).reshape(-1, 3)
    spread = pixels.max(axis=1) - pixels.min(axis=1)
    return bool(np.quantile(spread, GREY_QUANTILE) <= GREY_TOLERANCE)


class LegendRow(NamedTuple):
    expression: int | None
    label: str
    where: str


class PreparedFace(NamedTuple):
    """What `prepare` stores for one photo: the aligned crop (S, S, 3) uint8, its label map
    (S, S) uint8 (UNLABELLED where the landmarks say nothing), and per-sample facts."""

    image: np.ndarray
    labels: np.ndarray
    extras: Mapping[str, Any]  # greyscale (bool), labelled (bool), file (str)


def read_legend(path: Path, skip: Any) -> tuple[dict[str, LegendRow], set[str]]:
    """(file name -> its legend row, names whose rows disagree); `skip(reason, item, detail)`
    is told about bad rows.

    A name listed twice with the same label is kept once; with different labels it is
    dropped (CONFLICT), as nobody can say which is right.
    """
    rows: dict[str, LegendRow] = {}
    conflicting: set[str] = set()
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle)
        header = tuple(h.strip().lower() for h in next(reader, []))
        if header != HEADER:
            raise ConfigError(
                f"{path} has header {list(header)}, expected {list(HEADER)}: is this the "
                "facial_expressions dataset's data/legend.csv?"
            )
        for number, fields in enumerate(reader, start=2):
            if not fields or not any(f.strip() for f in fields):
                continue
            where = f"{LEGEND}:{number}"
            if len(fields) != len(HEADER) or not fields[1].strip():
                skip(MALFORMED, where, f"{len(fields)} fields: {fields!r}")
                continue
            name, label = fields[1].strip(), fields[2].strip()
            row = LegendRow(normalise_label(label), label, where)
            earlier = rows.get(name)
            if earlier is None:
                rows[name] = row
            elif earlier.expression == row.expression:
                skip(DUPLICATE, name, f"{earlier.where} and {where}: {label!r}")
            else:
                conflicting.add(name)
                skip(CONFLICT, name, f"{earlier.where} {earlier.label!r}, {where} {label!r}")
    for name in conflicting:
        del rows[name]
    return rows, conflicting


class FacialExpressions(ExpressionDataset):
    """facial_expressions photos: `ds[i]` -> (image (3, S, S) float32 in [-1, 1], expression
    int64, valence_arousal (2,) float32, always NaN: the dataset has none).

    `identities`: the people of this split; `files`: each sample's file name. Skips found while
    indexing are counted in the split of the identity they belong to, and those of nobody's
    split (a row naming no file, or a person without files) in train's, so the splits' counts
    add up to the dataset's. `align` is "detect" only: the app's detection and alignment.
    """

    kind = "facial_expressions"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: Split,
        size: int = 128,
        align: FacialExpressionsAlign = "detect",
        seed: int = 0,
        *,
        split_seed: int = 0,
    ) -> None:
        super().__init__(root, split, size, seed)
        if align != "detect":
            raise ConfigError(
                f"align must be 'detect' for facial_expressions (the app's crops), got {align!r}"
            )
        self.align = align
        self.split_seed = split_seed
        self.identities: list[str] = []
        self._index()

    @property
    def files(self) -> list[str]:
        """The file name of each sample, in dataset order."""
        return [r.path.name for r in self._items]

    def source_is_greyscale(self, index: int) -> bool:
        """Whether sample `index`'s photo is greyscale (reads it; a prepared folder keeps the
        answer in <split>/greyscale.npy)."""
        return is_greyscale(read_image(self._items[index].path))

    def _index(self) -> None:
        image_dir, legend = self.root / IMAGE_DIR, self.root / LEGEND
        expected = f"{IMAGE_DIR}/*.jpg and {LEGEND} with header {','.join(HEADER)}"
        if not image_dir.is_dir() or not legend.is_file():
            self._finish_index(expected, describe_folder(self.root))
            return
        names = image_names(self.root)
        split_of = seeded_split((identity_of(n) for n in names), seed=self.split_seed)

        def skip(reason: str, item: str, detail: str = "") -> None:
            # Rows of nobody's split (no file of that person, no file name) count in train's.
            owner = split_of.get(identity_of(item), "train") if reason != MALFORMED else "train"
            if owner == self.split:
                self._skips.add(reason, item, detail)

        rows, conflicting = read_legend(legend, skip)
        present = set(names)
        for name in sorted((set(rows) | conflicting) - present):
            skip(NO_FILE, name, rows[name].where)
        va = (math.nan, math.nan)
        for name in names:
            if split_of[identity_of(name)] != self.split:
                continue
            row = rows.get(name)
            if name in conflicting:
                continue  # counted as CONFLICT
            if row is None:
                self._skips.add(NO_ROW, name)
            elif row.expression is None:
                self._skips.add(UNKNOWN_LABEL, name, f"{row.label!r} ({row.where})")
            else:
                self._items.append(ExpressionRecord(image_dir / name, row.expression, va))
        self.identities = sorted(i for i, s in split_of.items() if s == self.split)
        found = (
            f"{len(names)} images, {len(rows)} legend rows, {len(self.identities)} identities "
            f"in split {self.split!r}"
        )
        self._finish_index(expected, found)

    # -- crops

    def _crop(self, image: np.ndarray, record: ExpressionRecord) -> np.ndarray:
        return self._crop_points(image, record)[0]

    def _crop_points(
        self, image: np.ndarray, record: ExpressionRecord
    ) -> tuple[np.ndarray, np.ndarray]:
        from faceedit.faces.align import align

        face = detect_largest_face(image)
        if face is None:
            raise NoFaceError(f"no face found in {record.path}")
        alignment = align(image, face, size=self.size)
        return alignment.crop, alignment.to_crop(face.landmarks).astype(np.float32)

    def prepared_arrays(self, index: int) -> PreparedFace:  # type: ignore[override]  # crop, labels and facts
        """The aligned crop, its landmark label map and its facts (raises the load errors of a
        bad file, NoFaceError where detection finds no face; needs dlib: ConfigError without)."""
        from faceedit.faces.align import align
        from trainer.data.dlib_landmarks import shared_predictor

        record = self._items[index]
        image = read_image(record.path)
        face = detect_largest_face(image)
        if face is None:
            raise NoFaceError(f"no face found in {record.path}")
        alignment = align(image, face, size=self.size)
        points = alignment.to_crop(shared_predictor().predict(image, face.box))
        five = alignment.to_crop(face.landmarks)
        labelled = landmark_disagreement(points, five) <= MAX_LANDMARK_DISAGREEMENT
        if labelled:
            labels = landmark_label_map(points, self.size)
            labels[~inside_source(alignment.matrix, image.shape, self.size)] = UNLABELLED
        else:
            labels = np.full((self.size, self.size), UNLABELLED, dtype=np.uint8)
        extras = {"greyscale": is_greyscale(image), "labelled": labelled, "file": record.path.name}
        return PreparedFace(alignment.crop, labels, extras)


def landmark_disagreement(points68: np.ndarray, five: np.ndarray) -> float:
    """Mean distance between the 68 points' eye centres, nose tip and mouth corners and the
    detector's five points, in units of the five points' eye distance."""
    ours = np.array(
        [
            points68[list(_LEFT_EYE)].mean(axis=0),
            points68[list(_RIGHT_EYE)].mean(axis=0),
            points68[_NOSE_TIP],
            points68[_MOUTH[0]],
            points68[_MOUTH[1]],
        ]
    )
    eye_distance = max(float(np.hypot(*(five[1] - five[0]))), 1e-6)
    return float(np.hypot(*(ours - five).T).mean() / eye_distance)


def inside_source(matrix: np.ndarray, shape: tuple[int, ...], size: int) -> np.ndarray:
    """(S, S) bool: crop pixels whose source lies inside the photo. The rest of an aligned
    crop of a tight photo is reflected (faceedit.faces.align), and no label is true there."""
    ones = np.ones(shape[:2], dtype=np.uint8)
    warped = cv2.warpAffine(
        ones, matrix, (size, size), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT
    )
    return np.asarray(warped, dtype=bool)


# ------------------------------------------------------------------------- class imbalance


def expression_counts(targets: Mapping[str, Iterable[int]]) -> dict[str, dict[str, int]]:
    """split -> expression name -> number of samples, every expression listed (0 if absent)."""
    out: dict[str, dict[str, int]] = {}
    for split, values in targets.items():
        counts = np.bincount(np.fromiter(values, dtype=np.int64), minlength=len(EXPRESSIONS))
        out[split] = {name: int(counts[i]) for i, name in enumerate(EXPRESSIONS)}
    return out


def teachable_expressions(
    train_counts: Mapping[str, int], minimum: int = MIN_TEACHABLE
) -> tuple[str, ...]:
    """The expressions with at least `minimum` training samples, in EXPRESSIONS order: the
    ones a model can learn from this data rather than memorise (with class-balanced sampling,
    each of contempt's 9 photos would be drawn hundreds of times as often as a neutral one)."""
    return tuple(name for name in EXPRESSIONS if train_counts.get(name, 0) >= minimum)


# ------------------------------------------------------------------------ prepared folders


def summarise_prepared(root: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """split -> what a prepared facial-expressions folder holds: kept samples, skipped ones by
    reason, samples per expression, identities, and the shares of greyscale photos and of
    samples with landmark labels."""
    from trainer.data.shards import Manifest, read_fact

    folder = Path(root)
    manifest = Manifest.read(folder)
    out: dict[str, dict[str, Any]] = {}
    for split, sizes in manifest.splits.items():
        count = int(sum(sizes))
        expression = np.load(folder / split / "expression.npy")
        grey = read_fact(folder / split, "greyscale", count)
        labelled = read_fact(folder / split, "labelled", count)
        files = read_fact(folder / split, "file", count)
        out[split] = {
            "kept": count,
            "skipped": dict(manifest.skipped.get(split, {})),
            "expressions": expression_counts({split: expression.tolist()})[split],
            "identities": len({identity_of(str(f)) for f in files}) if files is not None else None,
            "greyscale_share": float(np.mean(grey)) if grey is not None and count else None,
            "labelled_share": float(np.mean(labelled)) if labelled is not None and count else None,
        }
    return out


def describe_prepared(root: str | os.PathLike[str]) -> str:
    """`summarise_prepared` as lines for the log, with the expressions the training split can
    teach (MIN_TEACHABLE)."""
    summary = summarise_prepared(root)
    lines = [f"facial_expressions prepared in {root}:"]
    for split, facts in summary.items():
        skipped = ", ".join(f"{n} {r}" for r, n in sorted(facts["skipped"].items())) or "none"
        counts = ", ".join(f"{k} {v}" for k, v in facts["expressions"].items())
        grey, labelled = facts["greyscale_share"], facts["labelled_share"]
        lines.append(
            f"  {split}: kept {facts['kept']} ({facts['identities']} identities; "
            f"greyscale {100 * (grey or 0):.1f} %, landmark labels {100 * (labelled or 0):.1f} %)"
        )
        lines.append(f"    expressions: {counts}")
        lines.append(f"    skipped: {skipped}")
    if "train" in summary:
        teach = teachable_expressions(summary["train"]["expressions"])
        lines.append(
            f"  expressions with >= {MIN_TEACHABLE} training samples: {', '.join(teach) or 'none'}"
        )
    return "\n".join(lines)


__all__ = [
    "LABELS",
    "MIN_TEACHABLE",
    "FacialExpressions",
    "PreparedFace",
    "describe_prepared",
    "expression_counts",
    "identity_of",
    "identity_splits",
    "is_greyscale",
    "normalise_label",
    "split_files",
    "summarise_prepared",
    "teachable_expressions",
]
