"""Face parsers behind one contract: choose one by config, and fold BatchNorm for fast inference.

Every parser takes `ParserConfig`, keeps it as `.config`, maps (B, 3, H, W) in [-1, 1] to a
`ParserOutput` with 19-class logits at the input size, and refuses sizes it cannot divide.
"""

from __future__ import annotations

import copy
import itertools
from typing import Final

import torch
from torch import nn

from faceedit.model.bisenet import BiSeNet
from faceedit.model.config import ParserConfig
from faceedit.model.parser_blocks import InputNormalization, ParserOutput, check_input_size
from faceedit.model.unet import UNet

__all__ = [
    "PARSERS",
    "BiSeNet",
    "InputNormalization",
    "ParserOutput",
    "UNet",
    "build_parser",
    "check_input_size",
    "fold_batchnorm",
]

PARSERS: Final[dict[str, type[nn.Module]]] = {"bisenet": BiSeNet, "unet": UNet}


def build_parser(config: ParserConfig) -> nn.Module:
    """A freshly initialised parser of the kind `config.kind` names."""
    return PARSERS[config.kind](config)


# --- BatchNorm folding (inference speed) -------------------------------------------------------


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """An eval-only copy of `module` in which each BatchNorm2d is merged into the conv before it.

    In eval mode a BatchNorm is a per-channel affine map, so conv -> BN equals one conv with
    scaled weights and a bias: one pass over the activations instead of two. Pairs are the
    `CONV_BN_PAIRS` a block declares (ConvBNReLU, ResNet stem and blocks, ARM attention) and
    Conv2d -> BatchNorm2d neighbours in an nn.Sequential (ResNet downsample). The folded BNs
    become nn.Identity, so the copy no longer has BN statistics: it must not be trained, and
    its state dict differs from the original's. `module` itself is left untouched.
    """
    folded = copy.deepcopy(module).eval()
    for parent in list(folded.modules()):
        for conv_name, bn_name in _conv_bn_pairs(parent):
            conv, bn = parent._modules[conv_name], parent._modules[bn_name]
            if isinstance(conv, nn.Conv2d) and _foldable(conv, bn):
                parent._modules[conv_name] = _fold(conv, bn)  # type: ignore[arg-type]  # _foldable: a BatchNorm2d
                parent._modules[bn_name] = nn.Identity()
    return folded.requires_grad_(False)


def _conv_bn_pairs(parent: nn.Module) -> list[tuple[str, str]]:
    pairs = list(getattr(type(parent), "CONV_BN_PAIRS", ()))
    if isinstance(parent, nn.Sequential):
        names = list(parent._modules)
        pairs += [
            (first, second)
            for first, second in itertools.pairwise(names)
            if isinstance(parent._modules[first], nn.Conv2d)
            and isinstance(parent._modules[second], nn.BatchNorm2d)
        ]
    return pairs


def _foldable(conv: nn.Conv2d, bn: nn.Module | None) -> bool:
    return (
        isinstance(bn, nn.BatchNorm2d)
        and bn.running_mean is not None
        and bn.running_var is not None
        and bn.num_features == conv.out_channels
    )


@torch.no_grad()
def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    # Computed in float64 so the folded model matches the original to float32 rounding.
    assert bn.running_mean is not None and bn.running_var is not None
    dtype = conv.weight.dtype
    scale = torch.rsqrt(bn.running_var.double() + bn.eps)  # (C_out,)
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    bias = (bias - bn.running_mean.double()) * scale
    if bn.bias is not None:
        bias = bias + bn.bias.double()
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,  # type: ignore[arg-type]  # a Conv2d's: 2-tuples, typed tuple[int, ...]
        conv.stride,  # type: ignore[arg-type]  # as above
        conv.padding,  # type: ignore[arg-type]  # as above (or a padding mode string)
        conv.dilation,  # type: ignore[arg-type]  # as above
        conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
        device=conv.weight.device,
        dtype=dtype,
    )
    fused.weight.copy_((conv.weight.double() * scale.view(-1, 1, 1, 1)).to(dtype))
    assert fused.bias is not None  # built with bias=True
    fused.bias.copy_(bias.to(dtype))
    if (
        conv.weight.is_contiguous(memory_format=torch.channels_last)
        and not conv.weight.is_contiguous()
    ):
        # keep a channels_last model channels_last
        fused.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # torch's Module.to stub omits memory_format
    return fused
