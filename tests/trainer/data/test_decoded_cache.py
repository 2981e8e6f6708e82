"""Decoded samples kept in memory: a dataset that fits is read from its files once, gives the
same samples (augmentations drawn anew each epoch), and one that does not fit is never kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.trainer.fixtures import AffectNetRow, write_affectnet, write_celebamask_hq
from trainer.data import AffectNet, AugmentConfig, CelebAMaskHQ
from trainer.data import common as data_common

ALL_TRAIN = {i: 1000 + i for i in range(8)}


@pytest.fixture()
def file_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The image files the loaders open (every image and mask PNG goes through read_image)."""
    reads: list[str] = []
    original = data_common.sources.read_image

    def counting(path: object) -> np.ndarray:
        reads.append(str(path))
        return original(path)  # type: ignore[arg-type]  # str or PathLike, as the loaders pass

    monkeypatch.setattr(data_common.sources, "read_image", counting)
    return reads


def _epoch(dataset: CelebAMaskHQ | AffectNet, epoch: int) -> list[tuple[torch.Tensor, ...]]:
    dataset.set_epoch(epoch)
    return [dataset[i] for i in range(len(dataset))]


def test_a_dataset_that_fits_reads_its_files_once_and_augments_anew(
    tmp_path: Path, file_reads: list[str]
) -> None:
    write_celebamask_hq(tmp_path, range(4), mapping=ALL_TRAIN)
    augment = AugmentConfig(scale=(0.8, 1.2))
    kept = CelebAMaskHQ(tmp_path, "train", size=32, augment=augment)
    fresh = CelebAMaskHQ(tmp_path, "train", size=32, augment=augment)
    fresh.cache_bytes = 0
    first = _epoch(kept, 0)
    reads_per_epoch = len(file_reads)
    assert reads_per_epoch > 4  # an image and its part masks per sample
    second = _epoch(kept, 1)
    assert len(file_reads) == reads_per_epoch  # the second epoch opened no file
    # the same samples as a dataset that decodes every time, epoch for epoch
    for epoch, samples in ((0, first), (1, second)):
        for ours, theirs in zip(samples, _epoch(fresh, epoch), strict=True):
            for a, b in zip(ours, theirs, strict=True):
                torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, second, strict=True))
    assert len(file_reads) == 3 * reads_per_epoch  # the uncached dataset read twice


def test_a_dataset_that_does_not_fit_is_never_partly_kept(
    tmp_path: Path, file_reads: list[str]
) -> None:
    write_celebamask_hq(tmp_path, range(4), mapping=ALL_TRAIN)
    dataset = CelebAMaskHQ(tmp_path, "train", size=32)
    one_sample = 32 * 32 * 3 + 32 * 32  # image and label map, uint8
    dataset.cache_bytes = one_sample * len(dataset) - 1
    _epoch(dataset, 0)
    reads = len(file_reads)
    _epoch(dataset, 1)
    assert len(file_reads) == 2 * reads


def test_kept_arrays_are_read_only(tmp_path: Path) -> None:
    write_celebamask_hq(tmp_path, range(2), mapping=ALL_TRAIN)
    dataset = CelebAMaskHQ(tmp_path, "train", size=32)
    dataset[0]
    image, labels = dataset._decoded_once(0, lambda: pytest.fail("decoded again"))
    with pytest.raises(ValueError, match="read-only"):
        image[0, 0, 0] = 1
    with pytest.raises(ValueError, match="read-only"):
        labels[0, 0] = 1


def test_expression_crops_are_kept_apart_with_and_without_keypoints(
    tmp_path: Path, file_reads: list[str]
) -> None:
    write_affectnet(tmp_path, [AffectNetRow(f"{i}/face.jpg", expression=i % 8) for i in range(3)])
    dataset = AffectNet(tmp_path, "train", size=32, align="landmarks")
    plain = _epoch(dataset, 0)
    assert all(len(sample) == 3 for sample in plain)
    dataset.return_points = True  # as the gan stage asks for keypoint boxes after building it
    with_points = _epoch(dataset, 1)
    assert all(len(sample) == 4 and torch.isfinite(sample[3]).all() for sample in with_points)
    assert len(file_reads) == 2 * 3
    _epoch(dataset, 2)
    assert len(file_reads) == 2 * 3
    for a, b in zip(plain, with_points, strict=True):
        torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
