"""One training run: process group, run folder, seeding, logging, the loop, clean-up."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from faceedit.fileio import atomic_write_text, make_folder
from trainer.config import TrainConfig, describe_differences, save_yaml
from trainer.stages.distributed import DistInfo, cleanup, setup
from trainer.stages.loop import RunResult, check_fits, seed_everything, set_deterministic, train
from trainer.stages.loop import Stage as StageProtocol
from trainer.stages.preemption import stop_on_sigterm
from trainer.stages.run_log import NullLogger, RunLogger
from trainer.stages.speed import configure_backends
from trainer.stages.state import remove_stale_temporaries

CONFIG_FILE: Final[str] = "config.yaml"
TENSORBOARD_DIR: Final[str] = "tensorboard"


def run_stage(
    config: TrainConfig,
    defaults: TrainConfig,
    state: Mapping[str, Any] | None,
    build: Callable[[TrainConfig, DistInfo], StageProtocol],
    out: str | Path,
    device: str,
    compile: bool = False,
) -> RunResult:
    """Join the process group, build the stage, train it into `out`, and always clean up.

    `defaults` is what the printed config is compared with; `state` the saved run when resuming.
    Called by trainer.stages.api.train_stage, which resolves and checks what it is given.
    """
    info = setup(device, compile)
    logger: NullLogger = NullLogger()
    try:
        set_deterministic(config.deterministic, info.device)
        configure_backends(info, config.deterministic)
        out = Path(out)
        if info.is_main:
            make_folder(out, "--out")
            remove_stale_temporaries(out)
        # The same seed on every rank builds the same networks; each rank then draws its own.
        seed_everything(config.seed)
        stage = build(config, info)
        if state is not None:
            check_fits(stage, state)  # before anything in the run folder is written
        if info.is_main:
            atomic_write_text(out / CONFIG_FILE, save_yaml(config))
            print(describe_differences(config, defaults), file=sys.stderr)
            if info.distributed:
                print(
                    f"torchrun: {info.world_size} processes on {info.device.type}", file=sys.stderr
                )
        seed_everything(config.seed + 1000 * info.rank)
        start = int(state["step"]) if state is not None else 0
        if info.is_main:
            logger = RunLogger(out / TENSORBOARD_DIR, config.steps, start)
            if start:
                logger.message(f"resuming {out} at step {start} of {config.steps}")
        with stop_on_sigterm() as stop:
            result = train(stage, config, out, info, logger, state, stop)
        logger.message(
            f"done: step {result.step}; inference checkpoint {result.checkpoint_path}; "
            f"training state {result.state_path}; TensorBoard: tensorboard --logdir {out / TENSORBOARD_DIR}"
        )
        return result
    finally:
        logger.close()
        cleanup()
