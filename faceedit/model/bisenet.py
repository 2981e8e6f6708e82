"""BiSeNet face parser, laid out exactly like face-parsing.PyTorch's so `79999_iter.pth` loads.

Module names, nesting and channel widths reproduce the community network key for key (191
state-dict entries, see /work/shared/reference/face-parsing-bisenet-keys.tsv), and the forward
pass reproduces its resizes (nearest inside the context path, bilinear with align_corners=True
for the outputs), so imported weights give the same logits.
"""

from __future__ import annotations

from typing import ClassVar, Final

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

# The network divides the input by 32 (ResNet-18's stem and three strided stages).
SIZE_MULTIPLE: Final[int] = 32


# --- ResNet-18 backbone, torchvision's key names ---------------------------------------------


class BasicBlock(nn.Module):
    """Two 3x3 convs with a shortcut; a 1x1 conv + BN shortcut where the shape changes."""

    CONV_BN_PAIRS: ClassVar[tuple[tuple[str, str], ...]] = (("conv1", "bn1"), ("conv2", "bn2"))

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        residual = F.relu(self.bn1(self.conv1(x)))
        residual = self.bn2(self.conv2(residual))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(residual + shortcut)


def _stage(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        BasicBlock(in_channels, out_channels, stride), BasicBlock(out_channels, out_channels, 1)
    )


class ResNet18(nn.Module):
    """ResNet-18 without its classifier; returns the 1/8, 1/16 and 1/32 feature maps."""

    CONV_BN_PAIRS: ClassVar[tuple[tuple[str, str], ...]] = (("conv1", "bn1"),)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = _stage(64, 64, 1)
        self.layer2 = _stage(64, 128, 2)
        self.layer3 = _stage(128, 256, 2)
        self.layer4 = _stage(256, 512, 2)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4)
        x = self.layer1(x)  # (B, 64, H/4, W/4)
        feat8 = self.layer2(x)  # (B, 128, H/8, W/8)
        feat16 = self.layer3(feat8)  # (B, 256, H/16, W/16)
        feat32 = self.layer4(feat16)  # (B, 512, H/32, W/32)
        return feat8, feat16, feat32


# --- BiSeNet blocks ---------------------------------------------------------------------------


