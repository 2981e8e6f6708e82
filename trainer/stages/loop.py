"""The training loop every stage shares: endless data, schedules, EMA, logging, checkpoints, resume.

A stage (trainer/stages/parser.py, gan.py) supplies its networks, optimisers and one
iteration (`Stage.train_step`); `train` counts iterations over endless loaders, logs, writes a
checkpoint every N steps and at the end, and resumes exactly from `state.pt`. Learning-rate
schedules are pure functions of the step, so the step alone restores them.
"""

from __future__ import annotations

import copy
import hashlib
import os
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from faceedit.errors import DatasetError, TrainingError
from faceedit.weights.state_match import compare_state
from trainer.config import TrainConfig
from trainer.stages.distributed import DistInfo, any_rank, broadcast_buffers, mean_over_ranks
from trainer.stages.nonfinite import NonFiniteGuard
from trainer.stages.preemption import Preempted, StopRequest
from trainer.stages.run_log import NullLogger
from trainer.stages.state import STATE_FILE, rng_state, save_state, set_rng_state

# Test hook: when set to a folder, every rank writes `rank<r>.sha256` there at the end of the
# run: a digest of its networks, so a test can check that DDP kept the ranks identical.
WEIGHTS_DIGEST_ENV: Final[str] = "FACEEDIT_TEST_WEIGHTS_DIGEST_DIR"
# Test hook: seconds to sleep after each step, so a test can SIGKILL a run mid-way.
STEP_DELAY_ENV: Final[str] = "FACEEDIT_TEST_STEP_DELAY_S"

ModuleT = TypeVar("ModuleT", bound=nn.Module)


# ---------------------------------------------------------------------------- seeding


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(enabled: bool, device: torch.device) -> None:
    """`--deterministic`: bitwise-repeatable kernels.

    On CPU every op the stages use has a deterministic kernel, so this is exact. On CUDA some
    backward passes (bilinear upsampling) have none: there it warns instead of failing, and
    repeatability is best effort.
    """
    if not enabled:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
    torch.backends.cudnn.benchmark = False


# ---------------------------------------------------------------------------- schedules


