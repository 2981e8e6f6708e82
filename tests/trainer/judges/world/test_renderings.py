"""Reading a world's files: every held-out identity in all expressions, pixel-aligned, with its
label map and landmarks; a pairs.csv without its columns gets a clear message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceedit.errors import DatasetError
from faceedit.vocab.expressions import EXPRESSIONS
from tests.trainer.judges.conftest import SIZE
from trainer.judges.world.renderings import (
    by_identity,
    load_crop,
    mean_valence_arousal,
    read_pairs,
    world_landmarks,
    world_size,
)


def test_pairs_give_every_held_out_identity_in_all_expressions(tiny_world: Path) -> None:
    rows = read_pairs(tiny_world)
    table = by_identity(rows, "test")
    assert table, "the world has a test identity"
    assert world_size(tiny_world) == SIZE
    marks = world_landmarks(tiny_world)
    for renders in table.values():
        assert sorted(renders) == list(range(len(EXPRESSIONS)))
        crops = [load_crop(r.image, SIZE) for r in renders.values()]
        assert all(c.shape == (SIZE, SIZE, 3) and c.dtype == np.uint8 for c in crops)
        # pixel-aligned: the renderings of one identity differ, but only in a small part
        changed = (crops[0] != crops[1]).any(axis=2).mean()
        assert 0.0 < changed < 0.3
        assert all(r.labels is not None and r.labels.is_file() for r in renders.values())
        assert all(marks[r.image.resolve()].shape == (5, 2) for r in renders.values())


def test_read_pairs_refuses_a_file_without_its_columns(tmp_path: Path) -> None:
    (tmp_path / "pairs.csv").write_text("identity,split,image\n1,test,a.png\n")
    with pytest.raises(DatasetError, match="columns"):
        read_pairs(tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        read_pairs(tmp_path / "nowhere")


def test_mean_valence_arousal_per_expression(tiny_world: Path) -> None:
    means = mean_valence_arousal(
        tiny_world / "affectnet" / "Manually_Annotated_file_lists" / "training.csv"
    )
    assert len(means) == 8
    assert means[0] == pytest.approx((0.0, 0.0), abs=1e-6)  # neutral
    assert means[1][0] > 0.5  # happy is pleasant
    assert means[2][0] < -0.3  # sad is not
