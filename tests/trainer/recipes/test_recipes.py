"""trainer/recipes: the recipe files load safely and completely, every entry point that trains
world-64 resolves exactly the configs it trained with before the recipes existed, and a bad
recipe is refused with its file, section and key named."""

from __future__ import annotations

import fnmatch
import json
import tomllib
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from faceedit.errors import ConfigError
from tests.trainer.world_runs import (
    ci_recipe,
    ci_stage_config,
    make_world_folders,
    record_stages,
    write_untrained_run,
)
from trainer.config import STAGES, TrainConfig, flatten_keys
from trainer.judges.learning import check
from trainer.judges.learning.plan import CheckPlan
from trainer.recipes import RECIPES_DIR, load_recipe, recipe_names

ROOT = Path(__file__).resolve().parents[3]
BEFORE: dict[str, Any] = json.loads((Path(__file__).parent / "configs_before.json").read_text())

# What each stage uses, so a recipe that states every setting of its model names all of it:
# (groups whose every key it must name, single keys). Run settings (seed, intervals, workers,
# dataset folders, determinism) are the caller's.
USED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "parser": (
        ("parser_optim",),
        ("steps", "batch_size", "data.augment", "data.augment_scale", "data.parser_label_fraction"),
    ),
    "gan": (
        ("gan_optim", "loss"),
        ("steps", "batch_size", "data.align", "data.class_balanced", "data.min_class_images"),
    ),
    "joint": (
        ("gan_optim", "loss"),
        (
            "steps",
            "batch_size",
            "data.align",
            "data.class_balanced",
            "data.min_class_images",
            "data.augment",
            "data.augment_scale",
            "data.parser_label_fraction",
            "parser_optim.ohem_threshold",
            "parser_optim.ohem_min_fraction",
            "parser_optim.aux_weight",
        ),
    ),
}


def as_stored(config: TrainConfig, root: Path) -> dict[str, Any]:
    """`config` as config.yaml stores it, with the run's folder written {root}."""
    text = json.dumps(config.to_dict()).replace(str(root.resolve()), "{root}")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def same_as_before(config: TrainConfig, root: Path, old: dict[str, Any]) -> None:
    """`config` equals what the old code resolved: every key, retired ones (which the old
    config held with their defaults, so TrainConfig.from_dict drops them) aside."""
    assert as_stored(config, root) == TrainConfig.from_dict(old).to_dict()


# ---------------------------------------------------------------- nothing the models used changes


