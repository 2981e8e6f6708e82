"""CUDA training speed features, each on by default where it helps (docs/training.md, "Speed").

channels_last memory format (tensor cores read NHWC convolutions without transposes), cuDNN's
autotuner (`cudnn.benchmark`, off under --deterministic), TF32 matrix products, fused and
capturable Adam (one kernel for every parameter's update) and, with --compile, torch.compile of
the networks the training step runs. On the CPU they stay off: channels_last and fused Adam are
supported there and tested (tests/trainer/stages/test_speed.py), but they do not make CPU
training faster.

--compile compiles the parser (parser stage) and the generator (gan and joint stages). The
discriminators stay eager: the gradient penalty differentiates through them twice (create_graph),
which compiled autograd graphs do not support.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import torch
from torch import nn

from trainer.stages.distributed import DistInfo


def configure_backends(info: DistInfo, deterministic: bool) -> None:
    """cuDNN autotuning and TF32 on CUDA (fixed input sizes: the tuned choice holds all run)."""
    if info.device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def uses_channels_last(info: DistInfo) -> bool:
    return info.device.type == "cuda"


def to_memory_format(module: nn.Module, channels_last: bool) -> nn.Module:
    """The module with its 4-D weights in channels_last (NHWC) layout when asked (in place)."""
    if channels_last:
        module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # the stubs omit memory_format
    return module


def images_to(images: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A (B, C, H, W) batch in the layout the networks use."""
    return images.contiguous(memory_format=torch.channels_last) if channels_last else images


def adam(
    params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float], device: torch.device
) -> torch.optim.Adam:
    """Adam, fused and capturable on CUDA: one kernel launch per step instead of several per
    parameter, and step() allowed inside a CUDA graph (which changes nothing in the fused
    kernel: its step counts live on the GPU either way). torch's default implementation on the
    CPU."""
    cuda = device.type == "cuda"
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=cuda or None, capturable=cuda)


def compile_module(module: nn.Module, enabled: bool, backend: str = "inductor") -> nn.Module:
    """torch.compile(module) when `enabled` (the first steps are slow while it compiles)."""
    if not enabled:
        return module
    return cast(nn.Module, torch.compile(module, backend=backend))  # an OptimizedModule
