"""The scorer's measurements on controls whose right answers are known."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from tests.trainer.judges.real.conftest import (
    BoxDescriber,
    CornerLocker,
    CornerPainter,
    Tinter,
    fixed_face,
)
from trainer.judges.classifier import ClassifierConfig, ExpressionClassifier
from trainer.judges.real.editors import Editor, IdentityEditor, PatchEditor
from trainer.judges.real.mouth_ceiling import LOCK_FOOTPRINT, CeilingRow, MouthCeiling
from trainer.judges.real.report import goals, write_report
from trainer.judges.real.scorer import (
    SURVEY_TARGETS,
    TARGETS,
    EditorScores,
    FoundScores,
    ParserScores,
    RealFaceReport,
    score_editors,
)

GREY_FILES = ("Ann_Able_0001.jpg", "Bob_Baker_0001.jpg")
COLOUR_FILES = ("Cy_Colour_0001.jpg",)


@pytest.fixture
def scored(photo_root: Path) -> dict[str, EditorScores]:
    torch.manual_seed(0)
    judge = ExpressionClassifier(ClassifierConfig(base_channels=4, image_size=32))
    editors: list[Editor] = [
        IdentityEditor(),
        PatchEditor(),
        CornerPainter(),
        Tinter(),
        CornerLocker(),
    ]
    scores, skipped, grid, edited = score_editors(
        editors,
        fixed_face,
        judge,
        photo_root,
        GREY_FILES,
        BoxDescriber(),
        crop_size=64,
        colour_files=COLOUR_FILES,
        log=lambda _: None,
    )
    assert not skipped and edited == list(GREY_FILES)
    # The first editor (the product's place) is also surveyed on the other expressions.
    survey = len(TARGETS) + len(SURVEY_TARGETS)
    assert len(grid) == 2 and all(len(row) == 2 + survey for row in grid)
    assert set(scores[0].targets) == {*TARGETS, *SURVEY_TARGETS}
    assert all(set(s.targets) == set(TARGETS) for s in scores[1:])
    return {s.editor: s for s in scores}


def test_the_identity_editor_changes_nothing_and_keeps_the_identity(
    scored: dict[str, EditorScores],
) -> None:
    same = scored["identity"]
    assert same.photos == 2 and same.targets["happy"].edits == 2
    assert same.background_mean_change == 0.0
    assert same.identity_mean_distance == 0.0 and same.identity_kept == 1.0
    assert same.locked.changed_pixels == 0 and same.locked.changed_outside_footprint == 0
    assert same.greyscale_kept == 1.0 and same.tint_added == 0.0
    assert same.balance_shift == 0.0 and same.colour_photos == 1


def test_a_painted_patch_is_caught(scored: dict[str, EditorScores]) -> None:
    patch = scored["fixed patch"]
    # It claims no lock footprint, so every pixel it paints under a lock is a violation.
    assert patch.locked.changed_outside_footprint == patch.locked.changed_pixels > 0
    assert patch.identity_mean_distance is not None and patch.identity_mean_distance > 0
    assert patch.greyscale_kept == 0.0  # red lips on a grey face
    corner = scored["corner paint"]
    assert corner.background_mean_change is not None and corner.background_mean_change > 0.5


def test_a_lock_footprint_off_the_mouth_is_caught(scored: dict[str, EditorScores]) -> None:
    corner = scored["corner lock"].locked
    assert corner.footprint_edits == 2 and corner.footprint_far_edits == 2
    assert corner.footprint_inside_mouth_min == 0.0
    assert corner.footprint_worst_photo in GREY_FILES
    none = scored["identity"].locked  # no footprint claimed: nothing to measure
    assert none.footprint_edits == 0 and none.footprint_far_edits == 0


def test_a_greyscale_photo_made_colourful_is_caught(scored: dict[str, EditorScores]) -> None:
    tint = scored["tint"]
    assert tint.greyscale_kept == 0.0
    assert tint.tint_added is not None and tint.tint_added > 20
    assert tint.balance_shift is not None and tint.balance_shift > 10


def test_the_report_says_what_passed(scored: dict[str, EditorScores], tmp_path: Path) -> None:
    product = dataclasses.replace(scored["identity"], editor="product")
    report = RealFaceReport(
        checkpoint="model.safetensors",
        judge={
            "path": "judge.safetensors",
            "image_size": 32,
            "test_accuracy": 0.5,
            "test_count": 10,
            "teachable": {"teachable": ["neutral"], "accuracy": 0.5, "per_class": {"neutral": 0.5}},
        },
        inputs=GREY_FILES,
        skipped={},
        editors=(product, *scored.values()),
        parser=ParserScores(4, 0.8, {"skin": 0.9, "nose": 0.7}),
        found=FoundScores(100, 96),
        ceiling=MouthCeiling("test", 5, 4, (CeilingRow(LOCK_FOOTPRINT, 0.2, 0.25),)),
    )
    verdicts = {g.target: g.passed for g in goals(report)}
    assert verdicts["background (outside the face): mean change, grey levels"] is True
    assert verdicts["parser: held-out mIoU vs landmark labels"] is True
    assert verdicts["faces found without --aligned"] is False  # 0.96 < 0.97
    paths = write_report(report, tmp_path / "out")
    data = json.loads(paths["json"].read_text())
    assert data["found"]["share"] == 0.96
    assert {e["editor"] for e in data["editors"]} >= {"product", "fixed patch", "tint"}
    text = paths["markdown"].read_text()
    assert "| target | goal | measured | verdict |" in text and "**fail**" in text
    assert "grid" not in paths  # no grid rows were given
    assert f"| {LOCK_FOOTPRINT} | 0.200 | 0.250 |" in text
    assert data["ceiling"]["rows"][0]["read_as_happy"] == 0.2
