"""`faceedit import-parser SRC OUT`: turn face-parsing.PyTorch's `79999_iter.pth` into a checkpoint.

The command line only; the conversion (safe reading, key checks, writing) is
faceedit.weights.community_parser.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from faceedit.limits import bounded_int
from faceedit.model.config import MAX_PARSER_RESOLUTION
from faceedit.weights.community_parser import import_parser

BISENET_STRIDE = 32  # BiSeNet halves its input five times
MIN_RESOLUTION = 64


def resolution_argument(text: str) -> int:
    """argparse type for --resolution: 64 .. MAX_PARSER_RESOLUTION pixels (the parser's config
    then refuses one that is not a multiple of 32)."""
    return bounded_int(MIN_RESOLUTION, MAX_PARSER_RESOLUTION, "pixels")(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "src", type=Path, metavar="SRC", help="face-parsing.PyTorch weights, e.g. 79999_iter.pth"
    )
    parser.add_argument(
        "out", type=Path, metavar="OUT", help="faceedit checkpoint to write (.safetensors)"
    )
    parser.add_argument(
        "--resolution",
        type=resolution_argument,
        default=512,
        help="size the engine resizes face crops to before parsing; the parser was trained at "
        f"512 (default), 256 is about 4x faster and usually enough for 128-pixel edits; a "
        f"multiple of {BISENET_STRIDE} from {MIN_RESOLUTION} to {MAX_PARSER_RESOLUTION}",
    )


def run(args: argparse.Namespace) -> int:
    imported = import_parser(args.src, args.out, args.resolution)
    parser = imported.config.parser
    print(
        f"imported {args.src} -> {imported.path}: BiSeNet, {imported.parameters / 1e6:.2f}M "
        f"parameters, {parser.num_classes} classes, resolution {parser.resolution}"
    )
    return 0
