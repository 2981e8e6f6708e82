"""Scoring comparison variants on the world: every variant over the same edits and pixels,
keypoint-box models with each rendering's true landmarks, and the low-label parser subset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceedit.errors import ConfigError
from faceedit.model.config import preset
from tests.factories import make_checkpoint
from tests.trainer.judges.conftest import tiny_judge
from trainer.config import DataConfig
from trainer.judges.comparisons.world_scorer import WORLD_METRICS, WorldScorer
from trainer.judges.world.held_out import edit_zone
from trainer.judges.world.renderings import read_pairs, world_landmarks
from trainer.stages.parser import LabelledSubset


@pytest.fixture
def world(tiny_world: Path) -> Path:
    return tiny_world


@pytest.mark.slow
def test_variants_are_scored_over_the_same_pixels(world: Path, tmp_path: Path) -> None:
    """A soft-mask model, a keypoint-box model and the global-only baseline: the identity
    errors are measured over identical pixel sets, whatever regions each model has."""
    scorer = WorldScorer(world, tiny_judge(), identities=1, judge_accuracy=0.5, log=lambda _: None)
    tiny = preset("tiny")
    models = {
        "masks": make_checkpoint(tmp_path / "m.safetensors", tiny, steps=1),
        "boxes": make_checkpoint(
            tmp_path / "b.safetensors", tiny.replace(region_source="boxes"), steps=1
        ),
        "global": make_checkpoint(tmp_path / "g.safetensors", tiny.replace(regions=()), steps=1),
    }
    scores = {name: scorer.score(path, tmp_path / name) for name, path in models.items()}
    pixels = {(s["face_pixels"], s["background_pixels"]) for s in scores.values()}
    assert len(pixels) == 1 and min(next(iter(pixels))) > 0
    for values in scores.values():
        assert set(WORLD_METRICS) <= set(values)
        assert values["edits"] == 8 * 7
        assert 0.0 <= values["identity_face"] <= 1.0 and 0.0 <= values["judge_accuracy"] <= 1.0
    assert "held-out accuracy 0.500" in " ".join(scorer.notes)
    grid = scorer.grid(models)
    assert grid is not None and grid.shape[0] >= 5 * 64 * 2  # input, truth, three variants


def test_edit_zone_covers_the_true_parts_and_the_boxes(world: Path) -> None:
    import cv2

    row = read_pairs(world)[0]
    assert row.labels is not None
    label = cv2.imread(str(row.labels), cv2.IMREAD_UNCHANGED)
    zone = edit_zone(label, world_landmarks(world)[row.image.resolve()])
    from faceedit.vocab.labels import CLASS_INDEX

    assert zone[label == CLASS_INDEX["nose"]].all() and zone[label == CLASS_INDEX["u_lip"]].all()
    assert not zone[label == CLASS_INDEX["background"]].all()
    assert 0.02 < zone.mean() < 0.5


def test_labelled_subset_is_a_seeded_share_and_the_fraction_is_checked() -> None:
    data = list(range(100))
    first, again = LabelledSubset(data, 0.1, seed=3), LabelledSubset(data, 0.1, seed=3)
    assert len(first) == 10 and first.indices == again.indices
    assert LabelledSubset(data, 0.1, seed=4).indices != first.indices
    assert [first[i] for i in range(10)] == first.indices
    assert len(LabelledSubset(data[:3], 0.05, seed=0)) == 1  # never empty
    with pytest.raises(ConfigError, match="parser_label_fraction"):
        DataConfig(parser_label_fraction=0.0)
    assert np.isclose(DataConfig().parser_label_fraction, 1.0)
