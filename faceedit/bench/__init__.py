"""`faceedit bench`: every stage's latency against its floor, the hierarchy's cost, end-to-end fps.

Numbers are medians and 95th percentiles in milliseconds after warm-up. Each stage's FLOPs
(torch.utils.flop_counter) divided by its time gives the GFLOP/s it achieves; dividing that by a
2048x2048 matmul in the same precision, measured in the same run, gives how far the stage is
from the machine's floor. Comparisons that matter (baseline against hierarchy, each
optimisation against no optimisation) are timed interleaved, so a machine whose load changes
during the run skews both sides alike. docs/performance.md records a run and what it means.

Without --checkpoint the networks are randomly initialised networks of the preset: the
benchmark measures speed, not quality, and says so. The app never runs random weights.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import cv2
import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from faceedit import checkpoint as checkpoint_io
from faceedit import optimize
from faceedit.engine import EditEngine, resolve_device
from faceedit.errors import ConfigError, FaceEditError, InputError
from faceedit.expressions import EXPRESSIONS
from faceedit.face import Alignment, Face, FaceDetector, align, paste_back
from faceedit.fileio import atomic_write_text
from faceedit.model.config import GeneratorConfig, ModelConfig, preset
from faceedit.model.generator import GlobalGenerator, HierarchicalGenerator
from faceedit.model.unified import UnifiedModel, resize
from faceedit.pipeline import EditRequest, FramePipeline
from faceedit.resources import sample_image_path
from faceedit.sources import VideoWriter, open_source, read_image

# eager: the checkpoint as loaded. optimized: optimize.optimize_checkpoint (exact, float32).
# bfloat16 / float16: optimized and run in reduced precision (outputs stay float32).
# A "+compile" suffix (e.g. "bfloat16+compile") adds torch.compile with freezing.
Variant = str
SECTIONS: Final[tuple[str, ...]] = (
    "stages",
    "parse",
    "baseline",
    "slider",
    "optimizations",
    "pipeline",
    "training",
)
FRAME_SIZE: Final[tuple[int, int]] = (640, 480)  # (width, height) of the end-to-end video
STARGAN: Final[GeneratorConfig] = GeneratorConfig(base_channels=64, num_res_blocks=6)
LIGHT_LOCALS: Final[GeneratorConfig] = GeneratorConfig(base_channels=8, num_res_blocks=2)
MATMUL_SIZE: Final[int] = 2048
MOTION_PERIOD: Final[int] = 90  # frames of the generated video's back-and-forth motion
DTYPES: Final[dict[str, torch.dtype]] = {"bfloat16": torch.bfloat16, "float16": torch.float16}
RANDOM_WEIGHTS_NOTE: Final[str] = (
    "random weights of the preset: this measures speed only, outputs are meaningless"
)
# Targets for the paper-128 preset on a 2-core laptop CPU (docs/performance.md).
TARGETS: Final[dict[str, tuple[str, float]]] = {
    "slider_to_frame_ms": ("<=", 100.0),
    "parse_256_ms": ("<=", 30.0),
    "hierarchy_vs_baseline": ("<=", 1.5),
    "pipeline_fps_tracking": (">=", 8.0),
}


# ---------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Measure every stage (detect, align, parse, each generator, fusion, paste back), the "
        "hierarchy against a StarGAN-sized baseline, each inference optimisation, end-to-end "
        "video fps and training throughput. Prints tables; --json saves everything."
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto: the CPU, and CUDA too when present",
    )
    parser.add_argument("--preset", default="paper-128", help="model preset (paper-128, tiny)")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="measure this model instead of random weights of the preset",
    )
    parser.add_argument("--repeats", type=_positive, default=None, help="timed runs per case")
    parser.add_argument("--warmup", type=_non_negative, default=None, help="untimed runs first")
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats and configurations (about a minute)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    parser.add_argument(
        "--video", type=Path, default=None, help="640x480 video for the end-to-end fps"
    )
    parser.add_argument(
        "--frames", type=_positive, default=None, help="frames of the end-to-end video"
    )
    parser.add_argument(
        "--detect-every", type=_positive, default=5, help="detection interval with tracking"
    )
    parser.add_argument(
        "--crop-sizes", type=_int_list, default=None, help="e.g. 128,256 (default 128,256)"
    )
    parser.add_argument("--batches", type=_int_list, default=None, help="e.g. 1,8 (default 1,8)")
    parser.add_argument(
        "--sections",
        "--stages",
        dest="sections",
        type=_section_list,
        default=None,
        help=f"only these parts: {','.join(SECTIONS)}",
    )
    parser.add_argument(
        "--training-presets",
        type=_name_list,
        default=None,
        help="presets whose training steps are timed (default tiny,paper-128)",
    )
    parser.add_argument(
        "--train-batch",
        type=_positive,
        default=None,
        help="training batch size (default 4; 2 with --quick)",
    )
    parser.add_argument(
        "--threads",
        type=_positive,
        default=None,
        help="torch intra-op threads for this run (default: torch's choice, one per core)",
    )
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also measure torch.compile with freezing (default: on, off with --quick)",
    )


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _int_list(text: str) -> tuple[int, ...]:
    return tuple(_positive(part) for part in text.split(",") if part.strip())


def _name_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _section_list(text: str) -> tuple[str, ...]:
    names = _name_list(text)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown section(s) {unknown}; choose from {SECTIONS}")
    return names


@dataclass(frozen=True)
class Settings:
    """The resolved options of one run."""

    devices: tuple[torch.device, ...]
    preset: str
    checkpoint: Path | None
    repeats: int
    warmup: int
    quick: bool
    crop_sizes: tuple[int, ...]
    batches: tuple[int, ...]
    sections: tuple[str, ...]
    frames: int
    detect_every: int
    video: Path | None
    training_presets: tuple[str, ...]
    train_batch: int
    compile: bool

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Settings:
        quick = bool(args.quick)
        if args.device == "auto":
            devices = [torch.device("cpu")]
            if torch.cuda.is_available():
                devices.append(torch.device("cuda"))
        else:
            devices = [resolve_device(args.device)]
        preset(args.preset)  # refuses unknown names with the list of known ones
        return cls(
            devices=tuple(devices),
            preset=args.preset,
            checkpoint=args.checkpoint,
            repeats=args.repeats or (5 if quick else 20),
            warmup=args.warmup if args.warmup is not None else (1 if quick else 3),
            quick=quick,
            crop_sizes=args.crop_sizes or ((128,) if quick else (128, 256)),
            batches=args.batches or ((1,) if quick else (1, 8)),
            sections=args.sections or SECTIONS,
            frames=args.frames or (16 if quick else 90),
            detect_every=args.detect_every,
            video=args.video,
            training_presets=args.training_presets or ("tiny", "paper-128"),
            train_batch=args.train_batch or (2 if quick else 4),
            compile=args.compile if args.compile is not None else not quick,
        )


# ---------------------------------------------------------------- timing primitives


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


# ---------------------------------------------------------------- results


@dataclass
class Row:
    """One measured case: a stage at a crop size, batch size, device and model variant."""

    section: str
    name: str
    device: str
    timing: Timing
    crop: int | None = None
    batch: int | None = None
    variant: str = ""
    gflop: float | None = None
    note: str = ""
    peak_gflops: float | None = None

    @property
    def achieved_gflops(self) -> float | None:
        if not self.gflop or self.timing.p50 <= 0:
            return None
        return self.gflop / (self.timing.p50 / 1000)

    @property
    def peak_fraction(self) -> float | None:
        achieved = self.achieved_gflops
        return achieved / self.peak_gflops if achieved and self.peak_gflops else None

    def to_dict(self) -> dict[str, Any]:
        floor = self.gflop / self.peak_gflops * 1000 if self.gflop and self.peak_gflops else None
        return {
            "section": self.section,
            "name": self.name,
            "device": self.device,
            "crop": self.crop,
            "batch": self.batch,
            "variant": self.variant,
            "ms": self.timing.to_dict(),
            "gflop": _round(self.gflop),
            "achieved_gflops": _round(self.achieved_gflops),
            "floor_ms": _round(floor),
            "fraction_of_matmul_peak": _round(self.peak_fraction),
            "note": self.note,
        }


@dataclass
class Gain:
    """One optimisation: the same work timed without and with it."""

    name: str
    device: str
    before: Timing
    after: Timing
    max_abs_difference: float | None = None
    note: str = ""

    @property
    def speedup(self) -> float:
        return self.before.p50 / self.after.p50 if self.after.p50 > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "device": self.device,
            "before_ms": self.before.to_dict(),
            "after_ms": self.after.to_dict(),
            "speedup": _round(self.speedup),
            "time_saved_percent": _round(100 * (1 - self.after.p50 / self.before.p50)),
            "max_abs_difference": self.max_abs_difference,
            "note": self.note,
        }


@dataclass
class Report:
    """Everything one run measured; `to_dict` is what --json writes."""

    settings: Settings
    weights: str
    rows: list[Row] = field(default_factory=list)
    gains: list[Gain] = field(default_factory=list)
    training: list[dict[str, Any]] = field(default_factory=list)
    pipeline: list[dict[str, Any]] = field(default_factory=list)
    peaks: dict[str, dict[str, float]] = field(default_factory=dict)
    headline: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Row) -> Row:
        """Record a row; its floor is the peak of its own precision (bf16 rows: the bf16 peak)."""
        peaks = self.peaks.get(row.device, {})
        precision = row.variant.partition("+")[0]
        row.peak_gflops = peaks.get(f"gflops_{precision}", peaks.get("gflops"))
        self.rows.append(row)
        return row

    def set_headline(self, key: str, value: Any) -> None:
        """Top-level results come from the first device measured (the CPU unless asked)."""
        self.headline.setdefault(key, value)

    def to_dict(self) -> dict[str, Any]:
        s = self.settings
        data: dict[str, Any] = {
            "faceedit_bench": 1,
            "machine": self.machine,
            "weights": self.weights,
            "preset": s.preset,
            "settings": {
                "devices": [str(d) for d in s.devices],
                "repeats": s.repeats,
                "warmup": s.warmup,
                "quick": s.quick,
                "crop_sizes": list(s.crop_sizes),
                "batches": list(s.batches),
                "sections": list(s.sections),
                "frames": s.frames,
                "detect_every": s.detect_every,
                "training_presets": list(s.training_presets),
                "train_batch": s.train_batch,
                "compile": s.compile,
            },
        }
        for key in (
            "slider_to_frame_ms",
            "parse_256_ms",
            "hierarchy_vs_baseline",
            "pipeline_fps_tracking",
            "matmul_peak_gflops",
        ):
            data[key] = self.headline.get(key)
        data.update({k: v for k, v in self.headline.items() if k not in data})
        data["targets"] = self.targets()
        for suffix in self.target_suffixes():
            data["targets" + suffix] = self.targets(suffix)
        data["matmul_peaks"] = self.peaks
        data["stages"] = [row.to_dict() for row in self.rows]
        data["optimizations"] = [gain.to_dict() for gain in self.gains]
        data["pipeline"] = self.pipeline
        data["training"] = self.training
        data["notes"] = self.notes
        return data

    def target_suffixes(self) -> list[str]:
        """Key suffixes of the non-default variants that have target values (e.g. '_bfloat16')."""
        found = {
            key[len(base) :]
            for key in self.headline
            for base in TARGETS
            if key.startswith(base + "_")
        }
        return sorted(found)

    def targets(self, suffix: str = "") -> dict[str, dict[str, Any]]:
        """Each target met or not, from the headline values with this key suffix.

        suffix "" is the float32 optimised path; "_bfloat16" / "_float16" the reduced-precision
        one (hierarchy_vs_baseline has no such variant and is left out there).
        """
        out: dict[str, dict[str, Any]] = {}
        for key, (op, limit) in TARGETS.items():
            value = self.headline.get(key + suffix)
            number = value.get("p50") if isinstance(value, dict) else value
            if number is None:
                continue
            met = number <= limit if op == "<=" else number >= limit
            margin = limit / number if op == "<=" else number / limit
            floor = value.get("floor_ms") if isinstance(value, dict) else None
            if key == "hierarchy_vs_baseline":
                floor = next(
                    (
                        d["flop_ratio"]
                        for d in self.headline.get("baseline_comparisons", [])
                        if d["variant"] == "optimized"
                    ),
                    None,
                )
            out[key] = {
                "floor": floor,  # the best this machine could do (FLOPs at the matmul peak)
                "value": round(float(number), 3),
                "target": f"{op} {limit:g}",
                "met": bool(met),
                "margin": round(margin, 3),  # > 1 means met with room to spare
                "preset": self.settings.preset,
            }
        return out


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


def machine_description(devices: Sequence[torch.device]) -> dict[str, Any]:
    """CPU model, thread counts, versions and GPU names: what a reader needs to compare runs."""
    cpu_model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    data: dict[str, Any] = {
        "cpu_model": cpu_model,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "devices": [str(d) for d in devices],
    }
    if any(d.type == "cuda" for d in devices):
        data["cuda_device"] = torch.cuda.get_device_name(0)
        data["cuda_version"] = torch.version.cuda
    return data


# ---------------------------------------------------------------- models and inputs


@dataclass
class Models:
    """The networks measured on one device: the loaded (or random) checkpoint and its variants."""

    loaded: checkpoint_io.LoadedCheckpoint
    device: torch.device
    variants: dict[str, UnifiedModel]

    @property
    def config(self) -> ModelConfig:
        return self.loaded.config


def random_checkpoint(config: ModelConfig, name: str) -> checkpoint_io.LoadedCheckpoint:
    """Randomly initialised networks of `config`, shaped like a loaded checkpoint (bench only)."""
    model = UnifiedModel(config).eval()
    return checkpoint_io.LoadedCheckpoint(
        path=Path(f"<random {name}>"),
        config=config,
        parser=model.parser,
        generator=model.generator,
        discriminator=None,
        metadata={"random": True},
    )


def variant_checkpoint(
    loaded: checkpoint_io.LoadedCheckpoint, device: torch.device, variant: Variant
) -> checkpoint_io.LoadedCheckpoint:
    """The checkpoint as one variant runs it (see Variant)."""
    base, _, extra = variant.partition("+")
    if base == "eager":
        out = loaded
    else:
        precision = "float32" if base == "optimized" else base
        out = optimize.optimize_checkpoint(loaded, device, precision=precision)  # type: ignore[arg-type]
    if extra == "compile":
        assert out.parser is not None and out.generator is not None
        out = dataclasses.replace(
            out,
            parser=optimize.compile_frozen(out.parser.to(device)),
            generator=optimize.compile_frozen(out.generator.to(device)),
        )
    return out


def headline_suffix(variant: Variant) -> str:
    """'' for the float32 optimised path, else e.g. '_bfloat16' or '_bfloat16_compile'."""
    return "" if variant == "optimized" else "_" + variant.replace("+", "_")


def fast_variants(ctx: Context) -> tuple[Variant, ...]:
    """The optimised variants worth measuring end to end on this device and in this run."""
    reduced = reduced_precision(ctx.device)
    compiled = (f"{(reduced or ('optimized',))[0]}+compile",) if ctx.settings.compile else ()
    return ("optimized", *reduced, *compiled)


def reduced_precision(device: torch.device) -> tuple[Variant, ...]:
    """The reduced-precision variant worth measuring on `device`, if its hardware has one."""
    if device.type == "cuda":
        return ("float16",)
    return ("bfloat16",) if optimize.bf16_is_fast(device) else ()


def build_models(
    loaded: checkpoint_io.LoadedCheckpoint, device: torch.device, variants: Sequence[Variant]
) -> Models:
    built: dict[str, UnifiedModel] = {}
    for variant in variants:
        source = variant_checkpoint(loaded, device, variant)
        built[variant] = source.unified().to(device).eval()
    return Models(loaded, device, built)


def sample_frame(
    size: tuple[int, int] = FRAME_SIZE, scale: float = 0.55, shift: float = 0.5
) -> np.ndarray:
    """A (H, W, 3) frame with the bundled sample face, scaled to `scale` of the frame height."""
    width, height = size
    face = read_image(sample_image_path())
    side = max(16, round(scale * height))
    small = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = (92, 98, 110)
    x = round(shift * (width - side))
    y = (height - side) // 2
    frame[y : y + side, x : x + side] = small
    return frame


def make_video(path: Path, frames: int, fps: float = 25.0) -> Path:
    """A 640x480 video of the sample face moving across the frame and changing size.

    The motion repeats every MOTION_PERIOD frames whatever the length, so a short video moves
    as fast as a long one (about 20 px per frame at most, a brisk head movement at 25 fps).
    """
    with VideoWriter(path, fps, FRAME_SIZE) as writer:
        for i in range(frames):
            phase = i / MOTION_PERIOD
            shift = 0.5 + 0.45 * math.sin(2 * math.pi * phase)
            scale = 0.5 + 0.12 * math.sin(4 * math.pi * phase)
            writer.write(sample_frame(FRAME_SIZE, scale, shift))
    return path


@dataclass
class Scene:
    """A frame with one detected face, the detector that found it, and its aligned crops."""

    frame: np.ndarray
    face: Face
    detector: FaceDetector

    def alignment(self, size: int) -> Alignment:
        return align(self.frame, self.face, size=size)


def make_scene(device: torch.device) -> Scene:
    detector = FaceDetector(device="cuda" if device.type == "cuda" else "cpu")
    frame = sample_frame()
    faces = detector.detect(frame)
    if not faces:
        raise FaceEditError("the face detector found no face in the bundled sample frame")
    return Scene(frame, faces[0], detector)


def crops_tensor(scene: Scene, size: int, batch: int, device: torch.device) -> Tensor:
    """(B, 3, S, S) in [-1, 1]: the sample face aligned at S, repeated B times."""
    crop = torch.from_numpy(scene.alignment(size).crop).permute(2, 0, 1).float() / 127.5 - 1
    return crop[None].repeat(batch, 1, 1, 1).to(device)


def conditions(batch: int, dim: int, device: torch.device, seed: int = 0) -> Tensor:
    """(B, C) slider-like mixtures of two expressions."""
    gen = torch.Generator().manual_seed(seed)
    out = torch.zeros(batch, dim)
    for i in range(batch):
        picks = torch.randperm(len(EXPRESSIONS), generator=gen)[:2]
        out[i, picks] = torch.rand(2, generator=gen)
    return out.to(device)


# ---------------------------------------------------------------- sections


@dataclass
class Context:
    """What every section needs on one device: settings, the report, a face, the models."""

    settings: Settings
    report: Report
    device: torch.device
    scene: Scene
    models_by_crop: dict[int, Models]
    checkpoints: dict[tuple[int, str], checkpoint_io.LoadedCheckpoint] = field(default_factory=dict)

    def checkpoint(self, crop: int, variant: Variant) -> checkpoint_io.LoadedCheckpoint:
        """The crop's checkpoint as `variant` runs it, built once (compiling is slow)."""
        key = (crop, variant)
        if key not in self.checkpoints:
            loaded = self.models_by_crop[crop].loaded
            self.checkpoints[key] = variant_checkpoint(loaded, self.device, variant)
        return self.checkpoints[key]

    @property
    def dev(self) -> str:
        return str(self.device)

    def reps(self, work_scale: float = 1.0) -> int:
        """Fewer repeats for expensive cases (batch 8 at 256), never fewer than 3."""
        return max(3, round(self.settings.repeats / max(work_scale, 1.0)))


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
            stages[f"generator: local {name}"] = lambda k=k, local=local: local(
                x, masks[:, k : k + 1], cond
            )
        stages["fusion"] = lambda: gen.fusion(x, union)
        stages["hierarchy (all generators + blend + fusion)"] = lambda: gen(x, masks, cond)
        for name, fn in stages.items():
            timing = measure(fn, device, reps, ctx.settings.warmup)
            ctx.report.add(
                Row("stages", name, ctx.dev, timing, crop, batch, variant, count_gflop(fn))
            )


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
                {name: (lambda p=p, x=x: p(x)) for name, p in parsers.items()},
                device,
                ctx.reps((size / 256) ** 2),
                s.warmup,
            )
            gflop = count_gflop(lambda x=x: eager(x))
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
                        "floor_ms": _round(gflop / peak * 1000) if peak else None,
                    },
                )
            ctx.report.set_headline("parse_256_eager_ms", timings["eager"].to_dict())


