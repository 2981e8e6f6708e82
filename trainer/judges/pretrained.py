"""Weights files other projects wrote (torchvision's ResNet-18, pytorch-fid's Inception), read
without unpickling code.

The classifier and FID judges both start from such a file; reading it lives here once, so what
counts as unreadable is the same for both (comparing it with the network: faceedit.weights.state_match).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Final

import torch

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
