"""RaFD loader: file-name parsing, angle/gaze filters, subject-disjoint splits, bad names."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest
import torch

from faceedit.errors import DatasetError
from faceedit.vocab.expressions import EXPRESSION_INDEX
from tests.trainer.fixtures import RAFD_EMOTIONS, rafd_name, write_rafd
from trainer.data import RaFD
from trainer.data.rafd import RafdName, parse_name


def subject_of(path: Path) -> int:
    return parse_name(path.stem).subject


def test_parse_name_reads_every_field() -> None:
    name = parse_name("Rafd090_28_Caucasian_male_angry_frontal")
    assert name == RafdName("090", 28, "Caucasian", "male", "angry", "frontal")
    assert parse_name("Rafd045_01_Moroccan_female_contemptuous_left").gaze == "left"
    for emotion in RAFD_EMOTIONS:  # every RaFD emotion is a known expression
        parse_name(Path(rafd_name("090", 3, "Kid", "female", emotion, "right")).stem)


@pytest.mark.parametrize(
    ("stem", "problem"),
    [
        ("Rafd090_28_Caucasian_male_angry", "5 '_'-separated fields"),
        ("Rafd100_28_Caucasian_male_angry_frontal", "camera field"),
        ("Photo090_28_Caucasian_male_angry_frontal", "camera field"),
        ("Rafd090_xx_Caucasian_male_angry_frontal", "subject"),
        ("Rafd090_28_Caucasian_robot_angry_frontal", "gender"),
        ("Rafd090_28_Caucasian_male_bored_frontal", "unknown RaFD emotion"),
        ("Rafd090_28_Caucasian_male_angry_up", "gaze"),
    ],
)
def test_parse_name_says_which_field_is_wrong(stem: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_name(stem)


def test_angle_and_gaze_filters(tmp_path: Path) -> None:
    write_rafd(tmp_path, subjects=range(1, 11), angles=("045", "090"), gazes=("frontal", "left"))
    default = {s: RaFD(tmp_path, s, size=16) for s in ("train", "val", "test")}
    assert sum(len(ds) for ds in default.values()) == 10 * 2 * 2  # 090 only, both gazes
    assert all("Rafd090" in r.path.name for ds in default.values() for r in ds._items)
    frontal = RaFD(tmp_path, "train", size=16, gazes=("frontal",))
    assert len(frontal) == len(default["train"]) // 2
    assert all(r.path.stem.endswith("_frontal") for r in frontal._items)
    both = RaFD(tmp_path, "train", size=16, angles=("045", "090"))
    assert len(both) == 2 * len(default["train"])
    expressions = Counter(default["train"].targets.tolist())
    assert set(expressions) == {EXPRESSION_INDEX["happy"], EXPRESSION_INDEX["angry"]}
    with pytest.raises(ValueError, match="angles"):
        RaFD(tmp_path, "train", angles=("091",))


def test_subject_split_is_disjoint_and_ignores_the_filters(tmp_path: Path) -> None:
    write_rafd(tmp_path, subjects=range(1, 21), nested=True)
    splits = {s: RaFD(tmp_path, s, size=16) for s in ("train", "val", "test")}
    people = {s: {subject_of(r.path) for r in ds._items} for s, ds in splits.items()}
    assert people["train"] | people["val"] | people["test"] == set(range(1, 21))
    assert not people["train"] & people["val"]
    assert not people["train"] & people["test"]
    assert not people["val"] & people["test"]
    assert [len(p) for p in people.values()] == [16, 2, 2]
    assert splits["val"].subjects == sorted(people["val"])
    # Another view of the same files keeps the same people apart.
    other_angle = RaFD(tmp_path, "val", size=16, angles=("045",), gazes=("left",))
    assert {subject_of(r.path) for r in other_angle._items} == people["val"]
    reseeded = RaFD(tmp_path, "val", size=16, split_seed=3)
    assert RaFD(tmp_path, "val", size=16).subjects == splits["val"].subjects
    assert reseeded.subjects != splits["val"].subjects


def test_bad_names_are_counted_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trainer.data")
    bad = [
        "Rafd090_01_Caucasian_male_happy.jpg",
        "Rafd090_02_Caucasian_male_bored_frontal.jpg",
        "Rafd091_03_Caucasian_male_happy_frontal.jpg",
        "holiday.jpg",
    ]
    write_rafd(tmp_path, subjects=range(1, 6), extra_names=bad)
    (tmp_path / "notes.txt").write_text("not an image: ignored")
    ds = RaFD(tmp_path, "train", size=16)
    assert ds.skipped == {"bad file name": 4}
    assert "holiday.jpg" in caplog.text and "bored" in caplog.text
    assert {Path(e.item).name for e in ds.skipped_examples} == set(bad)


def test_output_is_a_face_crop_without_valence_arousal(tmp_path: Path) -> None:
    write_rafd(tmp_path, subjects=range(1, 6))
    ds = RaFD(tmp_path, "train", size=32)
    image, expression, va = ds[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert expression.dtype == torch.int64
    assert expression.item() == ds.targets[0]
    assert va.shape == (2,) and torch.isnan(va).all()
    assert not ds.has_valence_arousal.any()


def test_empty_or_unmatched_root_raises_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"Rafd\{angle\}_\{subject\}"):
        RaFD(tmp_path, "train")
    write_rafd(tmp_path, subjects=range(1, 6), angles=("045",))
    with pytest.raises(DatasetError, match="angle in \\('090',\\)"):
        RaFD(tmp_path, "train")
