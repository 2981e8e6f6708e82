"""Pieces every face parser shares: its output type, input normalisation, size check, ConvBNReLU.

They live apart from `parsing.py` because `parsing.py` maps names to the concrete parsers, and the
concrete parsers need these pieces: keeping them here means no module imports itself in a circle,
whichever of `parsing`, `bisenet` or `unet` is imported first. `parsing.py` re-exports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ParserOutput(NamedTuple):
    """What every parser returns.

    logits: (B, num_classes, H, W) at the input size.
    aux: auxiliary logits, also at the input size, in training mode for parsers that have
    auxiliary heads (BiSeNet: aux16, aux32); `()` in eval mode or for parsers without them.
    """

    logits: Tensor
    aux: tuple[Tensor, ...] = ()


class InputNormalization(nn.Module):
    """Maps [-1, 1] images to the normalisation a parser was trained with.

    `mean`/`std` are defined on [0, 1] images (ImageNet statistics for the community BiSeNet),
    so the map is ((x + 1) / 2 - mean) / std, folded into one multiply-add. The buffers are not
    persistent: they come from the config, and the state dict stays identical to the
    community file's.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        # float32 arithmetic in numpy, not torch: a tensor division inside the meta-device
        # context of checkpoint.check_memory makes torch import its compiler (1.3 s, holding
        # the GIL, in the app's worker thread: a visible freeze of the window).
        mean_a = np.asarray(tuple(mean), dtype=np.float32).reshape(1, -1, 1, 1)
        std_a = np.asarray(tuple(std), dtype=np.float32).reshape(1, -1, 1, 1)
        self.scale: Tensor
        self.shift: Tensor
        self.register_buffer("scale", torch.from_numpy(np.float32(0.5) / std_a), persistent=False)
        self.register_buffer(
            "shift", torch.from_numpy((np.float32(0.5) - mean_a) / std_a), persistent=False
        )

    def forward(self, x: Tensor) -> Tensor:
        # (B, 3, H, W) in [-1, 1] -> (B, 3, H, W) normalised
        return x * self.scale + self.shift


def check_input_size(x: Tensor, multiple: int, owner: str) -> tuple[int, int]:
    """(H, W) of a (B, 3, H, W) batch, or a ValueError naming the size and the multiple needed."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{owner} expects a (B, 3, H, W) image batch, got shape {tuple(x.shape)}")
    height, width = int(x.shape[2]), int(x.shape[3])
    if height % multiple or width % multiple or height == 0 or width == 0:
        raise ValueError(
            f"{owner} needs a height and width that are positive multiples of {multiple}; "
            f"got {height}x{width}: resize or pad the image to a multiple of {multiple}"
        )
    return height, width


class ConvBNReLU(nn.Module):
    """Conv (no bias) -> BatchNorm -> ReLU; keys `conv`, `bn` as in face-parsing.PyTorch."""

    # (conv, bn) children that `fold_batchnorm` may merge.
    CONV_BN_PAIRS: ClassVar[tuple[tuple[str, str], ...]] = (("conv", "bn"),)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))
