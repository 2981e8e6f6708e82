"""Finding and wording where a state dict does not fit a network, on a tiny module."""

from __future__ import annotations

import torch
from torch import nn

from faceedit.weights.state_match import StateMismatch, compare_state


def tiny() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))


def test_a_fitting_state_has_no_mismatch() -> None:
    mismatch = compare_state(tiny().state_dict(), tiny().state_dict())
    assert mismatch == StateMismatch() and not mismatch and mismatch.summary() == ""


def test_missing_unexpected_and_misshapen_keys_are_named_sorted() -> None:
    expected = tiny().state_dict()
    state = dict(expected)
    del state["1.running_var"], state["0.bias"]
    state["extra.weight"] = torch.zeros(1)
    state["0.weight"] = torch.zeros(4, 3)
    mismatch = compare_state(expected, state)
    assert mismatch.missing == ("0.bias", "1.running_var")
    assert mismatch.unexpected == ("extra.weight",)
    assert mismatch.misshapen == ("0.weight (4, 3) != (2, 3)",)
    assert mismatch.summary() == (
        "2 missing (0.bias, 1.running_var); 1 unexpected (extra.weight); "
        "1 misshapen (0.weight (4, 3) != (2, 3))"
    )


def test_optional_keys_may_be_missing_but_not_misshapen() -> None:
    expected = tiny().state_dict()
    state = {k: v for k, v in expected.items() if not k.endswith("num_batches_tracked")}
    state["1.running_mean"] = torch.zeros(5)

    def optional(key: str) -> bool:
        return key.endswith("num_batches_tracked") or key == "1.running_mean"

    mismatch = compare_state(expected, state, optional)
    assert (mismatch.missing, mismatch.unexpected) == ((), ())
    assert mismatch.misshapen == ("1.running_mean (5,) != (2,)",)


def test_a_long_list_is_cut_with_a_count() -> None:
    expected = {f"w{i}": torch.zeros(1) for i in range(7)}
    assert compare_state(expected, {}).summary(shown=2) == "7 missing (w0, w1, ... 5 more)"
