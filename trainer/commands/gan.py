"""`faceedit-train gan`: stage 2, the hierarchical GAN on expression data with the parser frozen.

The training itself is `GanStage` (trainer/stages/gan.py), run by trainer.stages.api's
`train_stage`. Writes `model.safetensors`: the EMA generator, the parser and the discriminators.
"""

from __future__ import annotations

import argparse

from trainer.commands.common import (
    EXPRESSION_GROUP,
    add_common_arguments,
    add_expression_arguments,
    expression_roots,
    resolve_config,
    settle_resume,
)
from trainer.stages.api import train_stage
from trainer.stages.gan import CHECKPOINT_NAME
from trainer.stages.parser import CHECKPOINT_NAME as PARSER_CHECKPOINT

EPILOG = """examples:
  faceedit-train gan --affectnet ~/data/AffectNet --parser runs/p1/parser.safetensors --out runs/g1
  faceedit-train gan --rafd ~/data/RaFD --parser runs/p1 --preset tiny --steps 200 --out runs/g-tiny
  faceedit-train gan --folders ~/my_faces --parser runs/p1 --out runs/g-mine
  faceedit-train gan --affectnet WORLD/affectnet --parser runs/p-world --recipe world-64 --out runs/g-world
  faceedit-train gan --affectnet ~/data/AffectNet --set model.region_source=boxes --out runs/g-boxes
  faceedit-train gan --out runs/g1 --resume
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Stage 2: train the hierarchical generator and its discriminators (WGAN-GP, expression "
        "classification, cycle, attention losses) with the stage-1 parser frozen. Writes "
        f"{CHECKPOINT_NAME} (EMA generator + parser + discriminators) into --out."
    )
    parser.epilog = EPILOG
    add_expression_arguments(parser, EXPRESSION_GROUP)
    parser.add_argument(
        "--parser",
        metavar="CHECKPOINT",
        help=f"the stage-1 parser: a .safetensors file or a parser run folder (its "
        f"{PARSER_CHECKPOINT}); required unless --set model.region_source=boxes or --resume",
    )
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    settle_resume(args)  # --resume auto: continue where a state.pt exists
    roots = expression_roots(args)
    parser = None if args.resume else args.parser
    config = resolve_config(args, "gan", roots, parser)
    train_stage(
        config, parser, args.out, device=args.device, resume=args.resume, compile=args.compile
    )
    return 0