def section_baseline(ctx: Context) -> None:
    """Hierarchical generator against the global generator alone at StarGAN's size."""
    s, device = ctx.settings, ctx.device
    for crop in s.crop_sizes:
        models = ctx.models_by_crop[crop]
        cfg = models.config
        baseline_eager = GlobalGenerator(3, cfg.condition_dim, STARGAN).to(device).eval()
        baselines = {
            "eager": baseline_eager,
            "optimized": optimize.fast_instance_norm(baseline_eager),
        }
        for variant in ("optimized",) if s.quick else ("eager", "optimized"):
            model = models.variants.get(variant)
            if model is None:
                model = build_models(models.loaded, device, (variant,)).variants[variant]
                models.variants[variant] = model
            _baseline_case(ctx, model, baselines[variant], crop, variant)


def _baseline_case(
    ctx: Context, model: UnifiedModel, base: nn.Module, crop: int, variant: str
) -> None:
    device = ctx.device
    x = crops_tensor(ctx.scene, crop, 1, device)
    cond = conditions(1, model.config.condition_dim, device)
    with torch.inference_mode():
        masks = model.region_masks(x).masks
        cases: dict[str, Callable[[], Any]] = {
            "baseline": lambda: base(x, cond),
            "hierarchy": lambda: model.generator(x, masks, cond),
            "hierarchy + parse": lambda: model(x, cond),
        }
        timings = measure_interleaved(
            cases, device, ctx.reps((crop / 128) ** 2), ctx.settings.warmup
        )
        flops = {key: count_gflop(fn) for key, fn in cases.items()}
    names = {
        "baseline": "baseline: global generator alone, StarGAN size (64 ch, 6 blocks)",
        "hierarchy": "hierarchy: global + locals + fusion",
        "hierarchy + parse": "hierarchy + parse",
    }
    for key, timing in timings.items():
        ctx.report.add(Row("baseline", names[key], ctx.dev, timing, crop, 1, variant, flops[key]))
    ratio = timings["hierarchy"].p50 / timings["baseline"].p50
    with_parse = timings["hierarchy + parse"].p50 / timings["baseline"].p50
    ctx.report.headline.setdefault("baseline_comparisons", []).append(
        {
            "device": ctx.dev,
            "crop": crop,
            "variant": variant,
            "ratio": round(ratio, 3),
            "ratio_with_parse": round(with_parse, 3),
            "flop_ratio": round(flops["hierarchy"] / flops["baseline"], 3),
        }
    )
    if crop == cfg_crop(ctx) and variant == "optimized":
        ctx.report.set_headline("hierarchy_vs_baseline", round(ratio, 3))
        ctx.report.set_headline("hierarchy_with_parse_vs_baseline", round(with_parse, 3))


