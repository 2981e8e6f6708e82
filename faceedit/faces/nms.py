"""Non-maximum suppression in plain torch + numpy, with torchvision's semantics.

MTCNN (facenet-pytorch) needs `torchvision.ops.batched_nms`, but torchvision's only wheel for
our torch is a CUDA build that cannot load its operators on a CPU-only install. These functions
are what faceedit's detector uses instead (see `faceedit.faces.detect._import_mtcnn`), so they follow
torchvision exactly where it matters for results:

- boxes are (x1, y1, x2, y2); area = (x2 - x1) * (y2 - y1) (no "+1" pixel convention);
- a box is suppressed when its IoU with a kept, higher-scoring box is strictly greater than
  `iou_threshold`; the IoU is computed in the boxes' dtype and compared in float64, as
  torchvision's C++ kernel does; 0 / 0 (two zero-area boxes) is NaN and never suppresses;
- the result lists kept indices by decreasing score; equal scores keep index order (a stable
  sort), so ties are deterministic.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import torch

# torchvision switches from the coordinate trick to a per-class loop above this many box
# coordinates on CPU (it is faster there, and avoids float precision loss from huge offsets).
_VANILLA_ABOVE_NUMEL: Final[int] = 4000


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices (int64, on boxes' device) of the boxes kept by greedy NMS, by decreasing score.

    boxes: (N, 4) xyxy; scores: (N,). Works row by row (one IoU row per kept box) so memory
    stays O(N) even for the thousands of candidates MTCNN's first stage produces.
    """
    _check(boxes, scores)
    device = boxes.device
    if boxes.shape[0] == 0:
        return torch.empty((0,), dtype=torch.int64, device=device)
    order = torch.sort(scores.detach(), descending=True, stable=True).indices
    sorted_boxes = boxes.detach()[order].cpu().numpy()  # (N, 4), boxes' dtype
    keep_sorted = _greedy(sorted_boxes, float(iou_threshold))
    keep = order.cpu()[torch.from_numpy(keep_sorted)]
    return keep.to(device)


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """NMS done independently per category `idxs`: boxes of different categories never suppress
    each other. Same return convention as `nms`.

    Small inputs shift each category's boxes by its own offset so one `nms` call does all
    categories (torchvision's coordinate trick); large ones loop over categories, like
    torchvision does on CPU.
    """
    _check(boxes, scores)
    if idxs.shape != scores.shape:
        raise ValueError(f"idxs must have shape {tuple(scores.shape)}, got {tuple(idxs.shape)}")
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    if boxes.numel() > _VANILLA_ABOVE_NUMEL:
        return _batched_nms_per_class(boxes, scores, idxs, iou_threshold)
    # torchvision offsets by idx * (max + 1), which only separates categories when all
    # coordinates are >= 0; widening the span by -min keeps the guarantee for negative ones
    # and equals torchvision's offset otherwise.
    low = torch.clamp(boxes.min(), max=0)
    span = boxes.max() - low + torch.tensor(1, dtype=boxes.dtype, device=boxes.device)
    offsets = idxs.to(boxes) * span
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def _batched_nms_per_class(
    boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    keep_mask = torch.zeros_like(scores, dtype=torch.bool)
    for category in torch.unique(idxs):
        members = torch.nonzero(idxs == category).view(-1)
        kept = nms(boxes[members], scores[members], iou_threshold)
        keep_mask[members[kept]] = True
    keep = torch.nonzero(keep_mask).view(-1)
    return keep[torch.sort(scores[keep], descending=True, stable=True).indices]


def _greedy(boxes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Positions (into score-sorted `boxes`) that survive greedy suppression."""
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[:, k]) for k in range(4))
    areas = (x2 - x1) * (y2 - y1)
    threshold = np.float64(iou_threshold)  # a float64 scalar makes the comparison float64
    n = boxes.shape[0]
    suppressed = np.zeros(n, dtype=bool)
    keep: list[int] = []
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0 is NaN, on purpose
        for i in range(n):
            if suppressed[i]:
                continue
            keep.append(i)
            rest = slice(i + 1, n)
            width = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0)
            height = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0)
            inter = width * height
            iou = inter / (areas[i] + areas[rest] - inter)
            suppressed[rest] |= iou > threshold
    return np.asarray(keep, dtype=np.int64)


def _check(boxes: torch.Tensor, scores: torch.Tensor) -> None:
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {tuple(boxes.shape)}")
    if scores.shape != (boxes.shape[0],):
        raise ValueError(f"scores must have shape ({boxes.shape[0]},), got {tuple(scores.shape)}")
    if not boxes.is_floating_point():
        raise ValueError(f"boxes must be floating point, got {boxes.dtype}")
