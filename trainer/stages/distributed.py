"""torchrun support: process group set-up from the environment, DDP wrapping, rank-0 helpers.

`faceedit-train` runs the same code on one process and under `torchrun --nproc_per_node N`:
torchrun sets RANK, WORLD_SIZE and LOCAL_RANK, and `setup` joins the process group (NCCL on
GPUs, gloo on CPU). Only rank 0 logs and writes files.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from faceedit import device as devices
from faceedit.device import DeviceChoice
from faceedit.errors import ConfigError, TrainingError


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the run."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    compile: bool = False  # --compile: torch.compile the networks the step runs (speed.py)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs, writes checkpoints and TensorBoard events."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise TrainingError(f"environment variable {name}={value!r} is not an integer") from None


def resolve_device(choice: DeviceChoice | str, local_rank: int = 0) -> torch.device:
    """faceedit's resolver, where a bare "cuda" means this process's GPU, LOCAL_RANK."""
    try:
        return devices.resolve_device(choice, local_rank=local_rank)
    except ConfigError as error:
        raise TrainingError(str(error)) from None


def setup(device: DeviceChoice | str = "auto", compile: bool = False) -> DistInfo:
    """Read torchrun's environment and join its process group (a no-op for one process)."""
    rank = _env_int("RANK", 0)
    world_size = _env_int("WORLD_SIZE", 1)
    local_rank = _env_int("LOCAL_RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size:
        raise TrainingError(
            f"inconsistent torchrun environment: RANK={rank}, WORLD_SIZE={world_size}"
        )
    resolved = resolve_device(device, local_rank)
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if resolved.type == "cuda" else "gloo"
        dist.init_process_group(
            backend=backend,
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(minutes=30),
            device_id=resolved if resolved.type == "cuda" else None,
        )
    return DistInfo(rank, world_size, local_rank, resolved, compile)


def cleanup() -> None:
    """Leave the process group (safe to call when none was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def trainable(module: nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters())


def wrap(module: nn.Module, info: DistInfo, find_unused: bool = False) -> nn.Module:
    """DDP around a network that trains, in a multi-process run; the module itself otherwise.

    Each network (parser, generator, discriminator) is wrapped on its own, so the D and G
    phases each synchronise only the network they update. The generator and discriminators
    use every parameter in each backward, so find_unused_parameters stays off (it costs a
    graph traversal per step); the joint stage's parser needs it, because the GAN losses
    reach its main head but not BiSeNet's auxiliary heads. Frozen networks are never wrapped.
    """
    if not info.distributed or not trainable(module):
        return module
    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(
        module, device_ids=device_ids, find_unused_parameters=find_unused
    )


def unwrap(module: nn.Module) -> nn.Module:
    """The network inside a DDP wrapper (for saving, EMA, and forward passes that must not
    take part in DDP's gradient bookkeeping)."""
    module = getattr(module, "_orig_mod", module)  # a torch.compile wrapper
    inner = module.module if isinstance(module, DistributedDataParallel) else module
    return getattr(inner, "_orig_mod", inner)


def mean_over_ranks(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Average logged scalars over the ranks (every rank must call it with the same keys)."""
    if not info.distributed or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=info.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return {k: float(v) / info.world_size for k, v in zip(keys, tensor.tolist(), strict=True)}


def broadcast_buffers(modules: Iterable[nn.Module], info: DistInfo) -> None:
    """Give every rank rank 0's buffers (BatchNorm statistics).

    DDP broadcasts buffers at the start of each forward, so after a step each rank holds the
    statistics of its own last batch. Before a checkpoint they are made equal, so what rank 0
    saves is what every rank holds.
    """
    if not info.distributed:
        return
    for module in modules:
        for buffer in module.buffers():
            dist.broadcast(buffer.data, src=0)


def any_rank(flag: bool, info: DistInfo) -> bool:
    """True on every rank when `flag` is True on at least one (e.g. a non-finite loss)."""
    if not info.distributed:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)


@contextlib.contextmanager
def autocast(info: DistInfo) -> Iterator[None]:
    """bf16 autocast on CUDA (no loss scaling needed), full precision on CPU."""
    if info.device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            yield
    else:
        yield