def cfg_crop(ctx: Context) -> int:
    """The crop size the app runs: the model's own, or the first measured one."""
    own = ctx.settings.checkpoint is None and preset(ctx.settings.preset).crop_size
    return own if own in ctx.models_by_crop else next(iter(ctx.models_by_crop))


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
        _slider_case(ctx, EditEngine(ctx.checkpoint(crop, variant), device), crop, variant, gflop)


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
    if "compile" in variant:
        row.note += f"; first call (compiling) {first_call:.1f} s"
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
                "floor_ms": _round(row.to_dict()["floor_ms"]),
            },
        )


def record_gain(
    ctx: Context,
    name: str,
    before: Callable[[], Any],
    after: Callable[[], Any],
    note: str = "",
    *,
    same_output: bool = True,
    grad_before: bool = False,
    repeats: int | None = None,
) -> Gain:
    """Time the same work without (`before`) and with (`after`) one optimisation.

    same_output: whether both return the same tensor shape, so their difference is the
    optimisation's numerical error. grad_before: `before` runs with autograd on (the gain of
    inference_mode), so the two cannot share the inference_mode block and are not interleaved.
    """
    runs, warmup = repeats or ctx.reps(), ctx.settings.warmup
    diff = None
    if grad_before:
        with torch.inference_mode():
            t_after = measure(after, ctx.device, runs, warmup)
        t_before = measure(before, ctx.device, runs, warmup)
    else:
        with torch.inference_mode():
            timings = measure_interleaved({"b": before, "a": after}, ctx.device, runs, warmup)
            if same_output:
                diff = _round(optimize.max_abs_difference(before, after, ()), 6)
        t_before, t_after = timings["b"], timings["a"]
    out = Gain(name, ctx.dev, t_before, t_after, diff, note)
    ctx.report.gains.append(out)
    return out


