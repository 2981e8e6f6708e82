"""What EditEngine hands back: numpy results of one crop, and the conversions from tensors.

Kept apart from the engine so the engine holds the networks and the device, and this file the
shapes, ranges and sizes of what the app, the `edit` command and the judges receive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from faceedit.faces.align import face_oval
from faceedit.inference.edit_weights import edit_weight, lock_union
from faceedit.inference.lock_anchors import locks_at_anchors
from faceedit.model.config import ModelConfig


@dataclass
class Parsing:
    """Parser output for one crop, at the crop's size."""

    probabilities: np.ndarray  # (19, H, W) float32, sums to 1 over classes
    labels: np.ndarray  # (H, W) uint8 class indices
    region_masks: np.ndarray  # (K, H, W) float32 soft masks of the expression regions


@dataclass
class EditResult:
    """One edited crop with what explains it: region masks, attention maps, timings."""

    crop: np.ndarray  # (S, S, 3) uint8 RGB
    region_masks: np.ndarray  # (K, S, S) float32
    attention: np.ndarray  # (1 + K, S, S) float32; 1 keeps the input pixel
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds per stage
    # (S, S) float32 paste weights: where the model edits (inference/edit_weights.py); None
    # pastes the whole change.
    weight: np.ndarray | None = None
    # (S, S) float32 soft union of the editable regions under a region lock, else None.
    lock: np.ndarray | None = None


def parsing_arrays(logits: torch.Tensor, masks: torch.Tensor, size: tuple[int, int]) -> Parsing:
    """Numpy parsing of the first item, with probabilities at the caller's crop size."""
    probabilities = torch.softmax(logits.float(), dim=1)
    if tuple(probabilities.shape[-2:]) != tuple(size):
        probabilities = F.interpolate(
            probabilities, size=size, mode="bilinear", align_corners=False
        )
    return Parsing(
        probabilities=probabilities[0].cpu().numpy(),
        labels=probabilities[0].argmax(0).to(torch.uint8).cpu().numpy(),
        region_masks=masks[0].float().cpu().numpy(),
    )


def paste_maps(
    attention: torch.Tensor,
    masks: torch.Tensor,
    editable: torch.Tensor | None,
    size: tuple[int, int],
    regions: Sequence[str],
) -> tuple[np.ndarray, np.ndarray | None]:
    """(B, H, W) paste weights and, under a region lock, the lock's soft union, at the
    caller's crop size (faceedit.faces.align.paste_back takes them); the lock keeps only its
    footprint's parts at the editable `regions`' own features (inference/lock_anchors.py)."""
    maps = [edit_weight(attention, masks)]
    if editable is not None:
        maps.append(lock_union(masks, editable))
    if tuple(maps[0].shape[-2:]) != tuple(size):
        maps = [
            F.interpolate(m[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
            for m in maps
        ]
    arrays = [m.cpu().numpy().astype(np.float32) for m in maps]
    if editable is None:
        return arrays[0], None
    return arrays[0], locks_at_anchors(arrays[1], editable.cpu().numpy(), regions)


def in_edit_area(
    config: ModelConfig | None, weights: np.ndarray, lock: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Paste weights (B, S, S) and a lock's union cut to the model's edit area: with
    edit_area="face", the face's oval (faceedit.faces.align.face_oval), so hair and background
    keep their pixels and a region lock's footprint stays on the face."""
    if config is None or config.edit_area != "face":
        return weights, lock
    oval = face_oval(weights.shape[-1])
    return weights * oval, None if lock is None else lock * oval


def to_uint8(image: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """(3, S, S) in [-1, 1] -> (H, W, 3) uint8 RGB at the caller's crop size."""
    image = image.float()[None]
    if tuple(image.shape[-2:]) != tuple(size):
        image = F.interpolate(image, size=size, mode="bilinear", align_corners=False)
    pixels = ((image[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.permute(1, 2, 0).cpu().numpy()
