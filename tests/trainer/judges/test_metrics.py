"""Confusion matrix, IoU, F1 and pixel accuracy against values worked out by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from faceedit.vocab.labels import CLASS_NAMES, NUM_CLASSES
from trainer.judges.metrics import (
    ConfusionAccumulator,
    confusion_matrix,
    format_score,
    save_confusion_matrix,
    segmentation_scores,
)

# A 3x4 map over 4 classes; class 3 appears in neither map.
TRUTH = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2]])
PRED = np.array([[0, 1, 1, 1], [0, 0, 1, 2], [2, 2, 0, 2]])
# By hand: class 0: TP 3 (pixels (0,0),(1,0),(1,1)), FP 1 ((2,2)), FN 1 ((0,1)).
#          class 1: TP 3, FP 1 ((0,1)), FN 1 ((1,3)).
#          class 2: TP 3, FP 1 ((1,3)), FN 1 ((2,2)).
EXPECTED_MATRIX = np.array([[3, 1, 0, 0], [0, 3, 1, 0], [1, 0, 3, 0], [0, 0, 0, 0]])


def test_confusion_matrix_counts_rows_as_truth_and_columns_as_prediction() -> None:
    matrix = confusion_matrix(PRED, TRUTH, num_classes=4)
    assert matrix.dtype == np.int64
    np.testing.assert_array_equal(matrix, EXPECTED_MATRIX)
    # torch input, any shape, gives the same counts
    np.testing.assert_array_equal(
        confusion_matrix(torch.from_numpy(PRED)[None], torch.from_numpy(TRUTH)[None], 4),
        EXPECTED_MATRIX,
    )


def test_scores_match_hand_computed_values_and_absent_classes_are_excluded() -> None:
    scores = segmentation_scores(EXPECTED_MATRIX, ("a", "b", "c", "d"))
    # each of classes 0..2: IoU = 3 / (3 + 1 + 1) = 0.6, F1 = 6 / (6 + 1 + 1) = 0.75
    assert scores.iou[:3] == pytest.approx((0.6, 0.6, 0.6))
    assert scores.f1[:3] == pytest.approx((0.75, 0.75, 0.75))
    assert scores.iou[3] is None and scores.f1[3] is None  # in neither map: not 0, not 1
    assert scores.miou == pytest.approx(0.6)  # over the 3 scored classes, not 4
    assert scores.mean_f1 == pytest.approx(0.75)
    assert scores.pixel_accuracy == pytest.approx(9 / 12)
    assert scores.scored_classes == (0, 1, 2)
    assert scores.to_dict()["iou"]["d"] is None


def test_a_class_only_predicted_or_only_true_scores_zero() -> None:
    truth = np.array([0, 0, 1, 1])
    pred = np.array([0, 2, 1, 1])  # class 2 predicted once, never true
    scores = segmentation_scores(confusion_matrix(pred, truth, 3))
    # class 0: TP 1, FN 1 -> IoU 1/2, F1 2/3; class 1: perfect; class 2: FP 1 -> 0
    assert scores.iou == pytest.approx((0.5, 1.0, 0.0))
    assert scores.f1 == pytest.approx((2 / 3, 1.0, 0.0))
    assert scores.miou == pytest.approx(0.5)
    missed = segmentation_scores(confusion_matrix(np.array([0, 0]), np.array([0, 1]), 2))
    assert missed.iou == pytest.approx((0.5, 0.0))  # class 1 true once, never found


def test_accumulator_sums_batches_and_respects_ignore_index() -> None:
    acc = ConfusionAccumulator(num_classes=4, ignore_index=255)
    acc.update(PRED[:2], TRUTH[:2])
    acc.update(PRED[2:], TRUTH[2:])
    np.testing.assert_array_equal(acc.matrix, EXPECTED_MATRIX)
    acc.update(np.array([3, 3]), np.array([255, 255]))  # ignored pixels change nothing
    np.testing.assert_array_equal(acc.matrix, EXPECTED_MATRIX)


def test_bad_labels_and_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.3"):
        confusion_matrix(np.array([4]), np.array([0]), 4)
    with pytest.raises(ValueError, match="same number of pixels"):
        confusion_matrix(np.array([0, 1]), np.array([0]), 4)
    with pytest.raises(ValueError, match="square"):
        segmentation_scores(np.zeros((2, 3)))


def test_empty_matrix_has_no_scores() -> None:
    scores = segmentation_scores(np.zeros((NUM_CLASSES, NUM_CLASSES)))
    assert scores.miou is None and scores.pixel_accuracy is None
    assert scores.class_names == CLASS_NAMES
    assert format_score(scores.miou) == "n/a"
    assert format_score(0.123456) == "0.1235"


def test_confusion_matrix_files(tmp_path: Path) -> None:
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    matrix[1, 1], matrix[1, 17] = 5, 2
    npy, csv_path = save_confusion_matrix(matrix, tmp_path)
    np.testing.assert_array_equal(np.load(npy), matrix)
    lines = csv_path.read_text().splitlines()
    assert lines[0].split(",")[1:] == list(CLASS_NAMES)
    assert lines[2].split(",")[0] == "skin"
    assert lines[2].split(",")[1 + 17] == "2"
    assert not list(tmp_path.glob(".*.tmp"))