def section_optimizations(ctx: Context) -> None:
    """Each optimisation timed against the same work without it, with its numerical error."""
    device = ctx.device
    crop = cfg_crop(ctx)
    models = ctx.models_by_crop[crop]
    cfg = models.config
    x = crops_tensor(ctx.scene, crop, 1, device)
    cond = conditions(1, cfg.condition_dim, device)
    gen = models.loaded.generator
    assert gen is not None
    gen = gen.to(device).eval()
    fast_gen = optimize.fast_instance_norm(gen)
    eager = build_models(models.loaded, device, ("eager",)).variants["eager"]
    with torch.inference_mode():
        masks = eager.region_masks(x).masks
    first = next(iter(gen.local_generators))

    full = not ctx.settings.quick
    # 1. Autograd bookkeeping: what inference_mode saves on the generators.
    if full:
        record_gain(
            ctx,
            "inference_mode (hierarchy)",
            lambda: gen(x, masks, cond),
            lambda: gen(x, masks, cond),
            "before: autograd enabled, as a bare forward would run",
            grad_before=True,
        )
    # 2. InstanceNorm through the group-norm kernel.
    if full:
        record_gain(
            ctx,
            "fast instance norm (global generator)",
            lambda: gen.global_generator(x, cond),
            lambda: fast_gen.global_generator(x, cond),
        )
        record_gain(
            ctx,
            f"fast instance norm (local generator {first})",
            lambda: gen.local_generators[first](x, masks[:, :1], cond),
            lambda: fast_gen.local_generators[first](x, masks[:, :1], cond),
        )
    record_gain(
        ctx,
        "fast instance norm (hierarchy)",
        lambda: gen(x, masks, cond),
        lambda: fast_gen(x, masks, cond),
    )
    # 3. What does not pay or needs retraining (full runs only).
    if full:
        _secondary_generator_gains(ctx, fast_gen, x, masks, cond)
    # 4. Parser: BatchNorm folding, channels_last, a lower working resolution, aux heads.
    if models.loaded.parser is not None:
        _parser_gains(ctx, models.loaded.parser.to(device).eval(), cfg, x)
    # 5. Reduced precision: bfloat16 on CPU (AVX-512 BF16 where present), float16 on CUDA.
    dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    name = str(dtype).removeprefix("torch.")
    low = optimize.ReducedPrecision(fast_gen, dtype)
    record_gain(
        ctx,
        f"{name} weights (hierarchy, fast norm)",
        lambda: fast_gen(x, masks, cond),
        lambda: low(x, masks, cond),
        "max |diff| x 127.5 = grey levels",
    )
    # 6. Detection: a larger smallest face means fewer image-pyramid levels.
    big = FaceDetector(device="cuda" if device.type == "cuda" else "cpu", min_face_size=60)
    frame = ctx.scene.frame
    record_gain(
        ctx,
        f"MTCNN min_face_size {ctx.scene.detector.min_face_size} -> 60 (640x480)",
        lambda: ctx.scene.detector.detect(frame),
        lambda: big.detect(frame),
        "faces under 60 px are no longer found",
        same_output=False,
    )
    # 7. torch.compile with freezing: full runs only (it compiles for tens of seconds).
    if ctx.settings.compile:
        _compile_gain(ctx, fast_gen, x, masks, cond)


