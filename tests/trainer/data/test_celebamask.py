"""CelebAMask-HQ loader: label maps from per-part PNGs, splits, paired augmentations, bad files."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faceedit.errors import DatasetError
from faceedit.vocab.labels import CLASS_INDEX, flip_permutation, palette
from tests.trainer.fixtures import PART_LAYOUT, compose, part_mask, write_celebamask_hq
from trainer.data import AugmentConfig, CelebAMaskHQ

ALL_TRAIN = {i: 1000 + i for i in range(8)}  # orig_idx < 162771: every id in "train"
NO_JITTER = {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0}


def to_uint8(image: torch.Tensor) -> np.ndarray:
    return ((image.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.int32)


def test_label_map_follows_class_order_and_reads_every_png_encoding(tmp_path: Path) -> None:
    parts = [p for p in PART_LAYOUT if p != "nose"]  # the nose is missing: no file
    modes = {"hair": "P", "skin": "L", "l_eye": "RGB", "u_lip": "P", "mouth": "RGB"}
    write_celebamask_hq(tmp_path, [0, 1, 2], parts=parts, modes=modes, mapping=ALL_TRAIN)
    ds = CelebAMaskHQ(tmp_path, "train", size=32)
    assert len(ds) == 3
    image, labels = ds[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert image.min() >= -1.0 and image.max() <= 1.0
    assert labels.shape == (32, 32) and labels.dtype == torch.int64
    np.testing.assert_array_equal(labels.numpy(), compose(parts, 32))
    # Hair (17, palette PNG) overlaps skin (1, greyscale PNG): the later class wins.
    assert part_mask("skin", 32)[8, 16] and part_mask("hair", 32)[8, 16]
    assert labels[8, 16] == CLASS_INDEX["hair"]
    # No nose file: the nose area stays skin.
    assert part_mask("nose", 32)[18, 16] and labels[18, 16] == CLASS_INDEX["skin"]
    # Lips (12, 13) over mouth (11); the RGB-encoded eye is read too.
    column = labels[:, 16].tolist()
    assert column[21] == CLASS_INDEX["u_lip"]
    assert column[23] == CLASS_INDEX["mouth"]
    assert column[24] == CLASS_INDEX["l_lip"]
    assert labels[15, 11] == CLASS_INDEX["l_eye"]


def test_label_map_at_a_larger_size_is_nearest_neighbour(tmp_path: Path) -> None:
    write_celebamask_hq(tmp_path, [0, 1, 2], mapping=ALL_TRAIN)
    labels = CelebAMaskHQ(tmp_path, "train", size=64)[0][1].numpy()
    assert set(np.unique(labels)) == set(np.unique(compose(PART_LAYOUT, 32)))
    np.testing.assert_array_equal(labels[::2, ::2], compose(PART_LAYOUT, 32))


def test_split_follows_the_mapping_file(tmp_path: Path) -> None:
    mapping = {0: 5, 1: 162770, 2: 162771, 3: 182637, 4: 182638, 5: 202598}
    write_celebamask_hq(tmp_path, range(7), mapping=mapping)  # id 6 is not in the mapping
    with open(tmp_path / "CelebA-HQ-to-CelebA-mapping.txt", "a") as handle:
        handle.write("7 not-a-number 000008.jpg\n")
    splits = {s: CelebAMaskHQ(tmp_path, s, size=16) for s in ("train", "val", "test")}
    assert splits["train"].ids == [0, 1]
    assert splits["val"].ids == [2, 3]
    assert splits["test"].ids == [4, 5]
    assert splits["train"].skipped["id missing from the mapping file"] == 1
    assert splits["train"].skipped["malformed mapping row"] == 1


def test_seeded_split_without_mapping_is_a_stable_partition(tmp_path: Path) -> None:
    write_celebamask_hq(tmp_path, range(20))
    ids = {s: CelebAMaskHQ(tmp_path, s, size=16).ids for s in ("train", "val", "test")}
    assert sorted(ids["train"] + ids["val"] + ids["test"]) == list(range(20))
    assert (len(ids["train"]), len(ids["val"]), len(ids["test"])) == (16, 2, 2)
    assert CelebAMaskHQ(tmp_path, "val", size=16).ids == ids["val"]
    other = {s: CelebAMaskHQ(tmp_path, s, size=16, split_seed=1).ids for s in ("val", "test")}
    assert other != {"val": ids["val"], "test": ids["test"]}


def test_flip_mirrors_pixels_and_swaps_left_right_classes(tmp_path: Path) -> None:
    write_celebamask_hq(tmp_path, [0, 1, 2], mapping=ALL_TRAIN)
    plain = CelebAMaskHQ(tmp_path, "train", size=32)
    flip = AugmentConfig(flip_prob=1.0, scale=(1.0, 1.0), **NO_JITTER)
    flipped = CelebAMaskHQ(tmp_path, "train", size=32, augment=flip)
    image, labels = plain[0]
    f_image, f_labels = flipped[0]
    assert torch.allclose(f_image, image.flip(-1), atol=1e-5, rtol=0)
    np.testing.assert_array_equal(f_labels.numpy(), flip_permutation()[labels.numpy()[:, ::-1]])
    ys, xs = np.nonzero(labels.numpy() == CLASS_INDEX["l_eye"])
    assert len(ys) > 0
    assert (f_labels.numpy()[ys, 31 - xs] == CLASS_INDEX["r_eye"]).all()
    assert (f_labels.numpy() == CLASS_INDEX["l_eye"]).sum() == (labels.numpy() == 5).sum()


def colour_agreement(image: torch.Tensor, labels: np.ndarray) -> float:
    """Share of interior pixels (3 x 3 of one class) showing their class's painted colour.

    A flip swaps l_/r_ labels but not the colours painted on the image, so the better of the
    plain and the swapped palette is taken.
    """
    size = labels.shape[0]
    padded = np.pad(labels, 1, mode="edge")
    shifts = [
        padded[1 + dy : size + 1 + dy, 1 + dx : size + 1 + dx]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    ]
    interior = np.all([s == labels for s in shifts], axis=0)
    assert interior.sum() > size * size // 2
    pixels = to_uint8(image)
    best = 0.0
    for colours in (palette(), palette()[flip_permutation()]):
        error = np.abs(pixels - colours.astype(np.int32)[labels]).max(axis=2)
        best = max(best, float(np.mean(error[interior] <= 40)))
    return best


def test_scale_crop_and_pad_keep_labels_on_their_pixels(tmp_path: Path) -> None:
    write_celebamask_hq(tmp_path, [0, 1, 2], size=128, mask_size=64, mapping=ALL_TRAIN)
    config = AugmentConfig(flip_prob=0.5, scale=(0.6, 1.4), **NO_JITTER)
    ds = CelebAMaskHQ(tmp_path, "train", size=64, augment=config, seed=3)
    plain_labels = CelebAMaskHQ(tmp_path, "train", size=64)[0][1]
    changed = 0
    for epoch in range(6):
        ds.set_epoch(epoch)
        image, labels = ds[0]
        changed += not torch.equal(labels, plain_labels)
        lab = labels.numpy()
        assert colour_agreement(image, lab) > 0.98, f"epoch {epoch}"
        # The check bites: labels two pixels off their image fail it.
        assert colour_agreement(image, np.roll(lab, 2, axis=1)) < 0.98
    assert changed >= 5


def test_augmentation_depends_only_on_seed_epoch_and_index(tmp_path: Path) -> None:
    write_celebamask_hq(tmp_path, [0, 1, 2], mapping=ALL_TRAIN)
    a = CelebAMaskHQ(tmp_path, "train", size=32, augment=True, seed=7)
    b = CelebAMaskHQ(tmp_path, "train", size=32, augment=True, seed=7)
    torch.manual_seed(123)  # the global RNG plays no part
    a.set_epoch(4)
    b.set_epoch(4)
    first = a[1]
    b[0], b[2]  # other items drawn first change nothing
    for x, y in zip(first, b[1], strict=True):
        assert torch.equal(x, y)
    a.set_epoch(5)
    assert not torch.equal(a[1][0], first[0])


def test_colour_jitter_touches_the_image_only(tmp_path: Path) -> None:
    write_celebamask_hq(tmp_path, [0, 1, 2], mapping=ALL_TRAIN)
    plain = CelebAMaskHQ(tmp_path, "train", size=32)[0]
    jitter = AugmentConfig(flip_prob=0.0, scale=(1.0, 1.0), brightness=0.5, contrast=0.5)
    image, labels = CelebAMaskHQ(tmp_path, "train", size=32, augment=jitter)[0]
    assert torch.equal(labels, plain[1])
    assert (image - plain[0]).abs().mean() > 0.01


def test_bad_files_are_skipped_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trainer.data")
    ids = [0, 1, 2, 3, 2001, 2002]
    write_celebamask_hq(tmp_path, ids, mapping={i: 10 + i for i in ids})
    shutil.rmtree(tmp_path / "CelebAMask-HQ-mask-anno" / "1")  # masks of 2001 and 2002
    for mask in (tmp_path / "CelebAMask-HQ-mask-anno" / "0").glob("00003_*.png"):
        mask.unlink()
    (tmp_path / "CelebA-HQ-img" / "1.jpg").write_bytes(b"not a jpeg")
    ds = CelebAMaskHQ(tmp_path, "train", size=16)
    assert ds.ids == [0, 1, 2]
    assert ds.skipped == {"missing mask folder": 2, "no mask files": 1}
    assert "missing mask folder" in caplog.text and "2001.jpg" in caplog.text
    # The unreadable image is found at load time and replaced by the next sample.
    replacement = ds[1]
    assert torch.equal(replacement[1], ds[2][1])
    assert ds.skipped["unreadable file"] == 1
    assert any(
        e.reason == "unreadable file" and e.item.endswith("1.jpg") for e in ds.skipped_examples
    )
    assert "1.jpg" in caplog.records[-1].getMessage()
    ds[1]  # known bad: not counted twice
    assert ds.skipped["unreadable file"] == 1


def test_empty_root_names_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        CelebAMaskHQ(tmp_path, "train")
    message = str(info.value)
    assert str(tmp_path) in message and "CelebA-HQ-img" in message and "mask-anno" in message


def test_images_without_masks_give_a_helpful_error(tmp_path: Path) -> None:
    write_celebamask_hq(tmp_path, [0, 1, 2], mapping=ALL_TRAIN)
    shutil.rmtree(tmp_path / "CelebAMask-HQ-mask-anno")
    with pytest.raises(DatasetError, match="3 x missing mask folder"):
        CelebAMaskHQ(tmp_path, "train")


def test_invalid_augment_config_is_refused() -> None:
    with pytest.raises(ValueError, match="flip_prob"):
        AugmentConfig(flip_prob=1.5)
    with pytest.raises(ValueError, match="scale"):
        AugmentConfig(scale=(1.2, 0.8))


def test_part_masks_that_do_not_fit_their_image_are_skipped_with_a_running_total(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trainer.data")
    write_celebamask_hq(tmp_path, [0, 1, 2], mapping=ALL_TRAIN)
    folder = tmp_path / "CelebAMask-HQ-mask-anno" / "0"
    # One mask of image 1 is 32x16: the wrong proportions for its 64x64 image.
    skin = folder / "00001_skin.png"
    Image.open(skin).resize((16, 32)).save(skin)
    ds = CelebAMaskHQ(tmp_path, "train", size=16)
    replacement = ds[1]
    assert torch.equal(replacement[1], ds[2][1]), "the next sample replaces it"
    assert ds.skipped == {"masks that do not fit their image": 1}
    message = caplog.records[-1].getMessage()
    assert "1.jpg: its part masks are 16x32, 32x32" in message
    assert "(1 skipped so far: 1 x masks that do not fit their image)" in message


def test_the_parser_stage_augments_with_the_configured_scale_range(tmp_path: Path) -> None:
    """data.augment_scale reaches the parser's training set; (1, 1) flips without resampling,
    so every label survives exactly (the world-64 parser's thin parts)."""
    from trainer.config import ConfigError, apply_overrides, default_config
    from trainer.stages.parser import parsing_train_set

    write_celebamask_hq(tmp_path, [0, 1, 2], mapping=ALL_TRAIN)
    base = apply_overrides(default_config("parser", "tiny"), [f"data.celebamask_hq={tmp_path}"])
    exact = parsing_train_set(
        apply_overrides(base, ["data.augment=true", "data.augment_scale=1,1"])
    )
    assert exact.augment is not None and exact.augment.scale == (1.0, 1.0)
    plain = CelebAMaskHQ(tmp_path, "train", size=exact.size)
    for index in range(len(plain)):
        labels = plain[index][1].numpy()
        seen = exact[index][1].numpy()
        mirrored = flip_permutation()[labels[:, ::-1]]
        assert np.array_equal(seen, labels) or np.array_equal(seen, mirrored)
    assert parsing_train_set(apply_overrides(base, ["data.augment=false"])).augment is None
    with pytest.raises(ConfigError, match="augment_scale"):
        apply_overrides(base, ["data.augment_scale=1.2,0.8"])
