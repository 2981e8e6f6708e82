"""Reading face-parsing.PyTorch's 79999_iter.pth: every way it is stored, every way it is wrong."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from faceedit.errors import CheckpointError
from faceedit.model.bisenet import BiSeNet
from faceedit.model.config import ParserConfig
from faceedit.weights.community_parser import read_face_parsing_state_dict
from faceedit.weights.torch_files import load_resnet18
from tests.weights.community_files import (
    community_bisenet,
    face_parsing_layout,
    torchvision_resnet18_layout,
    with_nan,
    without_batch_counters,
)


@pytest.fixture
def community() -> BiSeNet:
    return community_bisenet()


def _truncated(tmp_path: Path, community: BiSeNet) -> Path:
    path = tmp_path / "truncated.pth"
    torch.save(face_parsing_layout(community), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _text(tmp_path: Path, community: BiSeNet) -> Path:
    path = tmp_path / "notes.pth"
    path.write_text("these are not weights\n")
    return path


def _empty(tmp_path: Path, community: BiSeNet) -> Path:
    path = tmp_path / "empty.pth"
    path.touch()
    return path


def _a_list(tmp_path: Path, community: BiSeNet) -> Path:
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    return path


def _missing(tmp_path: Path, community: BiSeNet) -> Path:
    return tmp_path / "nowhere.pth"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_truncated, "could not be read as a PyTorch weights file"),
        (_text, "could not be read as a PyTorch weights file|refused"),
        (_empty, "could not be read as a PyTorch weights file"),
        (_a_list, "holds a list, not a state dict"),
        (_missing, "does not exist"),
    ],
    ids=["truncated", "text", "empty", "list", "missing"],
)
def test_unreadable_files_get_a_clear_error(
    make: Callable[[Path, BiSeNet], Path], message: str, community: BiSeNet, tmp_path: Path
) -> None:
    path = make(tmp_path, community)
    with pytest.raises(CheckpointError, match=message) as info:
        read_face_parsing_state_dict(path)
    assert str(path) in str(info.value)


def test_mismatched_keys_are_named(community: BiSeNet, tmp_path: Path) -> None:
    state = face_parsing_layout(community)
    del state["ffm.conv2.weight"]
    state["conv_out.conv_out.weight"] = torch.zeros(11, 256, 1, 1)  # an 11-class model
    state["head.extra"] = torch.zeros(3)
    src = tmp_path / "other.pth"
    torch.save(state, src)
    with pytest.raises(CheckpointError) as info:
        read_face_parsing_state_dict(src)
    message = str(info.value)
    assert str(src) in message
    assert "1 missing (ffm.conv2.weight)" in message
    assert "1 unexpected (head.extra)" in message
    assert "conv_out.conv_out.weight (11, 256, 1, 1) != (19, 256, 1, 1)" in message


def test_non_finite_weights_are_refused(community: BiSeNet, tmp_path: Path) -> None:
    src = tmp_path / "nan.pth"
    torch.save(with_nan(face_parsing_layout(community)), src)
    with pytest.raises(CheckpointError, match=r"nan\.pth: tensor ffm\.conv1\.weight holds NaN"):
        read_face_parsing_state_dict(src)


def test_many_missing_keys_are_listed_briefly(tmp_path: Path) -> None:
    src = tmp_path / "half.pth"
    torch.save({"cp.resnet.conv1.weight": torch.zeros(64, 3, 7, 7)}, src)
    with pytest.raises(CheckpointError, match=r"\d+ missing \([^)]*, \.\.\. \d+ more\)"):
        read_face_parsing_state_dict(src)


def test_reader_returns_tensors_ready_for_strict_loading(
    community: BiSeNet, tmp_path: Path
) -> None:
    src = tmp_path / "old.pth"
    torch.save(without_batch_counters(face_parsing_layout(community)), src)
    state = read_face_parsing_state_dict(src)
    assert len(state) == 191
    assert state["cp.resnet.bn1.num_batches_tracked"].dtype == torch.long
    assert int(state["cp.resnet.bn1.num_batches_tracked"]) == 0
    BiSeNet(ParserConfig()).load_state_dict(state, strict=True)


def test_wrong_kind_of_file_gets_a_hint(community: BiSeNet, tmp_path: Path) -> None:
    backbone, whole = tmp_path / "resnet18.pth", tmp_path / "79999_iter.pth"
    torch.save(torchvision_resnet18_layout(community), backbone)
    torch.save(face_parsing_layout(community), whole)
    with pytest.raises(CheckpointError, match="looks like an ImageNet ResNet backbone"):
        read_face_parsing_state_dict(backbone)
    with pytest.raises(CheckpointError, match="looks like a whole face-parsing BiSeNet"):
        load_resnet18(BiSeNet(ParserConfig()).cp.resnet, whole)
