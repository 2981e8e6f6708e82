"""`faceedit-train parser`: stage 1, the face parser on CelebAMask-HQ or on prepared
facial_expressions faces with landmark labels (trainer/stages/parser.py).

Writes `parser.safetensors` (what `faceedit-train gan --parser` and the app load). The flags
become the arguments of trainer.stages.api's `stage_config` and `train_stage`.
"""

from __future__ import annotations

import argparse

from trainer.commands.common import (
    add_common_arguments,
    existing_folder,
    resolve_config,
    settle_resume,
)
from trainer.stages.api import train_stage
from trainer.stages.parser import CHECKPOINT_NAME

EPILOG = """examples:
  faceedit-train parser --celebamask-hq ~/data/CelebAMask-HQ --preset tiny --steps 200 --out runs/p1
  faceedit-train parser --celebamask-hq WORLD/celebamask-hq --recipe world-64 --out runs/p-world
  faceedit-train parser --celebamask-hq ~/data/CelebAMask-HQ --out runs/p1          # paper-128: BiSeNet at 256 px
  faceedit-train parser --celebamask-hq ~/data/CelebAMask-HQ --set model.parser.kind=unet --out runs/p-unet
  faceedit-train parser --facial-expressions ~/data/fe128 --preset tiny --out runs/p-real   # prepared real faces
  faceedit-train parser --out runs/p1 --resume                                       # continue after a stop
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Stage 1: train the face parser (BiSeNet or UNet, 19 classes) on CelebAMask-HQ, or on "
        "real faces whose labels were drawn from landmarks (a prepared facial_expressions "
        "folder; unlabelled pixels are ignored). "
        f"Writes {CHECKPOINT_NAME} into --out."
    )
    parser.epilog = EPILOG
    data = parser.add_argument_group("data")
    data.add_argument(
        "--celebamask-hq",
        metavar="ROOT",
        help="CelebAMask-HQ root (holding CelebA-HQ-img/ and CelebAMask-HQ-mask-anno/); "
        "not needed with --resume",
    )
    data.add_argument(
        "--facial-expressions",
        metavar="DIR",
        help="a folder made by 'faceedit-train prepare --facial-expressions' (used when "
        "--celebamask-hq is not given)",
    )
    data.add_argument(
        "--backbone-weights",
        metavar="FILE",
        help="torchvision's ImageNet ResNet-18 file (resnet18-f37072fd.pth, downloaded by you) "
        "to start BiSeNet's backbone from, as the face-parsing reference recipe does; read "
        "without executing pickled code. New runs only",
    )
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    settle_resume(args)  # --resume auto: continue where a state.pt exists
    roots = {}
    if args.celebamask_hq:
        roots["celebamask_hq"] = existing_folder("--celebamask-hq", args.celebamask_hq)
    if args.facial_expressions:
        roots["facial_expressions"] = existing_folder(
            "--facial-expressions", args.facial_expressions
        )
    backbone = None if args.resume else args.backbone_weights
    config = resolve_config(args, "parser", roots)
    train_stage(
        config, backbone, args.out, device=args.device, resume=args.resume, compile=args.compile
    )
    return 0
