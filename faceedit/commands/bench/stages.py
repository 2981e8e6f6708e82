"""Section `stages`: each stage's latency per crop, batch and variant, with FLOPs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from faceedit.commands.bench.context import Context
from faceedit.commands.bench.fixtures import Models, conditions, crops_tensor
from faceedit.commands.bench.report import Row
from faceedit.faces.align import paste_back
from faceedit.model.unified import resize
from faceedit.timing import count_gflop, measure


def section_stages(ctx: Context) -> None:
    """Per-stage latency for each crop size, batch size and variant, with FLOPs and floors."""
    s, device = ctx.settings, ctx.device
    variants = ("optimized",) if s.quick else ("eager", "optimized")
    frame = ctx.scene.frame
    # Detection does not depend on the crop: once per batch size.
    for batch in s.batches:
        frames = [frame] * batch
        detect = (
            (lambda: ctx.scene.detector.detect(frame))
            if batch == 1
            else (lambda frames=frames: ctx.scene.detector.detect_batch(frames))
        )
        with torch.inference_mode():
            timing = measure(detect, device, ctx.reps(batch / 2), s.warmup)
            gflop = count_gflop(detect)
        ctx.report.add(
            Row("stages", "detect (MTCNN 640x480)", ctx.dev, timing, None, batch, "-", gflop)
        )
    for crop in s.crop_sizes:
        for batch in s.batches:
            reps = ctx.reps(batch * (crop / 128) ** 2 / 2)
            _frame_stages(ctx, crop, batch, reps)
            for variant in variants:
                _network_stages(ctx, ctx.models_by_crop[crop], variant, crop, batch, reps)


def _frame_stages(ctx: Context, crop: int, batch: int, reps: int) -> None:
    """Align and paste back, once per face of the batch (they run per face in the app)."""
    frame, scene = ctx.scene.frame, ctx.scene
    alignment = scene.alignment(crop)
    edited = alignment.crop[:, ::-1].copy()
    cases = {
        "align": lambda: [scene.alignment(crop) for _ in range(batch)],
        "paste back": lambda: [paste_back(frame, alignment, edited) for _ in range(batch)],
    }
    for name, fn in cases.items():
        timing = measure(fn, ctx.device, reps, ctx.settings.warmup)
        ctx.report.add(Row("stages", name, ctx.dev, timing, crop, batch, "-"))


def _network_stages(
    ctx: Context, models: Models, variant: str, crop: int, batch: int, reps: int
) -> None:
    model = models.variants[variant]
    gen = model.generator
    cfg = models.config
    device = ctx.device
    x = crops_tensor(ctx.scene, crop, batch, device)
    cond = conditions(batch, cfg.condition_dim, device)
    with torch.inference_mode():
        masks = model.region_masks(x).masks
        union = masks.sum(1, keepdim=True).clamp(0, 1)
        res = cfg.parser.resolution
        parser_input = resize(x, res)
        stages: dict[str, Callable[[], Any]] = {
            f"parse (crop -> {cfg.parser.kind}@{res} -> masks)": lambda: model.region_masks(x),
            f"parser network @{res}": lambda: model.parser(parser_input),
            "generator: global": lambda: gen.global_generator(x, cond),
        }
        for k, (name, local) in enumerate(gen.local_generators.items()):
            stages[f"generator: local {name}"] = _local_stage(local, x, masks, k, cond)
        fusion = gen.fusion
        if fusion is not None:  # the global-only baseline has none
            stages["fusion"] = lambda: fusion(x, union)
        stages["hierarchy (all generators + blend + fusion)"] = lambda: gen(x, masks, cond)
        for name, fn in stages.items():
            timing = measure(fn, device, reps, ctx.settings.warmup)
            ctx.report.add(
                Row("stages", name, ctx.dev, timing, crop, batch, variant, count_gflop(fn))
            )


def _local_stage(
    local: nn.Module, x: torch.Tensor, masks: torch.Tensor, k: int, cond: torch.Tensor
) -> Callable[[], Any]:
    """One local generator on region k, as the hierarchy calls it."""
    return lambda: local(x, masks[:, k : k + 1], cond)
