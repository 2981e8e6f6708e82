"""`.pth` files other projects wrote, read without ever running pickled code.

face-parsing.PyTorch's `79999_iter.pth`, torchvision's `resnet18-*.pth` and pytorch-fid's
Inception weights are pickles. `torch.load(weights_only=True)` unpickles only tensors and plain
containers and refuses anything that would import or call code; every reader of such a file
goes through `load_torch_file`, so what is refused, and how the refusal reads, is the same
everywhere. faceedit never offers to open a refused file the unsafe way.

The one ResNet-18 loader lives here too: the BiSeNet backbone and the judge classifier both
use torchvision's key names, so one function puts `resnet18-*.pth` into either.
"""

from __future__ import annotations

import os
import pickle
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import torch
from torch import Tensor, nn

from faceedit.errors import CheckpointError
from faceedit.fileio import reason as reason_of
from faceedit.weights.state_match import compare_state, listed

# Containers that training scripts commonly wrap a state dict in.
NESTING_KEYS: Final[tuple[str, ...]] = ("state_dict", "model")
# Added by nn.DataParallel / DistributedDataParallel when the wrapper itself was saved.
WRAPPER_PREFIX: Final[str] = "module."
# torchvision's ResNet-18 classifier: ImageNet's 1000 classes, absent from the BiSeNet backbone.
CLASSIFIER_PREFIX: Final[str] = "fc."
# How torch's safe unpickler words a pickle that would import something, i.e. run code.
CODE_REFUSAL: Final[str] = "Unsupported global"
# What faceedit says instead: never torch's advice to load the file with weights_only=False.
CODE_REFUSAL_MESSAGE: Final[str] = (
    "this file contains code or objects faceedit will not load; only safetensors and plain "
    "tensor files are accepted (loading the objects could run code)"
)
RESNET18_FILE: Final[str] = "torchvision's ResNet-18 state dict (e.g. resnet18-f37072fd.pth)"


def load_torch_file(
    path: str | os.PathLike[str], expected: str, map_location: str | torch.device = "cpu"
) -> object:
    """The object stored in `path` (on the CPU by default), with pickled code refused, never run.

    Every failure is a CheckpointError naming the file and saying it should be `expected`.
    """
    file = Path(path)
    try:
        # os.stat, not Path.is_file: a folder we may not enter must read as "cannot be read",
        # not as "does not exist".
        mode = os.stat(file).st_mode
    except (FileNotFoundError, NotADirectoryError):
        reason = (
            "is a symbolic link to a file that does not exist"
            if file.is_symlink()
            else "does not exist"
        )
        raise CheckpointError(f"{file} {reason}; expected {expected}") from None
    except OSError as error:
        raise CheckpointError(
            f"{file} cannot be read ({reason_of(error)}); expected {expected}"
        ) from None
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"{file} is not a file; expected {expected}")
    try:
        with open(file, "rb") as handle:
            handle.read(1)
    except OSError as error:
        raise CheckpointError(
            f"{file} cannot be read ({reason_of(error)}); expected {expected}"
        ) from None
    try:
        return torch.load(file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        reason = _unpickler_reason(error)
        if reason.startswith(CODE_REFUSAL):
            raise CheckpointError(
                f"{file} was refused: {CODE_REFUSAL_MESSAGE}; expected {expected}"
            ) from None
        detail = reason
    except Exception as error:
        # torch reports damaged files as RuntimeError, EOFError, IndexError, ValueError, ...
        detail = _unpickler_reason(error)
    # Only reached through an except clause above: the file did not load.
    raise CheckpointError(
        f"{file} could not be read as a PyTorch weights file ({detail}): it may be "
        "truncated, damaged or another kind of file (a plain pickle is never opened, since "
        f"unpickling could run code); expected {expected}"
    )


def _unpickler_reason(error: Exception) -> str:
    """The one informative line of torch's message, never its advice to load the file unsafely."""
    text = str(error)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0].split(". ")[0] if lines else ""
    unsafe = ("weights_only", "trust", "unsafe", "safe_globals")
    return first if first and not any(w in first for w in unsafe) else type(error).__name__


