"""`faceedit-train prepare`: one pass from a dataset as distributed to prepared shards.

The pass itself is trainer/data/prepare.py; the shard format trainer/data/shards.py. Every
stage, `eval` and `classifier` accept the prepared folder wherever they accept the dataset's
root. Interrupted? Run the same command again: it continues after the last written shard.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from faceedit.errors import ConfigError
from faceedit.model.config import PRESETS, preset
from faceedit.progress import ProgressBar
from trainer.data.common import SPLITS
from trainer.data.prepare import DEFAULT_SHARD_BYTES, PrepareOptions, default_workers, prepare

logger = logging.getLogger("trainer.data")
DEFAULT_PRESET = "paper-128"
SOURCES = ("celebamask_hq", "affectnet", "rafd", "folders", "facial_expressions")

EPILOG = """examples:
  faceedit-train prepare --celebamask-hq ~/data/CelebAMask-HQ --out ~/data/celebamask-256
  faceedit-train prepare --affectnet ~/data/AffectNet --align landmarks --out ~/data/affectnet-128
  faceedit-train prepare --rafd ~/data/RaFD --out ~/data/rafd-128
  faceedit-train prepare --facial-expressions ~/data/facial_expressions --out ~/data/fe128 --size 128
  faceedit-train parser --celebamask-hq ~/data/celebamask-256 --out runs/p1      # trains from shards
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Align or crop, resize to the training resolution and (CelebAMask-HQ) merge the part "
        "masks into label maps, once, into memory-mapped shards that every stage reads "
        "directly: no JPEG or PNG decoding while training. Resumable; bad files are skipped "
        "and counted."
    )
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    source = parser.add_argument_group("dataset (give one)").add_mutually_exclusive_group(
        required=True
    )
    source.add_argument("--celebamask-hq", metavar="ROOT", help="CelebAMask-HQ root")
    source.add_argument("--affectnet", metavar="ROOT", help="AffectNet root")
    source.add_argument("--rafd", metavar="ROOT", help="RaFD root")
    source.add_argument("--folders", metavar="ROOT", help="your photos, one folder per expression")
    source.add_argument(
        "--facial-expressions",
        metavar="ROOT",
        help="facial_expressions (images/, data/legend.csv): real faces, aligned as the app "
        "aligns them, with label maps drawn from dlib's 68 landmarks (needs the 'landmarks' "
        "extra); both the parser and the gan/joint stages train from the result",
    )
    parser.add_argument("--out", required=True, type=Path, help="folder to write the shards into")
    parser.add_argument(
        "--size",
        type=int,
        help="sample side in px (default: the preset's training size: the parser's resolution "
        "for CelebAMask-HQ, the crop size for expression data)",
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=DEFAULT_PRESET,
        help=f"the model preset whose sizes are the default --size (default {DEFAULT_PRESET})",
    )
    parser.add_argument(
        "--align",
        default="",
        help="expression crops, as the stages' data.align: AffectNet box|landmarks|detect, "
        "RaFD box|detect, folders center|detect (default: the loader's)",
    )
    parser.add_argument(
        "--splits",
        default=",".join(SPLITS),
        help=f"comma-separated splits to prepare (default {','.join(SPLITS)})",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="decoding processes (default: every core of this machine)",
    )
    parser.add_argument(
        "--shard-mb",
        type=float,
        default=DEFAULT_SHARD_BYTES // 2**20,
        help=f"about this many MB per shard (default {DEFAULT_SHARD_BYTES // 2**20})",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the order samples are stored in"
    )


def run(args: argparse.Namespace) -> int:
    name = next(n for n in SOURCES if getattr(args, n))
    kind = name.replace("_", "-")
    model = preset(args.preset)
    size = args.size or (model.parser.resolution if kind == "celebamask-hq" else model.crop_size)
    if args.align and kind == "celebamask-hq":
        raise ConfigError("--align applies to expression data; CelebAMask-HQ is already aligned")
    root = Path(getattr(args, name)).expanduser()
    if not root.is_dir():
        raise ConfigError(f"--{kind} {root}: no such folder; give the dataset's root folder")
    if args.workers is not None and args.workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {args.workers}")
    options = PrepareOptions(
        kind=kind,
        source=str(root.resolve()),
        size=size,
        align=args.align,
        seed=args.seed,
        splits=tuple(s.strip() for s in args.splits.split(",") if s.strip()),
        shard_bytes=max(1, round(args.shard_mb * 2**20)),
    )
    bar: list[ProgressBar] = []

    def progress(done: int, total: int, skipped: dict[str, int]) -> None:
        if not bar:
            bar.append(ProgressBar(total, "prepare", start=done - 1, unit=" samples/s"))
        extra = f"skipped {sum(skipped.values())}" if skipped else ""
        bar[0].goto(done, extra)

    started = time.perf_counter()
    manifest = prepare(
        options, args.out, default_workers() if args.workers is None else args.workers, progress
    )
    if bar:
        bar[0].close()
    assert manifest is not None
    counts = {split: sum(sizes) for split, sizes in manifest.splits.items()}
    skipped = {split: sum(r.values()) for split, r in manifest.skipped.items()}
    logger.info(
        "prepare: %s at %d px in %s (%.0f s): samples %s; skipped %s",
        manifest.kind,
        manifest.size,
        args.out,
        time.perf_counter() - started,
        counts,
        {s: dict(manifest.skipped[s]) for s in manifest.skipped if skipped[s]} or "nothing",
    )
    if kind == "facial-expressions":
        from trainer.data.facial_expressions import describe_prepared

        logger.info("%s", describe_prepared(args.out))
    return 0
