"""faceedit.faces.nms against a brute-force reference written straight from torchvision's definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceedit.faces.nms import batched_nms, nms


def reference_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Greedy NMS, one pair at a time: float32 IoU compared in float64, ties by index."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    f = np.float32
    kept: list[int] = []
    for i in order:
        bi = boxes[i]
        suppressed = False
        for k in kept:
            bk = boxes[k]
            w = max(f(min(bi[2], bk[2]) - max(bi[0], bk[0])), f(0))
            h = max(f(min(bi[3], bk[3]) - max(bi[1], bk[1])), f(0))
            inter = f(w * h)
            area_i = f(f(bi[2] - bi[0]) * f(bi[3] - bi[1]))
            area_k = f(f(bk[2] - bk[0]) * f(bk[3] - bk[1]))
            union = f(f(area_k + area_i) - inter)
            with np.errstate(divide="ignore", invalid="ignore"):
                iou = f(inter / union)
            if float(iou) > threshold:  # NaN (0 / 0) never suppresses
                suppressed = True
                break
        if not suppressed:
            kept.append(i)
    return kept


def reference_batched(
    boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray, threshold: float
) -> list[int]:
    kept: list[int] = []
    for category in np.unique(idxs):
        members = np.flatnonzero(idxs == category)
        kept += [int(members[j]) for j in reference_nms(boxes[members], scores[members], threshold)]
    return sorted(kept, key=lambda i: (-float(scores[i]), i))


def random_case(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Boxes on a quarter-pixel grid (exact in float32, also after category offsets), with
    duplicated boxes, zero-area boxes and tied scores mixed in."""
    xy = rng.integers(0, 160, size=(n, 2)) / 4
    wh = rng.integers(0, 100, size=(n, 2)) / 4
    wh[rng.random(n) < 0.1] = 0  # zero-area boxes
    wh[rng.random(n) < 0.05, 0] = 0  # zero width only
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    if n > 1:
        dupes = rng.random(n) < 0.15
        boxes[dupes] = boxes[rng.integers(0, n, size=int(dupes.sum()))]
    if rng.random() < 0.5:
        scores = (rng.integers(0, 5, size=n) / 4).astype(np.float32)  # many ties
    else:
        scores = rng.random(n).astype(np.float32)
    return boxes, scores


def test_nms_matches_the_reference_on_200_random_sets() -> None:
    rng = np.random.default_rng(1234)
    for case in range(200):
        n = int(rng.integers(0, 61))
        boxes, scores = random_case(rng, n)
        threshold = float(rng.choice([0.0, 0.3, 0.5, 0.7, 0.95]))
        got = nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold)
        assert got.dtype == torch.int64
        assert got.tolist() == reference_nms(boxes, scores, threshold), f"case {case}, n={n}"


def test_batched_nms_matches_the_per_class_reference() -> None:
    rng = np.random.default_rng(99)
    for case in range(100):
        n = int(rng.integers(0, 61))
        boxes, scores = random_case(rng, n)
        idxs = rng.integers(0, 4, size=n)
        threshold = float(rng.choice([0.3, 0.5, 0.7]))
        got = batched_nms(
            torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idxs), threshold
        )
        assert got.tolist() == reference_batched(boxes, scores, idxs, threshold), f"case {case}"


def test_batched_nms_per_class_path_for_large_inputs() -> None:
    # More than 1000 boxes takes the per-category loop, as torchvision does on CPU.
    rng = np.random.default_rng(7)
    boxes, scores = random_case(rng, 1200)
    idxs = rng.integers(0, 3, size=1200)
    got = batched_nms(
        torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(idxs), 0.5
    )
    assert got.tolist() == reference_batched(boxes, scores, idxs, 0.5)


def test_categories_never_suppress_each_other_even_with_negative_coordinates() -> None:
    boxes = torch.tensor([[-50.0, -50.0, -10.0, -10.0]] * 3)
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 2]), 0.5).tolist() == [0, 1, 2]
    assert batched_nms(boxes, scores, torch.tensor([0, 0, 1]), 0.5).tolist() == [0, 2]


def test_identical_boxes_keep_the_first_of_tied_scores() -> None:
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 4)
    scores = torch.tensor([0.5, 0.9, 0.9, 0.1])
    assert nms(boxes, scores, 0.5).tolist() == [1]


def test_iou_exactly_at_the_threshold_is_kept() -> None:
    # IoU of these two is exactly 0.5: suppression needs strictly greater.
    boxes = torch.tensor([[0.0, 0.0, 4.0, 3.0], [0.0, 0.0, 2.0, 3.0]])
    scores = torch.tensor([0.9, 0.8])
    assert nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert nms(boxes, scores, 0.49).tolist() == [0]


def test_empty_input_and_bad_shapes() -> None:
    empty = nms(torch.zeros((0, 4)), torch.zeros(0), 0.5)
    assert empty.shape == (0,) and empty.dtype == torch.int64
    assert batched_nms(torch.zeros((0, 4)), torch.zeros(0), torch.zeros(0), 0.5).shape == (0,)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        nms(torch.zeros((3, 5)), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match="scores"):
        nms(torch.zeros((3, 4)), torch.zeros(2), 0.5)
