"""Stage 3's start: the joint stage fine-tunes a gan run's networks end to end with `GanStage`
(trainer/stages/gan.py), the parser trainable unless model.freeze_parser."""

from __future__ import annotations

from pathlib import Path

from faceedit.errors import CheckpointError, ConfigError
from faceedit.model.config import ModelConfig
from faceedit.weights import checkpoint
from trainer.config import TrainConfig, merge
from trainer.stages.gan import CHECKPOINT_NAME, InitialWeights
from trainer.stages.state import STATE_FILE, load_state


def load_init(path: str) -> tuple[InitialWeights, ModelConfig]:
    """Weights and model config of --init: a run folder's state.pt (raw and EMA generator,
    discriminators, parser), else its model.safetensors, or a .safetensors file."""
    source = Path(path).expanduser()
    if source.is_dir():
        if (source / STATE_FILE).is_file():
            state = load_state(source / STATE_FILE)
            if state.get("stage_name") not in ("gan", "joint"):
                raise ConfigError(
                    f"--init {path}: that is a {state.get('stage_name')!r} run; the joint stage "
                    "starts from a gan (or joint) run"
                )
            modules = state["stage"]["modules"]
            has_parser = state["stage"].get("has_parser", True)
            needed = ("generator", "ema", "discriminator") + (("parser",) if has_parser else ())
            missing = [name for name in needed if name not in modules]
            if missing:
                raise ConfigError(
                    f"--init {path}: its {STATE_FILE} holds no weights for {missing}; it is "
                    "damaged or not a gan run's state"
                )
            model = TrainConfig.from_dict(state["config"]).model
            return (
                InitialWeights(
                    parser=modules["parser"] if has_parser else None,
                    generator=modules["generator"],
                    ema=modules["ema"],
                    discriminator=modules["discriminator"],
                    source=f"{source / STATE_FILE} (step {state['step']})",
                ),
                model,
            )
        source = source / CHECKPOINT_NAME
    loaded = checkpoint.load(source)
    if loaded.generator is None:
        raise CheckpointError(
            f"--init {path}: {source} holds no generator ({list(loaded.contents)}); the joint "
            "stage starts from a gan run's model.safetensors"
        )
    return (
        InitialWeights(
            parser=loaded.parser.state_dict() if loaded.parser is not None else None,
            generator=loaded.generator.state_dict(),
            ema=loaded.generator.state_dict(),
            discriminator=(
                loaded.discriminator.state_dict() if loaded.discriminator is not None else None
            ),
            source=str(source),
        ),
        loaded.config,
    )


def skip_warmup_of_warm_critics(config: TrainConfig, init: InitialWeights) -> TrainConfig:
    """`config` without a critic warm-up when --init brought the critics (a gan run's state):
    like the attention start, the warm-up is for fresh critics, and one set for the gan stage
    (a shared --set, `learning-check --quick`'s) would spend a short joint run on the critics
    alone. Applied once, before the run starts, so the saved config resumes the same way."""
    if init.discriminator is None or config.gan_optim.critic_warmup == 0:
        return config
    return merge(config, {"gan_optim.critic_warmup": 0})
