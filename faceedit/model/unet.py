"""A plain U-Net face parser: light enough to train from scratch at small crop sizes.

Encoder of `unet_depth` max-pool stages doubling the width from `unet_base_width`; decoder of
bilinear upsampling, concatenation with the matching encoder map and a double conv; a 1x1 head.
It has no auxiliary heads, so `ParserOutput.aux` is always `()`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from faceedit.model.config import ParserConfig
from faceedit.model.parser_blocks import (
    ConvBNReLU,
    InputNormalization,
    ParserOutput,
    check_input_size,
)


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 conv-BN-ReLU layers, the U-Net's unit at every scale."""
    return nn.Sequential(
        ConvBNReLU(in_channels, out_channels), ConvBNReLU(out_channels, out_channels)
    )


class UNet(nn.Module):
    """(B, 3, H, W) in [-1, 1] -> class logits at (H, W); H and W multiples of 2**depth."""

    def __init__(self, config: ParserConfig) -> None:
        super().__init__()
        self.config = config
        self.depth = config.unet_depth
        widths = [config.unet_base_width * 2**level for level in range(self.depth + 1)]
        self.normalize = InputNormalization(config.mean, config.std)
        self.stem = double_conv(3, widths[0])
        # down[i]: level i -> level i + 1 (after a 2x2 max-pool)
        self.down = nn.ModuleList(double_conv(widths[i], widths[i + 1]) for i in range(self.depth))
        # up[i]: level i + 1 upsampled and concatenated with level i's skip -> level i
        self.up = nn.ModuleList(
            double_conv(widths[i + 1] + widths[i], widths[i]) for i in range(self.depth)
        )
        self.head = nn.Conv2d(widths[0], config.num_classes, 1)

    def forward(self, x: Tensor) -> ParserOutput:
        # x: (B, 3, H, W) in [-1, 1]
        check_input_size(x, 2**self.depth, f"UNet(depth={self.depth})")
        # 1. Normalise and encode; skips[i] has widths[i] channels at 1/2**i scale.
        feat = self.stem(self.normalize(x))  # (B, w0, H, W)
        skips: list[Tensor] = []
        for block in self.down:
            skips.append(feat)
            feat = block(F.max_pool2d(feat, 2))
        # feat: (B, w0 * 2**depth, H / 2**depth, W / 2**depth)
        # 2. Decode from the deepest level back to full size.
        for level in reversed(range(self.depth)):
            skip = skips[level]
            feat = F.interpolate(feat, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            feat = self.up[level](torch.cat([skip, feat], dim=1))  # (B, w_level, ...)
        # 3. Per-pixel class logits: (B, num_classes, H, W).
        return ParserOutput(self.head(feat), ())
