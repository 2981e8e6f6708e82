"""Section `baseline`: the hierarchy against a StarGAN-sized global generator alone."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Final

import torch
from torch import nn

from faceedit.commands.bench.context import Context, cfg_crop
from faceedit.commands.bench.fixtures import build_models, conditions, crops_tensor
from faceedit.commands.bench.report import Row
from faceedit.model.config import GeneratorConfig
from faceedit.model.generator import GlobalGenerator, HierarchicalGenerator
from faceedit.model.unified import UnifiedModel
from faceedit.timing import count_gflop, measure_interleaved

STARGAN: Final[GeneratorConfig] = GeneratorConfig(base_channels=64, num_res_blocks=6)


def section_baseline(ctx: Context) -> None:
    """Hierarchical generator against the global generator alone at StarGAN's size."""
    s, device = ctx.settings, ctx.device
    for crop in s.crop_sizes:
        models = ctx.models_by_crop[crop]
        cfg = models.config
        # built with the fast instance norm, as the hierarchy's generators are: one baseline
        # serves both variants (the eager/optimized difference is the parser's)
        baseline = GlobalGenerator(3, cfg.condition_dim, STARGAN).to(device).eval()
        for variant in ("optimized",) if s.quick else ("eager", "optimized"):
            model = models.variants.get(variant)
            if model is None:
                model = build_models(models.loaded, device, (variant,)).variants[variant]
                models.variants[variant] = model
            _baseline_case(ctx, model, baseline, crop, variant)


def _baseline_case(
    ctx: Context, model: UnifiedModel, base: nn.Module, crop: int, variant: str
) -> None:
    device = ctx.device
    x = crops_tensor(ctx.scene, crop, 1, device)
    cond = conditions(1, model.config.condition_dim, device)
    # The same generator with its local editors run as one grouped network (for GPUs), and on
    # their regions' windows (model.local_windows: the same weights, about half the arithmetic).
    grouped = copy.deepcopy(model.generator).set_local_execution("grouped")
    windowed = _windowed(model)
    windowed_grouped = copy.deepcopy(windowed).set_local_execution("grouped")
    own_global = model.generator.global_generator
    with torch.inference_mode():
        masks = model.region_masks(x).masks
        cases: dict[str, Callable[[], Any]] = {
            "baseline": lambda: base(x, cond),
            "global": lambda: own_global(x, cond),
            "hierarchy": lambda: model.generator(x, masks, cond),
            "hierarchy, grouped": lambda: grouped(x, masks, cond),
            "hierarchy, windows": lambda: windowed(x, masks, cond),
            "hierarchy, windows, grouped": lambda: windowed_grouped(x, masks, cond),
            "hierarchy + parse": lambda: model(x, cond),
        }
        timings = measure_interleaved(
            cases, device, ctx.reps((crop / 128) ** 2), ctx.settings.warmup
        )
        flops = {key: count_gflop(fn) for key, fn in cases.items()}
    names = {
        "baseline": "baseline: global generator alone, StarGAN size (64 ch, 6 blocks)",
        "global": "the model's own global generator alone",
        "hierarchy": "hierarchy: global + locals + fusion",
        "hierarchy, grouped": "hierarchy, the locals as one grouped network",
        "hierarchy, windows": "hierarchy, the locals on their regions' windows",
        "hierarchy, windows, grouped": "hierarchy, the locals on windows as one grouped network",
        "hierarchy + parse": "hierarchy + parse",
    }
    for key, timing in timings.items():
        ctx.report.add(Row("baseline", names[key], ctx.dev, timing, crop, 1, variant, flops[key]))
    ratio = timings["hierarchy"].p50 / timings["baseline"].p50
    with_parse = timings["hierarchy + parse"].p50 / timings["baseline"].p50
    grouped_ratio = timings["hierarchy, grouped"].p50 / timings["baseline"].p50
    own = timings["global"].p50
    ctx.report.headline.setdefault("baseline_comparisons", []).append(
        {
            "device": ctx.dev,
            "crop": crop,
            "variant": variant,
            "ratio": round(ratio, 3),
            "ratio_with_parse": round(with_parse, 3),
            "ratio_grouped": round(grouped_ratio, 3),
            "flop_ratio": round(flops["hierarchy"] / flops["baseline"], 3),
            # against the model's own global generator (issue 32's target: <= 1.5)
            "over_own_global": round(timings["hierarchy"].p50 / own, 3),
            "over_own_global_grouped": round(timings["hierarchy, grouped"].p50 / own, 3),
            "over_own_global_windows": round(timings["hierarchy, windows"].p50 / own, 3),
            "over_own_global_windows_grouped": round(
                timings["hierarchy, windows, grouped"].p50 / own, 3
            ),
            "flop_over_own_global": round(flops["hierarchy"] / flops["global"], 3),
            "flop_over_own_global_windows": round(flops["hierarchy, windows"] / flops["global"], 3),
        }
    )
    if crop == cfg_crop(ctx) and variant == "optimized":
        ctx.report.set_headline("hierarchy_vs_baseline", round(ratio, 3))
        ctx.report.set_app_default("hierarchy_vs_baseline", "hierarchy_vs_baseline")
        ctx.report.set_headline("hierarchy_with_parse_vs_baseline", round(with_parse, 3))


def _windowed(model: UnifiedModel) -> HierarchicalGenerator:
    """model's generator, the same weights, with its local editors on their regions' windows."""
    config = model.config.replace(local_windows=True)
    windowed = HierarchicalGenerator(config).to(next(model.generator.parameters()).device)
    windowed.load_state_dict(model.generator.state_dict())
    return windowed.eval()
