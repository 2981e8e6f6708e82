"""A region lock keeps the footprint at the face's own features, not a mirrored copy of them."""

from __future__ import annotations

import numpy as np
import pytest

from faceedit.faces.align import REGION_LEVEL, template_landmarks
from faceedit.inference.lock_anchors import keep_at_anchors, locks_at_anchors, region_anchors

SIZE = 128


def _blob(lock: np.ndarray, centre: np.ndarray, half: tuple[int, int], value: float = 0.9) -> None:
    x, y = (round(float(v)) for v in centre)
    lock[y - half[1] : y + half[1] + 1, x - half[0] : x + half[0] + 1] = value


def _mouth_centre() -> np.ndarray:
    points = template_landmarks(SIZE)
    centre: np.ndarray = (points[3] + points[4]) / 2
    return centre


def test_a_mirrored_mouth_below_the_chin_is_dropped_and_the_mouth_kept() -> None:
    lock = np.zeros((SIZE, SIZE), np.float32)
    _blob(lock, _mouth_centre(), (10, 4))
    mirrored = _mouth_centre() + np.array([0.0, 24.0])
    _blob(lock, mirrored, (10, 4))
    lock[0:3, 0:3] = 0.3  # a faint corner below REGION_LEVEL: it changes nothing, left alone

    kept = keep_at_anchors(lock, ["mouth"])

    x, y = (round(float(v)) for v in _mouth_centre())
    assert kept[y, x] == pytest.approx(0.9)
    mx, my = (round(float(v)) for v in mirrored)
    assert kept[my, mx] == 0.0
    assert kept[0, 0] == pytest.approx(0.3)
    # exactly one footprint component is left: the mouth's
    assert (kept >= REGION_LEVEL).sum() == 21 * 9


def test_a_lip_split_in_two_near_the_mouth_stays_whole() -> None:
    lock = np.zeros((SIZE, SIZE), np.float32)
    centre = _mouth_centre()
    _blob(lock, centre - np.array([0.0, 3.0]), (9, 1))  # upper lip
    _blob(lock, centre + np.array([0.0, 3.0]), (9, 1))  # lower lip: within ANCHOR_REACH
    np.testing.assert_array_equal(keep_at_anchors(lock, ["mouth"]), lock)


def test_each_editable_region_keeps_its_own_parts() -> None:
    lock = np.zeros((SIZE, SIZE), np.float32)
    for eye in region_anchors("eyes", SIZE):
        _blob(lock, eye, (5, 3))
    _blob(lock, _mouth_centre(), (10, 4))
    # eyes and mouth editable: all three parts are the face's own
    np.testing.assert_array_equal(keep_at_anchors(lock, ["eyes", "mouth"]), lock)
    # the mouth alone: a footprint on the eyes is not its own
    mouth_only = keep_at_anchors(lock, ["mouth"])
    assert (mouth_only >= REGION_LEVEL).sum() == 21 * 9


def test_one_footprint_is_left_as_it_is_and_batches_go_one_by_one() -> None:
    lock = np.zeros((SIZE, SIZE), np.float32)
    _blob(lock, np.array([10.0, 10.0]), (3, 3))  # wherever the single component lies
    np.testing.assert_array_equal(keep_at_anchors(lock, ["mouth"]), lock)
    # a batch: each row of the editable weights names its own regions
    two = lock.copy()
    _blob(two, _mouth_centre(), (10, 4))
    regions = ("brows", "eyes", "nose", "mouth")
    batch = np.stack([two, two])
    editable = np.array([[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    kept = locks_at_anchors(batch, editable, regions)
    assert kept[0, 10, 10] == 0.0 and kept[0].max() == pytest.approx(0.9)  # the mouth's only
    np.testing.assert_array_equal(kept[1], two)  # nothing editable: left as it is
    shared = locks_at_anchors(batch, np.array([0.0, 0.0, 0.0, 1.0]), regions)  # (K,) for all
    assert np.all(shared[:, 10, 10] == 0.0)


def test_brow_anchors_lie_above_the_eyes() -> None:
    brows, eyes = region_anchors("brows", SIZE), region_anchors("eyes", SIZE)
    assert np.all(brows[:, 1] < eyes[:, 1]) and np.allclose(brows[:, 0], eyes[:, 0])
    with pytest.raises(ValueError, match="no anchors"):
        region_anchors("ears", SIZE)
