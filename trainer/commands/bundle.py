"""`faceedit-train bundle`: make the model faceedit ships (faceedit/assets/real.safetensors).

Cuts a trained checkpoint to what the app runs (parser and EMA generator) and writes into its
metadata, per expression, whether it was trained, on how many photos, and how often held-out
edits towards it were read as it (the `real-faces-score` report). trainer/bundle.py does it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from faceedit.limits import bounded_int
from faceedit.weights.expression_facts import describe
from trainer.bundle import MAX_BUNDLE_BYTES, bundle

EPILOG = """example:
  faceedit-train real-faces-score --checkpoint runs/real/gan/model.safetensors ... --out score
  faceedit-train bundle --checkpoint runs/real/gan --report score/report.json \\
      --out faceedit/assets/real.safetensors
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument(
        "--checkpoint",
        required=True,
        type=Path,
        metavar="RUN_OR_FILE",
        help="a run folder (its model.safetensors and config.yaml) or a checkpoint file",
    )
    parser.add_argument(
        "--report",
        required=True,
        type=Path,
        help="report.json of 'faceedit-train real-faces-score' on that checkpoint",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help=f"the bundled model to write (at most {MAX_BUNDLE_BYTES / 1e6:.0f} MB)",
    )
    parser.add_argument(
        "--min-class-images",
        type=bounded_int(1, 10**9),
        default=None,
        metavar="N",
        help="fewest training photos an expression needs to count as trained (default: the "
        "run's data.min_class_images when it balanced classes, else 1)",
    )

    parser.add_argument(
        "--edit-area",
        choices=("crop", "face"),
        default=None,
        help="where the app pastes the model's edits: the whole aligned crop, or the face's "
        "oval only, so hair and background keep their pixels (default: as the checkpoint says)",
    )


def run(args: argparse.Namespace) -> int:
    path, table = bundle(
        args.checkpoint, args.report, args.out, args.min_class_images, edit_area=args.edit_area
    )
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    for name, row in table.items():
        print(f"  {name}: {describe(name, row)}")
    return 0
