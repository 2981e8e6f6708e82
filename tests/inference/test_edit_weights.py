"""faceedit.inference.edit_weights: where the model edits, read from its attention and masks."""

from __future__ import annotations

import torch

from faceedit.inference.edit_weights import (
    EDIT_FLOOR,
    EDIT_FULL,
    edit_share,
    edit_weight,
    lock_union,
)


def _maps(size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    masks = torch.zeros(1, 2, size, size)
    masks[0, 0, :, :4] = 1.0  # region 0 covers the left half; region 1 nothing
    attention = torch.ones(1, 3, 1, size, size)
    return attention, masks


def test_share_follows_the_hierarchy_blend() -> None:
    attention, masks = _maps()
    attention[0, 0] = 0.2  # the global editor edits 80 % everywhere...
    attention[0, 1] = 0.9  # ...but inside region 0 its local editor (10 %) takes over
    share = edit_share(attention, masks)[0]
    assert torch.allclose(share[:, 4:], torch.tensor(0.8))
    assert torch.allclose(share[:, :4], torch.tensor(0.1))


def test_weight_is_zero_where_the_model_keeps_its_input_and_one_where_it_edits() -> None:
    attention, masks = _maps()
    assert not edit_weight(attention, masks).any()  # A = 1 everywhere: nothing to paste
    attention[0, 0, 0, :, :4] = 1 - EDIT_FLOOR / 2  # a leak below the floor
    attention[0, 0, 0, :, 4:] = 1 - EDIT_FULL  # a real edit
    attention[0, 1] = attention[0, 0]
    weight = edit_weight(attention, masks)[0]
    assert (weight[:, :4] == 0).all() and torch.allclose(weight[:, 4:], torch.tensor(1.0))


def test_lock_union_sums_the_editable_regions() -> None:
    _, masks = _maps()
    masks[0, 1, :, 6:] = 0.5
    union = lock_union(masks, torch.tensor([0.0, 1.0]))[0]
    assert union[:, :6].max() == 0 and torch.allclose(union[:, 6:], torch.tensor(0.5))
    assert lock_union(masks, torch.tensor([1.0, 1.0]))[0].max() == 1.0
