"""Reading other projects' weights files and comparing them with a network, on a tiny module."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from faceedit.errors import CheckpointError
from trainer.judges.pretrained import read_weights_file


class Payload:
    """Any class: unpickling it means importing and calling code."""


def tiny() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))


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
