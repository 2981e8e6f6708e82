"""Runs on the procedural world with the world-64 recipe, shared by the learning tests and the
recipe tests: the CI's short check's stage configs (variant `ci`), and a stand-in for
`train_stage` that records what each stage was given and writes untrained checkpoints, so
every later stage resolves its config from a real start without any training."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import pytest
import torch

from faceedit.model.discriminator import HierarchicalDiscriminator
from faceedit.model.generator import HierarchicalGenerator
from faceedit.model.parsing import build_parser
from faceedit.weights import checkpoint
from trainer.config import Stage, TrainConfig
from trainer.recipes import Recipe, load_recipe
from trainer.stages.api import stage_config

CI_RECIPE: Final[str] = "world-64:ci"


def ci_recipe() -> Recipe:
    return load_recipe(CI_RECIPE)


def ci_stage_config(stage: Stage, world: Path, init: Path | None = None) -> TrainConfig:
    """The CI's short run of `stage` on `world`: the recipe's variant `ci`, one checkpoint and
    one log line at the end, no loader processes, seed 0."""
    recipe = ci_recipe()
    steps = recipe.config(stage).steps
    data = (
        {"celebamask_hq": str(world / "celebamask-hq")}
        if stage == "parser"
        else {"affectnet": str(world / "affectnet")}
    )
    run = {
        "num_workers": 0,
        "log_every": steps,
        "checkpoint_every": steps,
        "image_every": steps,
        "seed": 0,
    }
    return stage_config(stage, recipe=recipe, init=init, data=data, updates=[run])


def record_stages(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[dict[str, Any]]:
    """Replace `module.train_stage` (and `module.build_world`, if it has one) with stand-ins;
    returns the list every stage's config, init and device are appended to."""
    calls: list[dict[str, Any]] = []

    def fake_train_stage(
        config: TrainConfig, init: Any, out: Any, *, device: str = "auto", **_: Any
    ) -> None:
        calls.append({"config": config, "init": init, "device": device})
        write_untrained_run(config, Path(out))

    monkeypatch.setattr(module, "train_stage", fake_train_stage)
    if hasattr(module, "build_world"):
        monkeypatch.setattr(module, "build_world", lambda config, out: make_world_folders(out))
    return calls


def make_world_folders(out: Path | str) -> None:
    for name in ("celebamask-hq", "affectnet"):
        (Path(out) / name).mkdir(parents=True, exist_ok=True)


def write_untrained_run(config: TrainConfig, out: Path) -> None:
    """The checkpoint a finished run of `config` would leave, with untrained networks."""
    out.mkdir(parents=True, exist_ok=True)
    model = config.model
    torch.manual_seed(0)
    if config.stage == "parser":
        checkpoint.save(out / "parser.safetensors", model, parser=build_parser(model.parser))
    else:
        checkpoint.save(
            out / "model.safetensors",
            model,
            parser=build_parser(model.parser),
            generator=HierarchicalGenerator(model),
            discriminator=HierarchicalDiscriminator(model),
        )
