"""The resumable training state (`state.pt`): everything `--resume` needs to continue exactly.

It holds the networks (including the EMA generator), optimiser states, the step, every RNG
state (python, numpy, torch, CUDA), the data position of each loader and the config, as plain
containers and tensors only, so it loads with `torch.load(weights_only=True)`: no object is
ever unpickled. It is written atomically: a kill mid-write leaves the previous file in place.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from faceedit.errors import CheckpointError, TrainingError
from faceedit.fileio import atomic_path, require_free_space
from faceedit.weights.torch_files import load_torch_file

STATE_FILE: Final[str] = "state.pt"
FORMAT: Final[str] = "faceedit-train-state"
FORMAT_VERSION: Final[int] = 1
# Test hook: seconds to sleep after writing the temporary file and before the atomic rename,
# so a test can kill the process mid-checkpoint. Unset in normal use.
SLOW_WRITE_ENV: Final[str] = "FACEEDIT_TEST_SLOW_CHECKPOINT_S"


# ---------------------------------------------------------------------------- RNG states


def rng_state() -> dict[str, Any]:
    """Every global RNG state as tensors and plain lists (weights_only-loadable)."""
    version, mt_state, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": list(mt_state), "gauss": gauss},
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what `rng_state` returned."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state((npy["name"], keys, npy["pos"], npy["has_gauss"], npy["cached"]))
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available():
        if len(cuda) != torch.cuda.device_count():
            # A different number of GPUs: seeds per device cannot be matched; keep going.
            return
        torch.cuda.set_rng_state_all(cuda)


# ---------------------------------------------------------------------------- file I/O


def tensor_bytes(value: Any) -> int:
    """The bytes of every tensor in a nested state: about what torch.save will write."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, Mapping):
        return sum(tensor_bytes(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(tensor_bytes(v) for v in value)
    return 0


def save_state(path: str | os.PathLike[str], state: Mapping[str, Any]) -> Path:
    """Write a training state atomically (temporary file, fsync, rename)."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    target = Path(path)
    # The previous state stays until the new one is whole; refuse early what cannot fit.
    require_free_space(target, tensor_bytes(payload), "training state")
    with atomic_path(target) as tmp:
        torch.save(payload, tmp)
        delay = float(os.environ.get(SLOW_WRITE_ENV, "0") or 0)
        if delay > 0:
            time.sleep(delay)
    return target


def load_state(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read a training state with weights_only=True; TrainingError for a missing or bad file."""
    file = Path(path)
    if not file.is_file():
        raise TrainingError(
            f"no training state at {file}: --resume needs a run folder in which a checkpoint "
            "was written (state.pt); start a new run without --resume"
        )
    try:
        state = load_torch_file(file, "a faceedit training state (state.pt)", map_location)
    except CheckpointError as error:
        raise TrainingError(
            f"{error}. Delete it to start over, or point --out at another run"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise TrainingError(f"{file} is not a faceedit training state")
    version = state.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise TrainingError(
            f"{file} has training-state format {version!r}; this faceedit reads up to "
            f"{FORMAT_VERSION}: upgrade faceedit to resume it"
        )
    validate_state(file, state)
    return state


# ---------------------------------------------------------------------------- validation

STAGE_NAMES: Final[tuple[str, ...]] = ("parser", "gan", "joint")
_KIND_NAMES: Final[dict[type, str]] = {
    int: "a whole number",
    str: "text",
    dict: "a mapping",
    list: "a list",
    torch.Tensor: "a tensor",
}
_RNG_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "python": ("version", "state", "gauss"),
    "numpy": ("name", "keys", "pos", "has_gauss", "cached"),
}


def _refuse(file: Path, problem: str) -> TrainingError:
    return TrainingError(
        f"{file}: {problem}; the training state is damaged or was written by other code. "
        "Delete it to start over, or point --out at another run"
    )


def _entry(file: Path, container: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    """container[key], refused with a message naming `where` if missing or of another type."""
    if key not in container:
        raise _refuse(file, f"it has no '{where}' entry")
    value = container[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        expected = _KIND_NAMES.get(kind, kind.__name__)
        raise _refuse(file, f"'{where}' is a {type(value).__name__}, expected {expected}")
    return value


def _count(file: Path, container: Mapping[str, Any], key: str, where: str) -> int:
    value: int = _entry(file, container, key, int, where)
    if value < 0:
        raise _refuse(file, f"'{where}' is {value}, it cannot be negative")
    return value


def validate_state(file: Path, state: Mapping[str, Any]) -> None:
    """Every key and type `--resume` uses, checked before any is used (shapes: loop.restore)."""
    stage_name = _entry(file, state, "stage_name", str, "stage_name")
    if stage_name not in STAGE_NAMES:
        raise _refuse(file, f"'stage_name' is {stage_name!r}, not one of {list(STAGE_NAMES)}")
    _count(file, state, "step", "step")
    _entry(file, state, "config", dict, "config")
    if _count(file, state, "world_size", "world_size") < 1:
        raise _refuse(file, "'world_size' is 0")
    rngs = _entry(file, state, "rng", list, "rng")
    if not rngs:
        raise _refuse(file, "it holds no RNG state, so the run cannot continue as it would have")
    for rank, rng in enumerate(rngs):
        where = f"rng[{rank}]"
        if not isinstance(rng, dict):
            raise _refuse(file, f"'{where}' is not a mapping")
        for name, keys in _RNG_KEYS.items():
            part = _entry(file, rng, name, dict, f"{where}.{name}")
            for key in keys:
                if key not in part:
                    raise _refuse(file, f"it has no '{where}.{name}.{key}' entry")
        generator = _entry(file, rng, "torch", torch.Tensor, f"{where}.torch")
        if generator.dtype != torch.uint8 or generator.dim() != 1:
            raise _refuse(file, f"'{where}.torch' is not a torch RNG state (a uint8 vector)")
        if not isinstance(rng["numpy"]["keys"], torch.Tensor):
            raise _refuse(file, f"'{where}.numpy.keys' is not a tensor")
    loaders = _entry(file, state, "loaders", dict, "loaders")
    for name, position in loaders.items():
        if not isinstance(position, dict):
            raise _refuse(file, f"'loaders.{name}' is not a mapping")
        for key in ("epoch", "index"):
            _count(file, position, key, f"loaders.{name}.{key}")
    stage = _entry(file, state, "stage", dict, "stage")
    modules = _entry(file, stage, "modules", dict, "stage.modules")
    if not modules:
        raise _refuse(file, "'stage.modules' holds no network")
    for name, tensors in modules.items():
        if not isinstance(tensors, dict) or not all(
            isinstance(t, torch.Tensor) for t in tensors.values()
        ):
            raise _refuse(file, f"'stage.modules.{name}' is not a mapping of tensors")
    _entry(file, stage, "optimizers", dict, "stage.optimizers")


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files a killed checkpoint write left behind (`.<name>.*.tmp`)."""
    removed: list[Path] = []
    base = Path(folder)
    if not base.is_dir():
        return removed
    for tmp in base.glob(".*.tmp"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed
