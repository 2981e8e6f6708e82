"""CelebAMask-HQ for face parsing, read from the dataset's own files.

Layout under `root` (as distributed):
    CelebA-HQ-img/{id}.jpg                                 1024 x 1024 RGB
    CelebAMask-HQ-mask-anno/{id // 2000}/{id:05d}_{part}.png   512 x 512, one binary PNG per part
    CelebA-HQ-to-CelebA-mapping.txt                        optional: `idx orig_idx orig_file`
A missing part file means the part is absent from that face. Label maps are built here in
face-parsing order (faceedit.vocab.labels), later classes overwriting earlier ones (hair over skin);
the official `g_mask.py` order is never used.

Splits: with the mapping file, CelebA's official partition by `orig_idx` (< 162771 train,
< 182638 val, else test), the split published face-parsing results use; without it, a seeded
80/10/10 split of the image ids (`split_seed`, default 0; ids missing from a present mapping
file are skipped and counted).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final, NamedTuple

import cv2
import numpy as np
import torch

from faceedit.vocab.labels import CLASS_INDEX, CLASS_NAMES, flip_permutation
from trainer.data.common import (
    AugmentConfig,
    FaceDataset,
    MismatchedSample,
    Split,
    color_jitter,
    describe_folder,
    read_binary_mask,
    read_image,
    resize_image,
    resize_labels,
    seeded_split,
    to_tensor,
)

IMAGE_DIR: Final[str] = "CelebA-HQ-img"
MASK_DIR: Final[str] = "CelebAMask-HQ-mask-anno"
MAPPING_FILE: Final[str] = "CelebA-HQ-to-CelebA-mapping.txt"
IMAGES_PER_MASK_FOLDER: Final[int] = 2000
# CelebA's official partition by original image index (list_eval_partition.txt boundaries).
CELEBA_TRAIN_END: Final[int] = 162771
CELEBA_VAL_END: Final[int] = 182638
PART_NAMES: Final[tuple[str, ...]] = CLASS_NAMES[1:]
_MASK_NAME: Final[re.Pattern[str]] = re.compile(r"^(\d+)_([a-z_]+)\.png$", re.IGNORECASE)
# Indexed by every uint8 label: values past the 19 classes (255, "unlabelled", in label maps
# drawn from landmarks) stay what they are.
_FLIP: Final[np.ndarray] = np.concatenate(
    [flip_permutation(), np.arange(len(CLASS_NAMES), 256)]
).astype(np.uint8)


class CelebARecord(NamedTuple):
    """One indexed face: its id, image file and (class, mask file) pairs in class order."""

    id: int
    image: Path
    parts: tuple[tuple[int, Path], ...]


def split_of_original_index(orig_idx: int) -> str:
    """CelebA's official split of an original CelebA image index."""
    if orig_idx < CELEBA_TRAIN_END:
        return "train"
    return "val" if orig_idx < CELEBA_VAL_END else "test"


def check_mask_sizes(
    image: object, image_shape: tuple[int, ...], masks: dict[int, np.ndarray]
) -> None:
    """Part masks must share one size with the image's proportions (CelebAMask-HQ's are half
    the image's side); others would label the wrong pixels, so the sample is skipped."""
    shapes = {mask.shape[:2] for mask in masks.values()}
    height, width = image_shape[:2]
    if len(shapes) > 1 or any(h * width != w * height for h, w in shapes):
        listed = ", ".join(f"{w}x{h}" for h, w in sorted(shapes))
        raise MismatchedSample(
            f"{image}: its part masks are {listed}, which does not fit the {width}x{height} "
            "image; the labels would land on the wrong pixels"
        )


def build_label_map(masks: dict[int, np.ndarray], size: int) -> np.ndarray:
    """(size, size) uint8 label map from per-class boolean masks; higher classes win overlaps."""
    labels = np.zeros((size, size), dtype=np.uint8)
    for cls in sorted(masks):
        labels[resize_labels(masks[cls], size)] = cls
    return labels


