"""Where the model edits: the per-pixel weights paste-back gives the edit's change.

The hierarchical generator composes every editor as A * input + (1 - A) * colour (§1), so the
share of a pixel that comes from the colour images, composed through the hierarchy's blend,
says how much the model edits it. A model that keeps 97 % of a pixel still adds 3 % of a colour
image that may be far from the input: several grey levels over the whole face, which is a leak
of the attention, not an edit. Paste-back drops it (docs/architecture.md §3).

Read-only use of the generator's outputs: nothing here changes what the networks compute.
"""

from __future__ import annotations

from typing import Final

from torch import Tensor

# Edit share below EDIT_FLOOR: the pixel is left alone (its change, at most 255 * EDIT_FLOOR
# grey levels, about 13, and on the bundled demo model about 4 on average, is the attention's
# leak). From EDIT_FULL up the model's change is pasted whole; in between a smoothstep.
EDIT_FLOOR: Final[float] = 0.05
EDIT_FULL: Final[float] = 0.25


def edit_share(attention: Tensor, region_masks: Tensor) -> Tensor:
    """(B, S, S) in [0, 1]: the share of each pixel taken from the generators' colour images.

    attention (B, 1 + K, 1, S, S) (1 keeps the input pixel), region_masks (B, K, S, S): blended
    as the generator blends its images, (1 - union) * global + sum_k w_k * local_k, with the
    weights normalised where the masks sum above 1. The fusion network's residual is not in it:
    it only repairs seams where the editors edit.
    """
    masks = region_masks.float()
    total = masks.sum(1)
    scale = 1.0 / total.clamp_min(1.0)
    edited = 1.0 - attention[:, :, 0].float()  # (B, 1 + K, S, S)
    share = (1.0 - total * scale) * edited[:, 0] + (masks * scale[:, None] * edited[:, 1:]).sum(1)
    return share.clamp(0.0, 1.0)


def edit_weight(attention: Tensor, region_masks: Tensor) -> Tensor:
    """(B, S, S) paste weights: 0 where the edit share is below EDIT_FLOOR, 1 from EDIT_FULL."""
    share = edit_share(attention, region_masks)
    t = ((share - EDIT_FLOOR) / (EDIT_FULL - EDIT_FLOOR)).clamp(0.0, 1.0)
    return t * t * (3 - 2 * t)


def lock_union(region_masks: Tensor, editable: Tensor) -> Tensor:
    """(B, S, S): the soft union of the editable regions' masks, as the generator's lock uses it.

    editable (K,) or (B, K) weights in [0, 1].
    """
    masks = region_masks.float()
    weights = editable.to(device=masks.device, dtype=masks.dtype)
    if weights.dim() == 1:
        weights = weights[None].expand(masks.shape[0], -1)
    return (weights[:, :, None, None] * masks).sum(1).clamp(0.0, 1.0)
