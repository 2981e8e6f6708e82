"""Weights files other projects wrote (torchvision's ResNet-18, pytorch-fid's Inception): read
without unpickling code, and compared key by key with the network they are meant for.

The classifier and FID judges both start from such a file; reading it and finding where it does
not fit live here once, so what counts as unreadable or as a misfit is the same for both. Each
caller keeps its own messages: what a wrong file probably is differs between the two.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final

import torch
from torch import Tensor

from faceedit.errors import CheckpointError

# What torch.load raises for a refused pickle, a damaged zip, a truncated or a foreign file.
READ_ERRORS: Final[tuple[type[BaseException], ...]] = (
    pickle.UnpicklingError,
    RuntimeError,
    OSError,
    EOFError,
    ValueError,
)


def read_weights_file(file: Path, expected: str) -> object:
    """The object stored in `file`, loaded on the CPU with `weights_only=True` (pickled code is
    refused, never run); a CheckpointError saying the file should be `expected` otherwise."""
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except READ_ERRORS as error:
        raise CheckpointError(
            f"{file} could not be read as a PyTorch weights file ({error}); expected {expected}"
        ) from None


def compare_state(
    expected: Mapping[str, Tensor],
    state: Mapping[str, Tensor],
    optional: Callable[[str], bool] | None = None,
) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, misshapen) keys of `state` against a network's own `expected`
    state dict, each sorted; keys for which `optional` is true may be missing. Misshapen
    entries read 'key (shape in state) != (shape in the network)'."""
    missing = sorted(
        k for k in expected if k not in state and not (optional is not None and optional(k))
    )
    unexpected = sorted(set(state) - set(expected))
    misshapen = sorted(
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    )
    return missing, unexpected, misshapen
