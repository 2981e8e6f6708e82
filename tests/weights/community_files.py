"""Files in the layouts of other projects, made from faceedit's own networks for the tests."""

from __future__ import annotations

import functools
from collections import OrderedDict
from pathlib import Path

import torch
from torch import Tensor, nn

from faceedit.model.bisenet import BiSeNet
from faceedit.model.config import ParserConfig


def randomise_batchnorm(module: nn.Module, batches_tracked: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine terms, as trained weights have."""
    with torch.no_grad():
        for bn in module.modules():
            if isinstance(bn, nn.BatchNorm2d):
                bn.running_mean.normal_(0, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.normal_(0, 0.2)
                bn.num_batches_tracked.fill_(batches_tracked)
    return module


def randomised_bisenet(seed: int) -> BiSeNet:
    """A BiSeNet whose every tensor, BN statistics included, differs from a fresh one."""
    torch.manual_seed(seed)
    return randomise_batchnorm(BiSeNet(ParserConfig(kind="bisenet")), 80000).eval()


@functools.cache
def community_bisenet() -> BiSeNet:
    """Stands in for the network behind 79999_iter.pth (keys as in the community file).

    Shared by the tests that read and convert it: never modify it.
    """
    return randomised_bisenet(seed=7)


def face_parsing_layout(model: BiSeNet) -> OrderedDict[str, Tensor]:
    return OrderedDict((k, v.clone()) for k, v in model.state_dict().items())


def with_module_prefix(state: OrderedDict[str, Tensor]) -> object:
    return OrderedDict((f"module.{k}", v) for k, v in state.items())


def without_batch_counters(state: OrderedDict[str, Tensor]) -> object:
    return OrderedDict((k, v) for k, v in state.items() if not k.endswith("num_batches_tracked"))


def with_nan(state: OrderedDict[str, Tensor]) -> OrderedDict[str, Tensor]:
    damaged = OrderedDict(state)
    damaged["ffm.conv1.weight"] = damaged["ffm.conv1.weight"].clone()
    damaged["ffm.conv1.weight"][3, 5] = float("nan")
    return damaged


def nested(state: OrderedDict[str, Tensor]) -> object:
    return {"state_dict": state, "epoch": 12}


def torchvision_resnet18_layout(model: BiSeNet) -> OrderedDict[str, Tensor]:
    state = OrderedDict((k, v.clone()) for k, v in model.cp.resnet.state_dict().items())
    state["fc.weight"] = torch.randn(1000, 512)
    state["fc.bias"] = torch.randn(1000)
    return state


class CreatesAFile:
    """A pickle payload: unpickling it calls open(path, "w"), i.e. runs code that creates a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.path), "w"))
