"""A world's files as the scorer reads them: pairs.csv, world.json, the AffectNet-layout lists.

The world renders every identity in all eight expressions, pixel-aligned (`pairs.csv`), so an
edit of identity i towards happy can be compared with identity i's own happy rendering. Only
files are read here, never the world's generator, so the same code scores any dataset written
in that layout.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from faceedit.errors import DatasetError
from faceedit.vocab.expressions import EXPRESSION_INDEX, EXPRESSIONS
from trainer.data.affectnet import CSV_FILES, IMAGE_DIR, LIST_DIR, five_points
from trainer.data.common import read_image, resize_image, to_tensor

PAIRS_FILE: Final[str] = "pairs.csv"
MANIFEST_FILE: Final[str] = "world.json"
AFFECTNET_DIR: Final[str] = "affectnet"
PAIRS_COLUMNS: Final[tuple[str, ...]] = ("identity", "split", "expression", "intensity", "image")
# The lists that hold every rendering's 68 landmarks (val and test identities share the second).
LANDMARK_LISTS: Final[tuple[str, ...]] = (CSV_FILES["train"], CSV_FILES["val"])


@dataclass(frozen=True)
class Rendering:
    """One row of pairs.csv: an identity shown in one expression, and its class map when the
    world wrote one (the `labels` column)."""

    identity: str
    split: str
    expression: int
    intensity: float
    image: Path
    labels: Path | None = None


def read_pairs(world: Path) -> list[Rendering]:
    """pairs.csv of a world folder (paths resolved against the folder)."""
    path = Path(world) / PAIRS_FILE
    if not path.is_file():
        raise DatasetError(f"{path} does not exist: make the world with 'faceedit-train synth'")
    rows: list[Rendering] = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in PAIRS_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(f"{path}: columns {missing} are missing (has {reader.fieldnames})")
        for number, row in enumerate(reader, start=2):
            name = row["expression"].strip()
            if name in EXPRESSION_INDEX:
                expression = EXPRESSION_INDEX[name]
            elif name.isdigit() and int(name) < len(EXPRESSIONS):
                expression = int(name)
            else:
                raise DatasetError(f"{path}:{number}: unknown expression {name!r}")
            labels = (row.get("labels") or "").strip()
            rows.append(
                Rendering(
                    identity=row["identity"].strip(),
                    split=row["split"].strip(),
                    expression=expression,
                    intensity=float(row["intensity"] or 1.0),
                    image=_within(world, row["image"]),
                    labels=_within(world, labels) if labels else None,
                )
            )
    if not rows:
        raise DatasetError(f"{path} holds no renderings")
    return rows


def _within(world: Path, name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else Path(world) / path


def by_identity(rows: Iterable[Rendering], split: str) -> dict[str, dict[int, Rendering]]:
    """identity -> expression -> rendering, for the identities of `split` with intensity 1."""
    table: dict[str, dict[int, Rendering]] = {}
    for row in rows:
        if row.split == split and row.intensity == 1.0:
            table.setdefault(row.identity, {})[row.expression] = row
    return {k: v for k, v in sorted(table.items()) if len(v) == len(EXPRESSIONS)}


def held_out_identities(world: Path, count: int) -> dict[str, dict[int, Rendering]]:
    """The first `count` held-out (test) identities rendered in every expression (by_identity)."""
    return dict(list(by_identity(read_pairs(world), "test").items())[:count])


def world_size(world: Path) -> int:
    """The world's image size, from its world.json."""
    info = Path(world) / MANIFEST_FILE
    if not info.is_file():
        raise DatasetError(f"{info} does not exist: make the world with 'faceedit-train synth'")
    return int(json.loads(info.read_text())["size"])


def world_landmarks(world: Path) -> dict[Path, np.ndarray]:
    """Image path (resolved) -> its 5 alignment points (from the 68 annotated), read from the
    world's AffectNet-layout lists."""
    root = Path(world) / AFFECTNET_DIR
    out: dict[Path, np.ndarray] = {}
    for name in LANDMARK_LISTS:
        path = root / LIST_DIR / name
        if not path.is_file():
            continue
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                values = np.array([float(v) for v in row["facial_landmarks"].split(";")])
                image = root / IMAGE_DIR / row["subDirectory_filePath"]
                out[image.resolve()] = five_points(values.reshape(68, 2))
    return out


def world_valence_arousal(world: Path) -> list[tuple[float, float]]:
    """Per expression, the mean (valence, arousal) of the world's AffectNet-layout training
    list: what an edit towards that expression is conditioned on in the world's scoring."""
    return mean_valence_arousal(Path(world) / AFFECTNET_DIR / LIST_DIR / CSV_FILES["train"])


def mean_valence_arousal(affectnet_csv: Path) -> list[tuple[float, float]]:
    """Per expression, the mean (valence, arousal) of an AffectNet-layout list ((0, 0) if none)."""
    sums = np.zeros((len(EXPRESSIONS), 2))
    counts = np.zeros(len(EXPRESSIONS))
    with open(affectnet_csv, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            try:
                code = int(row["expression"])
                va = float(row["valence"]), float(row["arousal"])
            except (KeyError, ValueError):
                continue
            if 0 <= code < len(EXPRESSIONS) and all(-1.0 <= v <= 1.0 for v in va):
                sums[code] += va
                counts[code] += 1
    means = sums / np.maximum(counts, 1)[:, None]
    return [(float(v), float(a)) for v, a in means]


def as_crop(image: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 3) uint8: a rendering as the model's crop (resized only if it is not)."""
    return image if image.shape[:2] == (size, size) else resize_image(image, size)


def load_crop(path: Path, size: int) -> np.ndarray:
    """(size, size, 3) uint8 RGB crop of a rendering."""
    return as_crop(read_image(path), size)


class RenderingSet(Dataset):
    """(image (3, S, S) in [-1, 1], expression index) pairs: the judge's data."""

    def __init__(self, rows: Sequence[Rendering], size: int, view_size: int | None = None) -> None:
        self.rows = list(rows)
        self.size = size
        self.view_size = view_size or size  # bilinear upsampling, as the judge's probabilities
        self.targets = [r.expression for r in self.rows]  # for class-balanced sampling

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        row = self.rows[index]
        image = to_tensor(load_crop(row.image, self.size))
        if self.view_size != self.size:
            image = F.interpolate(
                image[None],
                size=(self.view_size,) * 2,
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )[0]
        return image, row.expression
