"""`faceedit bench` runs here: settings in, every section on every device, report out."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import torch

from faceedit.commands.bench.context import Context
from faceedit.commands.bench.fixtures import (
    DTYPES,
    RANDOM_WEIGHTS_NOTE,
    Variant,
    build_models,
    make_scene,
    random_checkpoint,
    reduced_precision,
)
from faceedit.commands.bench.report import Report, format_report, machine_description
from faceedit.commands.bench.sections import section_functions
from faceedit.commands.bench.settings import Settings
from faceedit.errors import ConfigError, FaceEditError
from faceedit.fileio import atomic_write_text
from faceedit.media.bundled import resolve_checkpoint
from faceedit.model.config import preset
from faceedit.timing import matmul_peak_gflops
from faceedit.weights import checkpoint as checkpoint_io


def run(args: argparse.Namespace) -> int:
    """The `faceedit bench` command: run, print the tables, write --json if asked."""
    settings = Settings.from_args(args)
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        report = run_benchmark(settings, progress=sys.stderr)
    finally:
        torch.set_num_threads(threads)
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(report.to_dict(), indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    print(format_report(report))
    return 0


def run_benchmark(settings: Settings, progress: Any = None) -> Report:
    """Run every requested section on every device; the report holds all results."""
    loaded, weights = _load(settings)
    report = Report(settings, weights, machine=machine_description(settings.devices))
    if loaded.metadata.get("random"):
        report.notes.append(RANDOM_WEIGHTS_NOTE)
    crops = (loaded.config.crop_size,) if settings.checkpoint else settings.crop_sizes
    # Plug-in sections are looked up once; a missing one runs as a note saying why it was skipped.
    functions = section_functions(settings.sections)
    for device in settings.devices:
        started = time.perf_counter()
        # The best of three: a busy moment during one of them must not lower every floor.
        rounds = 2 if settings.quick else 3
        peak = max(matmul_peak_gflops(device, settings.repeats) for _ in range(rounds))
        report.peaks[str(device)] = {"gflops": round(peak, 1)}
        report.set_headline("matmul_peak_gflops", round(peak, 1))
        for variant in reduced_precision(device):
            low = max(
                matmul_peak_gflops(device, settings.repeats, DTYPES[variant]) for _ in range(rounds)
            )
            report.peaks[str(device)][f"gflops_{variant}"] = round(low, 1)
            report.set_headline(f"matmul_peak_gflops_{variant}", round(low, 1))
        scene = make_scene(device)
        models_by_crop = {}
        for crop in crops:
            cfg_loaded = loaded if crop == loaded.config.crop_size else _with_crop(loaded, crop)
            variants: tuple[Variant, ...] = (
                ("optimized",) if settings.quick else ("eager", "optimized")
            )
            models_by_crop[crop] = build_models(cfg_loaded, device, variants)
        ctx = Context(settings, report, device, scene, models_by_crop)
        _log(progress, f"[{device}] peak, detector, models: {time.perf_counter() - started:.1f} s")
        for name in settings.sections:
            started = time.perf_counter()
            functions[name](ctx)
            _log(progress, f"[{device}] {name}: {time.perf_counter() - started:.1f} s")
        # The ceiling again at the end: a machine that got busier shows it here.
        end_peak = matmul_peak_gflops(device, settings.repeats)
        report.peaks[str(device)]["gflops_at_end"] = round(end_peak, 1)
    return report


def _load(settings: Settings) -> tuple[checkpoint_io.LoadedCheckpoint, str]:
    if settings.checkpoint is not None:
        # A bundled model by its word (`--checkpoint real`), as everywhere a checkpoint is taken.
        loaded = checkpoint_io.load(resolve_checkpoint(settings.checkpoint), device="cpu")
        if loaded.generator is None or loaded.parser is None:
            raise FaceEditError(
                f"{settings.checkpoint}: the benchmark needs a parser and a generator; this file "
                f"holds {', '.join(loaded.contents)}"
            )
        return loaded, f"checkpoint {settings.checkpoint}"
    return random_checkpoint(preset(settings.preset), settings.preset), RANDOM_WEIGHTS_NOTE


def _with_crop(loaded: checkpoint_io.LoadedCheckpoint, crop: int) -> checkpoint_io.LoadedCheckpoint:
    try:
        config = loaded.config.replace(crop_size=crop)
    except ConfigError as error:
        raise FaceEditError(f"crop size {crop} does not fit the preset: {error}") from None
    return random_checkpoint(config, f"{loaded.path.name} @{crop}")


def _log(stream: Any, message: str) -> None:
    if stream is not None:
        print(message, file=stream, flush=True)
