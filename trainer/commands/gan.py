"""`faceedit-train gan`: stage 2, the hierarchical GAN on expression data with the parser frozen.

The training itself is `GanStage` (trainer/stages/gan.py). Writes `model.safetensors`: the EMA
generator, the parser and the discriminators.
"""

from __future__ import annotations

import argparse

from faceedit.errors import ConfigError
from faceedit.model.config import ModelConfig
from trainer.commands.common import (
    EXPRESSION_GROUP,
    add_common_arguments,
    add_expression_arguments,
    expression_roots,
    resolve_config,
)
from trainer.stages.gan import CHECKPOINT_NAME, GanStage, InitialWeights, load_parser
from trainer.stages.parser import CHECKPOINT_NAME as PARSER_CHECKPOINT
from trainer.stages.runner import run_stage

EPILOG = """examples:
  faceedit-train gan --affectnet ~/data/AffectNet --parser runs/p1/parser.safetensors --out runs/g1
  faceedit-train gan --rafd ~/data/RaFD --parser runs/p1 --preset tiny --steps 200 --out runs/g-tiny
  faceedit-train gan --folders ~/my_faces --parser runs/p1 --out runs/g-mine
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
    roots = expression_roots(args)
    loaded = load_parser(args.parser) if args.parser and not args.resume else None

    def adjust(model: ModelConfig) -> ModelConfig:
        if loaded is not None:
            model = model.replace(parser=loaded.config.parser)
        if "affectnet" in roots:
            model = model.replace(valence_arousal=True)
        return model

    config, defaults, state = resolve_config(args, "gan", roots, adjust)
    if config.data.expression_source is None:
        raise ConfigError(
            "the gan stage needs expression data: --affectnet, --rafd, --folders or "
            "--facial-expressions ROOT"
        )
    init = InitialWeights()
    if state is None:
        if loaded is None and config.model.region_source == "masks":
            raise ConfigError(
                "the gan stage needs the stage-1 parser for its region masks: --parser "
                "runs/p1/parser.safetensors (or --set model.region_source=boxes for keypoint boxes)"
            )
        if loaded is not None:
            if loaded.config.parser != config.model.parser:
                raise ConfigError(
                    f"model.parser is fixed by --parser {args.parser} ({loaded.config.parser}); "
                    "do not override model.parser.* in the gan stage"
                )
            assert loaded.parser is not None
            init = InitialWeights(parser=loaded.parser.state_dict(), source=str(loaded.path))
    return run_stage(
        config,
        defaults,
        state,
        lambda c, i: GanStage.build(c, i, init),
        args.out,
        args.device,
        args.compile,
    )
