"""Writers of the real on-disk formats the loaders read (trainer/data/celebamask.py, affectnet.py).

Encoding goes through cv2 with fixed parameters, so the same pixels always give the same bytes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import cv2
import numpy as np

from faceedit.errors import DatasetError
from trainer.data.affectnet import COLUMNS as AFFECTNET_COLUMNS
from trainer.data.affectnet import CSV_FILES, LIST_DIR
from trainer.data.affectnet import IMAGE_DIR as AFFECTNET_IMAGES
from trainer.data.celebamask import (
    CELEBA_TRAIN_END,
    CELEBA_VAL_END,
    IMAGE_DIR,
    IMAGES_PER_MASK_FOLDER,
    MAPPING_FILE,
    MASK_DIR,
    PART_NAMES,
)

JPEG_QUALITY: Final[int] = 95
PNG_COMPRESSION: Final[int] = 3
# CelebA has 202599 images: the official partition's test part ends there.
CELEBA_END: Final[int] = 202599
CELEBA_FIRST_INDEX: Final[dict[str, int]] = {
    "train": 0,
    "val": CELEBA_TRAIN_END,
    "test": CELEBA_VAL_END,
}
CELEBA_CAPACITY: Final[dict[str, int]] = {
    "train": CELEBA_TRAIN_END,
    "val": CELEBA_VAL_END - CELEBA_TRAIN_END,
    "test": CELEBA_END - CELEBA_VAL_END,
}
AFFECTNET_ROWS_PER_FOLDER: Final[int] = 1000


def encode_jpeg(image: np.ndarray) -> bytes:
    """(H, W, 3) uint8 RGB -> JPEG bytes (quality 95, deterministic)."""
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise DatasetError("cv2 could not encode a JPEG image")
    return data.tobytes()


def encode_png(image: np.ndarray) -> bytes:
    """(H, W) uint8 greyscale or (H, W, 3) BGR -> PNG bytes."""
    ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:
        raise DatasetError("cv2 could not encode a PNG image")
    return data.tobytes()


class CelebAMaskWriter:
    """CelebA-HQ-img/{id}.jpg, CelebAMask-HQ-mask-anno/{id // 2000}/{id:05d}_{part}.png (one
    white-on-black PNG per present part) and the mapping file whose orig_idx puts each image in
    the CelebA partition of its identity's split."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._next = dict(CELEBA_FIRST_INDEX)
        self._mapping: list[str] = []
        self._made: set[Path] = set()

    @staticmethod
    def check_capacity(images_per_split: dict[str, int]) -> None:
        """Refuse a world whose split would overflow CelebA's index range of that split."""
        for split, count in images_per_split.items():
            if count > CELEBA_CAPACITY[split]:
                raise DatasetError(
                    f"CelebAMask-HQ layout: {count} {split} images do not fit CelebA's {split} "
                    f"partition ({CELEBA_CAPACITY[split]} indices); use a smaller --count"
                )

    def _folder(self, path: Path) -> Path:
        if path not in self._made:
            path.mkdir(parents=True, exist_ok=True)
            self._made.add(path)
        return path

    def write(self, image_id: int, split: str, image: np.ndarray, labels: np.ndarray) -> None:
        images = self._folder(self.root / IMAGE_DIR)
        (images / f"{image_id}.jpg").write_bytes(encode_jpeg(image))
        masks = self._folder(self.root / MASK_DIR / str(image_id // IMAGES_PER_MASK_FOLDER))
        present = np.bincount(labels.ravel(), minlength=len(PART_NAMES) + 1)
        for cls, part in enumerate(PART_NAMES, start=1):
            if present[cls]:
                mask = (labels == cls).astype(np.uint8) * 255
                (masks / f"{image_id:05d}_{part}.png").write_bytes(encode_png(mask))
        orig = self._next[split]
        self._next[split] += 1
        self._mapping.append(f"{image_id} {orig} {orig + 1:06d}.jpg")

    def finish(self) -> None:
        text = "idx orig_idx orig_file\n" + "".join(line + "\n" for line in self._mapping)
        (self.root / MAPPING_FILE).write_text(text, encoding="utf-8")


def landmark_text(points: np.ndarray) -> str:
    """68 (x, y) points as AffectNet writes them: x1;y1;x2;y2;... with two decimals."""
    return ";".join(f"{v:.2f}" for v in np.asarray(points, dtype=np.float64).reshape(-1))


class AffectNetWriter:
    """Manually_Annotated_Images/<folder>/<name>.jpg and Manually_Annotated_file_lists/
    training.csv (train) and validation.csv (val and test) with AffectNet's header."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._rows: dict[str, list[Sequence[object]]] = {"training.csv": [], "validation.csv": []}
        self._made: set[Path] = set()

    def write(
        self,
        name: str,
        split: str,
        image: np.ndarray,
        landmarks: np.ndarray,
        code: int,
        valence_arousal: tuple[float, float],
        folder: int,
    ) -> str:
        """Write one image and its row; returns its path relative to the AffectNet root."""
        relative = f"{folder}/{name}.jpg"
        directory = self.root / AFFECTNET_IMAGES / str(folder)
        if directory not in self._made:
            directory.mkdir(parents=True, exist_ok=True)
            self._made.add(directory)
        (directory / f"{name}.jpg").write_bytes(encode_jpeg(image))
        x0, y0 = np.floor(landmarks.min(axis=0))
        x1, y1 = np.ceil(landmarks.max(axis=0))
        valence, arousal = valence_arousal
        self._rows[CSV_FILES[split]].append(
            (
                relative,
                int(x0),
                int(y0),
                int(x1 - x0),
                int(y1 - y0),
                landmark_text(landmarks),
                code,
                f"{valence:.4f}",
                f"{arousal:.4f}",
            )
        )
        return f"{AFFECTNET_IMAGES}/{relative}"

    def finish(self) -> None:
        lists = self.root / LIST_DIR
        lists.mkdir(parents=True, exist_ok=True)
        for name, rows in self._rows.items():
            (lists / name).write_text(csv_text(AFFECTNET_COLUMNS, rows), encoding="utf-8")


def csv_text(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def encode_png_rgb(image: np.ndarray) -> bytes:
    """(H, W, 3) uint8 RGB -> PNG bytes."""
    return encode_png(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
