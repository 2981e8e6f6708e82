"""The bench command line and the resolved options of one run (Settings)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import torch

from faceedit.device import resolve_device
from faceedit.limits import int_list, name_list, non_negative_int, positive_int
from faceedit.model.config import preset

# The parts of a run, in the order they run and print. "training" comes from a plug-in
# (faceedit.commands.bench.sections): the trainer provides it, faceedit never imports the trainer.
SECTIONS: Final[tuple[str, ...]] = (
    "stages",
    "parse",
    "baseline",
    "slider",
    "optimizations",
    "pipeline",
    "training",
)


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
    parser.add_argument("--repeats", type=positive_int, default=None, help="timed runs per case")
    parser.add_argument("--warmup", type=non_negative_int, default=None, help="untimed runs first")
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats and configurations (about a minute)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    parser.add_argument(
        "--video", type=Path, default=None, help="640x480 video for the end-to-end fps"
    )
    parser.add_argument(
        "--frames", type=positive_int, default=None, help="frames of the end-to-end video"
    )
    parser.add_argument(
        "--detect-every", type=positive_int, default=5, help="detection interval with tracking"
    )
    parser.add_argument(
        "--crop-sizes", type=int_list, default=None, help="e.g. 128,256 (default 128,256)"
    )
    parser.add_argument("--batches", type=int_list, default=None, help="e.g. 1,8 (default 1,8)")
    parser.add_argument(
        "--sections",
        "--stages",
        dest="sections",
        type=section_list,
        default=None,
        help=f"only these parts: {','.join(SECTIONS)}",
    )
    parser.add_argument(
        "--training-presets",
        type=name_list,
        default=None,
        help="presets whose training steps are timed (default tiny,paper-128)",
    )
    parser.add_argument(
        "--train-batch",
        type=positive_int,
        default=None,
        help="training batch size (default 4; 2 with --quick)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch intra-op threads for this run (default: torch's choice, one per core)",
    )
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also measure torch.compile with freezing (default: on, off with --quick)",
    )


def section_list(text: str) -> tuple[str, ...]:
    """argparse type for --sections: known section names only, so a typo fails before any work."""
    names = name_list(text)
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
