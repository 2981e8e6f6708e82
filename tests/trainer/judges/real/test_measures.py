"""Measurements on hand-made images and label maps, with values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from tests.trainer.fixtures import face_photo, synthetic_landmarks
from trainer.judges.real import measures


def test_an_unchanged_photo_measures_no_change_anywhere() -> None:
    photo = face_photo(0)
    everywhere = np.ones(photo.shape[:2], bool)
    assert measures.mean_change(photo, photo.copy(), everywhere) == 0.0
    assert not measures.changed(photo, photo.copy()).any()
    assert measures.balance_shift(photo, photo.copy()) == 0.0


def test_a_patch_painted_outside_the_face_is_background_change() -> None:
    photo = np.full((100, 100, 3), 120, np.uint8)
    points = synthetic_landmarks((30.0, 30.0, 40.0, 40.0))
    face = measures.face_mask(points, photo.shape)
    assert face[60, 50] and not face[5, 5]  # the mouth is face, the corner is not
    painted = photo.copy()
    painted[:20, :20] = 255  # 400 pixels, 135 levels each
    outside = ~face
    expected = 400 * 135 / outside.sum()
    assert measures.mean_change(photo, painted, outside) == pytest.approx(expected)
    assert measures.mean_change(photo, painted, face) == 0.0


def test_a_greyscale_photo_made_colourful_is_caught() -> None:
    grey = face_photo(0, grey=True)
    assert measures.stays_grey(grey, grey.copy()) is True
    tinted = grey.copy()
    tinted[..., 0] = np.clip(tinted[..., 0].astype(int) + 30, 0, 255)
    assert measures.stays_grey(grey, tinted) is False
    assert measures.channel_spread(tinted) > measures.channel_spread(grey) + 20
    assert measures.stays_grey(face_photo(0), face_photo(0)) is None  # not a grey photo


def test_white_balance_shift_is_the_largest_channel_change() -> None:
    photo = np.zeros((4, 4, 3), np.uint8)
    photo[...] = (100, 100, 100)
    warmer = photo.copy()
    warmer[..., 0] = 106  # red +6: means (106, 100, 100), balance (+4, -2, -2)
    assert measures.balance_shift(photo, warmer) == pytest.approx(4.0)
    brighter = photo + 10  # every channel alike: white balance kept
    assert measures.balance_shift(photo, brighter) == pytest.approx(0.0)


def test_labelled_miou_ignores_255_and_scores_only_the_labelled_classes() -> None:
    truth = np.array([[1, 1, 2, 255], [1, 2, 2, 255]], np.uint8)
    prediction = np.array([[1, 2, 2, 0], [1, 0, 2, 5]], np.uint8)
    matrix = measures.labelled_confusion(prediction, truth, 19)
    ious = measures.labelled_iou(matrix)
    # class 1: TP 2, FN 1 (read as 2), FP 0 -> 2/3; class 2: TP 2, FN 1 (read as 0), FP 1 -> 1/2;
    # class 0 is predicted but never labelled (not scored); 5 lies on an ignored pixel.
    assert ious == pytest.approx({1: 2 / 3, 2: 1 / 2})
    assert measures.mean_iou(ious) == pytest.approx(7 / 12)
    assert measures.mean_iou({}) is None


def test_footprint_share_inside_a_region_counts_its_band() -> None:
    region = np.zeros((10, 10), bool)
    region[4:6, 4:6] = True
    footprint = np.zeros((10, 10), bool)
    footprint[4:6, 4:8] = True  # 8 pixels, 4 inside, 2 more within one pixel
    assert measures.share_inside(footprint, region) == pytest.approx(0.5)
    assert measures.share_inside(footprint, region, band=1) == pytest.approx(0.75)
    assert measures.share_inside(np.zeros((10, 10), bool), region) is None


def test_spread_indices_reach_the_whole_list() -> None:
    assert measures.spread_indices(10, None) == list(range(10))
    assert measures.spread_indices(10, 3) == [0, 4, 9]  # linspace 0, 4.5, 9
    assert measures.spread_indices(3, 10) == [0, 1, 2]
    assert measures.fraction([True, False, True, True]) == 0.75
