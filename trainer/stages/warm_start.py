"""Where a fresh generator starts: its editors keeping most of each pixel.

A GANimation editor returns A * input + (1 - A) * colour. Freshly initialised, its attention
head outputs about 0, so A is about 0.5 everywhere: the first edits repaint the whole crop with
random colour, and the critics, the cycle loss and the attention losses spend the start of the
run undoing that, everywhere, before any expression is learned. Setting the head's bias to
logit(p) starts every editor close to the identity (A = p) instead, so training only has to
open the attention where the expression needs it. The colour head and every weight are left
as initialised; a run that loads generator weights is not touched.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from faceedit.model.generator import ATTENTION_CHANNEL, HierarchicalGenerator


@torch.no_grad()
def start_attention(generator: HierarchicalGenerator, keep: float) -> int:
    """Set every editor's attention bias to logit(keep); returns how many editors were set.

    keep in (0, 1); 0 means "leave the initialisation alone" and sets nothing.
    """
    if keep == 0.0:
        return 0
    if not 0.0 < keep < 1.0:
        raise ValueError(f"keep must be in (0, 1), got {keep}")
    bias = math.log(keep / (1.0 - keep))
    editors = [generator.global_generator, *generator.local_generators.values()]
    for editor in editors:
        heads = editor.heads
        assert isinstance(heads, nn.Conv2d) and heads.bias is not None
        heads.bias[ATTENTION_CHANNEL] = bias
    return len(editors)
