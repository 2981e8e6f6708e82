"""`faceedit import-parser SRC OUT`: turn face-parsing.PyTorch's `79999_iter.pth` into a checkpoint.

The command line only; the conversion (safe reading, key checks, writing) is
faceedit.weights.community_parser.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from faceedit.weights.community_parser import import_parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "src", type=Path, metavar="SRC", help="face-parsing.PyTorch weights, e.g. 79999_iter.pth"
    )
    parser.add_argument(
        "out", type=Path, metavar="OUT", help="faceedit checkpoint to write (.safetensors)"
    )
    parser.add_argument(
        "--resolution",
        type=int,
        default=512,
        help="size the engine resizes face crops to before parsing; the parser was trained at "
        "512 (default), 256 is about 4x faster and usually enough for 128-pixel edits",
    )


def run(args: argparse.Namespace) -> int:
    imported = import_parser(args.src, args.out, args.resolution)
    parser = imported.config.parser
    print(
        f"imported {args.src} -> {imported.path}: BiSeNet, {imported.parameters / 1e6:.2f}M "
        f"parameters, {parser.num_classes} classes, resolution {parser.resolution}"
    )
    return 0
