"""Section `slider`: what one slider move costs, through the app's own pipeline."""

from __future__ import annotations

import statistics
import time

import torch

from faceedit.commands.bench.context import Context, cfg_crop, fast_variants
from faceedit.commands.bench.fixtures import conditions, crops_tensor, headline_suffix
from faceedit.commands.bench.report import Row, round_or_none
from faceedit.inference.engine import EditEngine
from faceedit.inference.pipeline import FramePipeline
from faceedit.inference.request import EditRequest
from faceedit.timing import count_gflop, measure


def section_slider(ctx: Context) -> None:
    """What one slider move costs: the pipeline on a still frame with detection and parse cached."""
    s, device = ctx.settings, ctx.device
    crop = cfg_crop(ctx)
    models = ctx.models_by_crop[crop]
    variants = ("eager",) if not s.quick else ()
    generator = models.loaded.generator
    assert generator is not None
    cfg = models.config
    x = crops_tensor(ctx.scene, crop, 1, device)
    masks = torch.full((1, cfg.num_regions, crop, crop), 1 / (cfg.num_regions + 1), device=device)
    with torch.inference_mode():
        gflop = count_gflop(
            lambda: generator.to(device)(x, masks, conditions(1, cfg.condition_dim, device))
        )
    for variant in (*variants, *fast_variants(ctx)):
        _slider_case(ctx, ctx.engine(crop, variant), crop, variant, gflop)
    app_variant = fast_variants(ctx)[-1]  # the app's precision, compiled when this run compiles
    ctx.report.set_app_default(
        "slider_to_frame_ms", "slider_to_frame_ms" + headline_suffix(app_variant)
    )


def _slider_case(ctx: Context, engine: EditEngine, crop: int, variant: str, gflop: float) -> None:
    frame, s = ctx.scene.frame, ctx.settings
    pipeline = FramePipeline(engine, ctx.scene.detector, detect_every=1)
    started = time.perf_counter()
    pipeline.process(frame, EditRequest(condition={"happy": 0.5}), frame_key="still")
    first_call = time.perf_counter() - started
    moves = 0
    parts: dict[str, list[float]] = {"generate": [], "paste": [], "align": [], "parse": []}

    def move() -> None:
        # A new slider position each time, as a drag delivers; the frame and crop stay.
        nonlocal moves
        moves += 1
        weight = 0.05 + (moves % 20) / 20
        request = EditRequest(condition={"happy": weight, "surprised": 1 - weight})
        result = pipeline.process(frame, request, frame_key="still")
        for key, values in parts.items():
            values.append(result.timings[key])

    timing = measure(move, ctx.device, max(s.repeats, 5), s.warmup + 1)
    breakdown = {k: round(statistics.median(v), 3) for k, v in parts.items() if v}
    note = " + ".join(f"{k} {v:.1f}" for k, v in breakdown.items()) + " ms"
    name = "slider to frame (pipeline, parse cached)"
    row = ctx.report.add(Row("slider", name, ctx.dev, timing, crop, 1, variant, gflop, note))
    compiled = engine.compile_status.seconds
    if compiled is not None:
        row.note += (
            f"; compiled in the background in {compiled:.1f} s, first call {first_call:.2f} s"
        )
    if variant != "eager":
        ctx.report.set_headline(
            "slider_to_frame_ms" + headline_suffix(variant),
            {
                **timing.to_dict(),
                "variant": variant,
                "device": ctx.dev,
                "crop": crop,
                "parts_ms": breakdown,
                "gflop": round(gflop, 3),
                "floor_ms": round_or_none(row.to_dict()["floor_ms"]),
            },
        )
