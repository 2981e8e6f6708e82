"""facial_expressions loader: label normalisation, identity splits, skips, greyscale photos,
class counts, and `prepare` into shards that the parser and the gan stage both read."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from faceedit.errors import ConfigError
from faceedit.vocab.expressions import EXPRESSION_INDEX, EXPRESSIONS
from faceedit.vocab.labels import CLASS_INDEX
from tests.trainer.fixtures import (
    face_photo,
    facial_expressions_photos,
    synthetic_landmarks,
    write_facial_expressions,
)
from trainer.config import DataConfig, TrainConfig
from trainer.data import (
    FacialExpressions,
    ShardExpressions,
    ShardParsing,
    build_expression_dataset,
    class_balanced_weights,
    dlib_landmarks,
    open_parsing_dataset,
)
from trainer.data.facial_expressions import (
    CONFLICT,
    DUPLICATE,
    MALFORMED,
    NO_FILE,
    NO_ROW,
    UNKNOWN_LABEL,
    expression_counts,
    identity_of,
    identity_splits,
    is_greyscale,
    normalise_label,
    split_files,
    summarise_prepared,
    teachable_expressions,
)
from trainer.data.landmark_labels import UNLABELLED
from trainer.data.prepare import PrepareOptions, prepare

SPLITS = ("train", "val", "test")
EXTRA_ROWS = (
    "JN721,Ann_Able_0001.jpg,happiness",  # the same row again: kept once
    "jhamski,Avinash_30.jpg,SADNESS",  # disagrees with the first row: dropped
    "dwdii,,neutral",  # no file name
)
GREY = {"Bob_Baker_0001.jpg", "Gus_Gray_0001.jpg"}
REAL = Path(__file__).resolve().parents[4] / "shared" / "data" / "facial_expressions"


@pytest.fixture
def dataset_root(tmp_path: Path) -> Path:
    root = tmp_path / "facial_expressions"
    write_facial_expressions(root, facial_expressions_photos(), EXTRA_ROWS)
    return root


def open_splits(root: Path, **kw: object) -> dict[str, FacialExpressions]:
    return {s: FacialExpressions(root, s, size=32, **kw) for s in SPLITS}  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ indexing


def test_labels_are_normalised_whatever_their_case() -> None:
    pairs = {
        "neutral": "neutral",
        "HAPPINESS": "happy",
        "Sadness": "sad",
        "surprise": "surprised",
        " FEAR ": "fearful",
        "DISGUST": "disgusted",
        "anger": "angry",
        "contempt": "contemptuous",
    }
    for label, name in pairs.items():
        assert normalise_label(label) == EXPRESSION_INDEX[name]
    assert {normalise_label(k) for k in pairs} == set(range(len(EXPRESSIONS)))
    assert normalise_label("confused") is None
    assert normalise_label("happy") is None  # the dataset's own words only


def test_identity_is_the_name_before_the_last_underscore() -> None:
    assert identity_of("George_W_Bush_0001.jpg") == "George_W_Bush"
    assert identity_of("HrithikRoshan_116.jpg") == "HrithikRoshan"
    assert identity_of("facial-expressions_2868588k.jpg") == "facial-expressions"
    assert identity_of("plain.jpg") == "plain"


def test_splits_are_by_identity_disjoint_and_deterministic(dataset_root: Path) -> None:
    splits = open_splits(dataset_root)
    people = {s: {identity_of(f) for f in ds.files} for s, ds in splits.items()}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not people[a] & people[b], f"{a} and {b} share {people[a] & people[b]}"
        assert not set(splits[a].identities) & set(splits[b].identities)
    every = {identity_of(p.name) for p in (dataset_root / "images").iterdir()}
    assert set().union(*(ds.identities for ds in splits.values())) == every
    assert [len(splits[s].identities) for s in SPLITS] == [10, 1, 1]  # 80/10/10 of 12
    # Deterministic: a second index, and the module's functions, say the same.
    assert open_splits(dataset_root)["test"].files == splits["test"].files
    by_identity = identity_splits(dataset_root)
    assert all(by_identity[i] == s for s, ds in splits.items() for i in ds.identities)
    listed = split_files(dataset_root)
    assert all(set(ds.files) <= set(listed[s]) for s, ds in splits.items())
    assert sum(len(v) for v in listed.values()) == len(list((dataset_root / "images").iterdir()))
    reseeded = open_splits(dataset_root, split_seed=5)
    assert any(reseeded[s].identities != splits[s].identities for s in SPLITS)


def test_bad_rows_and_files_are_counted_by_reason_not_fatal(dataset_root: Path) -> None:
    splits = open_splits(dataset_root)
    total: Counter[str] = Counter()
    for ds in splits.values():
        total.update(ds.skipped)
    assert total == {
        NO_ROW: 1,
        NO_FILE: 1,
        UNKNOWN_LABEL: 1,
        CONFLICT: 1,
        DUPLICATE: 1,
        MALFORMED: 1,
    }
    # Rows of nobody's split (no file name; a person without files) count in train's.
    assert splits["train"].skipped[MALFORMED] == splits["train"].skipped[NO_FILE] == 1
    kept = {f for ds in splits.values() for f in ds.files}
    assert not {"Avinash_30.jpg", "Ivy_Ito_0001.jpg", "Lou_Lee_0001.jpg"} & kept
    assert "Kim_Kay_0001.jpg" in kept  # unreadable, which only loading can tell
    assert len(kept) == 12


def test_every_expression_is_read_and_counted(dataset_root: Path) -> None:
    splits = open_splits(dataset_root)
    counts = expression_counts({s: ds.targets.tolist() for s, ds in splits.items()})
    overall = Counter[str]()
    for per_split in counts.values():
        assert list(per_split) == list(EXPRESSIONS)
        overall.update(per_split)
    assert overall == {
        "neutral": 3,  # Ann, Gus, Hal (Jo's row has no file)
        "happy": 3,  # Ann x2 and Kim's unreadable file
        "sad": 1,
        "surprised": 1,  # Bob (Avinash's rows disagree)
        "fearful": 1,
        "disgusted": 1,
        "angry": 1,
        "contemptuous": 1,
    }
    assert teachable_expressions(overall, minimum=2) == ("neutral", "happy")
    assert teachable_expressions({"neutral": 5000, "fearful": 16}) == ("neutral",)


def test_a_missing_layout_or_a_wrong_header_is_explained(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="no usable samples"):
        FacialExpressions(tmp_path, "train")
    write_facial_expressions(tmp_path / "fe", facial_expressions_photos()[:3])
    (tmp_path / "fe" / "data" / "legend.csv").write_text("image,label\nAnn_Able_0001.jpg,fear\n")
    with pytest.raises(ConfigError, match="header"):
        FacialExpressions(tmp_path / "fe", "train")
    with pytest.raises(ConfigError, match="align"):
        FacialExpressions(tmp_path / "fe", "train", align="box")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ loading


def test_photos_load_as_the_apps_aligned_crops_and_bad_files_are_replaced(
    dataset_root: Path,
) -> None:
    train = FacialExpressions(dataset_root, "train", size=32)
    bad = train.files.index("Kim_Kay_0001.jpg") if "Kim_Kay_0001.jpg" in train.files else 0
    image, expression, va = train[bad]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert float(image.min()) >= -1.0 and float(image.max()) <= 1.0
    assert expression.dtype == torch.int64 and torch.isnan(va).all()
    if "Kim_Kay_0001.jpg" in train.files:
        assert train.skipped.get("unreadable file") == 1
    for name in set(train.files) & GREY:
        image = train[train.files.index(name)][0]
        assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2]), "stays grey"
    greys = {name for k, name in enumerate(train.files) if name != "Kim_Kay_0001.jpg"
             and train.source_is_greyscale(k)}  # fmt: skip
    assert greys == set(train.files) & GREY


def test_greyscale_is_told_from_colour() -> None:
    assert is_greyscale(face_photo(0, grey=True))
    assert not is_greyscale(face_photo(0))
    noisy = face_photo(1, grey=True).astype(np.int16)
    noisy[..., 0] += 3  # JPEG chroma noise in a grey photo stored as RGB
    assert is_greyscale(np.clip(noisy, 0, 255).astype(np.uint8))


def test_class_balanced_sampling_weighs_every_present_expression_alike(
    dataset_root: Path,
) -> None:
    train = FacialExpressions(dataset_root, "train", size=32)
    weights = class_balanced_weights(train)
    assert weights.shape == (len(train),)
    per_class = {int(c): float(weights[train.targets == c].sum()) for c in set(train.targets)}
    assert max(per_class.values()) == pytest.approx(min(per_class.values()))


# ------------------------------------------------------------------------------ prepare


class FakePredictor:
    """Stands in for dlib: 68 points laid out in the detector's box (tests/trainer/fixtures)."""

    def predict(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = (float(v) for v in box)
        return synthetic_landmarks((x1, y1, x2 - x1, y2 - y1))


@pytest.fixture
def fake_dlib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dlib_landmarks, "available", lambda: True)
    monkeypatch.setattr(dlib_landmarks, "shared_predictor", FakePredictor)


