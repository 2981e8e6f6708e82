"""`faceedit-train joint`: stage 3, parser and GAN fine-tuned end to end.

Starts from a gan run (`--init`), unfreezes the parser, and alternates expression batches
(discriminator step, generator step every n_critic) with CelebAMask-HQ batches for the parser's
own OHEM cross-entropy (weight `loss.parser_loss_weight`). Each parser update therefore holds
both its supervision and the GAN gradients that flowed through the soft region masks.
`--set model.freeze_parser=true` is the paper's "parser frozen" ablation.
"""

from __future__ import annotations

import argparse
import sys

from faceedit.errors import ConfigError
from faceedit.model.config import PRESETS, ModelConfig, preset
from trainer.commands.common import (
    EXPRESSION_GROUP,
    add_common_arguments,
    add_expression_arguments,
    existing_folder,
    expression_roots,
    resolve_config,
)
from trainer.stages.gan import CHECKPOINT_NAME, GanStage, InitialWeights
from trainer.stages.joint import load_init, skip_warmup_of_warm_critics
from trainer.stages.runner import run_stage
from trainer.stages.state import STATE_FILE

EPILOG = """examples:
  faceedit-train joint --affectnet ~/data/AffectNet --celebamask-hq ~/data/CelebAMask-HQ --init runs/g1 --out runs/j1
  faceedit-train joint --rafd ~/data/RaFD --celebamask-hq ~/data/CelebAMask-HQ --init runs/g1/model.safetensors --out runs/j1
  faceedit-train joint ... --set model.freeze_parser=true --out runs/j-frozen    # ablation
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
    roots = expression_roots(args)
    if args.celebamask_hq:
        roots["celebamask_hq"] = existing_folder("--celebamask-hq", args.celebamask_hq)
    init: InitialWeights | None = None
    init_model: ModelConfig | None = None
    if not args.resume:
        if not args.init:
            raise ConfigError("the joint stage starts from a gan run: give --init runs/g1")
        init, init_model = load_init(args.init)

    def adjust(model: ModelConfig) -> ModelConfig:
        assert init_model is not None
        return init_model.replace(freeze_parser=False)

    config, defaults, state = resolve_config(
        args, "joint", roots, adjust if init_model else None, matching_preset(init_model)
    )
    if config.data.expression_source is None:
        raise ConfigError(
            "the joint stage needs expression data: --affectnet, --rafd, --folders or "
            "--facial-expressions ROOT"
        )
    if not config.model.freeze_parser and config.data.parsing_source is None:
        raise ConfigError(
            "the joint stage trains the parser and needs --celebamask-hq ROOT for its supervision "
            "(or a prepared --facial-expressions DIR, whose landmark labels then supervise it; "
            "or --set model.freeze_parser=true to keep it fixed)"
        )
    weights = init or InitialWeights()
    warm = skip_warmup_of_warm_critics(config, weights)
    if warm is not config:
        print(
            f"gan_optim.critic_warmup {config.gan_optim.critic_warmup} not applied: the critics "
            f"come trained from --init {args.init}",
            file=sys.stderr,
        )
        config = warm
    return run_stage(
        config,
        defaults,
        state,
        lambda c, i: GanStage.build(c, i, weights),
        args.out,
        args.device,
        args.compile,
    )


def matching_preset(model: ModelConfig | None) -> str | None:
    """The preset an initial model was made from (so the printed config diff stays short)."""
    if model is None:
        return None
    plain = model.replace(freeze_parser=False, valence_arousal=False)
    names = sorted(PRESETS)
    exact = [n for n in names if preset(n).replace(parser=plain.parser) == plain]
    same_size = [n for n in names if preset(n).crop_size == model.crop_size]
    return exact[0] if exact else same_size[0] if same_size else None