class AttentionRefinementModule(nn.Module):
    """3x3 ConvBNReLU, then reweights its channels by a sigmoid of their global average."""

    CONV_BN_PAIRS: ClassVar[tuple[tuple[str, str], ...]] = (("conv_atten", "bn_atten"),)

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_channels, out_channels, 3, 1, 1)
        self.conv_atten = nn.Conv2d(out_channels, out_channels, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        feat = self.conv(x)  # (B, C, h, w)
        atten = F.adaptive_avg_pool2d(feat, 1)  # (B, C, 1, 1)
        atten = torch.sigmoid(self.bn_atten(self.conv_atten(atten)))
        out: Tensor = feat * atten
        return out


class ContextPath(nn.Module):
    """ResNet-18 features refined top-down: 1/32 context is added into 1/16, then 1/16 into 1/8."""

    def __init__(self) -> None:
        super().__init__()
        self.resnet = ResNet18()
        self.arm16 = AttentionRefinementModule(256, 128)
        self.arm32 = AttentionRefinementModule(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128, 3, 1, 1)
        self.conv_head16 = ConvBNReLU(128, 128, 3, 1, 1)
        self.conv_avg = ConvBNReLU(512, 128, 1, 1, 0)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        # 1. Backbone features.
        feat8, feat16, feat32 = self.resnet(x)  # 1/8 (128 ch), 1/16 (256), 1/32 (512)
        # 2. Global context of the 1/32 map. The reference nearest-resizes this 1x1 map to
        #    feat32's size; broadcasting in the sum below is exactly that.
        avg = self.conv_avg(F.adaptive_avg_pool2d(feat32, 1))  # (B, 128, 1, 1)
        feat32_sum = self.arm32(feat32) + avg  # (B, 128, H/32, W/32)
        # 3. 1/32 -> 1/16: nearest resize, then conv_head32.
        feat32_up = F.interpolate(feat32_sum, size=feat16.shape[-2:], mode="nearest")
        feat32_up = self.conv_head32(feat32_up)  # (B, 128, H/16, W/16)
        # 4. 1/16 -> 1/8: the same with the refined 1/16 map.
        feat16_sum = self.arm16(feat16) + feat32_up  # (B, 128, H/16, W/16)
        feat16_up = F.interpolate(feat16_sum, size=feat8.shape[-2:], mode="nearest")
        feat16_up = self.conv_head16(feat16_up)  # (B, 128, H/8, W/8)
        return feat8, feat16_up, feat32_up


class FeatureFusionModule(nn.Module):
    """Fuses the spatial (feat8) and context (feat16_up) maps with squeeze-excite style attention."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.convblk = ConvBNReLU(in_channels, out_channels, 1, 1, 0)
        self.conv1 = nn.Conv2d(out_channels, out_channels // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(out_channels // 4, out_channels, 1, bias=False)

    def forward(self, spatial: Tensor, context: Tensor) -> Tensor:
        feat = self.convblk(torch.cat([spatial, context], dim=1))  # (B, 256, H/8, W/8)
        atten = F.adaptive_avg_pool2d(feat, 1)  # (B, 256, 1, 1)
        atten = torch.sigmoid(self.conv2(F.relu(self.conv1(atten))))
        out: Tensor = feat * atten + feat
        return out


class BiSeNetOutput(nn.Module):
    """3x3 ConvBNReLU to `mid` channels, then a 1x1 conv to class logits."""

    def __init__(self, in_channels: int, mid_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_channels, mid_channels, 3, 1, 1)
        self.conv_out = nn.Conv2d(mid_channels, num_classes, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        logits: Tensor = self.conv_out(self.conv(x))
        return logits


def _to_input_size(logits: Tensor, size: tuple[int, int]) -> Tensor:
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=True)


class BiSeNet(nn.Module):
    """The face-parsing.PyTorch BiSeNet: (B, 3, H, W) in [-1, 1] -> class logits at (H, W).

    H and W must be multiples of 32. In training mode the two auxiliary heads (on feat16_up and
    feat32_up) are returned too, for deep supervision; eval mode skips computing them.
    """

    def __init__(self, config: ParserConfig) -> None:
        super().__init__()
        self.config = config
        self.normalize = InputNormalization(config.mean, config.std)
        self.cp = ContextPath()
        self.ffm = FeatureFusionModule(256, 256)
        self.conv_out = BiSeNetOutput(256, 256, config.num_classes)
        self.conv_out16 = BiSeNetOutput(128, 64, config.num_classes)
        self.conv_out32 = BiSeNetOutput(128, 64, config.num_classes)

    def forward(self, x: Tensor) -> ParserOutput:
        # x: (B, 3, H, W) in [-1, 1]
        size = check_input_size(x, SIZE_MULTIPLE, "BiSeNet")
        if self.training and x.shape[0] < 2:
            # The BatchNorms after global pooling (ARM attention, conv_avg) see one value per
            # channel per image; with one image their batch statistics are undefined.
            raise ValueError(
                "BiSeNet in training mode needs a batch of at least 2 images, got 1; "
                "use a larger batch, or call .eval() for inference"
            )
        # 1. Normalise as the network was trained (ImageNet statistics by default).
        x = self.normalize(x)
        # 2. Context path: feat8 (B, 128, H/8, W/8), feat16_up (B, 128, H/8, W/8),
        #    feat32_up (B, 128, H/16, W/16).
        feat8, feat16_up, feat32_up = self.cp(x)
        # 3. Fuse and predict: (B, 256, H/8, W/8) -> (B, num_classes, H, W).
        logits = _to_input_size(self.conv_out(self.ffm(feat8, feat16_up)), size)
        if not self.training:
            return ParserOutput(logits, ())
        # 4. Auxiliary heads, only needed by the training loss.
        aux16 = _to_input_size(self.conv_out16(feat16_up), size)
        aux32 = _to_input_size(self.conv_out32(feat32_up), size)
        return ParserOutput(logits, (aux16, aux32))
