"""Segmentation scores from a confusion matrix: per-class IoU and F1, their means, pixel accuracy.

Everything is derived from one (C, C) matrix accumulated over a whole split, so the scores are
dataset-level (summed counts), not averages of per-image scores: a class that fills a few pixels
in a few images weighs as much as its pixels, as in face-parsing.PyTorch's evaluation.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import torch

from faceedit.fileio import atomic_path, atomic_write_text
from faceedit.vocab.labels import CLASS_NAMES, NUM_CLASSES

NOT_AVAILABLE: Final[str] = "n/a"


def confusion_matrix(
    prediction: np.ndarray | torch.Tensor,
    truth: np.ndarray | torch.Tensor,
    num_classes: int = NUM_CLASSES,
    ignore_index: int | None = None,
) -> np.ndarray:
    """(C, C) int64 counts: rows are true classes, columns predicted ones.

    `prediction` and `truth` are integer label maps of the same shape (any number of dims).
    Pixels whose truth equals `ignore_index` are skipped; any other label outside 0..C-1 is an
    error, because it means the maps and `num_classes` disagree.
    """
    pred = torch.as_tensor(prediction).reshape(-1).long()
    true = torch.as_tensor(truth).reshape(-1).long().to(pred.device)
    if pred.shape != true.shape:
        raise ValueError(
            f"prediction and truth must have the same number of pixels, got "
            f"{tuple(torch.as_tensor(prediction).shape)} and {tuple(torch.as_tensor(truth).shape)}"
        )
    if ignore_index is not None:
        keep = true != ignore_index
        pred, true = pred[keep], true[keep]
    for name, labels in (("prediction", pred), ("truth", true)):
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
            raise ValueError(
                f"{name} holds labels outside 0..{num_classes - 1} "
                f"(min {int(labels.min())}, max {int(labels.max())})"
            )
    counts = torch.bincount(true * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).cpu().numpy().astype(np.int64)


class ConfusionAccumulator:
    """Sums confusion matrices batch by batch (on the batch's device, one copy to CPU per batch)."""

    def __init__(self, num_classes: int = NUM_CLASSES, ignore_index: int | None = None) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(
        self, prediction: np.ndarray | torch.Tensor, truth: np.ndarray | torch.Tensor
    ) -> None:
        self.matrix += confusion_matrix(prediction, truth, self.num_classes, self.ignore_index)


@dataclass(frozen=True)
class SegmentationScores:
    """Scores of one confusion matrix. A class absent from both prediction and truth has no
    score (None): counting it as 0 would punish a model for a class the split never shows, and
    as 1 would reward it for nothing; it is excluded from the means and shown as n/a."""

    iou: tuple[float | None, ...]  # per class
    f1: tuple[float | None, ...]  # per class (= Dice)
    miou: float | None  # mean over scored classes
    mean_f1: float | None
    pixel_accuracy: float | None
    class_names: tuple[str, ...]

    @property
    def scored_classes(self) -> tuple[int, ...]:
        return tuple(i for i, v in enumerate(self.iou) if v is not None)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: per-class values keyed by class name (null where not scored)."""
        return {
            "miou": self.miou,
            "mean_f1": self.mean_f1,
            "pixel_accuracy": self.pixel_accuracy,
            "iou": dict(zip(self.class_names, self.iou, strict=True)),
            "f1": dict(zip(self.class_names, self.f1, strict=True)),
        }


def segmentation_scores(
    matrix: np.ndarray, class_names: Sequence[str] | None = None
) -> SegmentationScores:
    """Per-class IoU = TP / (TP + FP + FN) and F1 = 2TP / (2TP + FP + FN), their means over the
    classes that occur in the truth or the prediction, and pixel accuracy = trace / total."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a confusion matrix is square, got shape {matrix.shape}")
    names = tuple(class_names) if class_names is not None else _default_names(matrix.shape[0])
    if len(names) != matrix.shape[0]:
        raise ValueError(f"{len(names)} class names for a {matrix.shape[0]}-class matrix")
    tp = np.diag(matrix)
    fp = matrix.sum(axis=0) - tp
    fn = matrix.sum(axis=1) - tp
    union = tp + fp + fn
    present = union > 0
    iou = tuple(float(tp[i] / union[i]) if present[i] else None for i in range(len(tp)))
    f1 = tuple(
        float(2 * tp[i] / (2 * tp[i] + fp[i] + fn[i])) if present[i] else None
        for i in range(len(tp))
    )
    total = matrix.sum()
    return SegmentationScores(
        iou=iou,
        f1=f1,
        miou=_mean(iou),
        mean_f1=_mean(f1),
        pixel_accuracy=float(tp.sum() / total) if total > 0 else None,
        class_names=names,
    )


def format_score(value: float | None, digits: int = 4) -> str:
    """A score for a table: fixed digits, or n/a when it could not be computed."""
    return NOT_AVAILABLE if value is None else f"{value:.{digits}f}"


def save_confusion_matrix(
    matrix: np.ndarray, directory: str | os.PathLike[str], stem: str = "confusion_matrix"
) -> tuple[Path, Path]:
    """Write `stem.npy` (exact counts) and `stem.csv` (labelled rows: truth, columns:
    prediction), both atomically; return their paths."""
    folder = Path(directory)
    names = _default_names(matrix.shape[0])
    npy = folder / f"{stem}.npy"
    with atomic_path(npy) as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.asarray(matrix, dtype=np.int64))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["truth \\ prediction", *names])
    for name, row in zip(names, np.asarray(matrix), strict=True):
        writer.writerow([name, *(int(v) for v in row)])
    csv_path = atomic_write_text(folder / f"{stem}.csv", buffer.getvalue())
    return npy, csv_path


def _default_names(num_classes: int) -> tuple[str, ...]:
    return CLASS_NAMES if num_classes == NUM_CLASSES else tuple(str(i) for i in range(num_classes))


def _mean(values: Sequence[float | None]) -> float | None:
    scored = [v for v in values if v is not None]
    return float(np.mean(scored)) if scored else None