def _secondary_generator_gains(
    ctx: Context, fast_gen: nn.Module, x: Tensor, masks: Tensor, cond: Tensor
) -> None:
    """What does not pay (channels_last, autocast) or needs retraining (lighter locals)."""
    device, cfg = ctx.device, ctx.models_by_crop[cfg_crop(ctx)].config
    few = max(3, ctx.reps() // 3)  # for the cases expected to be slow
    # Generators in channels_last (measured to show that it does not pay).
    cl_gen = copy_module(fast_gen).to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    masks_cl = masks.contiguous(memory_format=torch.channels_last)
    record_gain(
        ctx,
        "channels_last (hierarchy, fast norm)",
        lambda: fast_gen(x, masks, cond),
        lambda: cl_gen(x_cl, masks_cl, cond),
        "no reliable gain in our runs: only the parsers use channels_last",
        repeats=few,
    )
    # Lighter local generators (a config change: a trained model would need retraining).
    light = HierarchicalGenerator(cfg.replace(local_generator=LIGHT_LOCALS)).to(device)
    light = optimize.fast_instance_norm(light)
    record_gain(
        ctx,
        f"lighter locals ({LIGHT_LOCALS.base_channels} ch, {LIGHT_LOCALS.num_res_blocks} blocks)",
        lambda: fast_gen(x, masks, cond),
        lambda: light(x, masks, cond),
        "changes the architecture: needs retraining",
        same_output=False,
    )
    # Reduced precision through autocast, which converts the weights on every call.
    dtype = torch.bfloat16 if device.type == "cpu" else torch.float16

    def autocast() -> Any:
        with torch.autocast(device.type, dtype=dtype):
            return fast_gen(x, masks, cond)

    record_gain(
        ctx,
        f"{str(dtype).removeprefix('torch.')} autocast (hierarchy, fast norm)",
        lambda: fast_gen(x, masks, cond),
        autocast,
        repeats=few,
    )


def _parser_gains(ctx: Context, parser: nn.Module, cfg: ModelConfig, x: Tensor) -> None:
    res = cfg.parser.resolution
    p_in = resize(x, res)
    folded = optimize.optimize_parser(parser, ctx.device, channels_last=False)
    fast = optimize.optimize_parser(parser, ctx.device, channels_last=True)
    record_gain(ctx, f"fold BatchNorm (parser @{res})", lambda: parser(p_in), lambda: folded(p_in))
    record_gain(
        ctx,
        f"channels_last (folded parser @{res})",
        lambda: folded(p_in),
        lambda: fast(p_in),
    )
    low = res // 2
    if low >= 32 and low % 32 == 0:
        low_in = resize(x, low)
        record_gain(
            ctx,
            f"parser at {low} instead of {res} (optimised)",
            lambda: fast(p_in),
            lambda: fast(low_in),
            "coarser masks: check parse quality before adopting",
            same_output=False,
        )
    for variant in reduced_precision(ctx.device):
        low_precision = optimize.ReducedPrecision(fast, DTYPES[variant])
        record_gain(
            ctx,
            f"{variant} weights (optimised parser @{res})",
            lambda: fast(p_in),
            lambda lp=low_precision: lp(p_in),
            "max |diff| is in logits",
        )
    with_aux = copy_with_aux_heads(parser)
    if with_aux is not None and not ctx.settings.quick:
        pair = p_in.repeat(2, 1, 1, 1)  # BiSeNet refuses single images in training mode
        record_gain(
            ctx,
            f"skip aux heads in eval (parser @{res}, batch 2)",
            lambda: with_aux(pair),
            lambda: parser(pair),
            "BiSeNet's eval forward already skips them: this is what that saves",
        )


def _compile_gain(
    ctx: Context, fast_gen: nn.Module, x: Tensor, masks: Tensor, cond: Tensor
) -> None:
    compiled = optimize.compile_frozen(copy_module(fast_gen))
    started = time.perf_counter()
    try:
        with torch.inference_mode():
            compiled(x, masks, cond)
    except Exception as error:  # no C++ compiler, an unsupported op: report it and go on
        ctx.report.notes.append(
            f"torch.compile failed on {ctx.dev}: {type(error).__name__}: {error}"
        )
        return
    seconds = time.perf_counter() - started
    record_gain(
        ctx,
        "torch.compile freezing (hierarchy, fast norm)",
        lambda: fast_gen(x, masks, cond),
        lambda: compiled(x, masks, cond),
        f"the first call (compilation) took {seconds:.1f} s",
    )


def copy_module(module: nn.Module) -> nn.Module:
    return copy.deepcopy(module).eval()


def copy_with_aux_heads(parser: nn.Module) -> nn.Module | None:
    """A parser copy that computes its auxiliary heads (training-mode forward) with eval BN."""
    if not any(name.startswith("conv_out16") for name, _ in parser.named_children()):
        return None
    with_aux = copy_module(parser).train()
    for module in with_aux.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
    return with_aux


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
        cases = [VideoCase(v, every, default) for v in variants for every in (1, s.detect_every)]
        if not s.quick:
            # The fastest setup again with the two video-only options: a detector that skips
            # faces under 60 px, then also the parser at half its working resolution.
            big_faces = FaceDetector(device=default.device, min_face_size=60)
            best = fast_variants(ctx)[-1]
            cases.append(VideoCase(best, s.detect_every, big_faces))
            low = ctx.models_by_crop[crop].config.parser.resolution // 2
            if low >= 32 and low % 32 == 0:
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


def _video_case(ctx: Context, case: VideoCase, crop: int, video: Path) -> None:
    loaded = ctx.checkpoint(crop, case.variant)
    name = f"640x480 video, detect every {case.every}"
    key = "pipeline_fps_tracking" if case.every > 1 else "pipeline_fps_every_frame"
    key += headline_suffix(case.variant)
    if case.detector is not ctx.scene.detector:
        key += f"_minface{case.detector.min_face_size}"
        name += f", MTCNN min face {case.detector.min_face_size}"
    if case.parser_resolution is not None:
        loaded = optimize.with_parser_resolution(loaded, case.parser_resolution)
        key += f"_parser{case.parser_resolution}"
        name += f", parser @{case.parser_resolution} (coarser masks)"
    engine = EditEngine(loaded, ctx.device)
    result = _run_video(ctx, engine, case.detector, video, case.every, ctx.settings.frames)
    result.update(
        {
            "variant": case.variant,
            "device": ctx.dev,
            "crop": crop,
            "parser_resolution": engine.config.parser.resolution if engine.config else None,
        }
    )
    ctx.report.pipeline.append(result)
    if case.variant != "eager":
        ctx.report.set_headline(key, result["fps"])
    timing = Timing(result["ms_per_frame_p50"], result["ms_per_frame_p95"], result["frames"])
    note = f"{result['fps']:.2f} fps end to end (decode included)"
    ctx.report.add(Row("pipeline", name, ctx.dev, timing, crop, 1, case.variant, note=note))


def _run_video(
    ctx: Context,
    engine: EditEngine,
    detector: FaceDetector,
    video: Path,
    every: int,
    max_frames: int,
) -> dict[str, Any]:
    pipeline = FramePipeline(engine, detector, detect_every=every)
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
        "frames": n,
        "frames_with_face": faces,
        "fps": round(n / elapsed, 3),
        "ms_per_frame_p50": round(timing.p50, 3),
        "ms_per_frame_p95": round(timing.p95, 3),
        "mean_stage_ms": {k: round(v / n, 3) for k, v in stage_sums.items()},
    }


