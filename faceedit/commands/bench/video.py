"""Section `pipeline`: end-to-end fps on a 640x480 video, with and without tracking."""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceedit.commands.bench.context import Context, cfg_crop, fast_variants
from faceedit.commands.bench.fixtures import Variant, headline_suffix, make_video, variant_engine
from faceedit.commands.bench.report import Row
from faceedit.errors import InputError
from faceedit.faces.detect import FaceDetector
from faceedit.inference import optimize
from faceedit.inference.engine import EditEngine
from faceedit.inference.pipeline import FramePipeline
from faceedit.inference.request import EditRequest, ReparsePolicy
from faceedit.media.sources import open_source
from faceedit.timing import Timing, synchronize


def section_pipeline(ctx: Context) -> None:
    """End-to-end fps on a 640x480 video: detection on every frame, and every N with tracking."""
    s = ctx.settings
    crop = cfg_crop(ctx)
    variants = fast_variants(ctx) + (() if s.quick else ("eager",))
    with contextlib.ExitStack() as stack:
        video = s.video
        if video is None:
            folder = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="faceedit-bench-"))
            )
            video = make_video(folder / "moving_face.avi", s.frames)
        default = ctx.scene.detector
        # Every variant with tracking (the target) and, in the full run, detecting every frame;
        # --quick detects every frame with the fastest variant only, to stay within a minute.
        best = fast_variants(ctx)[-1]
        intervals = (s.detect_every,) if s.quick else (1, s.detect_every)
        cases = [VideoCase(v, every, default) for v in variants for every in intervals]
        if s.quick:
            cases.insert(0, VideoCase(best, 1, default))
        # The fastest setup again with the video-only options, one by one: a detector that
        # skips faces under 60 px; then parses only on detection frames (the app's default for
        # videos and cameras); then (full run) the parser at half its working resolution.
        big_faces = FaceDetector(device=default.device, min_face_size=60)
        if not s.quick:
            cases.append(VideoCase(best, s.detect_every, big_faces))
        cases.append(
            VideoCase(best, s.detect_every, big_faces, reparse="on_detection", app_default=True)
        )
        low = ctx.models_by_crop[crop].config.parser.resolution // 2
        if not s.quick and low >= 32 and low % 32 == 0:
            cases.append(VideoCase(best, s.detect_every, big_faces, low))
        for case in cases:
            _video_case(ctx, case, crop, video)


@dataclass(frozen=True)
class VideoCase:
    """One end-to-end run: model variant, detection interval, detector, parser resolution."""

    variant: Variant
    every: int
    detector: FaceDetector
    parser_resolution: int | None = None
    reparse: ReparsePolicy = "every_frame"
    app_default: bool = False  # what the app does on video with its default settings


def _video_case(ctx: Context, case: VideoCase, crop: int, video: Path) -> None:
    name = f"640x480 video, detect every {case.every}"
    key = "pipeline_fps_tracking" if case.every > 1 else "pipeline_fps_every_frame"
    key += headline_suffix(case.variant)
    if case.detector is not ctx.scene.detector:
        key += f"_minface{case.detector.min_face_size}"
        name += f", MTCNN min face {case.detector.min_face_size}"
    if case.reparse == "on_detection":
        key += "_reparse_on_detection"
        name += ", parse on detection frames"
    if case.parser_resolution is None:
        engine = ctx.engine(crop, case.variant)
    else:
        lower = optimize.with_parser_resolution(
            ctx.models_by_crop[crop].loaded, case.parser_resolution
        )
        engine = variant_engine(lower, ctx.device, case.variant)
        key += f"_parser{case.parser_resolution}"
        name += f", parser @{case.parser_resolution} (coarser masks)"
    result = _run_video(ctx, engine, case, video)
    result.update(
        {
            "variant": case.variant,
            "device": ctx.dev,
            "crop": crop,
            "parser_resolution": engine.config.parser.resolution if engine.config else None,
            "app_default": case.app_default,
        }
    )
    ctx.report.pipeline.append(result)
    if case.variant != "eager":
        ctx.report.set_headline(key, result["fps"])
    if case.app_default:
        ctx.report.set_app_default("pipeline_fps_tracking", key)
    timing = Timing(result["ms_per_frame_p50"], result["ms_per_frame_p95"], result["frames"])
    note = f"{result['fps']:.2f} fps end to end (decode included)"
    ctx.report.add(Row("pipeline", name, ctx.dev, timing, crop, 1, case.variant, note=note))


def _run_video(ctx: Context, engine: EditEngine, case: VideoCase, video: Path) -> dict[str, Any]:
    detector, every, max_frames = case.detector, case.every, ctx.settings.frames
    pipeline = FramePipeline(engine, detector, detect_every=every, reparse=case.reparse)
    request = EditRequest(condition={"happy": 0.8, "surprised": 0.2})
    with open_source(video) as source:  # warm-up on the first frames, then start over
        for _, frame in zip(range(2), source, strict=False):
            pipeline.process(frame, request)
    pipeline.reset()
    per_frame: list[float] = []
    stage_sums: dict[str, float] = {}
    faces = 0
    started = time.perf_counter()
    with open_source(video) as source:
        last = time.perf_counter()
        for _, frame in zip(range(max_frames), source, strict=False):
            result = pipeline.process(frame, request)
            synchronize(ctx.device)
            now = time.perf_counter()
            per_frame.append((now - last) * 1000)
            last = now
            faces += bool(result.processed)
            for key, value in result.timings.items():
                stage_sums[key] = stage_sums.get(key, 0.0) + value
    elapsed = time.perf_counter() - started
    n = len(per_frame)
    if n == 0:
        raise InputError(f"{video}: no frame could be read for the end-to-end benchmark")
    timing = Timing.of(per_frame)
    return {
        "video": str(video)
        if ctx.settings.video
        else "generated: the sample face moving over 640x480",
        "detect_every": every,
        "min_face_size": detector.min_face_size,
        "reparse": case.reparse,
        "frames": n,
        "frames_with_face": faces,
        "fps": round(n / elapsed, 3),
        "ms_per_frame_p50": round(timing.p50, 3),
        "ms_per_frame_p95": round(timing.p95, 3),
        "mean_stage_ms": {k: round(v / n, 3) for k, v in stage_sums.items()},
    }
