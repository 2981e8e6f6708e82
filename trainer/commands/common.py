"""What the three training commands share: their flags, config resolution, the run folder,
and the run itself (process group, seeding, logging, the loop, clean-up).

Precedence when resolving a config: stage defaults for the preset (or, with --resume, the
saved run's config) < --config YAML file < flags like --steps < --set KEY=VALUE.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from faceedit.errors import ConfigError, DatasetError, TrainingError
from faceedit.fileio import atomic_write_text
from faceedit.model.config import PRESETS, ModelConfig
from trainer.config import (
    DEFAULT_PRESET,
    Stage,
    TrainConfig,
    apply_overrides,
    check_resumable,
    default_config,
    describe_differences,
    load_yaml,
    merge,
    save_yaml,
)
from trainer.stages.distributed import DistInfo, cleanup, setup
from trainer.stages.loop import Stage as StageProtocol
from trainer.stages.loop import seed_everything, set_deterministic, train
from trainer.stages.run_log import NullLogger, RunLogger
from trainer.stages.state import STATE_FILE, load_state, remove_stale_temporaries

CONFIG_FILE = "config.yaml"
TENSORBOARD_DIR = "tensorboard"

# flag attribute -> config key
_FLAG_KEYS: dict[str, str] = {
    "steps": "steps",
    "batch_size": "batch_size",
    "num_workers": "num_workers",
    "seed": "seed",
    "checkpoint_every": "checkpoint_every",
    "log_every": "log_every",
    "image_every": "image_every",
}


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The run flags every stage takes."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    run = parser.add_argument_group("run")
    run.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="run folder: config.yaml, state.pt (resumable state), the inference checkpoint "
        "and tensorboard/ events are written here",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its state.pt, exactly where it stopped; its saved "
        "settings are used (only --steps, the logging/checkpoint intervals, --num-workers and "
        "dataset locations may change)",
    )
    run.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help=f"model size: 'tiny' (32 px, seconds per step on a CPU) or 'paper-128' (128 px "
        f"crops, the real thing); default {DEFAULT_PRESET}",
    )
    run.add_argument(
        "--config",
        metavar="FILE",
        help="YAML file of settings, with the keys of config.yaml (a run's config.yaml works)",
    )
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting by its dotted key, e.g. --set model.parser.kind=unet "
        "--set loss.cycle=5 --set model.region_source=boxes (repeatable; see docs/training.md)",
    )
    run.add_argument("--steps", type=int, help="training iterations (default: the stage's)")
    run.add_argument("--batch-size", type=int, help="images per batch per process (default 16)")
    run.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where to train: auto = CUDA when available (bf16 autocast), else CPU",
    )
    run.add_argument(
        "--num-workers",
        type=int,
        help="DataLoader worker processes (default 4; 0 = load in the main process)",
    )
    run.add_argument("--seed", type=int, help="seed of initialisation, sampling and augmentation")
    run.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="N",
        help="write state.pt and the checkpoint every N steps (and at the end)",
    )
    run.add_argument(
        "--log-every", type=int, metavar="N", help="log losses to TensorBoard every N steps"
    )
    run.add_argument("--image-every", type=int, metavar="N", help="log image grids every N steps")
    run.add_argument(
        "--deterministic",
        action="store_true",
        default=None,
        help="bitwise-repeatable kernels (torch.use_deterministic_algorithms); slower on GPU",
    )


def existing_folder(flag: str, path: str) -> str:
    """`path` as an absolute string if it is a folder; DatasetError naming the flag otherwise."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise DatasetError(f"{flag} {path}: no such folder; give the dataset's root folder")
    if not folder.is_dir():
        raise DatasetError(f"{flag} {path}: not a folder; give the dataset's root folder")
    return str(folder.resolve())


def resolve_config(
    args: argparse.Namespace,
    stage: Stage,
    data: Mapping[str, str],
    adjust_model: Callable[[ModelConfig], ModelConfig] | None = None,
    preset_hint: str | None = None,
) -> tuple[TrainConfig, TrainConfig, dict[str, Any] | None]:
    """(config, the defaults it is compared with, the saved state when resuming).

    `data` holds the dataset roots given on the command line (config keys under `data.`);
    `adjust_model` lets a stage fit the model to its inputs (the parser checkpoint's parser,
    the init run's architecture) before the user's overrides, for new runs only;
    `preset_hint` is the preset to use when neither --preset nor the YAML file names one.
    """
    out = Path(args.out)
    yaml_updates = load_yaml(args.config) if args.config else {}
    state: dict[str, Any] | None = None
    if args.resume:
        state = load_state(out / STATE_FILE)
        if state.get("stage_name") != stage:
            raise TrainingError(
                f"{out} holds a {state.get('stage_name')!r} run; resume it with "
                f"'faceedit-train {state.get('stage_name')} --resume'"
            )
        saved = TrainConfig.from_dict(state["config"])
        if args.preset and args.preset != saved.preset:
            raise ConfigError(
                f"--preset {args.preset}: the run in {out} was made with preset {saved.preset}"
            )
        base = saved
    else:
        if (out / STATE_FILE).exists():
            raise TrainingError(
                f"{out} already holds a training run ({STATE_FILE}); continue it with --resume, "
                "or choose another --out so nothing is overwritten"
            )
        preset_name = args.preset or yaml_updates.get("preset") or preset_hint or DEFAULT_PRESET
        base = default_config(stage, preset_name)
        if adjust_model is not None:
            base = base.replace(model=adjust_model(base.model))
    config = merge(base, yaml_updates) if yaml_updates else base
    flags = {key: getattr(args, attr) for attr, key in _FLAG_KEYS.items()}
    if args.deterministic:
        flags["deterministic"] = True
    flags.update({f"data.{k}": v for k, v in data.items() if v})
    config = merge(config, {k: v for k, v in flags.items() if v is not None})
    config = apply_overrides(config, args.set)
    if state is not None:
        check_resumable(TrainConfig.from_dict(state["config"]), config)
    return config, default_config(stage, config.preset), state


def run_stage(
    args: argparse.Namespace,
    config: TrainConfig,
    defaults: TrainConfig,
    state: Mapping[str, Any] | None,
    build: Callable[[TrainConfig, DistInfo], StageProtocol],
) -> int:
    """Join the process group, build the stage, train it, and always clean up."""
    info = setup(args.device)
    logger: NullLogger = NullLogger()
    try:
        set_deterministic(config.deterministic, info.device)
        out = Path(args.out)
        if info.is_main:
            out.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(out)
            atomic_write_text(out / CONFIG_FILE, save_yaml(config))
            print(describe_differences(config, defaults), file=sys.stderr)
            if info.distributed:
                print(
                    f"torchrun: {info.world_size} processes on {info.device.type}", file=sys.stderr
                )
        # The same seed on every rank builds the same networks; each rank then draws its own.
        seed_everything(config.seed)
        stage = build(config, info)
        seed_everything(config.seed + 1000 * info.rank)
        start = int(state["step"]) if state is not None else 0
        if info.is_main:
            logger = RunLogger(out / TENSORBOARD_DIR, config.steps, start)
            if start:
                logger.message(f"resuming {out} at step {start} of {config.steps}")
        result = train(stage, config, out, info, logger, state)
        logger.message(
            f"done: step {result.step}; inference checkpoint {result.checkpoint_path}; "
            f"training state {result.state_path}; TensorBoard: tensorboard --logdir {out / TENSORBOARD_DIR}"
        )
        return 0
    finally:
        logger.close()
        cleanup()
