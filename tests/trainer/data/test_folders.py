"""Expression folders: labels from folder names, unknown folders, pooled and split layouts."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from faceedit.errors import DatasetError
from faceedit.vocab.expressions import EXPRESSION_INDEX
from tests.trainer.fixtures import write_folders
from trainer.data import (
    EXPRESSION_DATASETS,
    AffectNet,
    ExpressionFolders,
    FacialExpressions,
    RaFD,
    build_expression_dataset,
)


def test_labels_come_from_folder_names_and_pooled_files_split_80_10_10(tmp_path: Path) -> None:
    written = write_folders(tmp_path, {"happy": 10, "sad": 10, "Angry": 10})
    splits = {s: ExpressionFolders(tmp_path, s, size=16) for s in ("train", "val", "test")}
    assert [len(ds) for ds in splits.values()] == [24, 3, 3]
    assert all(ds.layout == "pooled" for ds in splits.values())
    seen = {}
    for ds in splits.values():
        for record, target in zip(ds._items, ds.targets, strict=True):
            seen[record.path] = target
    assert set(seen) == set(written)  # a partition of all files
    for path, target in seen.items():
        assert target == EXPRESSION_INDEX[path.parent.name.lower()]
    again = ExpressionFolders(tmp_path, "test", size=16)
    assert [r.path for r in again._items] == [r.path for r in splits["test"]._items]


def test_unknown_folders_and_stray_files_are_counted_and_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trainer.data")
    write_folders(tmp_path, {"happy": 8, "surprised": 4, "smiling": 3})
    (tmp_path / "readme.txt").write_text("my photos")
    (tmp_path / "happy" / "notes.txt").write_text("not an image")
    (tmp_path / "happy" / ".DS_Store").write_bytes(b"\0")  # hidden: ignored
    ds = ExpressionFolders(tmp_path, "train", size=16)
    assert ds.skipped == {
        "unknown expression folder": 1,
        "file outside an expression folder": 1,
        "not an image file": 1,
    }
    assert "smiling" in caplog.text and "3 files" in caplog.text
    assert set(ds.targets.tolist()) <= {EXPRESSION_INDEX["happy"], EXPRESSION_INDEX["surprised"]}


def test_train_test_layout_is_used_as_given(tmp_path: Path) -> None:
    write_folders(tmp_path, {"train": {"happy": 3, "sad": 2}, "test": {"happy": 1, "neutral": 1}})
    train = ExpressionFolders(tmp_path, "train", size=16)
    test = ExpressionFolders(tmp_path, "test", size=16)
    assert train.layout == test.layout == "split"
    assert len(train) == 5 and len(test) == 2
    assert all(r.path.parts[-3] == "train" for r in train._items)
    assert sorted(test.targets.tolist()) == [EXPRESSION_INDEX["neutral"], EXPRESSION_INDEX["happy"]]
    # No val/ folder: validation reads test/.
    assert [r.path for r in ExpressionFolders(tmp_path, "val")._items] == [
        r.path for r in test._items
    ]
    write_folders(tmp_path, {"val": {"sad": 2}})
    assert ExpressionFolders(tmp_path, "val").targets.tolist() == [EXPRESSION_INDEX["sad"]] * 2


def test_a_missing_split_folder_or_empty_root_is_explained(tmp_path: Path) -> None:
    write_folders(tmp_path, {"train": {"happy": 2}})
    with pytest.raises(DatasetError, match="test"):
        ExpressionFolders(tmp_path, "test")
    with pytest.raises(DatasetError, match="<expression> one of"):
        ExpressionFolders(tmp_path / "nothing", "train")


def test_output_is_a_centred_square(tmp_path: Path) -> None:
    write_folders(tmp_path, {"happy": 4}, size=24)
    ds = ExpressionFolders(tmp_path, "train", size=32)
    image, expression, va = ds[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert expression.item() == EXPRESSION_INDEX["happy"]
    assert torch.isnan(va).all()


def test_unreadable_photo_is_replaced_and_counted(tmp_path: Path) -> None:
    paths = write_folders(tmp_path, {"train": {"sad": 3}, "test": {"sad": 1}})
    paths[0].write_bytes(b"\x89PNG broken")
    ds = ExpressionFolders(tmp_path, "train", size=16)
    assert torch.equal(ds[0][0], ds[1][0])
    assert ds.skipped == {"unreadable file": 1}
    assert ds.skipped_examples[0].item == str(paths[0])


def test_build_expression_dataset_dispatches_by_name(tmp_path: Path) -> None:
    expected = {
        "affectnet": AffectNet,
        "rafd": RaFD,
        "folders": ExpressionFolders,
        "facial_expressions": FacialExpressions,
    }
    assert expected == EXPRESSION_DATASETS
    write_folders(tmp_path, {"happy": 5})
    ds = build_expression_dataset("folders", tmp_path, "train", 16, split_seed=2)
    assert isinstance(ds, ExpressionFolders) and ds.size == 16 and ds.split_seed == 2
    with pytest.raises(ValueError, match="unknown expression dataset"):
        build_expression_dataset("celeba", tmp_path, "train", 16)  # type: ignore[arg-type]  # an unknown kind, on purpose


@pytest.mark.slow  # MTCNN's first use costs ~5 s on a CPU
def test_detect_aligns_faces_like_the_app_and_skips_photos_without_one(tmp_path: Path) -> None:
    import cv2
    import numpy as np
    from PIL import Image

    from faceedit.faces.align import align
    from faceedit.media.bundled import astronaut_image_path
    from faceedit.media.sources import read_image
    from trainer.data import common

    photo = cv2.resize(read_image(astronaut_image_path()), (256, 256), interpolation=cv2.INTER_AREA)
    (tmp_path / "train" / "happy").mkdir(parents=True)
    (tmp_path / "test" / "happy").mkdir(parents=True)
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(tmp_path / "train/happy/a_wall.png")
    Image.fromarray(photo).save(tmp_path / "train/happy/b_face.png")
    ds = ExpressionFolders(tmp_path, "train", size=64, align="detect")
    image, expression, _ = ds[0]  # the wall has no face: replaced by the photo
    assert expression.item() == EXPRESSION_INDEX["happy"]
    assert ds.skipped == {"no face detected": 1}
    detector = common._DETECTOR  # the one the dataset built, so MTCNN loads once
    expected = align(photo, detector.detect(photo)[0], size=64).crop
    assert torch.equal(image, ds[1][0])
    assert np.abs(((image.permute(1, 2, 0).numpy() + 1) * 127.5) - expected).max() < 0.51
    # keypoint boxes: with return_points the detected face brings its detector's 5 points,
    # moved into the crop by the same alignment
    ds.return_points = True
    face = detector.detect(photo)[0]
    points = ds[1][3].numpy()
    np.testing.assert_allclose(
        points, align(photo, face, size=64).to_crop(face.landmarks), atol=1e-3
    )
