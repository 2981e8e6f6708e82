"""Region masks for the local generators: soft ones from parser logits, hard boxes from landmarks.

Soft masks are what the method uses (docs/architecture.md §1): they are differentiable, so GAN losses
reach the parser. Keypoint boxes reproduce the paper's ablation and are hard by design.
"""

from __future__ import annotations

import functools
from typing import Final

import torch
from torch import Tensor

from faceedit.vocab.labels import NUM_CLASSES, region_classes

# Five landmarks in MTCNN order (what faceedit.faces.align aligns with): the eye on the image's left,
# the eye on the image's right, the nose tip, the mouth corner on the left, the one on the right.
NUM_LANDMARKS: Final[int] = 5

# Box geometry for the keypoint-box ablation, in units of the inter-ocular distance d (the
# distance between the two eye landmarks), measured along the eye line ("along") and across it,
# pointing from the eyes towards the mouth ("down"). Values are (offset_along, offset_down,
# half_along, half_down) relative to an anchor landmark. They are sized on 5-point aligned crops,
# where d is about 0.3 of the crop: an eye spans about 0.6 d, a brow sits about 0.35 d above its
# eye, the nose runs from between the eyes to just below the tip, and the lips reach about
# 0.25 d above and below the mouth-corner line.
EYE_BOX: Final[tuple[float, float, float, float]] = (0.0, 0.0, 0.30, 0.18)
BROW_BOX: Final[tuple[float, float, float, float]] = (0.0, -0.38, 0.36, 0.16)
NOSE_BOX: Final[tuple[float, float, float, float]] = (0.0, -0.22, 0.26, 0.38)
# The mouth box is anchored on the mid-point of the corners and reaches this far past each corner.
MOUTH_MARGIN_ALONG: Final[float] = 0.12
MOUTH_HALF_DOWN: Final[float] = 0.25


def region_matrix(
    regions: tuple[str, ...], device: torch.device | None = None, dtype: torch.dtype | None = None
) -> Tensor:
    """(19, K) 0/1 matrix whose column k selects the classes of region k."""
    matrix = _region_matrix_cpu(tuple(regions))
    return matrix.to(device=device, dtype=dtype or torch.float32, copy=True)  # callers may write


@functools.lru_cache(maxsize=16)
def _region_matrix_cpu(regions: tuple[str, ...]) -> Tensor:
    # Built once per region tuple: per frame only a (19, K) copy to the device remains. A normal
    # tensor even when first asked for under inference_mode, so autograd can use its copies.
    with torch.inference_mode(False):
        matrix = torch.zeros(NUM_CLASSES, len(regions))
        for k, classes in enumerate(region_classes(regions)):
            matrix[list(classes), k] = 1.0
    return matrix


def soft_region_masks(logits: Tensor, regions: tuple[str, ...]) -> Tensor:
    """(B, K, H, W) in [0, 1]: per region, the summed softmax probability of its classes.

    The groups are disjoint, so the K masks of a pixel also sum to at most 1.
    """
    if logits.dim() != 4 or logits.shape[1] != NUM_CLASSES:
        raise ValueError(
            f"parser logits must be (B, {NUM_CLASSES}, H, W), got {tuple(logits.shape)}"
        )
    probs = logits.softmax(dim=1)  # (B, 19, H, W)
    matrix = region_matrix(regions, device=logits.device, dtype=probs.dtype)
    return torch.einsum("bchw,ck->bkhw", probs, matrix)


def box_region_masks(landmarks: Tensor, size: int, regions: tuple[str, ...]) -> Tensor:
    """(B, K, size, size) hard 0/1 boxes around the 5 landmarks (crop pixel coordinates).

    Boxes are oriented along the eye line, so a tilted face gets tilted boxes; their sizes are
    the constants above times the inter-ocular distance. No gradient flows through them: this is
    the keypoint-box ablation, which the soft masks replace.
    """
    if landmarks.dim() != 3 or landmarks.shape[1:] != (NUM_LANDMARKS, 2):
        raise ValueError(
            f"landmarks must be (B, {NUM_LANDMARKS}, 2) pixel coordinates in the crop, "
            f"got {tuple(landmarks.shape)}"
        )
    region_classes(regions)  # refuses unknown names with the list of known ones
    points = landmarks.detach().float()  # (B, 5, 2) as (x, y)
    eye_l, eye_r, nose, mouth_l, mouth_r = points.unbind(dim=1)  # each (B, 2)
    eye_line = eye_r - eye_l
    iod = eye_line.norm(dim=-1, keepdim=True).clamp_min(1e-6)  # (B, 1)
    along = eye_line / iod  # (B, 2) unit vector, image-left to image-right eye
    down = torch.stack([-along[:, 1], along[:, 0]], dim=-1)  # along turned 90 deg towards the mouth

    coords = torch.arange(size, device=points.device, dtype=points.dtype)
    grid_y, grid_x = torch.meshgrid(coords, coords, indexing="ij")
    pixels = torch.stack([grid_x, grid_y], dim=-1)  # (S, S, 2) pixel centres as (x, y)

    def box(anchor: Tensor, spec: tuple[float, float, float, float]) -> Tensor:
        off_along, off_down, half_along, half_down = spec
        centre = anchor + iod * (off_along * along + off_down * down)  # (B, 2)
        return oriented_box(pixels, centre, along, down, iod * half_along, iod * half_down)

    def mouth_box() -> Tensor:
        centre = (mouth_l + mouth_r) / 2
        half_width = (mouth_r - mouth_l).norm(dim=-1, keepdim=True) / 2
        return oriented_box(
            pixels,
            centre,
            along,
            down,
            half_width + iod * MOUTH_MARGIN_ALONG,
            iod * MOUTH_HALF_DOWN,
        )

    builders = {
        "brows": lambda: torch.maximum(box(eye_l, BROW_BOX), box(eye_r, BROW_BOX)),
        "eyes": lambda: torch.maximum(box(eye_l, EYE_BOX), box(eye_r, EYE_BOX)),
        "nose": lambda: box(nose, NOSE_BOX),
        "mouth": mouth_box,
    }
    if not regions:  # the global-only baseline: no boxes
        return landmarks.new_zeros(landmarks.shape[0], 0, size, size, dtype=torch.float32)
    masks = torch.stack([builders[name]() for name in regions], dim=1)  # (B, K, S, S)
    return masks.to(landmarks.dtype if landmarks.is_floating_point() else torch.float32)


def oriented_box(
    pixels: Tensor,
    centre: Tensor,
    along: Tensor,
    down: Tensor,
    half_along: Tensor,
    half_down: Tensor,
) -> Tensor:
    """(B, H, W) 0/1: pixels within half_along/half_down of centre in the (along, down) frame."""
    offset = pixels.unsqueeze(0) - centre[:, None, None, :]  # (B, H, W, 2)
    u = (offset * along[:, None, None, :]).sum(-1).abs()
    v = (offset * down[:, None, None, :]).sum(-1).abs()
    inside = (u <= half_along[:, :, None]) & (v <= half_down[:, :, None])
    return inside.to(pixels.dtype)
