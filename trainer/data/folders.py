"""Your own photos, sorted into one folder per expression.

Two layouts are accepted:
    root/<expression>/**/*.jpg           one pool, split 80/10/10 by file (seeded, `split_seed`)
    root/train/<expression>/...          your own split; `root/test/...` for "test", and
    root/test/<expression>/...           `root/val/...` (or `validation/`) for "val" when
                                         present, else "val" reads the test folder
The split layout is used as soon as `root/train` or `root/test` exists. Folder names are the
unified expression names (faceedit.vocab.expressions.EXPRESSIONS, any letter case); other folders are
skipped, counted and named in the log. Images are the largest centred square, or, with
`align="detect"`, the detected face aligned like the app's crops (images without a face are
skipped).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Final, Literal

import numpy as np

from faceedit.errors import ConfigError, NoFaceError
from faceedit.vocab.expressions import EXPRESSION_INDEX, EXPRESSIONS
from trainer.data.common import (
    IMAGE_EXTENSIONS,
    ExpressionDataset,
    ExpressionRecord,
    Split,
    centre_square_crop,
    describe_folder,
    detect_and_align,
    logger,
    seeded_split,
)

FoldersAlign = Literal["center", "detect"]
SPLIT_FOLDERS: Final[dict[str, tuple[str, ...]]] = {
    "train": ("train",),
    "val": ("val", "validation", "test"),
    "test": ("test",),
}


class ExpressionFolders(ExpressionDataset):
    """Photos in expression-named folders: `ds[i]` -> (image (3, S, S) float32 in [-1, 1],
    expression int64, valence_arousal (2,) float32, always NaN)."""

    kind = "expression folders"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: Split,
        size: int = 128,
        align: FoldersAlign = "center",
        seed: int = 0,
        *,
        split_seed: int = 0,
    ) -> None:
        super().__init__(root, split, size, seed)
        if align not in ("center", "detect"):
            raise ConfigError(f"align must be 'center' or 'detect', got {align!r}")
        self.align = align
        self.split_seed = split_seed
        self.layout: Literal["pooled", "split"] = "pooled"
        self._index()

    def _index(self) -> None:
        expected = (
            f"{self.root}/<expression>/*.jpg (or .png, ...) or {self.root}/train/<expression>/ "
            f"and {self.root}/test/<expression>/, with <expression> one of {list(EXPRESSIONS)}"
        )
        if not self.root.is_dir():
            self._finish_index(expected, f"{self.root} is not a folder")
            return
        if any((self.root / name).is_dir() for name in ("train", "test")):
            self.layout = "split"
            folder = next(
                (self.root / n for n in SPLIT_FOLDERS[self.split] if (self.root / n).is_dir()),
                None,
            )
            if folder is None:
                found = (
                    f"no {self.root / SPLIT_FOLDERS[self.split][0]}; {describe_folder(self.root)}"
                )
                self._finish_index(expected, found)
                return
            if folder.name != SPLIT_FOLDERS[self.split][0]:
                logger.info("expression folders: split %r reads %s", self.split, folder)
            files = self._scan(folder)
        else:
            pooled = self._scan(self.root)
            split_of = seeded_split(
                (str(p.relative_to(self.root)) for p, _ in pooled), seed=self.split_seed
            )
            files = [
                (p, e) for p, e in pooled if split_of[str(p.relative_to(self.root))] == self.split
            ]
        va = (math.nan, math.nan)
        self._items = [ExpressionRecord(path, expression, va) for path, expression in files]
        self._finish_index(expected, describe_folder(self.root))

    def _scan(self, folder: Path) -> list[tuple[Path, int]]:
        """(image, expression) of every image in the expression folders directly under `folder`."""
        found: list[tuple[Path, int]] = []
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith("."):
                continue
            if not entry.is_dir():
                self._skips.add("file outside an expression folder", entry)
                continue
            files = sorted(
                p for p in entry.rglob("*") if p.is_file() and not p.name.startswith(".")
            )
            expression = EXPRESSION_INDEX.get(entry.name.lower())
            if expression is None:
                self._skips.add(
                    "unknown expression folder",
                    entry,
                    f"{len(files)} files; folder names must be one of {list(EXPRESSIONS)}",
                )
                continue
            for path in files:
                if path.suffix.lower() in IMAGE_EXTENSIONS:
                    found.append((path, expression))
                else:
                    self._skips.add("not an image file", path)
        return found

    def _crop(self, image: np.ndarray, record: ExpressionRecord) -> np.ndarray:
        if self.align == "detect":
            crop = detect_and_align(image, self.size)
            if crop is None:
                raise NoFaceError(f"no face found in {record.path}")
            return crop
        return centre_square_crop(image, self.size)
