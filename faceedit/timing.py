"""Timing primitives: medians after warm-up, interleaved comparisons, FLOP counts, the matmul peak.

Used by `faceedit bench` (faceedit/commands/bench) and by the bench sections that live outside
faceedit (the trainer's `training` section), which must not import the command line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

MATMUL_SIZE: Final[int] = 2048


@dataclass(frozen=True)
class Timing:
    """Milliseconds: median, 95th percentile, and how many samples they summarise."""

    p50: float
    p95: float
    n: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Timing:
        values = np.asarray(samples, dtype=np.float64)
        return cls(float(np.median(values)), float(np.percentile(values, 95)), len(values))

    def to_dict(self) -> dict[str, float]:
        return {"p50": round(self.p50, 3), "p95": round(self.p95, 3), "n": self.n}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int) -> Timing:
    """Time `fn` `repeats` times after `warmup` untimed calls, waiting for the device each time."""
    return measure_interleaved({"fn": fn}, device, repeats, warmup)["fn"]


def measure_interleaved(
    fns: dict[str, Callable[[], Any]], device: torch.device, repeats: int, warmup: int
) -> dict[str, Timing]:
    """Time several callables in alternation (a, b, a, b, ...), so load changes hit all alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    synchronize(device)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            synchronize(device)
            samples[name].append((time.perf_counter() - started) * 1000)
    return {name: Timing.of(values) for name, values in samples.items()}


def count_gflop(fn: Callable[[], Any]) -> float:
    """GFLOPs of one call (convolutions and matrix products; elementwise work is not counted)."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops() / 1e9


def matmul_peak_gflops(
    device: torch.device, repeats: int, dtype: torch.dtype = torch.float32
) -> float:
    """GFLOP/s of a 2048x2048 matrix product in `dtype`: the device's practical ceiling.

    The product is written into a preallocated tensor, so page faults of a fresh 16 MB output
    are not charged to the arithmetic.
    """
    n = MATMUL_SIZE
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    timing = measure(lambda: torch.mm(a, b, out=out), device, max(repeats, 5), 2)
    return 2 * n**3 / (timing.p50 / 1000) / 1e9