def test_prepare_writes_crops_label_maps_and_expressions_that_every_stage_reads(
    dataset_root: Path, tmp_path: Path, fake_dlib: None
) -> None:
    out = tmp_path / "prepared"
    options = PrepareOptions(
        "facial-expressions", str(dataset_root), 32, shard_bytes=4 * 32 * 32 * 4
    )
    manifest = prepare(options, out)
    assert manifest is not None and manifest.kind == "facial-expressions"
    assert manifest.options["align"] == "detect"
    raw = open_splits(dataset_root)
    assert manifest.skipped["train"]["unreadable file"] == 1
    summary = summarise_prepared(out)
    for split in SPLITS:
        kept = summary[split]["kept"]
        assert kept == len(raw[split]) - summary[split]["skipped"].get("unreadable file", 0)
    train = summary["train"]
    assert train["identities"] == 6  # of the split's 10: Kim's photo is unreadable, and
    # Avinash's rows disagree, Ivy's photo has no row, Lou's label is unknown
    assert 0 < train["greyscale_share"] < 1 and train["labelled_share"] == 1.0

    # The parser stage: images with label maps, unlabelled pixels 255.
    config = TrainConfig(data=DataConfig(facial_expressions=str(out)))
    assert config.data.parsing_source == str(out)
    parsing = open_parsing_dataset(config.data.parsing_source, "train", size=32, augment=True)
    assert isinstance(parsing, ShardParsing)
    image, labels = parsing[0]
    assert image.shape == (3, 32, 32) and labels.shape == (32, 32)
    values = set(torch.unique(labels).tolist())
    assert UNLABELLED in values and CLASS_INDEX["skin"] in values
    assert values <= {*range(19), UNLABELLED}

    # The gan and joint stages: expression crops, the same images.
    source = config.data.expression_source
    assert source == ("facial_expressions", str(out))
    expressions = build_expression_dataset(source[0], source[1], "train", 32, seed=0)
    assert isinstance(expressions, ShardExpressions) and len(expressions) == len(parsing)
    assert torch.equal(expressions[0][0], ShardParsing(out, "train", size=32)[0][0])
    files = expressions.fact("file")
    assert files is not None
    raw_targets = dict(zip(raw["train"].files, raw["train"].targets.tolist(), strict=True))
    assert expressions.targets.tolist() == [raw_targets[str(f)] for f in files]
    assert class_balanced_weights(expressions).shape == (len(expressions),)

    # Greyscale photos are flagged (and their crops are grey), colour ones are not.
    flagged = set()
    for split in SPLITS:
        shards = ShardExpressions(out, split, size=32)
        grey, names = shards.fact("greyscale"), shards.fact("file")
        assert grey is not None and names is not None and grey.dtype == bool
        flagged |= {str(n) for n, g in zip(names, grey, strict=True) if g}
        for k in np.flatnonzero(grey):
            image = shards[int(k)][0]
            assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    assert flagged == GREY