@pytest.mark.parametrize("quick", [False, True], ids=["full", "quick"])
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_the_learning_check_trains_exactly_what_it_trained_before(
    quick: bool, device: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The learning check (and so scripts/train_demo.sh and the demo model) resolves, through
    the world-64 recipe, the very configs the stage defaults + PRESET_TRAINING + CheckPlan
    gave each stage, and the same plan."""
    mode = "quick" if quick else "full"
    calls = record_stages(monkeypatch, check)
    plan = replace(CheckPlan.for_mode(0, quick), device=device)
    check.train_stages(plan, tmp_path / f"{mode}-{device}", {}, lambda _: None)
    before = BEFORE["check"][f"{mode}/{device}"]
    assert [c["config"].stage for c in calls] == list(STAGES)
    for call in calls:
        same_as_before(call["config"], tmp_path, before["stages"][call["config"].stage])
        assert call["device"] == device
    # the plan's numbers; the quick plan's critic warm-up moved from its --set into the recipe
    old_plan = {k: v for k, v in before["plan"].items() if k != "extra_settings"}
    new_plan = {k: v for k, v in asdict(plan).items() if k not in ("extra_settings", "recipe")}
    assert new_plan == old_plan
    assert plan.recipe == ("world-64:quick" if quick else "world-64")


def test_the_ci_variant_trains_exactly_what_the_short_check_trained_before(
    tmp_path: Path,
) -> None:
    """The CI's short runs (tests/trainer/judges/learning/test_learns.py, slow) take their worlds and
    stage settings from the recipe's variant `ci`: the same configs as the test's constants
    gave, and the same worlds."""
    root = tmp_path / "ci"
    make_world_folders(root / "pworld")
    make_world_folders(root / "gworld")
    parser = ci_stage_config("parser", root / "pworld")
    same_as_before(parser, tmp_path, BEFORE["ci"]["parser"])
    write_untrained_run(parser, root / "parser")
    gan = ci_stage_config("gan", root / "gworld", root / "parser")
    same_as_before(gan, tmp_path, BEFORE["ci"]["gan"])
    check = ci_recipe().check
    assert check is not None
    constants = BEFORE["ci"]["constants"]
    assert (check.identities, parser.steps, parser.batch_size) == (
        constants["PARSER_IDENTITIES"],
        constants["PARSER_STEPS"],
        constants["PARSER_BATCH"],
    )
    assert (check.world_seed, check.gan_identities, check.gan_world_seed) == (1, 40, 0)


def test_the_paper_recipe_is_the_stage_defaults_and_says_it_was_never_trained() -> None:
    recipe = load_recipe("paper-128")
    for stage in STAGES:
        assert recipe.config(stage) == TrainConfig.from_dict(BEFORE["paper-128"][stage])
    head = (RECIPES_DIR / "paper-128.yaml").read_text().splitlines()[:5]
    assert any("NEVER TRAINED TO THE END" in line for line in head)


def test_the_stage_commands_load_a_recipe_first_and_the_other_options_on_top(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`faceedit-train parser --recipe world-64`: stage defaults -> recipe -> --config ->
    flags -> --set, through the same stage_config as every other entry point."""
    from trainer.commands import parser as parser_command
    from trainer.commands.cli import main

    calls = record_stages(monkeypatch, parser_command)
    world = tmp_path / "world"
    make_world_folders(world)
    celeba = ["--celebamask-hq", str(world / "celebamask-hq")]
    assert main(["parser", *celeba, "--recipe", "world-64", "--out", str(tmp_path / "a")]) == 0
    recipe = load_recipe("world-64")
    expected = recipe.config("parser").replace(
        data=replace(recipe.config("parser").data, celebamask_hq=str(world / "celebamask-hq"))
    )
    assert calls[-1]["config"] == expected
    config_file = tmp_path / "cfg.yaml"
    config_file.write_text("steps: 7\nseed: 5\nparser_optim:\n  adam_lr: 0.5\n")
    argv = ["--recipe", "world-64", "--config", str(config_file), "--steps", "9", "--set", "seed=3"]
    assert main(["parser", *celeba, *argv, "--out", str(tmp_path / "b")]) == 0
    config = calls[-1]["config"]
    assert (config.steps, config.seed, config.parser_optim.adam_lr) == (9, 3, 0.5)
    assert config.data.augment_scale == (1.0, 1.0)  # the recipe's, under the rest
    assert (
        main(
            [
                "parser",
                *celeba,
                "--recipe",
                "world-64",
                "--preset",
                "tiny",
                "--out",
                str(tmp_path / "c"),
            ]
        )
        == 2
    )


# ---------------------------------------------------------------- the files themselves


def test_the_trainer_ships_its_recipes_as_package_data() -> None:
    names = recipe_names()
    assert {"world-64", "paper-128"} <= set(names)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["trainer"]
    for name in names:
        relative = f"recipes/{name}.yaml"
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative


@pytest.mark.parametrize("name", recipe_names())
def test_every_recipe_states_every_setting_its_stages_use(name: str) -> None:
    """Code holds defaults, not recipes: a recipe names each setting its model was trained with,
    so a changed default cannot change a trained model's recipe."""
    data = yaml.safe_load((RECIPES_DIR / f"{name}.yaml").read_text())
    for stage, (groups, keys) in USED.items():
        named = set(flatten_keys(data["stages"][stage]))
        config = load_recipe(name).config(stage).to_dict()
        wanted = {f"{g}.{k}" for g in groups for k in config[g]} | set(keys)
        if stage == "gan":  # the joint stage's parser: not trained here
            wanted -= {"loss.parser_loss_weight"}
        assert wanted - named == set(), (name, stage)


def test_variants_load_by_name_and_from_a_file(tmp_path: Path) -> None:
    quick = load_recipe("world-64:quick")
    assert quick.name == "world-64:quick" and quick.spec == "world-64:quick"
    assert quick.config("parser").steps == 150
    assert quick.config("gan").gan_optim.critic_warmup == 100
    assert (
        quick.config("gan").gan_optim.lr_d == load_recipe("world-64").config("gan").gan_optim.lr_d
    )
    copy = tmp_path / "mine.yaml"
    copy.write_text((RECIPES_DIR / "world-64.yaml").read_text())
    mine = load_recipe(f"{copy}:quick")
    assert mine.spec == f"{copy}:quick" and mine.config("joint").steps == 20
    assert load_recipe(copy).variants == ("ci", "quick")


def _recipe_with(tmp_path: Path, change: Any) -> Path:
    data = yaml.safe_load((RECIPES_DIR / "world-64.yaml").read_text())
    change(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(extra=1), r"unknown key\(s\) \['extra'\]"),
        (lambda d: d.update(preset="huge"), "preset 'huge'"),
        (lambda d: d["stages"].pop("joint"), r"missing \['joint'\]"),
        (
            lambda d: d["stages"]["gan"]["loss"].update(cycel=1.0),
            r"stages\.gan: unknown config key 'loss\.cycel'",
        ),
        (
            lambda d: d["stages"]["parser"].update(steps=-5),
            r"stages\.parser: steps: must be a positive integer",
        ),
        (lambda d: d["stages"]["gan"].update(preset="tiny"), r"stages\.gan\.preset"),
        (
            lambda d: d["variants"]["quick"]["stages"]["gan"].update(stepz=3),
            r"variant quick: stages\.gan: unknown config key 'stepz'",
        ),
        (lambda d: d["variants"]["quick"].update(model={}), r"variants\.quick: unknown key"),
        (lambda d: d["check"].update(judge_steps=0), "check: must be positive"),
        (lambda d: d["check"].pop("identities"), "check"),
        (
            lambda d: d["stages"]["gan"]["gan_optim"].update(critic_shift=2),
            r"critic_shift=2.*retired",
        ),
    ],
)
def test_a_bad_recipe_is_refused_naming_its_file_section_and_key(
    tmp_path: Path, change: Any, message: str
) -> None:
    path = _recipe_with(tmp_path, change)
    with pytest.raises(ConfigError, match=message) as refused:
        load_recipe(path)
    assert str(path) in str(refused.value)


def test_recipe_files_are_read_like_config_files(tmp_path: Path) -> None:
    """The YAML loader of --config: no aliases, a size limit, mappings only; and a name that
    is neither a file nor a recipe lists the recipes."""
    aliased = tmp_path / "alias.yaml"
    aliased.write_text("preset: &p world-64\nmodel: {}\nstages: {parser: {}, gan: {}, joint: *p}\n")
    with pytest.raises(ConfigError, match="aliases"):
        load_recipe(aliased)
    huge = tmp_path / "huge.yaml"
    huge.write_text("# " + "x" * (1024 * 1024 + 10))
    with pytest.raises(ConfigError, match="larger than"):
        load_recipe(huge)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_recipe(listed)
    with pytest.raises(ConfigError, match="world-64") as unknown:
        load_recipe("world-65")
    assert "paper-128" in str(unknown.value)
    with pytest.raises(ConfigError, match="no variant 'slow'"):
        load_recipe("world-64:slow")
