"""The one .pth reader and the one ResNet-18 loader."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

from faceedit.errors import CheckpointError
from faceedit.model.bisenet import BiSeNet
from faceedit.model.config import ParserConfig
from faceedit.weights.torch_files import load_resnet18, load_torch_file, read_state_dict
from tests.weights.community_files import (
    CreatesAFile,
    randomised_bisenet,
    torchvision_resnet18_layout,
)


class Payload:
    """Any class: unpickling it means importing and calling code."""


def tiny() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))


@pytest.fixture(scope="module")
def community() -> BiSeNet:
    return randomised_bisenet(seed=11)


def test_the_saved_tensors_come_back(tmp_path: Path) -> None:
    state = tiny().state_dict()
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "w.pth")
    loaded = load_torch_file(tmp_path / "w.pth", "a tiny state dict")
    assert isinstance(loaded, dict) and set(loaded) == {"model"}
    flat = read_state_dict(tmp_path / "w.pth", "a tiny state dict")
    assert flat.keys() == state.keys()
    assert all(torch.equal(flat[k], state[k]) for k in state)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_pickled_code_is_refused_unrun_and_never_with_advice_to_load_it_unsafely(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "created-by-unpickling.txt"
    for name, payload in (
        ("object.pth", {"weight": torch.zeros(1), "extra": Payload()}),
        ("evil.pth", {"weight": CreatesAFile(victim)}),
    ):
        torch.save(payload, tmp_path / name)
        with pytest.raises(CheckpointError) as info:
            load_torch_file(tmp_path / name, "a tiny state dict")
        message = str(info.value)
        assert message.startswith(f"{tmp_path / name} was refused") and "could run code" in message
        assert (
            "this file contains code or objects faceedit will not load; only safetensors and plain tensor files are accepted"
            in message
        )
        assert "expected a tiny state dict" in message
        assert "weights_only" not in message and "trust the source" not in message
    with open(tmp_path / "plain.pkl", "wb") as handle:
        pickle.dump({"weight": CreatesAFile(victim)}, handle)
    with pytest.raises(CheckpointError, match=r"plain\.pkl could not be read .*could run code"):
        load_torch_file(tmp_path / "plain.pkl", "a tiny state dict")
    assert not victim.exists()


def test_unreadable_files_name_the_file_and_what_was_expected(tmp_path: Path) -> None:
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(
        CheckpointError, match=r"junk\.pth could not be read .*; expected a tiny state dict$"
    ):
        load_torch_file(tmp_path / "junk.pth", "a tiny state dict")
    with pytest.raises(CheckpointError, match=r"absent\.pth does not exist; expected a tiny"):
        load_torch_file(tmp_path / "absent.pth", "a tiny state dict")
    with pytest.raises(CheckpointError, match="is not a file"):
        load_torch_file(tmp_path, "a tiny state dict")
    torch.save({"weight": torch.zeros(1), "note": "text"}, tmp_path / "mixed.pth")
    with pytest.raises(CheckpointError, match=r"entries note are not tensors; expected a tiny"):
        read_state_dict(tmp_path / "mixed.pth", "a tiny state dict")


def test_imagenet_resnet18_loads_into_the_backbone(community: BiSeNet, tmp_path: Path) -> None:
    src = tmp_path / "resnet18-f37072fd.pth"
    torch.save(torchvision_resnet18_layout(community), src)
    fresh = BiSeNet(ParserConfig())
    head_before = fresh.conv_out.conv_out.weight.clone()
    assert load_resnet18(fresh.cp.resnet, src) == ("fc.weight", "fc.bias")
    for key, value in community.cp.resnet.state_dict().items():
        assert torch.equal(fresh.cp.resnet.state_dict()[key], value), key
    assert torch.equal(fresh.conv_out.conv_out.weight, head_before)  # only the backbone changes


def test_a_non_resnet18_backbone_is_refused(community: BiSeNet, tmp_path: Path) -> None:
    state = torchvision_resnet18_layout(community)
    state["layer1.2.conv1.weight"] = torch.zeros(64, 64, 3, 3)  # ResNet-34 has a third block
    src = tmp_path / "resnet34.pth"
    torch.save(state, src)
    with pytest.raises(
        CheckpointError, match=r"resnet34\.pth.*ResNet-18.*layer1\.2\.conv1\.weight"
    ):
        load_resnet18(BiSeNet(ParserConfig()).cp.resnet, src)


def test_a_classifier_keeps_a_matching_fc_and_its_own_for_another_class_count(
    community: BiSeNet, tmp_path: Path
) -> None:
    src = tmp_path / "resnet18.pth"
    state = torchvision_resnet18_layout(community)
    torch.save(state, src)
    backbone = community.cp.resnet
    same = nn.Sequential()
    same.add_module("body", backbone)  # keys 'body.*' do not fit torchvision's names
    with pytest.raises(CheckpointError, match="unexpected"):
        load_resnet18(same, src)

    class WithHead(nn.Module):
        def __init__(self, classes: int) -> None:
            super().__init__()
            fresh = BiSeNet(ParserConfig()).cp.resnet
            for name, child in fresh.named_children():
                self.add_module(name, child)
            self.fc = nn.Linear(512, classes)

    imagenet = WithHead(1000)
    assert load_resnet18(imagenet, src) == ()
    assert torch.equal(imagenet.fc.weight, state["fc.weight"])
    eight = WithHead(8)
    head = eight.fc.weight.detach().clone()
    assert load_resnet18(eight, src) == ("fc.weight", "fc.bias")
    assert torch.equal(eight.fc.weight, head)
    assert torch.equal(eight.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])


def test_an_unreadable_file_says_why_not_that_it_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As root no permission bit stops a read, so the refusal of the kernel is simulated."""
    from faceedit.weights import torch_files

    torch.save({"weight": torch.zeros(1)}, tmp_path / "w.pth")

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(tmp_path / "w.pth"))

    monkeypatch.setattr(torch_files, "open", denied, raising=False)
    with pytest.raises(CheckpointError) as info:
        load_torch_file(tmp_path / "w.pth", "a tiny state dict")
    assert "w.pth cannot be read (permission denied" in str(info.value)
    assert "No such file" not in str(info.value)
    monkeypatch.setattr(torch_files.os, "stat", denied)
    with pytest.raises(CheckpointError, match=r"w\.pth cannot be read \(permission denied"):
        load_torch_file(tmp_path / "w.pth", "a tiny state dict")
    monkeypatch.undo()  # os.stat is everyone's: give it back at once
