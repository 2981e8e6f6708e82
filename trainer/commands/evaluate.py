"""`faceedit-train eval`: score a checkpoint's parser and edits; tables, JSON and image grids.

Nothing is downloaded: the expression classifier is one trained with `faceedit-train
classifier`, and FID needs pytorch-fid's Inception weights file given by path. Without either,
the metrics that need it are reported as not computed, with the reason.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from faceedit.fileio import check_output_folder
from trainer.commands.common import add_evaluation_inputs, check_evaluation_inputs, parse_targets
from trainer.judges.evaluation import evaluate_checkpoint, write_report
from trainer.judges.fid import WEIGHTS_FILE_NAME
from trainer.judges.loading import load_judges
from trainer.stages.distributed import resolve_device

EPILOG = f"""examples:
  faceedit-train eval --checkpoint runs/joint/model.safetensors --out eval/joint \\
      --celebamask-hq ~/data/CelebAMask-HQ --rafd ~/data/RaFD \\
      --classifier judge.safetensors --fid-weights ~/weights/{WEIGHTS_FILE_NAME}
  faceedit-train eval --checkpoint runs/parser/parser.safetensors --out eval/p \\
      --celebamask-hq ~/data/CelebAMask-HQ --limit 200
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help="a faceedit .safetensors checkpoint"
    )
    parser.add_argument("--out", required=True, type=Path, help="folder for the results")
    add_evaluation_inputs(parser)


def run(args: argparse.Namespace) -> int:
    expression = check_evaluation_inputs(args)
    targets = parse_targets(args.targets)
    check_output_folder(args.out, "--out")
    device = resolve_device(args.device)
    judges = load_judges(args.classifier, args.fid_weights, device)
    report = evaluate_checkpoint(
        args.checkpoint,
        celebamask_hq=args.celebamask_hq,
        expression=expression,
        classifier=judges.classifier,
        fid_network=judges.fid_network,
        reasons=judges.reasons,
        split=args.split,
        limit=args.limit,
        targets=targets,
        batch_size=args.batch_size,
        num_workers=args.num_workers or 0,
        device=device,
    )
    if args.classifier is not None:
        report.info["classifier"] = str(args.classifier)
    if args.fid_weights is not None:
        report.info["fid_weights"] = str(args.fid_weights)
    written = write_report(report, args.out)
    print(report.tables())
    print(f"\nresults: {written['json']}  (table: {written['table']})")
    return 0
