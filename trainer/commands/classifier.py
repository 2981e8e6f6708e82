"""`faceedit-train classifier`: train the expression classifier that scores edited faces.

It learns from the real images of one expression dataset (train split) and is scored on a
held-out split; that accuracy is printed and stored in the file, so every later score made with
it says how good its judge was.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from faceedit.errors import ConfigError
from faceedit.fileio import check_output_file
from faceedit.limits import (
    batch_argument,
    bounded_int,
    image_size_argument,
    non_negative_float,
    positive_float,
    seed_argument,
    steps_argument,
    workers_argument,
)
from trainer.commands.common import add_expression_arguments, expression_source
from trainer.data import build_expression_dataset
from trainer.judges.classifier import (
    ClassifierConfig,
    ClassifierTrainConfig,
    ExpressionClassifier,
    load_torchvision_weights,
    save_classifier,
    train_classifier,
)
from trainer.stages.distributed import resolve_device

logger = logging.getLogger("trainer.judges.classifier")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_expression_arguments(parser, required=True)
    parser.add_argument(
        "--out", required=True, type=Path, help="the classifier file to write (.safetensors)"
    )
    parser.add_argument(
        "--size",
        type=image_size_argument,
        default=128,
        help="image size it sees (default 128, the crop size)",
    )
    parser.add_argument(
        "--width",
        type=bounded_int(1, 1024),
        default=64,
        help="base channels (64 = ResNet-18; smaller is faster)",
    )
    parser.add_argument(
        "--init-weights",
        type=Path,
        metavar="PTH",
        help="start from a torchvision ResNet-18 state dict file (needs --width 64)",
    )
    defaults = ClassifierTrainConfig()
    parser.add_argument("--steps", type=steps_argument, default=defaults.steps)
    parser.add_argument("--batch-size", type=batch_argument, default=defaults.batch_size)
    parser.add_argument("--lr", type=positive_float, default=defaults.lr)
    parser.add_argument("--weight-decay", type=non_negative_float, default=defaults.weight_decay)
    parser.add_argument(
        "--held-out",
        choices=("val", "test"),
        default="test",
        help="split the accuracy is measured on (default test)",
    )
    parser.add_argument(
        "--no-balance", action="store_true", help="draw batches uniformly instead of per class"
    )
    parser.add_argument(
        "--shift",
        type=bounded_int(0, 64),
        default=defaults.shift,
        help="augment: random shifts up to this many pixels (default 0)",
    )
    parser.add_argument(
        "--colour",
        type=non_negative_float,
        default=defaults.colour,
        help="augment: colour jitter strength in [0, 1) (default 0)",
    )
    parser.add_argument(
        "--noise",
        type=non_negative_float,
        default=defaults.noise,
        help="augment: Gaussian noise, largest std in [-1, 1] units (default 0)",
    )
    parser.add_argument(
        "--min-class-images",
        type=bounded_int(0, 10**9),
        default=defaults.min_class_images,
        help="balanced batches leave out expressions with fewer training images (default 0)",
    )
    parser.add_argument("--seed", type=seed_argument, default=defaults.seed)
    parser.add_argument("--num-workers", type=workers_argument, default=defaults.num_workers)
    parser.add_argument("--log-every", type=steps_argument, default=defaults.log_every)
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")


def run(args: argparse.Namespace) -> int:
    source = expression_source(args)
    assert source is not None  # the argument group is required
    kind, root = source
    if args.out.suffix != ".safetensors":
        raise ConfigError(f"--out {args.out}: the classifier is written as a .safetensors file")
    check_output_file(args.out, "--out")
    device = resolve_device(args.device)
    train_config = ClassifierTrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        class_balanced=not args.no_balance,
        shift=args.shift,
        colour=args.colour,
        noise=args.noise,
        min_class_images=args.min_class_images,
        seed=args.seed,
        num_workers=args.num_workers,
        log_every=args.log_every,
    )
    model = ExpressionClassifier(ClassifierConfig(base_channels=args.width, image_size=args.size))
    skipped: tuple[str, ...] = ()
    if args.init_weights is not None:
        skipped = load_torchvision_weights(model, args.init_weights)
        note = f" ({', '.join(skipped)} left new: other class count)" if skipped else ""
        logger.info("started from %s%s", args.init_weights, note)
    train_set = build_expression_dataset(kind, root, "train", args.size)  # type: ignore[arg-type]  # kind: the CLI choices
    held_out = build_expression_dataset(kind, root, args.held_out, args.size)  # type: ignore[arg-type]  # kind, split: the CLI choices
    logger.info(
        "classifier: %d training and %d held-out (%s) images from %s %s on %s",
        len(train_set),
        len(held_out),
        args.held_out,
        kind,
        root,
        device,
    )
    trained = train_classifier(model, train_set, held_out, train_config, device)
    scores = trained.scores
    metadata = {
        "held_out_accuracy": scores.accuracy,
        "held_out_split": args.held_out,
        "held_out_count": scores.count,
        "per_class_accuracy": scores.per_class,
        "dataset": {"kind": kind, "root": str(root), "train_count": len(train_set)},
        "training": {
            "steps": train_config.steps,
            "batch_size": train_config.batch_size,
            "lr": train_config.lr,
            "seed": train_config.seed,
            "class_balanced": train_config.class_balanced,
            "augment": {
                "flip": train_config.flip,
                "shift": train_config.shift,
                "colour": train_config.colour,
                "noise": train_config.noise,
            },
            "min_class_images": train_config.min_class_images,
            "init_weights": str(args.init_weights) if args.init_weights else None,
        },
    }
    path = save_classifier(args.out, trained.model.cpu(), metadata)
    print(f"held-out accuracy ({args.held_out}, {scores.count} images): {scores.accuracy:.4f}")
    for name, value in scores.per_class.items():
        print(f"  {name:<13} {'n/a' if value is None else f'{value:.4f}'}")
    print(f"classifier written to {path}")
    return 0
