"""K networks of one architecture (the local editors, the region critics) run as one network.

On a GPU the hierarchy is bound by the host's cost per launched operator, and four local
networks launch four times the operators for a fifth more arithmetic. Run grouped,
each layer's K copies become one layer over the K inputs' channels side by side (copy k owns
channels [k * C, (k + 1) * C)): convolutions with groups=K, instance norms with one group per
channel. The grouped weights are concatenated from the K modules' own parameters at every call,
so gradients reach those parameters, and state dicts, optimisers, the EMA and checkpoints see
the separate modules as ever. On a 2-thread CPU the grouped convolutions measured slower
(HierarchicalGenerator), so running the modules one after the other stays the default.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LocalExecution = Literal["separate", "grouped"]
LOCAL_EXECUTIONS: Final[tuple[LocalExecution, ...]] = ("separate", "grouped")
# Parameterless layers that treat every channel alike: one call covers all K copies.
ELEMENTWISE: Final[tuple[type[nn.Module], ...]] = (nn.ReLU, nn.LeakyReLU)


def check_local_execution(mode: str) -> LocalExecution:
    """`mode` if it names a way to run the local networks; a ValueError naming it otherwise."""
    if mode not in LOCAL_EXECUTIONS:
        raise ValueError(f"local execution must be one of {list(LOCAL_EXECUTIONS)}, got {mode!r}")
    return mode


def _cat(tensors: list[Tensor | None]) -> Tensor | None:
    """The K copies' parameters end to end along dim 0, or None where the layers have none."""
    if tensors[0] is None:
        return None
    return torch.cat(cast(list[Tensor], tensors))


def grouped_layer(layers: Sequence[nn.Module], x: Tensor) -> Tensor:
    """The K copies of one layer on x (B, K * C, H, W), copy k on channels [k * C, (k + 1) * C)."""
    first, k = layers[0], len(layers)
    if isinstance(first, ELEMENTWISE):
        return cast(Tensor, first(x))
    if not isinstance(first, nn.Conv2d | nn.ConvTranspose2d | nn.InstanceNorm2d):
        raise TypeError(f"grouped execution has no rule for {type(first).__name__}")
    weight = _cat([cast(Tensor | None, layer.weight) for layer in layers])
    bias = _cat([cast(Tensor | None, layer.bias) for layer in layers])
    if isinstance(first, nn.InstanceNorm2d):
        if first.track_running_stats:
            raise ValueError("grouped execution needs instance norms without running statistics")
        return F.group_norm(x, k * first.num_features, weight, bias, first.eps)
    if first.padding_mode != "zeros":
        raise ValueError(f"grouped execution pads with zeros only, got {first.padding_mode!r}")
    assert weight is not None
    if isinstance(first, nn.Conv2d):
        return F.conv2d(
            x, weight, bias, first.stride, first.padding, first.dilation, k * first.groups
        )
    return F.conv_transpose2d(
        x,
        weight,
        bias,
        first.stride,
        cast(tuple[int, ...], first.padding),  # a transposed convolution's is never a string
        first.output_padding,
        k * first.groups,
        first.dilation,
    )


def grouped_sequential(stacks: Sequence[nn.Sequential], x: Tensor) -> Tensor:
    """K copies of one Sequential of the layers `grouped_layer` knows, on x (B, K * C, H, W)."""
    for layers in zip(*stacks, strict=True):
        x = grouped_layer(layers, x)
    return x
