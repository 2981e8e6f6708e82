"""Class-balanced sampling for expression datasets, on one process or under DDP.

AffectNet is dominated by happy and neutral faces (roughly half of all rows), so a GAN trained on
it uniformly rarely sees contempt or disgust; these weights make every class equally likely.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Protocol

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Sampler, Subset


class HasTargets(Protocol):
    """A dataset that can list every sample's class without reading images."""

    @property
    def targets(self) -> np.ndarray: ...


def dataset_targets(dataset: HasTargets | Subset) -> np.ndarray:
    """(N,) int64 class of every sample; follows torch Subsets down to the real dataset."""
    if isinstance(dataset, Subset):
        inner: HasTargets | Subset = dataset.dataset  # type: ignore[assignment]  # the stubs say only Dataset
        return dataset_targets(inner)[np.asarray(dataset.indices, dtype=np.int64)]
    return np.asarray(dataset.targets, dtype=np.int64)


def class_balanced_weights(dataset: HasTargets | Subset, min_count: int = 0) -> torch.Tensor:
    """(N,) float64 per-sample weights inversely proportional to the sample's class frequency.

    Every present class of at least `min_count` samples gets the same total weight; a class
    with fewer gets weight 0, so it is never drawn (balancing would show its few images hundreds
    of times as often as the others'). Weights average 1 over the drawn samples. Pass them to
    torch.utils.data.WeightedRandomSampler or DistributedWeightedSampler.
    """
    targets = dataset_targets(dataset)
    if targets.size == 0:
        raise ValueError("cannot balance an empty dataset")
    counts = np.bincount(targets)
    weights = 1.0 / counts[targets]
    weights[counts[targets] < min_count] = 0.0
    if not weights.any():
        raise ValueError(f"no expression has at least {min_count} samples to train on")
    return torch.from_numpy(weights * (np.count_nonzero(weights) / weights.sum()))


def _epoch_seed(seed: int, epoch: int) -> int:
    """A well-mixed 63-bit seed for (seed, epoch): nearby epochs give unrelated draws."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


class DistributedWeightedSampler(Sampler[int]):
    """Weighted sampling where each DDP rank takes a disjoint share of one seeded draw.

    Every rank draws the same `num_samples * num_replicas` indices from (seed, epoch) and keeps
    positions rank, rank + R, ... . Without replacement the ranks' indices are disjoint; with
    replacement the shares are disjoint slices of one draw (the same index may recur, as it
    may in a single-process WeightedRandomSampler). Call `set_epoch` before each epoch.
    """

    def __init__(
        self,
        weights: torch.Tensor | np.ndarray | Sized,
        num_samples: int | None = None,
        num_replicas: int | None = None,
        rank: int | None = None,
        replacement: bool = True,
        seed: int = 0,
    ) -> None:
        self.weights = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        if self.weights.ndim != 1 or self.weights.numel() == 0:
            raise ValueError(
                f"weights must be a non-empty 1-D sequence, got {tuple(self.weights.shape)}"
            )
        if not torch.isfinite(self.weights).all() or (self.weights < 0).any():
            raise ValueError("weights must be finite and >= 0")
        positive = int((self.weights > 0).sum())
        if positive == 0:
            raise ValueError("at least one weight must be positive")
        distributed = dist.is_available() and dist.is_initialized()
        self.num_replicas = num_replicas or (dist.get_world_size() if distributed else 1)
        self.rank = rank if rank is not None else (dist.get_rank() if distributed else 0)
        if not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"rank {self.rank} is outside 0..{self.num_replicas - 1}")
        size = self.weights.numel()
        if num_samples is None:
            num_samples = (
                -(-size // self.num_replicas) if replacement else positive // self.num_replicas
            )
        if num_samples <= 0:
            raise ValueError(
                f"num_samples per rank must be positive, got {num_samples} "
                f"({positive} positive weights over {self.num_replicas} ranks)"
            )
        if not replacement and num_samples * self.num_replicas > positive:
            raise ValueError(
                f"cannot draw {num_samples} x {self.num_replicas} ranks without replacement from "
                f"{positive} samples with positive weight"
            )
        self.num_samples = num_samples
        self.replacement = replacement
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(_epoch_seed(self.seed, self.epoch))
        total = self.num_samples * self.num_replicas
        draw = torch.multinomial(self.weights, total, self.replacement, generator=generator)
        return iter(draw[self.rank :: self.num_replicas].tolist())