def test_prepare_refuses_without_dlib(
    dataset_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dlib_landmarks, "available", lambda: False)
    with pytest.raises(ConfigError, match="landmarks"):
        prepare(PrepareOptions("facial-expressions", str(dataset_root), 32), tmp_path / "out")


def test_the_raw_dataset_is_no_parsing_source(dataset_root: Path) -> None:
    with pytest.raises(ConfigError, match="prepare --facial-expressions"):
        open_parsing_dataset(dataset_root, "train", size=32)


# ------------------------------------------------------------------------------ real data


@pytest.mark.skipif(not REAL.is_dir(), reason=f"the real dataset is not at {REAL}")
def test_the_real_dataset_indexes_as_its_readme_says() -> None:
    splits = {s: FacialExpressions(REAL, s) for s in SPLITS}  # type: ignore[arg-type]
    people = [set(ds.identities) for ds in splits.values()]
    assert not (people[0] & people[1] or people[0] & people[2] or people[1] & people[2])
    kept = sum(len(ds) for ds in splits.values())
    assert 13_400 < kept < 13_537
    counts = expression_counts({s: ds.targets.tolist() for s, ds in splits.items()})
    assert counts["train"]["neutral"] > counts["train"]["happy"] > 4000
    assert teachable_expressions(counts["train"])[:2] == ("neutral", "happy")
    assert "contemptuous" not in teachable_expressions(counts["train"])
    skipped = Counter[str]()
    for ds in splits.values():
        skipped.update(ds.skipped)
    assert skipped[NO_ROW] == 36 and skipped[CONFLICT] == 1
