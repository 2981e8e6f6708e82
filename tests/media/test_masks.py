"""The mask files: NAME_labels.png reads back as the exact classes, NAME_labels_color.png in colour."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceedit.errors import InputError, OutputError
from faceedit.media.images import save_png
from faceedit.media.masks import mask_images, mask_paths, read_labels, save_masks
from faceedit.vocab.labels import CLASS_COLORS, NUM_CLASSES, REGION_NAMES


def read_image(path: Path) -> np.ndarray:
    """What is on disk, as RGB or grey (sources.read_image refuses images this small)."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else image


def every_class() -> np.ndarray:
    """(4, 19) label map holding every class, so a lossy or remapped write shows."""
    return np.tile(np.arange(NUM_CLASSES, dtype=np.uint8), (4, 1))


def soft_masks(shape: tuple[int, int]) -> np.ndarray:
    masks = np.zeros((len(REGION_NAMES), *shape), np.float32)
    masks[1, 1:3, 4:6] = 1.0
    masks[3, 0, 0] = 0.5
    return masks


def test_both_label_files_read_back(tmp_path: Path) -> None:
    labels = every_class()
    written = save_masks(tmp_path / "photo.jpg", labels, soft_masks(labels.shape), REGION_NAMES)
    names = sorted(p.name for p in written)
    assert names == sorted(
        ["photo_labels.png", "photo_labels_color.png"]
        + [f"photo_mask_{r}.png" for r in REGION_NAMES]
    )
    np.testing.assert_array_equal(read_labels(tmp_path / "photo_labels.png"), labels)
    colours = read_image(tmp_path / "photo_labels_color.png")
    assert colours.shape == (*labels.shape, 3)
    for c in range(NUM_CLASSES):
        assert tuple(colours[0, c]) == CLASS_COLORS[c]
    eyes = read_image(tmp_path / "photo_mask_eyes.png")
    assert eyes.shape == labels.shape and eyes[1, 4] == 255 and eyes[0, 0] == 0
    assert read_image(tmp_path / "photo_mask_mouth.png")[0, 0] == 128


def test_paths_keep_the_name_and_drop_only_an_image_extension(tmp_path: Path) -> None:
    assert mask_paths(tmp_path / "a.png", ())["labels"] == tmp_path / "a_labels.png"
    assert mask_paths(tmp_path / "frame", ())["labels_color"] == tmp_path / "frame_labels_color.png"
    assert mask_paths(tmp_path / "v1.2", ("mouth",))["mouth"] == tmp_path / "v1.2_mask_mouth.png"


def test_bad_maps_are_refused(tmp_path: Path) -> None:
    labels = every_class()
    with pytest.raises(ValueError, match="region masks"):
        mask_images(labels, soft_masks(labels.shape)[:2], REGION_NAMES)
    with pytest.raises(ValueError, match=r"0\.\.18"):
        mask_images(labels + 1, soft_masks(labels.shape), REGION_NAMES)
    colour = save_png(tmp_path / "x_labels_color.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InputError, match="not a class map"):
        read_labels(colour)
    with pytest.raises(InputError, match="not a readable PNG"):
        read_labels(tmp_path / "absent_labels.png")


def test_image_and_mask_files_need_neither_torch_nor_qt() -> None:
    """The writers serve the window (no torch there) and the trainer (no Qt there)."""
    code = (
        "import sys, faceedit.media.images, faceedit.media.masks, faceedit.progress; "
        "print(sorted(m for m in ('torch', 'PySide6') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=root
    )
    assert out.stdout.strip() == "[]"


def test_a_mask_name_taken_by_a_folder_writes_no_mask_at_all(tmp_path: Path) -> None:
    (tmp_path / "face_mask_mouth.png").mkdir()
    labels = np.zeros((8, 8), np.uint8)
    masks = np.zeros((len(REGION_NAMES), 8, 8), np.float32)
    with pytest.raises(OutputError, match=r"face_mask_mouth\.png: is an existing folder"):
        save_masks(tmp_path / "face.png", labels, masks, REGION_NAMES)
    assert [p.name for p in tmp_path.iterdir()] == ["face_mask_mouth.png"]
