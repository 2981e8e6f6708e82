"""Reading other projects' weights files and comparing them with a network, on a tiny module."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from faceedit.errors import CheckpointError
from trainer.pretrained import compare_state, read_weights_file


class Payload:
    """Any class: unpickling it means importing and calling code."""


def tiny() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))


def test_a_fitting_state_has_no_mismatch() -> None:
    net = tiny()
    assert compare_state(net.state_dict(), tiny().state_dict()) == ([], [], [])


def test_missing_unexpected_and_misshapen_keys_are_named_sorted() -> None:
    expected = tiny().state_dict()
    state = dict(expected)
    del state["1.running_var"], state["0.bias"]
    state["extra.weight"] = torch.zeros(1)
    state["0.weight"] = torch.zeros(4, 3)
    missing, unexpected, misshapen = compare_state(expected, state)
    assert missing == ["0.bias", "1.running_var"]
    assert unexpected == ["extra.weight"]
    assert misshapen == ["0.weight (4, 3) != (2, 3)"]


def test_optional_keys_may_be_missing_but_not_misshapen() -> None:
    expected = tiny().state_dict()
    state = {k: v for k, v in expected.items() if not k.endswith("num_batches_tracked")}
    state["1.running_mean"] = torch.zeros(5)

    def optional(key: str) -> bool:
        return key.endswith("num_batches_tracked") or key == "1.running_mean"

    missing, unexpected, misshapen = compare_state(expected, state, optional)
    assert (missing, unexpected) == ([], [])
    assert misshapen == ["1.running_mean (5,) != (2,)"]


def test_read_weights_file_returns_the_saved_tensors(tmp_path: Path) -> None:
    state = tiny().state_dict()
    torch.save(state, tmp_path / "w.pth")
    loaded = read_weights_file(tmp_path / "w.pth", "a tiny state dict")
    assert isinstance(loaded, dict) and loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_read_weights_file_refuses_junk_and_pickled_objects_naming_what_was_expected(
    tmp_path: Path,
) -> None:
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(
        CheckpointError, match=r"(?s)could not be read .*; expected a tiny state dict$"
    ):
        read_weights_file(tmp_path / "junk.pth", "a tiny state dict")
    # A pickled object other than tensors and containers could run code: weights_only refuses.
    torch.save({"weight": torch.zeros(1), "extra": Payload()}, tmp_path / "object.pth")
    with pytest.raises(CheckpointError, match="could not be read"):
        read_weights_file(tmp_path / "object.pth", "a tiny state dict")
    with pytest.raises(CheckpointError, match="could not be read"):
        read_weights_file(tmp_path / "absent.pth", "a tiny state dict")