def poly_lr(
    step: int, total: int, peak: float, power: float, warmup: int, warmup_start: float
) -> float:
    """Linear warm-up from `warmup_start` to `peak`, then peak * (1 - progress) ** power.

    face-parsing.PyTorch's schedule. The warm-up is capped at a tenth of the run, so a short
    run (a test, a first try) is not spent entirely warming up.
    """
    warmup = min(warmup, total // 10)
    if step < warmup:
        return warmup_start + (peak - warmup_start) * step / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * max(0.0, 1.0 - progress) ** power


def linear_decay(step: int, total: int, peak: float, start_fraction: float) -> float:
    """Constant, then falling linearly towards 0 over the last part of the run (StarGAN)."""
    start = int(total * start_fraction)
    if step < start:
        return peak
    return peak * max(0.0, (total - step) / max(1, total - start))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


# ---------------------------------------------------------------------------- EMA


def make_ema(module: ModuleT) -> ModuleT:
    """A frozen copy of `module` that `update_ema` moves towards the trained weights."""
    return copy.deepcopy(module).eval().requires_grad_(False)


def ema_decay_at(updates: int, decay: float) -> float:
    """The EMA decay after `updates` updates: min(decay, (1 + n) / (10 + n)).

    Early on, the average follows the weights closely; a fixed 0.999 would leave a short run's
    EMA (what the app loads) almost at its random initialisation.
    """
    return min(decay, (1.0 + updates) / (10.0 + updates))


@torch.no_grad()
def update_ema(ema: nn.Module, module: nn.Module, decay: float) -> None:
    """ema = decay * ema + (1 - decay) * weights; buffers (norm statistics) are copied.

    Multi-tensor (foreach) ops: on a GPU a handful of kernel launches instead of one per tensor
    (a generator has over a hundred), the same arithmetic."""
    averaged: list[Tensor] = list(ema.parameters())
    current = [p.detach() for p in module.parameters()]
    if len(averaged) != len(current):
        raise ValueError(f"EMA copy has {len(averaged)} parameters, the network {len(current)}")
    if averaged:
        torch._foreach_lerp_(averaged, current, 1.0 - decay)
    buffers: list[Tensor] = list(ema.buffers())
    sources = list(module.buffers())
    if len(buffers) != len(sources):
        raise ValueError(f"EMA copy has {len(buffers)} buffers, the network {len(sources)}")
    if buffers:
        torch._foreach_copy_(buffers, sources)


# ---------------------------------------------------------------------------- endless data


class _EpochIndexed(Dataset):
    """What DataLoader workers index: (epoch, index) pairs, so a sample's augmentation follows
    its own epoch even in workers that live across epochs (persistent workers never see a
    `set_epoch` made in the main process). Datasets with `load_uint8` (prepared shards) deliver
    uint8 tensors, a quarter of float32's bytes through the workers' pipes."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.uint8 = callable(getattr(dataset, "load_uint8", None))

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]  # map-style datasets have len()

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        if self.uint8:
            return self.dataset.load_uint8(epoch, index)  # type: ignore[attr-defined]  # checked above
        set_epoch = getattr(self.dataset, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)
        return self.dataset[index]


class _EndlessBatches:
    """A batch sampler over every epoch from (epoch, index) on: one DataLoader iterator serves
    the whole run, so workers start once and prefetch across epoch boundaries."""

    def __init__(self, loader: EndlessLoader, epoch: int, index: int) -> None:
        self.loader, self.epoch, self.index = loader, epoch, index

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, first = self.epoch, self.index
        size, count = self.loader.batch_size, self.loader.batches_per_epoch
        while True:
            order = self.loader.epoch_order(epoch)
            for b in range(first, count):
                yield [(epoch, i) for i in order[b * size : (b + 1) * size]]
            epoch, first = epoch + 1, 0


def default_num_workers(local_processes: int = 1) -> int:
    """DataLoader workers per training process when the config says -1 ("auto"): the cores
    this process may use, shared by the processes on this machine, less one for the training
    process itself; at most 8 (more rarely helps and costs memory)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(8, cores // max(1, local_processes) - 1))


def finish_batch(batch: Any, device: torch.device) -> Any:
    """Move a batch to `device`; uint8 images (B, 3, S, S) become float32 in [-1, 1] and uint8
    label maps (B, S, S) int64 there (on a GPU the conversion costs nothing measurable)."""
    out = []
    for tensor in batch:
        tensor = tensor.to(device, non_blocking=True)
        if tensor.dtype == torch.uint8 and tensor.dim() == 4:
            tensor = tensor.float().div_(127.5).sub_(1.0)
        elif tensor.dtype == torch.uint8 and tensor.dim() == 3:
            tensor = tensor.long()
        out.append(tensor)
    return type(batch)(out) if isinstance(batch, tuple) else out


class EndlessLoader:
    """Batches forever, epoch after epoch, from a position (epoch, batch index) that is part of
    the training state: a resumed run continues with exactly the batches it would have seen.

    Each epoch's sample order is a function of (seed, epoch) alone: a seeded permutation, or a
    class-balanced draw when `weights` are given; under DDP each rank takes every world_size-th
    sample of it. Prepared shards (datasets with `shard_sizes`) are ordered shard by shard
    instead, so each rank reads its own few shards (`epoch_order`). Datasets draw augmentations
    from (seed, epoch, index), so the batches do not depend on worker count or on where the run
    was interrupted. Incomplete last batches are dropped, so every batch has `batch_size`
    samples. Batches arrive on `info.device` (uint8 images converted there, `finish_batch`).

    One DataLoader iterator serves the run (created again only on `load_state_dict`): workers
    are started once, keep `prefetch` batches each in flight across epoch boundaries, and pin
    memory on CUDA. `num_workers=-1` picks `default_num_workers`.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        *,
        seed: int,
        info: DistInfo,
        num_workers: int = 0,
        weights: Tensor | None = None,
        name: str = "data",
        prefetch: int = 4,
    ) -> None:
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.info = info
        local = _local_world_size(info)
        self.num_workers = default_num_workers(local) if num_workers < 0 else num_workers
        self.weights = weights
        self.name = name
        self.prefetch = prefetch
        self.epoch = 0
        self.index = 0  # batches handed out in the current epoch
        self._iterator: Iterator[Any] | None = None
        size = len(dataset)  # type: ignore[arg-type]  # map-style datasets have len()
        if self.batches_per_epoch == 0:
            raise DatasetError(
                f"{name}: {size} samples cannot fill one batch of {batch_size} per process on "
                f"{info.world_size} process(es); lower --batch-size or add images"
            )

    @property
    def batches_per_epoch(self) -> int:
        size = len(self.dataset)  # type: ignore[arg-type]  # as above
        per_rank = -(-size // self.info.world_size)
        return per_rank // self.batch_size

    def epoch_order(self, epoch: int) -> list[int]:
        """This rank's sample indices for `epoch`."""
        size = len(self.dataset)  # type: ignore[arg-type]  # as above
        world, rank = self.info.world_size, self.info.rank
        per_rank = -(-size // world)
        shard_sizes = getattr(self.dataset, "shard_sizes", None)
        if shard_sizes is not None:
            return self._shard_order(epoch, list(shard_sizes), per_rank)
        if self.weights is not None:
            from trainer.data.sampling import DistributedWeightedSampler

            sampler = DistributedWeightedSampler(
                self.weights, num_samples=per_rank, num_replicas=world, rank=rank, seed=self.seed
            )
            sampler.set_epoch(epoch)
            return list(sampler)
        generator = torch.Generator().manual_seed(_mix(self.seed, epoch))
        order = torch.randperm(size, generator=generator).tolist()
        order += order[: per_rank * world - size]  # pad so every rank gets as many
        return order[rank::world]

    def _shard_order(self, epoch: int, shard_sizes: list[int], per_rank: int) -> list[int]:
        """Shards in a seeded order, laid end to end and cut into world_size equal blocks: rank r
        reads block r (about 1/world of the shards, a different set each epoch), shuffled within
        itself, or drawn from it class-balanced with `weights`. Every rank computes the same
        cut, so the blocks are disjoint and cover every sample once per epoch."""
        world, rank = self.info.world_size, self.info.rank
        starts = np.concatenate([[0], np.cumsum(shard_sizes)]).astype(np.int64)
        generator = torch.Generator().manual_seed(_mix(self.seed, epoch))
        shards = torch.randperm(len(shard_sizes), generator=generator).tolist()
        laid = np.concatenate([np.arange(starts[k], starts[k + 1]) for k in shards])
        laid = np.concatenate([laid, laid[: per_rank * world - laid.size]])  # pad as above
        block = torch.from_numpy(laid[rank * per_rank : (rank + 1) * per_rank])
        mine = torch.Generator().manual_seed(_mix(self.seed, epoch, rank, 0x5AAD))
        if self.weights is not None:
            chosen = torch.multinomial(
                torch.as_tensor(self.weights, dtype=torch.float64)[block],
                per_rank,
                replacement=True,
                generator=mine,
            )
            return block[chosen].tolist()
        return block[torch.randperm(block.numel(), generator=mine)].tolist()

    def _start(self) -> None:
        workers = self.num_workers
        loader = DataLoader(
            _EpochIndexed(self.dataset),
            batch_sampler=_EndlessBatches(self, self.epoch, self.index),
            num_workers=workers,
            pin_memory=self.info.device.type == "cuda",
            # Its own generator: creating an iterator must not draw from the global RNG, or
            # a resumed run (which creates one mid-epoch) would drift from a straight one.
            generator=torch.Generator().manual_seed(_mix(self.seed, self.epoch, self.index)),
            persistent_workers=workers > 0,
            prefetch_factor=self.prefetch if workers > 0 else None,
        )
        self._iterator = iter(loader)

    def __iter__(self) -> EndlessLoader:
        return self

    def __next__(self) -> Any:
        if self._iterator is None:
            self._start()
        assert self._iterator is not None
        batch = next(self._iterator)
        self.index += 1
        if self.index >= self.batches_per_epoch:
            self.epoch, self.index = self.epoch + 1, 0
        return finish_batch(batch, self.info.device)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "index": self.index}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.epoch = int(state["epoch"])
        self.index = int(state["index"])
        self._iterator = None


def _local_world_size(info: DistInfo) -> int:
    """Training processes on this machine (torchrun's LOCAL_WORLD_SIZE; 1 without torchrun)."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return info.world_size


def _mix(*numbers: int) -> int:
    """A well-mixed 63-bit seed from a few integers."""
    state = np.random.SeedSequence([int(n) for n in numbers]).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


# ---------------------------------------------------------------------------- stages


class Stage(Protocol):
    """What `train` drives: one stage's networks, optimisers, data and iteration."""

    loaders: dict[str, EndlessLoader]
    guard: NonFiniteGuard  # sums the losses of every phase; checked by the loop too

    @property
    def name(self) -> str:
        """The stage's name ("parser", "gan" or "joint"), as saved in its state."""
        ...

    def train_step(self, step: int) -> dict[str, Tensor]:
        """Run iteration `step` (0-based): returns the losses it computed (for logging)."""
        ...

    def learning_rates(self) -> dict[str, float]: ...

    def images_per_step(self) -> int: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...

    def export(self, folder: Path, step: int) -> Path:
        """Write the inference checkpoint (.safetensors) and return its path (rank 0 only)."""
        ...

    def images(self) -> dict[str, Tensor]:
        """Tag -> (3, H, W) image grid in [0, 1] (rank 0 only, no collectives)."""
        ...

    def networks(self) -> dict[str, nn.Module]:
        """The networks whose weights define the run (for digests and tests)."""
        ...


@dataclass
class RunResult:
    step: int
    state_path: Path
    checkpoint_path: Path | None


def weights_digest(networks: Mapping[str, nn.Module]) -> str:
    """SHA-256 over every network's state dict, in name order: equal digests = equal weights."""
    digest = hashlib.sha256()
    for name in sorted(networks):
        for key, value in sorted(networks[name].state_dict().items()):
            tensor = value.detach().to("cpu").contiguous()
            digest.update(f"{name}.{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _gather_rng(info: DistInfo) -> list[dict[str, Any]]:
    state = rng_state()
    if not info.distributed:
        return [state]
    gathered: list[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, state)
    return gathered


def restore(stage: Stage, state: Mapping[str, Any], info: DistInfo, logger: NullLogger) -> int:
    """Load a training state into `stage` and the RNGs; returns the step to continue from.

    `state` passed trainer.stages.state.validate_state; here every network's tensors are
    compared with the stage's by name and shape before anything is loaded.
    """
    check_fits(stage, state)
    try:
        stage.load_state_dict(state["stage"])
        for name, loader in stage.loaders.items():
            loader.load_state_dict(state["loaders"][name])
    except (KeyError, ValueError, RuntimeError, TypeError, IndexError) as error:
        raise TrainingError(
            f"the training state does not fit this run ({type(error).__name__}: "
            f"{' '.join(str(error).split())[:300]}); start a new run in another --out"
        ) from None
    rngs = state.get("rng") or []
    if len(rngs) == info.world_size:
        set_rng_state(rngs[info.rank])
    else:
        # Another number of processes: continue, reproducibly, but not bit for bit.
        seed_everything(_mix(state["config"]["seed"], info.rank, state["step"]))
        logger.message(
            f"note: the run was saved with {len(rngs)} process(es) and resumes with "
            f"{info.world_size}; it continues, but not bitwise as it would have"
        )
    return int(state["step"])


def check_fits(stage: Stage, state: Mapping[str, Any]) -> None:
    """Refuse a state whose networks or loaders differ from the stage's, naming what differs."""
    modules = state["stage"]["modules"]
    for name, network in stage.networks().items():
        if name not in modules:
            raise TrainingError(
                f"the training state holds no weights for the {name} network "
                f"(it has {sorted(modules)}); start a new run in another --out"
            )
        mismatch = compare_state(network.state_dict(), modules[name])
        if mismatch:
            raise TrainingError(
                f"the training state's {name} weights do not fit this run's network "
                f"({mismatch.summary()}); start a new run in another --out"
            )
    saved_optimizers = state["stage"]["optimizers"]
    for name, current in stage.state_dict()["optimizers"].items():
        saved = saved_optimizers.get(name)
        groups = saved.get("param_groups") if isinstance(saved, Mapping) else None
        shape = [len(g.get("params", ())) for g in groups or () if isinstance(g, Mapping)]
        if shape != [len(g["params"]) for g in current["param_groups"]]:
            raise TrainingError(
                f"the training state's {name} optimiser does not fit this run's networks "
                f"(its parameter groups hold {shape or 'nothing'}); start a new run in another "
                "--out"
            )
    missing = sorted(set(stage.loaders) - set(state["loaders"]))
    if missing:
        raise TrainingError(
            f"the training state has no data position for {missing}; start a new run in "
            "another --out"
        )


def write_checkpoint(
    stage: Stage, config: TrainConfig, out: Path, step: int, info: DistInfo
) -> Path | None:
    """The inference checkpoint, then state.pt (so a state file always has its checkpoint).

    Never of weights a non-finite loss touched: the guard stops the run first."""
    # Collectives: every rank takes part.
    stage.guard.check()
    broadcast_buffers(stage.networks().values(), info)
    rngs = _gather_rng(info)
    exported = None
    if info.is_main:
        exported = stage.export(out, step)
        save_state(
            out / STATE_FILE,
            {
                "stage_name": stage.name,
                "step": step,
                "config": config.to_dict(),
                "world_size": info.world_size,
                "rng": rngs,
                "loaders": {name: loader.state_dict() for name, loader in stage.loaders.items()},
                # The schedules are functions of the step; their current values, for reference.
                "learning_rates": stage.learning_rates(),
                "stage": stage.state_dict(),
            },
        )
    if info.distributed:
        dist.barrier()
    return exported


def _stopping(stop: StopRequest, done: int, config: TrainConfig, info: DistInfo) -> bool:
    """Whether to stop after step `done`: at once alone, at logging steps under torchrun
    (where every rank must stop at the same step)."""
    if not info.distributed:
        return stop.requested
    if done % config.log_every != 0:
        return False
    return any_rank(stop.requested, info)


def train(
    stage: Stage,
    config: TrainConfig,
    out: Path,
    info: DistInfo,
    logger: NullLogger,
    resume: Mapping[str, Any] | None = None,
    stop: StopRequest | None = None,
) -> RunResult:
    """Run `stage` from its start (or from `resume`) to `config.steps`, checkpointing as it goes.

    When `stop` is requested (SIGTERM, trainer/stages/preemption.py) the run saves its state
    after the step it is in and raises Preempted. Under torchrun the ranks agree on it at the
    logging steps only, so a step never waits on the host for it. A non-finite loss stops the
    run (TrainingError) in its phase or, deferred, at the next logging step or checkpoint.
    """
    start = restore(stage, resume, info, logger) if resume is not None else 0
    if start >= config.steps:
        logger.message(
            f"the run in {out} is already at step {start} of {config.steps}; nothing to do"
        )
    delay = float(os.environ.get(STEP_DELAY_ENV, "0") or 0)
    sums: dict[str, Tensor] = {}
    counts: dict[str, int] = {}
    window_start, window_steps = time.perf_counter(), 0
    exported: Path | None = None
    for step in range(start, config.steps):
        # ---- one iteration
        losses = stage.train_step(step)
        for key, value in losses.items():
            sums[key] = sums.get(key, 0) + value.detach().float()
            counts[key] = counts.get(key, 0) + 1
        done = step + 1
        window_steps += 1

        # ---- logging (every rank joins the averaging; only rank 0 writes)
        if done % config.log_every == 0 or done == config.steps:
            stage.guard.check()  # a deferred non-finite check is due (the run's end included)
            values = {k: float(v) / counts[k] for k, v in sums.items()}
            values = mean_over_ranks(values, info)
            elapsed = max(time.perf_counter() - window_start, 1e-9)
            rate = window_steps / elapsed
            values.update({f"lr/{k}": v for k, v in stage.learning_rates().items()})
            values["speed/steps_per_s"] = rate
            values["speed/images_per_s"] = rate * stage.images_per_step()
            logger.scalars(values, done)
            logger.progress(done, {k: v for k, v in values.items() if k in sums})
            sums, counts = {}, {}
            window_start, window_steps = time.perf_counter(), 0
        else:
            logger.tick(done)
        if info.is_main and (done % config.image_every == 0 or done == config.steps):
            for tag, image in stage.images().items():
                logger.image(tag, image, done)

        # ---- checkpoint
        checkpoint_due = done % config.checkpoint_every == 0 or done == config.steps
        if checkpoint_due:
            exported = write_checkpoint(stage, config, out, done, info)
        if delay > 0:
            time.sleep(delay)
        if done < config.steps and stop is not None and _stopping(stop, done, config, info):
            if not checkpoint_due:
                write_checkpoint(stage, config, out, done, info)
            raise Preempted(
                f"stopped by {stop.signal_name or 'another process'} at step {done} of "
                f"{config.steps}; the state is saved in {out}: run the same command with "
                "--resume auto (or --resume) to continue"
            )

    digest_dir = os.environ.get(WEIGHTS_DIGEST_ENV)
    if digest_dir:
        Path(digest_dir).mkdir(parents=True, exist_ok=True)
        networks = stage.networks()
        lines = [f"all {weights_digest(networks)}"]
        lines += [f"{name} {weights_digest({name: net})}" for name, net in sorted(networks.items())]
        (Path(digest_dir) / f"rank{info.rank}.sha256").write_text("\n".join(lines) + "\n")
    return RunResult(max(start, config.steps), out / STATE_FILE, exported)
