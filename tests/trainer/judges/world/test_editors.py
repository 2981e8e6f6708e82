"""The world's editors: `shown_crop` (the learning check scores what the app shows, the edit's
change pasted back) and the critic-noise control, which edits at the model's crop size only."""

from __future__ import annotations

import numpy as np
import pytest

from faceedit.errors import ConfigError
from faceedit.inference.outputs import EditResult
from faceedit.model.config import preset
from faceedit.model.discriminator import HierarchicalDiscriminator
from faceedit.model.unified import UnifiedModel
from trainer.judges.world.editors import CriticNoiseEditor, shown_crop

SIZE = 64


def _result(edited: np.ndarray, weight: float, lock: np.ndarray | None = None) -> EditResult:
    return EditResult(
        crop=edited,
        region_masks=np.zeros((4, SIZE, SIZE), np.float32),
        attention=np.ones((5, SIZE, SIZE), np.float32),
        weight=np.full((SIZE, SIZE), weight, np.float32),
        lock=lock,
    )


def test_where_the_model_does_not_edit_the_crop_comes_back_bit_exact() -> None:
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    edited = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    assert np.array_equal(shown_crop(crop, _result(edited, 0.0)), crop)


def test_a_full_weight_edit_is_pasted_inside_the_feather_and_never_beyond_the_edit() -> None:
    crop = np.full((SIZE, SIZE, 3), 100, np.uint8)
    edited = np.full((SIZE, SIZE, 3), 160, np.uint8)
    shown = shown_crop(crop, _result(edited, 1.0))
    centre = slice(SIZE // 4, 3 * SIZE // 4)
    assert np.array_equal(shown[centre, centre], edited[centre, centre])
    assert shown[0, 0, 0] == 100  # the paste-back feather keeps the crop's border
    assert int(shown.min()) >= 100 and int(shown.max()) <= 160


def test_under_a_region_lock_nothing_outside_its_footprint_changes() -> None:
    crop = np.full((SIZE, SIZE, 3), 100, np.uint8)
    edited = np.full((SIZE, SIZE, 3), 160, np.uint8)
    lock = np.zeros((SIZE, SIZE), np.float32)
    lock[24:40, 20:44] = 1.0  # the locked regions' soft union: a mouth-sized block
    shown = shown_crop(crop, _result(edited, 1.0, lock))
    changed = (shown != crop).any(axis=2)
    assert changed[28:36, 24:40].all()
    assert not changed[lock < 0.5].any()


def test_the_critic_noise_control_refuses_crops_of_another_size() -> None:
    config = preset("world-64")
    control = CriticNoiseEditor(UnifiedModel(config), HierarchicalDiscriminator(config))
    crop = np.zeros((32, 32, 3), np.uint8)
    with pytest.raises(ConfigError, match="64 px"):
        control([crop], [np.zeros((5, 2))], 1)
    assert control.before == [] and control.after == []