def augment_pair(
    image: np.ndarray, labels: np.ndarray, rng: np.random.Generator, config: AugmentConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Flip (swapping left/right classes), scale and crop/pad an image and its labels alike,
    then jitter the image's colours.

    One affine matrix warps both (bilinear for the image, nearest for labels), so every label
    stays on its pixel. Scaled-down images are padded with black pixels labelled background.
    """
    size_y, size_x = labels.shape
    flip = bool(rng.random() < config.flip_prob)
    scale = float(rng.uniform(*config.scale))
    # Offsets: a zoomed-in image is cropped anywhere, a zoomed-out one placed anywhere.
    tx = float(rng.uniform(min(0.0, size_x * (1 - scale)), max(0.0, size_x * (1 - scale))))
    ty = float(rng.uniform(min(0.0, size_y * (1 - scale)), max(0.0, size_y * (1 - scale))))
    # Pixel centres map as x' + 0.5 = scale * (x + 0.5) + t, with x -> W - 1 - x when flipped.
    if flip:
        matrix = [[-scale, 0.0, scale * (size_x - 0.5) - 0.5 + tx]]
    else:
        matrix = [[scale, 0.0, 0.5 * scale - 0.5 + tx]]
    matrix.append([0.0, scale, 0.5 * scale - 0.5 + ty])
    affine = np.array(matrix, dtype=np.float64)
    if flip or scale != 1.0 or tx != 0.0 or ty != 0.0:
        border = cv2.BORDER_CONSTANT
        image = cv2.warpAffine(
            image, affine, (size_x, size_y), flags=cv2.INTER_LINEAR, borderMode=border
        )
        labels = cv2.warpAffine(
            labels, affine, (size_x, size_y), flags=cv2.INTER_NEAREST, borderMode=border
        )
    if flip:
        labels = _FLIP[labels]
    image = color_jitter(image, rng, config.brightness, config.contrast, config.saturation)
    return image, labels


class CelebAMaskHQ(FaceDataset):
    """CelebAMask-HQ faces and label maps: `ds[i]` -> (image (3, S, S) float32 in [-1, 1],
    labels (S, S) int64 in 0..18).

    Images are resized with area interpolation, masks with nearest neighbour. `augment=True`
    (or an AugmentConfig) turns on flip with left/right class swap, scale 0.75-1.25 with crop or
    pad, and colour jitter on the image; draws depend only on (seed, epoch, index), so call
    `set_epoch` each epoch for fresh yet reproducible augmentations under resume and DDP.
    """

    kind = "CelebAMask-HQ"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: Split,
        size: int = 512,
        augment: bool | AugmentConfig = False,
        seed: int = 0,
        *,
        split_seed: int = 0,
    ) -> None:
        super().__init__(root, split, size, seed)
        if augment is True:
            augment = AugmentConfig()
        self.augment: AugmentConfig | None = augment or None
        self.split_seed = split_seed
        self._items: list[CelebARecord] = []
        self._index()

    @property
    def ids(self) -> list[int]:
        """CelebA-HQ ids of the samples, in dataset order."""
        return [r.id for r in self._items]

    # -- indexing

    def _index(self) -> None:
        image_dir, mask_root = self.root / IMAGE_DIR, self.root / MASK_DIR
        expected = (
            f"images {IMAGE_DIR}/{{id}}.jpg and masks "
            f"{MASK_DIR}/{{id // 2000}}/{{id:05d}}_{{part}}.png with part one of {list(PART_NAMES)}"
        )
        if not image_dir.is_dir():
            found = f"no folder {IMAGE_DIR}/ (entries: {describe_folder(self.root)})"
            self._finish_index(expected, found)
            return
        images = self._list_images(image_dir)
        split_of = self._splits(sorted(images))
        wanted = sorted(i for i in images if split_of.get(i) == self.split)
        folders: dict[int, dict[int, list[tuple[int, Path]]] | None] = {}
        for image_id in wanted:
            folder = image_id // IMAGES_PER_MASK_FOLDER
            if folder not in folders:
                folders[folder] = self._list_masks(mask_root / str(folder))
            listing = folders[folder]
            if listing is None:
                self._skips.add("missing mask folder", images[image_id], f"no {MASK_DIR}/{folder}/")
                continue
            parts = listing.get(image_id)
            if not parts:
                self._skips.add(
                    "no mask files", images[image_id], f"no {image_id:05d}_*.png in {folder}/"
                )
                continue
            self._items.append(CelebARecord(image_id, images[image_id], tuple(sorted(parts))))
        found = (
            f"{len(images)} images, {len(wanted)} of them in split {self.split!r}, "
            f"mask folders: {describe_folder(mask_root) if mask_root.is_dir() else f'no {MASK_DIR}/'}"
        )
        self._finish_index(expected, found)

    def _list_images(self, image_dir: Path) -> dict[int, Path]:
        images: dict[int, Path] = {}
        for path in sorted(image_dir.iterdir()):
            if path.name.startswith(".") or not path.is_file():
                continue
            if path.suffix.lower() == ".jpg" and path.stem.isdigit():
                images[int(path.stem)] = path
            else:
                self._skips.add("unexpected file name", path, "expected {id}.jpg")
        return images

    def _list_masks(self, folder: Path) -> dict[int, list[tuple[int, Path]]] | None:
        """id -> [(class, mask file)] of one mask folder; None when the folder is missing."""
        if not folder.is_dir():
            return None
        masks: dict[int, list[tuple[int, Path]]] = {}
        for path in sorted(folder.iterdir()):
            match = _MASK_NAME.match(path.name)
            if match is None or match.group(2).lower() not in PART_NAMES:
                if not path.name.startswith("."):
                    self._skips.add("unexpected mask file", path, "expected {id:05d}_{part}.png")
                continue
            cls = CLASS_INDEX[match.group(2).lower()]
            masks.setdefault(int(match.group(1)), []).append((cls, path))
        return masks

    def _splits(self, ids: list[int]) -> dict[int, str]:
        mapping = self.root / MAPPING_FILE
        if not mapping.is_file():
            return {k: str(v) for k, v in seeded_split(ids, seed=self.split_seed).items()}
        split_of: dict[int, str] = {}
        lines = mapping.read_text(encoding="utf-8", errors="replace").splitlines()
        for number, line in enumerate(lines[1:], start=2):
            fields = line.split()
            if not fields:
                continue
            try:
                if len(fields) != 3:
                    raise ValueError(f"{len(fields)} columns instead of 3")
                split_of[int(fields[0])] = split_of_original_index(int(fields[1]))
            except ValueError as error:
                self._skips.add("malformed mapping row", f"{mapping}:{number}", str(error))
        for image_id in ids:
            if image_id not in split_of:
                self._skips.add("id missing from the mapping file", image_id, MAPPING_FILE)
        return split_of

    # -- loading

    def _describe(self, index: int) -> str:
        return str(self._items[index].image)

    def prepared_arrays(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(image (S, S, 3) uint8, labels (S, S) uint8) of item `index`, before augmentation:
        what `faceedit-train prepare` stores (raises the load errors of a bad file)."""
        record = self._items[index]
        original = read_image(record.image)
        masks = {cls: read_binary_mask(p) for cls, p in record.parts}
        check_mask_sizes(record.image, original.shape[:2], masks)
        image = resize_image(original, self.size)  # (S, S, 3) uint8
        labels = build_label_map(masks, self.size)
        return image, labels

    def _load(self, index: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        image, labels = self._decoded_once(index, lambda: self.prepared_arrays(index))
        if self.augment is not None:
            image, labels = augment_pair(image, labels, rng, self.augment)
        return to_tensor(image), torch.from_numpy(labels.astype(np.int64))