# ---------------------------------------------------------------- training throughput


def section_training(ctx: Context) -> None:
    """Steps per second of each training phase for each preset (random data, random weights)."""
    s = ctx.settings
    try:
        from trainer import steps  # noqa: F401 (only checks that the trainer is installed)
    except ImportError as error:
        ctx.report.notes.append(f"training: the trainer package is not importable ({error})")
        return
    # Training steps take seconds each: few repeats, and --quick leaves out the joint phase.
    repeats = 1 if s.quick else max(2, s.repeats // 4)
    for name in s.training_presets:
        results = measure_training(
            preset(name), ctx.device, s.train_batch, repeats, 1, joint=not s.quick
        )
        for step, timing in results.items():
            ctx.report.training.append(
                {
                    "preset": name,
                    "device": ctx.dev,
                    "step": step,
                    "batch": s.train_batch,
                    "ms": timing.to_dict(),
                    "steps_per_s": round(1000 / timing.p50, 3),
                    "images_per_s": round(1000 * s.train_batch / timing.p50, 2),
                    "source": "trainer.steps + Adam update",
                }
            )


def measure_training(
    config: ModelConfig,
    device: torch.device,
    batch: int,
    repeats: int,
    warmup: int,
    joint: bool = True,
) -> dict[str, Timing]:
    """Time one optimiser step of each phase with the trainer's own step functions.

    parser: OHEM cross-entropy (stage 1). discriminator and generator: the GAN stage with the
    parser frozen. joint: the generator step with the parser trained too, plus its own loss.
    Each timed step is zero_grad, the step's losses, backward and an Adam update, on random
    images (speed does not depend on the data).
    """
    from faceedit.model.discriminator import HierarchicalDiscriminator
    from trainer import steps
    from trainer.config import LossWeights, ParserOptimConfig

    torch.manual_seed(0)
    weights, parser_settings = LossWeights(), ParserOptimConfig()
    frozen = UnifiedModel(config.replace(freeze_parser=True)).to(device).train()
    unified = UnifiedModel(config.replace(freeze_parser=False)).to(device).train()
    disc = HierarchicalDiscriminator(config).to(device).train()
    adam = {"betas": (0.5, 0.999)}
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-4, **adam)
    opt_g = torch.optim.Adam(frozen.generator.parameters(), lr=1e-4, **adam)
    opt_joint = torch.optim.Adam(unified.parameters(), lr=1e-5, **adam)
    opt_parser = torch.optim.Adam(unified.parser.parameters(), lr=1e-3)

    rng = torch.Generator().manual_seed(0)
    res, size = config.parser.resolution, config.crop_size
    images = (torch.rand(batch, 3, size, size, generator=rng) * 2 - 1).to(device)
    labels = torch.randint(0, config.num_expressions, (batch,), generator=rng).to(device)
    no_va = torch.full((batch, 2), float("nan"), device=device)
    data = steps.expression_batch(images, labels, no_va, config)
    parser_images = (torch.rand(batch, 3, res, res, generator=rng) * 2 - 1).to(device)
    parser_labels = torch.randint(0, 19, (batch, res, res), generator=rng).to(device)

    def update(optimiser: torch.optim.Optimizer, named: dict[str, Tensor]) -> None:
        steps.total_loss(named, 0).backward()
        optimiser.step()

    def parser_step() -> None:
        opt_parser.zero_grad(set_to_none=True)
        update(
            opt_parser,
            steps.parser_step(unified.parser, parser_images, parser_labels, parser_settings),
        )

    def discriminator_step() -> None:
        steps.set_requires_grad(disc, True)
        opt_d.zero_grad(set_to_none=True)
        update(opt_d, steps.discriminator_step(frozen, disc, data, weights))

    def generator_step() -> None:
        steps.set_requires_grad(disc, False)
        opt_g.zero_grad(set_to_none=True)
        update(opt_g, steps.generator_step(frozen, disc, data, weights))

    def joint_step() -> None:
        steps.set_requires_grad(disc, False)
        opt_joint.zero_grad(set_to_none=True)
        named = steps.generator_step(unified, disc, data, weights)
        named.update(
            steps.parser_step(
                unified.parser,
                parser_images,
                parser_labels,
                parser_settings,
                weight=weights.parser_loss_weight,
            )
        )
        update(opt_joint, named)

    phases = {
        "parser": parser_step,
        "discriminator": discriminator_step,
        "generator (parser frozen)": generator_step,
    }
    if joint:
        phases["joint generator + parser"] = joint_step
    return {name: measure(fn, device, repeats, warmup) for name, fn in phases.items()}


