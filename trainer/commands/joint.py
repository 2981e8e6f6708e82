"""`faceedit-train joint`: stage 3, parser and GAN fine-tuned end to end.

Starts from a gan run (`--init`), unfreezes the parser, and alternates expression batches
(discriminator step, generator step every n_critic) with CelebAMask-HQ batches for the parser's
own OHEM cross-entropy (weight `loss.parser_loss_weight`). Each parser update therefore holds
both its supervision and the GAN gradients that flowed through the soft region masks.
`--set model.freeze_parser=true` is the paper's "parser frozen" ablation.
"""

from __future__ import annotations

import argparse

from faceedit.errors import ConfigError
from trainer.commands.common import (
    EXPRESSION_GROUP,
    add_common_arguments,
    add_expression_arguments,
    existing_folder,
    expression_roots,
    resolve_config,
    settle_resume,
)
from trainer.stages.api import train_stage
from trainer.stages.gan import CHECKPOINT_NAME
from trainer.stages.state import STATE_FILE

EPILOG = """examples:
  faceedit-train joint --affectnet ~/data/AffectNet --celebamask-hq ~/data/CelebAMask-HQ --init runs/g1 --out runs/j1
  faceedit-train joint --rafd ~/data/RaFD --celebamask-hq ~/data/CelebAMask-HQ --init runs/g1/model.safetensors --out runs/j1
  faceedit-train joint ... --set model.freeze_parser=true --out runs/j-frozen    # ablation
  faceedit-train joint --affectnet WORLD/affectnet --celebamask-hq WORLD/celebamask-hq --init runs/g-world --recipe world-64 --out runs/j-world
  faceedit-train joint --out runs/j1 --resume
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Stage 3: fine-tune parser and hierarchical GAN end to end, alternating expression "
        "batches with CelebAMask-HQ parser batches. Writes "
        f"{CHECKPOINT_NAME} into --out."
    )
    parser.epilog = EPILOG
    add_expression_arguments(parser, EXPRESSION_GROUP)
    parser.add_argument(
        "--celebamask-hq",
        metavar="ROOT",
        help="CelebAMask-HQ root, for the parser's own supervision (not needed with "
        "--set model.freeze_parser=true or --resume)",
    )
    parser.add_argument(
        "--init",
        metavar="RUN_OR_CHECKPOINT",
        help=f"where to start: a gan run folder (its {STATE_FILE}, else its {CHECKPOINT_NAME}) "
        "or a .safetensors checkpoint holding generator and parser; required unless --resume",
    )
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    settle_resume(args)  # --resume auto: continue where a state.pt exists
    roots = expression_roots(args)
    if args.celebamask_hq:
        roots["celebamask_hq"] = existing_folder("--celebamask-hq", args.celebamask_hq)
    if not args.resume and not args.init:
        raise ConfigError("the joint stage starts from a gan run: give --init runs/g1")
    init = None if args.resume else args.init
    config = resolve_config(args, "joint", roots, init)
    train_stage(
        config, init, args.out, device=args.device, resume=args.resume, compile=args.compile
    )
    return 0
