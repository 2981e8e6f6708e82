"""Context: what every section, built-in or plug-in, receives for one device."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from faceedit.commands.bench.fixtures import (
    Models,
    Scene,
    Variant,
    reduced_precision,
    variant_engine,
)
from faceedit.commands.bench.report import Report
from faceedit.commands.bench.settings import Settings
from faceedit.inference.engine import EditEngine
from faceedit.model.config import preset


@dataclass
class Context:
    """What every section needs on one device: settings, the report, a face, the models."""

    settings: Settings
    report: Report
    device: torch.device
    scene: Scene
    models_by_crop: dict[int, Models]
    engines: dict[tuple[int, str], EditEngine] = field(default_factory=dict)

    def engine(self, crop: int, variant: Variant) -> EditEngine:
        """The app's engine for the crop's checkpoint as `variant` runs it, built once
        (compiling is slow)."""
        key = (crop, variant)
        if key not in self.engines:
            loaded = self.models_by_crop[crop].loaded
            self.engines[key] = variant_engine(loaded, self.device, variant)
        return self.engines[key]

    @property
    def dev(self) -> str:
        return str(self.device)

    def reps(self, work_scale: float = 1.0) -> int:
        """Fewer repeats for expensive cases (batch 8 at 256), never fewer than 3."""
        return max(3, round(self.settings.repeats / max(work_scale, 1.0)))


def fast_variants(ctx: Context) -> tuple[Variant, ...]:
    """The optimised variants worth measuring end to end on this device and in this run."""
    reduced = reduced_precision(ctx.device)
    compiled = (f"{(reduced or ('optimized',))[0]}+compile",) if ctx.settings.compile else ()
    return ("optimized", *reduced, *compiled)


def cfg_crop(ctx: Context) -> int:
    """The crop size the app runs: the model's own, or the first measured one."""
    own = ctx.settings.checkpoint is None and preset(ctx.settings.preset).crop_size
    return own if own in ctx.models_by_crop else next(iter(ctx.models_by_crop))
