"""The one way to run a training stage: resolve its config (`stage_config`), then train it
(`train_stage`).

`faceedit-train parser|gan|joint` (trainer/commands), the paper's comparisons
(trainer/judges/comparisons/) and the learning check (trainer/judges/learning/) all call
these two functions; none of them builds or parses a command line.

A config is resolved in one explicit order, later winning: the stage defaults of the preset
(trainer/config.py) -> the recipe (trainer/recipes/) -> `updates` in order (a `--config` file,
then the flags) -> the dataset folders -> `sets` (`--set KEY=VALUE`). Before the updates the
model is fitted to what the stage starts from: the gan stage takes the parser checkpoint's
parser (and valence/arousal when it trains on AffectNet), the joint stage the whole model of
its `init` run. What a stage starts from (`init`):

- parser: torchvision's ImageNet ResNet-18 file for BiSeNet's backbone, or None;
- gan: the stage-1 parser (a parser.safetensors, or its run folder); None with keypoint boxes;
- joint: a gan (or joint) run folder (its state.pt, else its model.safetensors) or a
  .safetensors checkpoint holding generator and parser.

A resumed run (`train_stage(..., resume=True)`) continues the run in `out` from its state.pt;
its config must equal the saved one but for how long to run, how often to report and where
the data lives (trainer/config.py RESUMABLE_CHANGES). `saved_config` reads it, as the base of
a resumed run's resolution.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import torch

from faceedit.errors import ConfigError, TrainingError
from faceedit.fileio import check_output_folder
from faceedit.model.config import PRESETS, ModelConfig, preset
from trainer.config import (
    DEFAULT_PRESET,
    Stage,
    TrainConfig,
    apply_overrides,
    check_resumable,
    default_config,
    merge,
)
from trainer.stages.distributed import DistInfo
from trainer.stages.gan import GanStage, InitialWeights, load_parser
from trainer.stages.joint import load_init, skip_warmup_of_warm_critics
from trainer.stages.loop import Stage as StageProtocol
from trainer.stages.parser import ParserStage
from trainer.stages.runner import run_stage
from trainer.stages.state import STATE_FILE, load_state

if TYPE_CHECKING:
    from trainer.recipes import Recipe

InitSource: TypeAlias = str | os.PathLike[str]
# The dataset folders a stage reads, by their config keys under `data.`.
DATASET_KEYS: Final[tuple[str, ...]] = (
    "celebamask_hq",
    "affectnet",
    "rafd",
    "folders",
    "facial_expressions",
)


@dataclass(frozen=True)
class StageResult:
    """What a finished stage left in its run folder."""

    stage: Stage
    out: Path
    step: int
    checkpoint: Path | None  # parser.safetensors or model.safetensors
    state: Path  # state.pt, for --resume and a joint stage's init
    config: TrainConfig


def stage_config(
    stage: Stage,
    *,
    recipe: Recipe | None = None,
    preset_name: str | None = None,
    init: InitSource | None = None,
    data: Mapping[str, str] | None = None,
    updates: Sequence[Mapping[str, Any]] = (),
    sets: Sequence[str] = (),
    base: TrainConfig | None = None,
) -> TrainConfig:
    """The resolved config of one stage (the order is in the module docstring).

    `recipe` or `preset_name` picks the starting point (neither: the preset an update names,
    the joint stage's init model's, or paper-128); `base` (a resumed run's saved config)
    replaces it, and then the model is not fitted again. `data` holds dataset folders by key
    (`affectnet`: ROOT), made absolute; `updates` are mappings of dotted or nested keys.
    """
    data = {k: str(Path(v).expanduser().resolve()) for k, v in (data or {}).items() if v}
    unknown = sorted(set(data) - set(DATASET_KEYS))
    if unknown:
        raise ConfigError(f"unknown dataset key(s) {unknown}; datasets: {list(DATASET_KEYS)}")
    weights: InitialWeights | None = None
    if base is not None:
        config = base
    else:
        fit, preset_hint, weights = _fit_to_init(stage, init, data)
        config = _starting_point(stage, recipe, preset_name, updates, preset_hint)
        config = config.replace(model=fit(config.model))
    for update in updates:
        if update:
            config = merge(config, update)
    config = merge(config, {f"data.{k}": v for k, v in data.items()})
    config = apply_overrides(config, sets)
    if stage == "joint" and weights is not None:
        warm = skip_warmup_of_warm_critics(config, weights)
        if warm is not config:
            print(
                f"gan_optim.critic_warmup {config.gan_optim.critic_warmup} not applied: the "
                f"critics come trained from {weights.source}",
                file=sys.stderr,
            )
            config = warm
    return config


def saved_config(out: InitSource, stage: Stage) -> TrainConfig:
    """The config of the run in `out` (its state.pt), refused if it is another stage's run."""
    state = _saved_state(Path(out), stage)
    return TrainConfig.from_dict(state["config"])


def train_stage(
    config: TrainConfig,
    init: InitSource | None,
    out: InitSource,
    *,
    device: str = "auto",
    threads: int | None = None,
    resume: bool = False,
    compile: bool = False,
) -> StageResult:
    """Train `config.stage` from `init` into the run folder `out` (or continue it: `resume`).

    `device`: "auto" (CUDA when present), "cpu" or "cuda"; under torchrun each process takes
    its LOCAL_RANK's GPU. `threads`: torch CPU threads for this stage (None: as they are).
    Errors are exceptions (ConfigError, DatasetError, TrainingError, ...), never an exit.
    """
    stage = config.stage
    folder = check_output_folder(out, "--out")
    state: dict[str, Any] | None = None
    if resume:
        state = _saved_state(folder, stage)
        check_resumable(TrainConfig.from_dict(state["config"]), config)
    elif (folder / STATE_FILE).exists():
        raise TrainingError(
            f"{folder} already holds a training run ({STATE_FILE}); continue it with --resume, "
            "or choose another --out so nothing is overwritten"
        )
    build = _builder(config, init, resume)
    saved_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        result = run_stage(
            config, default_config(stage, config.preset), state, build, folder, device, compile
        )
    finally:
        torch.set_num_threads(saved_threads)
    return StageResult(
        stage=stage,
        out=folder,
        step=result.step,
        checkpoint=result.checkpoint_path,
        state=result.state_path,
        config=config,
    )


# ---------------------------------------------------------------- resolution


def _starting_point(
    stage: Stage,
    recipe: Recipe | None,
    preset_name: str | None,
    updates: Sequence[Mapping[str, Any]],
    preset_hint: str | None,
) -> TrainConfig:
    """The recipe's config of the stage, or the stage defaults of the preset asked for."""
    if recipe is not None:
        if preset_name is not None and preset_name != recipe.preset:
            raise ConfigError(
                f"--preset {preset_name}: the recipe {recipe.name} is for preset {recipe.preset}"
            )
        return recipe.config(stage)
    named = next((u["preset"] for u in updates if u and "preset" in u), None)
    chosen = preset_name or named or preset_hint or DEFAULT_PRESET
    return default_config(stage, chosen)


def _fit_to_init(
    stage: Stage, init: InitSource | None, data: Mapping[str, str]
) -> tuple[Callable[[ModelConfig], ModelConfig], str | None, InitialWeights | None]:
    """(how the model is fitted to the stage's start, a preset hint, the joint init's weights)."""
    if stage == "gan":
        loaded = load_parser(str(init)) if init is not None else None

        def fit_gan(model: ModelConfig) -> ModelConfig:
            if loaded is not None:
                model = model.replace(parser=loaded.config.parser)
            if "affectnet" in data:  # AffectNet labels valence and arousal: the model takes them
                model = model.replace(valence_arousal=True)
            return model

        return fit_gan, None, None
    if stage == "joint":
        if init is None:
            raise ConfigError("the joint stage starts from a gan run: give --init runs/g1")
        weights, init_model = load_init(str(init))

        def fit_joint(model: ModelConfig) -> ModelConfig:
            return init_model.replace(freeze_parser=False)

        return fit_joint, matching_preset(init_model), weights
    return (lambda model: model), None, None


def matching_preset(model: ModelConfig) -> str | None:
    """The preset an initial model was made from (so the printed config diff stays short)."""
    plain = model.replace(freeze_parser=False, valence_arousal=False)
    names = sorted(PRESETS)
    exact = [n for n in names if preset(n).replace(parser=plain.parser) == plain]
    same_size = [n for n in names if preset(n).crop_size == model.crop_size]
    return exact[0] if exact else same_size[0] if same_size else None


# ---------------------------------------------------------------- training


def _saved_state(folder: Path, stage: Stage) -> dict[str, Any]:
    state = load_state(folder / STATE_FILE)
    if state.get("stage_name") != stage:
        raise TrainingError(
            f"{folder} holds a {state.get('stage_name')!r} run; resume it with "
            f"'faceedit-train {state.get('stage_name')} --resume'"
        )
    return state


def _builder(
    config: TrainConfig, init: InitSource | None, resume: bool
) -> Callable[[TrainConfig, DistInfo], StageProtocol]:
    """How each process builds the stage: weights from `init`, or none when resuming (the
    state holds them)."""
    if config.stage == "parser":
        if config.data.parsing_source is None:
            raise ConfigError(
                "the parser stage needs --celebamask-hq ROOT (the CelebAMask-HQ folder) or "
                "--facial-expressions DIR (a prepared facial_expressions folder)"
            )
        backbone = str(init) if init is not None and not resume else None
        return lambda c, i: ParserStage.build(c, i, backbone)
    if config.data.expression_source is None:
        raise ConfigError(
            f"the {config.stage} stage needs expression data: --affectnet, --rafd, --folders or "
            "--facial-expressions ROOT"
        )
    if config.stage == "joint":
        if not config.model.freeze_parser and config.data.parsing_source is None:
            raise ConfigError(
                "the joint stage trains the parser and needs --celebamask-hq ROOT for its "
                "supervision (or a prepared --facial-expressions DIR, whose landmark labels then "
                "supervise it; or --set model.freeze_parser=true to keep it fixed)"
            )
        if resume:
            joint_weights = InitialWeights()
        elif init is None:
            raise ConfigError("the joint stage starts from a gan run: give --init runs/g1")
        else:
            joint_weights = load_init(str(init))[0]
        return lambda c, i: GanStage.build(c, i, joint_weights)
    gan_weights = InitialWeights() if resume else _gan_weights(config, init)
    return lambda c, i: GanStage.build(c, i, gan_weights)


def _gan_weights(config: TrainConfig, init: InitSource | None) -> InitialWeights:
    """The gan stage's start: the stage-1 parser (none with keypoint boxes)."""
    if init is None:
        if config.model.region_source == "masks":
            raise ConfigError(
                "the gan stage needs the stage-1 parser for its region masks: --parser "
                "runs/p1/parser.safetensors (or --set model.region_source=boxes for keypoint "
                "boxes)"
            )
        return InitialWeights()
    loaded = load_parser(str(init))
    if loaded.config.parser != config.model.parser:
        raise ConfigError(
            f"model.parser is fixed by --parser {init} ({loaded.config.parser}); do not "
            "override model.parser.* in the gan stage"
        )
    assert loaded.parser is not None
    return InitialWeights(parser=loaded.parser.state_dict(), source=str(loaded.path))