# ---------------------------------------------------------------- running and printing


SECTION_FUNCTIONS: Final[dict[str, Callable[[Context], None]]] = {
    "stages": section_stages,
    "parse": section_parse,
    "baseline": section_baseline,
    "slider": section_slider,
    "optimizations": section_optimizations,
    "pipeline": section_pipeline,
    "training": section_training,
}


def run(args: argparse.Namespace) -> int:
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
            SECTION_FUNCTIONS[name](ctx)
            _log(progress, f"[{device}] {name}: {time.perf_counter() - started:.1f} s")
        # The ceiling again at the end: a machine that got busier shows it here.
        end_peak = matmul_peak_gflops(device, settings.repeats)
        report.peaks[str(device)]["gflops_at_end"] = round(end_peak, 1)
    return report


def _load(settings: Settings) -> tuple[checkpoint_io.LoadedCheckpoint, str]:
    if settings.checkpoint is not None:
        loaded = checkpoint_io.load(settings.checkpoint, device="cpu")
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


def format_report(report: Report) -> str:
    """Plain-text tables: stages, optimisations, pipeline, training, then targets (last)."""
    lines = [f"faceedit bench — {report.weights}"]
    machine = report.machine
    lines.append(
        f"{machine['cpu_model']}, {machine['torch_threads']} torch threads, torch "
        f"{machine['torch_version']}; matmul peak "
        + ", ".join(
            f"{d}: {p['gflops']:.0f} GFLOP/s (end {p.get('gflops_at_end', float('nan')):.0f})"
            for d, p in report.peaks.items()
        )
    )
    if report.gains:
        lines += ["", "Optimisations (same work without -> with)"]
        lines += _table(
            ["optimisation", "device", "before p50", "after p50", "speedup", "max |diff|", "note"],
            [
                [
                    g.name,
                    g.device,
                    f"{g.before.p50:.1f}",
                    f"{g.after.p50:.1f}",
                    f"{g.speedup:.2f}x",
                    "-" if g.max_abs_difference is None else f"{g.max_abs_difference:.1e}",
                    g.note,
                ]
                for g in report.gains
            ],
        )
    if report.training:
        lines += ["", "Training throughput"]
        lines += _table(
            ["preset", "device", "step", "batch", "ms/step p50", "steps/s", "images/s", "how"],
            [
                [
                    t["preset"],
                    t["device"],
                    t["step"],
                    str(t["batch"]),
                    f"{t['ms']['p50']:.1f}",
                    f"{t['steps_per_s']:.2f}",
                    f"{t['images_per_s']:.1f}",
                    t["source"],
                ]
                for t in report.training
            ],
        )
    if report.notes:
        lines += ["", *(f"note: {n}" for n in report.notes)]
    target_rows = [
        [
            k,
            precision,
            "-" if t["floor"] is None else f"{t['floor']:.2f}",
            f"{t['value']:.2f}",
            t["target"],
            "yes" if t["met"] else "NO",
            f"{t['margin']:.2f}x",
        ]
        for suffix, precision in (("", "float32"), *((x, x[1:]) for x in report.target_suffixes()))
        for k, t in report.targets(suffix).items()
    ]
    if target_rows:
        lines += ["", f"Targets ({report.settings.preset}, first device; margin > 1 means met)"]
        lines += _table(
            ["target", "variant", "floor", "value", "goal", "met", "margin"], target_rows
        )
    lines += [
        "",
        "Stages (ms; GFLOP/s achieved and its fraction of the matmul peak of the row's precision;",
        "over 100 % means the convolutions ran faster than a 2048x2048 matrix product)",
    ]
    lines += _table(
        [
            "section",
            "stage",
            "device",
            "crop",
            "batch",
            "variant",
            "p50",
            "p95",
            "GFLOP",
            "GFLOP/s",
            "% peak",
            "note",
        ],
        [
            [
                r.section,
                r.name,
                r.device,
                "-" if r.crop is None else str(r.crop),
                "-" if r.batch is None else str(r.batch),
                r.variant,
                f"{r.timing.p50:.2f}",
                f"{r.timing.p95:.2f}",
                "-" if not r.gflop else f"{r.gflop:.2f}",
                "-" if r.achieved_gflops is None else f"{r.achieved_gflops:.0f}",
                "-" if r.peak_fraction is None else f"{100 * r.peak_fraction:.0f}%",
                r.note,
            ]
            for r in report.rows
        ],
    )
    return "\n".join(lines)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]
