"""Section `parse`: the parser network alone, eager against optimised and reduced precision."""

from __future__ import annotations

import functools

import torch

from faceedit.commands.bench.context import Context
from faceedit.commands.bench.fixtures import DTYPES, crops_tensor, reduced_precision
from faceedit.commands.bench.report import Row, round_or_none
from faceedit.inference import optimize
from faceedit.timing import count_gflop, measure_interleaved


def section_parse(ctx: Context) -> None:
    """The parser network alone at 256 (and 128, 512 in a full run): eager against optimised."""
    s, device = ctx.settings, ctx.device
    models = next(iter(ctx.models_by_crop.values()))
    eager = models.loaded.parser
    if eager is None:
        ctx.report.notes.append("parse: the model has no parser; skipped")
        return
    eager = eager.to(device).eval()
    parsers = {"eager": eager, "optimized": optimize.optimize_parser(eager, device)}
    for variant in reduced_precision(device):
        parsers[variant] = optimize.ReducedPrecision(parsers["optimized"], DTYPES[variant])
    notes = {"eager": "", "optimized": "BatchNorm folded, channels_last"}
    kind = models.config.parser.kind
    sizes = (256,) if s.quick else (128, 256, 512)
    for size in sizes:
        x = crops_tensor(ctx.scene, size, 1, device)
        with torch.inference_mode():
            timings = measure_interleaved(
                {name: functools.partial(p, x) for name, p in parsers.items()},
                device,
                ctx.reps((size / 256) ** 2),
                s.warmup,
            )
            gflop = count_gflop(functools.partial(eager, x))
        for variant, timing in timings.items():
            note = notes.get(variant, "optimized, then run in " + variant)
            ctx.report.add(
                Row(
                    "parse",
                    f"{kind} network @{size}",
                    ctx.dev,
                    timing,
                    size,
                    1,
                    variant,
                    gflop,
                    note,
                )
            )
        if size == 256:
            peaks = ctx.report.peaks.get(ctx.dev, {})
            for variant in ("optimized", *reduced_precision(device)):
                suffix = "" if variant == "optimized" else f"_{variant}"
                peak = peaks.get(f"gflops_{variant}", peaks.get("gflops"))
                ctx.report.set_headline(
                    "parse_256_ms" + suffix,
                    {
                        **timings[variant].to_dict(),
                        "variant": variant,
                        "parser": kind,
                        "device": ctx.dev,
                        "gflop": round(gflop, 3),
                        "floor_ms": round_or_none(gflop / peak * 1000) if peak else None,
                    },
                )
            ctx.report.set_headline("parse_256_eager_ms", timings["eager"].to_dict())
            app_suffix = "".join(f"_{v}" for v in reduced_precision(device))
            ctx.report.set_app_default("parse_256_ms", "parse_256_ms" + app_suffix)
