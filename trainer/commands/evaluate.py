"""`faceedit-train eval`: score a checkpoint's parser and edits; tables, JSON and image grids.

Nothing is downloaded: the expression classifier is one trained with `faceedit-train
classifier`, and FID needs pytorch-fid's Inception weights file given by path. Without either,
the metrics that need it are reported as not computed, with the reason.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from faceedit.errors import ConfigError
from faceedit.vocab.expressions import EXPRESSIONS
from trainer.commands.classifier import add_expression_dataset_arguments, expression_source
from trainer.judges.classifier import load_classifier
from trainer.judges.evaluation import evaluate_checkpoint, write_report
from trainer.judges.fid import WEIGHTS_FILE_NAME, load_fid_inception
from trainer.stages.distributed import resolve_device

logger = logging.getLogger("trainer.judges.evaluation")

EPILOG = f"""examples:
  faceedit-train eval --checkpoint runs/joint/model.safetensors --out eval/joint \\
      --celebamask-hq ~/data/CelebAMask-HQ --rafd ~/data/RaFD \\
      --classifier judge.safetensors --fid-weights ~/weights/{WEIGHTS_FILE_NAME}
  faceedit-train eval --checkpoint runs/parser/parser.safetensors --out eval/p \\
      --celebamask-hq ~/data/CelebAMask-HQ --limit 200
"""


def add_evaluation_inputs(parser: argparse.ArgumentParser) -> None:
    """Datasets, judges and limits shared by `eval` and `compare`."""
    data = parser.add_argument_group("data")
    data.add_argument(
        "--celebamask-hq", metavar="ROOT", help="score the parser (mIoU, per-class F1)"
    )
    add_expression_dataset_arguments(data)
    judges = parser.add_argument_group("judges")
    judges.add_argument(
        "--classifier",
        type=Path,
        metavar="FILE",
        help="expression classifier from 'faceedit-train classifier' (expression accuracy)",
    )
    judges.add_argument(
        "--fid-weights",
        type=Path,
        metavar="PTH",
        help=f"pytorch-fid's Inception weights ({WEIGHTS_FILE_NAME}) for FID",
    )
    scope = parser.add_argument_group("scope")
    scope.add_argument("--split", choices=("train", "val", "test"), default="test")
    scope.add_argument("--limit", type=int, metavar="N", help="score at most N images per dataset")
    scope.add_argument(
        "--targets",
        metavar="NAMES",
        help="comma-separated target expressions (default: those present in the split)",
    )
    scope.add_argument("--batch-size", type=int, default=16)
    scope.add_argument(
        "--num-workers",
        type=int,
        help="DataLoader worker processes (default: 0 to score; each stage's own to train)",
    )
    scope.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA if present"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help="a faceedit .safetensors checkpoint"
    )
    parser.add_argument("--out", required=True, type=Path, help="folder for the results")
    add_evaluation_inputs(parser)


def parse_targets(text: str | None) -> tuple[str, ...] | None:
    if not text:
        return None
    names = tuple(t.strip().lower() for t in text.split(",") if t.strip())
    unknown = [t for t in names if t not in EXPRESSIONS]
    if unknown:
        raise ConfigError(
            f"--targets: unknown expression(s) {unknown}; choose from {list(EXPRESSIONS)}"
        )
    return names


def load_judges(args: argparse.Namespace) -> dict[str, object]:
    """The classifier and the FID network the flags name, and why each missing one is missing."""
    device = resolve_device(args.device)
    reasons: dict[str, str] = {}
    classifier = None
    if args.classifier is not None:
        loaded = load_classifier(args.classifier, device)
        classifier = loaded.model
        accuracy = loaded.held_out_accuracy
        logger.info(
            "classifier %s (held-out accuracy %s)",
            args.classifier,
            "unknown" if accuracy is None else f"{accuracy:.4f}",
        )
    else:
        reasons["expression_accuracy"] = (
            "no --classifier given (train one with 'faceedit-train classifier')"
        )
    fid_network = None
    if args.fid_weights is not None:
        fid_network = load_fid_inception(args.fid_weights, device)
    else:
        reasons["fid"] = f"no --fid-weights given (pytorch-fid's {WEIGHTS_FILE_NAME})"
    return {"classifier": classifier, "fid_network": fid_network, "reasons": reasons}


def check_inputs(args: argparse.Namespace) -> tuple[str, str] | None:
    expression = expression_source(args)
    if args.celebamask_hq is None and expression is None:
        raise ConfigError(
            "nothing to evaluate: give --celebamask-hq ROOT (parser) and/or --affectnet, "
            "--rafd or --folders ROOT (edits)"
        )
    if args.limit is not None and args.limit <= 0:
        raise ConfigError(f"--limit must be a positive number of images, got {args.limit}")
    return expression


def run(args: argparse.Namespace) -> int:
    expression = check_inputs(args)
    targets = parse_targets(args.targets)
    judges = load_judges(args)
    report = evaluate_checkpoint(
        args.checkpoint,
        celebamask_hq=args.celebamask_hq,
        expression=expression,
        classifier=judges["classifier"],  # type: ignore[arg-type]
        fid_network=judges["fid_network"],  # type: ignore[arg-type]
        reasons=judges["reasons"],  # type: ignore[arg-type]
        split=args.split,
        limit=args.limit,
        targets=targets,
        batch_size=args.batch_size,
        num_workers=args.num_workers or 0,
        device=resolve_device(args.device),
    )
    if args.classifier is not None:
        report.info["classifier"] = str(args.classifier)
    if args.fid_weights is not None:
        report.info["fid_weights"] = str(args.fid_weights)
    written = write_report(report, args.out)
    print(report.tables())
    print(f"\nresults: {written['json']}  (table: {written['table']})")
    return 0
