"""What a learning check trains: its plan (sizes and step counts, from a recipe) and each
stage's resolved config and folder."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from faceedit.errors import ConfigError
from trainer.config import Stage, TrainConfig
from trainer.recipes import Recipe, load_recipe
from trainer.stages.api import stage_config

# The recipe whose stages the check trains; `--quick` is its variant QUICK.
RECIPE: Final[str] = "world-64"
QUICK: Final[str] = "quick"
SIZE: Final[int] = 64


@dataclass(frozen=True)
class CheckPlan:
    """Sizes and step counts of one check, all from its recipe (`from_recipe`); report.json
    keeps the plan a check trained with."""

    identities: int  # of the world: train, val and held-out test identities
    parser_steps: int
    gan_steps: int  # the critic warm-up (gan_optim.critic_warmup) included
    joint_steps: int
    batch_size: int  # the parser stage's
    gan_batch_size: int  # the gan and joint stages'
    judge_steps: int
    judge_width: int
    eval_identities: int  # held-out identities scored (all 8 sources each)
    seed: int = 0
    extra_settings: tuple[str, ...] = ()  # --set KEY=VALUE for the gan and joint stages
    device: str = (
        "cpu"  # where the stages and the judge train; the evaluation always runs on the CPU
    )
    recipe: str = RECIPE  # NAME, NAME:VARIANT or a file: the stages' settings

    def scaled(self, factor: int) -> CheckPlan:
        """Every step budget (parser, gan, joint, judge) times `factor`: the same check with the
        longer training a GPU affords. Warm-up settings (critic_warmup) are not scaled."""
        return replace(
            self,
            parser_steps=self.parser_steps * factor,
            gan_steps=self.gan_steps * factor,
            joint_steps=self.joint_steps * factor,
            judge_steps=self.judge_steps * factor,
        )

    @classmethod
    def from_recipe(cls, recipe: Recipe, seed: int = 0) -> CheckPlan:
        """The plan of `recipe`: its stages' steps and batch sizes and its `check` section."""
        check = recipe.check
        if check is None:
            raise ConfigError(
                f"recipe {recipe.name} ({recipe.path}) has no `check` section: the learning "
                "check needs its world's identities and its judge's steps and width"
            )
        if check.gan_identities is not None or check.world_seed is not None:
            raise ConfigError(
                f"recipe {recipe.name}: its check gives the stages worlds of their own "
                "(world_seed, gan_identities: the CI's short check); the learning check makes "
                "one world, from its --seed"
            )
        configs = {stage: recipe.config(stage) for stage in ("parser", "gan", "joint")}
        if configs["parser"].model.crop_size != SIZE:
            raise ConfigError(
                f"recipe {recipe.name}: the learning check's world is {SIZE} px; the recipe's "
                f"model crops {configs['parser'].model.crop_size} px"
            )
        return cls(
            identities=check.identities,
            parser_steps=configs["parser"].steps,
            gan_steps=configs["gan"].steps,
            joint_steps=configs["joint"].steps,
            batch_size=configs["parser"].batch_size,
            gan_batch_size=configs["gan"].batch_size,
            judge_steps=check.judge_steps,
            judge_width=check.judge_width,
            eval_identities=check.eval_identities,
            seed=seed,
            recipe=recipe.spec,
        )

    @classmethod
    def for_mode(cls, seed: int, quick: bool, recipe: str = RECIPE) -> CheckPlan:
        """The plan of `recipe` (a name or a file), or of its quick variant (`--quick`)."""
        return cls.from_recipe(load_recipe(f"{recipe}:{QUICK}" if quick else recipe), seed)


def run_settings(plan: CheckPlan, steps: int, batch: int) -> dict[str, Any]:
    """What the check sets beyond the recipe for one stage: its budget, seed and reporting."""
    return {
        "steps": steps,
        "batch_size": batch,
        "seed": plan.seed,
        # loader processes only where the GPU would otherwise wait; the CPU check loads in-process
        "num_workers": 0 if plan.device == "cpu" else -1,
        "log_every": max(1, steps // 30),
        "checkpoint_every": steps,
        "image_every": steps,
    }


def run_paths(out: Path) -> dict[str, Path]:
    """Where a check keeps its world and its stages' runs."""
    runs = out / "runs"
    return {
        "world": out / "world",
        "parser": runs / "parser",
        "gan": runs / "gan",
        "joint": runs / "joint",
    }


def check_stage_config(
    plan: CheckPlan, stage: Stage, out: Path, recipe: Recipe | None = None
) -> tuple[TrainConfig, Path | None]:
    """One stage's resolved config and what it starts from: the recipe, then the plan's
    budget, the world's folders and the plan's extra settings (stage_config). The stage before
    it must have run (the gan stage takes the parser run's parser, the joint stage the gan run)."""
    recipe = recipe if recipe is not None else load_recipe(plan.recipe)
    paths = run_paths(out)
    world = paths["world"]
    celeba = {"celebamask_hq": str(world / "celebamask-hq")}
    affectnet = {"affectnet": str(world / "affectnet")}
    init, data, steps, batch = {
        "parser": (None, celeba, plan.parser_steps, plan.batch_size),
        "gan": (paths["parser"], affectnet, plan.gan_steps, plan.gan_batch_size),
        "joint": (paths["gan"], {**affectnet, **celeba}, plan.joint_steps, plan.gan_batch_size),
    }[stage]
    config = stage_config(
        stage,
        recipe=recipe,
        init=init,
        data=data,
        updates=[run_settings(plan, steps, batch)],
        sets=plan.extra_settings if stage != "parser" else (),
    )
    return config, init