def read_state_dict(path: str | os.PathLike[str], expected: str) -> dict[str, Tensor]:
    """A flat {name: float32-or-integer tensor} dict from `path`.

    Unwraps a dict nested under "state_dict"/"model" and a `module.` prefix; refuses anything
    that is not named tensors, and tensors holding NaN or infinity, naming the file.
    """
    file = Path(path)
    loaded = load_torch_file(file, expected)
    for key in NESTING_KEYS:
        if isinstance(loaded, Mapping) and isinstance(loaded.get(key), Mapping):
            loaded = loaded[key]
            break
    if not isinstance(loaded, Mapping) or not loaded:
        raise CheckpointError(
            f"{file} holds a {type(loaded).__name__}, not a state dict of named tensors; "
            f"expected {expected}"
        )
    not_tensors = [str(k) for k, v in loaded.items() if not isinstance(v, Tensor)]
    if not_tensors:
        raise CheckpointError(
            f"{file}: entries {listed(not_tensors)} are not tensors; expected {expected}"
        )
    state: dict[str, Tensor] = {}
    for key, value in loaded.items():
        name = str(key).removeprefix(WRAPPER_PREFIX)
        if value.is_floating_point():
            value = value.float()  # half or double copies of the weights load like the original
            # one float64 sum is non-finite exactly when some element is (it cannot overflow)
            if not torch.isfinite(value.sum(dtype=torch.float64)):
                raise CheckpointError(f"{file}: tensor {name} holds NaN or infinite values")
        state[name] = value
    return state


def fill_batch_counters(
    state: Mapping[str, Tensor], expected: Mapping[str, Tensor]
) -> dict[str, Tensor]:
    """Add the zero `num_batches_tracked` counters that files saved by PyTorch < 0.4.1 lack."""
    filled = dict(state)
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in filled:
            filled[key] = torch.zeros(value.shape, dtype=value.dtype)
    return filled


def refuse_misfit(
    file: Path,
    state: Mapping[str, Tensor],
    expected: Mapping[str, Tensor],
    network: str,
    optional: frozenset[str] = frozenset(),
) -> None:
    """A CheckpointError naming the keys of `state` that do not fit, with a guess at the file."""
    mismatch = compare_state(expected, state, optional=optional.__contains__)
    if mismatch:
        raise CheckpointError(
            f"{file} does not hold the weights of {network}: {mismatch.summary()}"
            f"{layout_hint(state, expected)}"
        )


def layout_hint(state: Mapping[str, Tensor], expected: Mapping[str, Tensor]) -> str:
    """Recognise the files people most often pass by mistake."""
    if any(k.startswith("parser.") for k in state):
        return ". It looks like a faceedit checkpoint already: use it directly"
    if "conv1.weight" in state and "conv1.weight" not in expected:
        return ". It looks like an ImageNet ResNet backbone, not a whole face parser"
    if "cp.resnet.conv1.weight" in state and "cp.resnet.conv1.weight" not in expected:
        return (
            ". It looks like a whole face-parsing BiSeNet: convert it with 'faceedit import-parser'"
        )
    return ""


def load_resnet18(module: nn.Module, path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Load torchvision's ImageNet ResNet-18 weights into `module`; returns the keys left out.

    `module` has torchvision's key names (conv1, bn1, layer1.0.conv1, ...): BiSeNet's backbone
    (no classifier) or the judge classifier (its own `fc`). The file's `fc.*` is left out when
    `module` has no `fc` or another class count; every other tensor must fit exactly, since a
    silently half-loaded backbone trains worse without saying why.
    """
    file = Path(path)
    state = read_state_dict(file, RESNET18_FILE)
    expected = module.state_dict()
    skipped = tuple(
        key
        for key, value in state.items()
        if key.startswith(CLASSIFIER_PREFIX)
        and (key not in expected or expected[key].shape != value.shape)
    )
    usable = fill_batch_counters({k: v for k, v in state.items() if k not in skipped}, expected)
    refuse_misfit(file, usable, expected, "a torchvision ResNet-18", optional=frozenset(skipped))
    module.load_state_dict(usable, strict=not (set(skipped) & set(expected)))
    return skipped
