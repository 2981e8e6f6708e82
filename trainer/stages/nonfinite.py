"""A NaN or infinite loss stops the run, with or without a host read per phase.

Each phase's losses are summed by `NonFiniteGuard.total`. With `nonfinite_check: immediate`
(TrainConfig) the sum is read on the host before backward, so a bad step never reaches the
weights; on a GPU that read stalls the host in every phase. "deferred" only folds, on the
device, whether the sum is finite, the first step where it was not and that step's losses;
the loop reads them with `check` at logging steps and before writing a checkpoint or state
(so a file never holds weights a bad step touched), and the run ends on a logging step. The
bad step and those after it up to the check do update the weights and Adam's moments, but the
run stops there without saving them. Under torchrun every rank calls `check` at the same
steps, and one all-reduce makes them agree.
"""

from __future__ import annotations

from math import isfinite
from typing import Final, Literal

import torch
import torch.distributed as dist
from torch import Tensor

from faceedit.errors import TrainingError
from trainer.config import NonFiniteCheck
from trainer.stages.distributed import DistInfo

# The first bad step before any was seen: above every step a run can have.
NEVER: Final[int] = 2**62


def resolve_check(mode: NonFiniteCheck, device: torch.device) -> Literal["immediate", "deferred"]:
    """What `mode` means on `device`: "auto" is immediate on the CPU, where reading a loss costs
    nothing, and deferred on a GPU, where the read would make the host wait in every phase."""
    if mode != "auto":
        return mode
    return "deferred" if device.type == "cuda" else "immediate"


class NonFiniteGuard:
    """Sums each phase's losses and stops the run (TrainingError) when a sum is not finite."""

    def __init__(self, mode: NonFiniteCheck, info: DistInfo) -> None:
        self.deferred = resolve_check(mode, info.device) == "deferred"
        self.info = info
        # 1-based step of the first non-finite sum on this process, NEVER while there is none.
        self.first_bad = torch.full((), NEVER, dtype=torch.int64, device=info.device)
        # Per phase (its loss names): the losses of the step that set first_bad; 0 elsewhere.
        self.values_at_first: dict[tuple[str, ...], Tensor] = {}

    def total(self, named: dict[str, Tensor], step: int) -> Tensor:
        """The sum of a phase's losses at iteration `step` (0-based), the one to backpropagate."""
        values = torch.stack([value.float() for value in named.values()])
        total = values.sum()
        self._fold(tuple(named), values.detach(), total.detach(), step + 1)
        if not self.deferred:
            self.check()
        return total

    def _fold(self, names: tuple[str, ...], values: Tensor, total: Tensor, done: int) -> None:
        """Note a non-finite sum on the device, with no host read: a few small kernels."""
        first = self.first_bad
        newly = total.isfinite().logical_not_().logical_and_(first == NEVER)
        kept = self.values_at_first.get(names)
        kept = torch.zeros_like(values) if kept is None else kept
        self.values_at_first[names] = torch.where(newly, values, kept)
        first.masked_fill_(newly, done)

    def check(self) -> None:
        """TrainingError if a sum was non-finite on any process since the run (re)started.

        The one host read (and, under torchrun, the one all-reduce) of the check: every rank
        must call it at the same steps.
        """
        first = self.first_bad
        if self.info.distributed:
            first = first.clone()
            dist.all_reduce(first, op=dist.ReduceOp.MIN)
        step = int(first)
        if step != NEVER:
            raise TrainingError(self._message(step))

    def _message(self, step: int) -> str:
        """Which losses went bad at `step` (1-based) and their values, where this process saw it."""
        where, values = "a loss on another process", ""
        if int(self.first_bad) == step:
            where = "sum of the losses"  # unless one of them is non-finite (found below)
            for names, kept in self.values_at_first.items():
                numbers = kept.tolist()
                bad = [name for name, v in zip(names, numbers, strict=True) if not isfinite(v)]
                if bad:
                    where = f"loss {', '.join(bad)}"
                    pairs = ", ".join(f"{k}={v:.4g}" for k, v in zip(names, numbers, strict=True))
                    values = f" ({pairs})"
        unsaved = f" The weights after step {step} were not saved." if self.deferred else ""
        return (
            f"non-finite {where} at step {step}{values}; stopping.{unsaved} The last checkpoint "
            "is kept: lower the learning rate or check the data, then --resume"
        )
