"""Which device to run on: the one `DeviceChoice` and the one resolver every part uses.

torch is imported inside `resolve_device` only, so the UI can offer the choices (`DEVICES`)
without loading torch on its thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Literal, get_args

from faceedit.errors import ConfigError

if TYPE_CHECKING:
    import torch

DeviceChoice = Literal["auto", "cpu", "cuda"]
DEVICES: Final[tuple[DeviceChoice, ...]] = get_args(DeviceChoice)


def cuda_available() -> bool:
    """Whether a usable CUDA GPU is there (imports torch: call it where torch is loaded)."""
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(
    device: DeviceChoice | str | torch.device = "auto", local_rank: int = 0
) -> torch.device:
    """'auto' is CUDA when a GPU is usable, else CPU; asking for an absent GPU is a ConfigError.

    A bare "cuda" means GPU `local_rank` (0 outside multi-GPU training, where each process of
    the run takes its own); "cuda:N" names one explicitly. A torch.device is returned as is.
    """
    import torch

    if isinstance(device, torch.device):
        return device
    choice = str(device)
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda" or choice.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {choice!r} was asked for but no usable GPU was found; use --device cpu"
            )
        index = local_rank if choice == "cuda" else _gpu_index(choice)
        count = torch.cuda.device_count()
        if index >= count:
            raise ConfigError(
                f"device {choice!r} means GPU {index}, but this machine has {count}; with "
                "torchrun, start at most that many processes per node (--nproc_per_node)"
            )
        return torch.device("cuda", index)
    raise ConfigError(f"unknown device {choice!r}; use auto, cpu or cuda")


def _gpu_index(choice: str) -> int:
    text = choice.removeprefix("cuda:")
    if not text.isdigit():
        raise ConfigError(f"unknown device {choice!r}; use auto, cpu, cuda or cuda:N")
    return int(text)
