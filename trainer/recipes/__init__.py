"""Recipes: one YAML file per trained model, holding every setting that made it.

A recipe file (`trainer/recipes/NAME.yaml`, package data; or any file) has these keys:

- `preset`: the model preset (faceedit/model/config.py) every stage starts from;
- `model` (optional): overrides of the preset's model fields, for every stage;
- `stages`: `parser`, `gan` and `joint`, each the TrainConfig settings of that stage (steps,
  batch size, optimiser, losses, data handling), nested or as dotted keys;
- `check` (optional): what the learning check needs beyond the stages (its world and judge);
- `variants` (optional): named fragments with the same `stages` and `check` keys, merged over the
  recipe (`NAME:VARIANT`, e.g. `world-64:quick`, the learning check's `--quick`).

A run's config is resolved in one explicit order: the stage defaults of the recipe's preset
(trainer/config.py), then the recipe, then a `--config` file, the flags, and `--set`
(trainer/stages/api.py). Files are read like `--config` files (trainer/config.py `load_yaml`:
at most 1 MiB, no aliases), and every key is checked when the recipe loads, so a bad key is a
ConfigError naming the file, the section and the key. Adding a recipe is dropping a file here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from faceedit.configs import build
from faceedit.errors import ConfigError
from faceedit.model.config import PRESETS
from trainer.config import STAGES, Stage, TrainConfig, default_config, load_yaml, merge

RECIPES_DIR: Final[Path] = Path(__file__).resolve().parent
SUFFIX: Final[str] = ".yaml"
TOP_LEVEL: Final[tuple[str, ...]] = ("preset", "model", "stages", "check", "variants")
VARIANT_KEYS: Final[tuple[str, ...]] = ("stages", "check")
# Keys a stage's section may not set: the stage is its name, the preset is the recipe's.
_NOT_IN_A_STAGE: Final[dict[str, str]] = {
    "stage": "a stage's section is named by its stage",
    "preset": "the preset is the recipe's own, at the top of the file",
}


@dataclass(frozen=True)
class CheckSettings:
    """What the learning check needs beyond the stages: its world and its judge.

    `world_seed` None: the check's seed; `gan_identities`, when set, gives the gan stage a
    smaller world of its own (the CI's short check only; the learning check refuses it).
    """

    identities: int
    judge_steps: int
    judge_width: int
    eval_identities: int
    world_seed: int | None = None
    gan_identities: int | None = None
    gan_world_seed: int | None = None

    def __post_init__(self) -> None:
        counts = {
            "identities": self.identities,
            "judge_steps": self.judge_steps,
            "judge_width": self.judge_width,
            "eval_identities": self.eval_identities,
        }
        if self.gan_identities is not None:
            counts["gan_identities"] = self.gan_identities
        bad = {k: v for k, v in counts.items() if isinstance(v, bool) or v <= 0}
        if bad:
            raise ConfigError(f"check: must be positive whole numbers: {bad}")


@dataclass(frozen=True)
class Recipe:
    """A loaded recipe: the settings of every stage of one model (see the module docstring)."""

    name: str  # NAME or NAME:VARIANT (a file's stem)
    path: Path
    preset: str
    model: Mapping[str, Any] = field(default_factory=dict)  # "model.*" keys -> values
    stages: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # flat, per stage
    check: CheckSettings | None = None
    variant: str | None = None  # the variant applied, if any
    variants: tuple[str, ...] = ()  # the variants the file offers

    @property
    def spec(self) -> str:
        """What loads this recipe again: NAME[:VARIANT] for the trainer's own, else the file."""
        own = self.path.parent == RECIPES_DIR and self.path.suffix == SUFFIX
        where = self.path.stem if own else str(self.path)
        return f"{where}:{self.variant}" if self.variant is not None else where

    def settings(self, stage: Stage) -> dict[str, Any]:
        """The dotted settings this recipe gives `stage` (model overrides first)."""
        return {**self.model, **self.stages[stage]}

    def config(self, stage: Stage) -> TrainConfig:
        """The stage defaults of the recipe's preset with the recipe applied."""
        return merge(default_config(stage, self.preset), self.settings(stage))


def recipe_names() -> list[str]:
    """The recipes that ship with the trainer (files in trainer/recipes/)."""
    return sorted(p.stem for p in RECIPES_DIR.glob(f"*{SUFFIX}"))


def recipe_path(spec: str | Path) -> tuple[Path, str | None]:
    """(file, variant) of NAME, NAME:VARIANT, FILE or FILE:VARIANT; ConfigError if none."""
    text = str(spec)
    candidates: list[tuple[str, str | None]] = [(text, None)]
    base, sep, variant = text.rpartition(":")
    if sep and base and variant:
        candidates.append((base, variant))
    for name, chosen in candidates:
        file = Path(name).expanduser()
        if file.is_file():
            return file, chosen
        if name in recipe_names():
            return RECIPES_DIR / f"{name}{SUFFIX}", chosen
    raise ConfigError(
        f"recipe {text!r} is neither a file nor one of the trainer's recipes "
        f"({', '.join(recipe_names())}; NAME:VARIANT picks a variant)"
    )


def load_recipe(spec: str | Path) -> Recipe:
    """A recipe by name (trainer/recipes/NAME.yaml), by file, with `:VARIANT` or without."""
    file, variant = recipe_path(spec)
    data = load_yaml(file)
    where = f"recipe {file}"
    unknown = sorted(set(data) - set(TOP_LEVEL))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; a recipe has {list(TOP_LEVEL)}")
    variants = _mapping(data.get("variants", {}), f"{where}: variants")
    if variant is not None and variant not in variants:
        raise ConfigError(
            f"{where} has no variant {variant!r}; its variants: {sorted(variants) or 'none'}"
        )
    for name, fragment in variants.items():
        fragment = _mapping(fragment, f"{where}: variants.{name}")
        extra = sorted(set(fragment) - set(VARIANT_KEYS))
        if extra:
            raise ConfigError(
                f"{where}: variants.{name}: unknown key(s) {extra}; a variant has "
                f"{list(VARIANT_KEYS)}"
            )
        # every variant is checked when the file loads, not only when it is asked for
        _parse(file, _with_variant(data, fragment), f"{where}, variant {name}", name)
    chosen = _with_variant(data, variants[variant]) if variant is not None else data
    label = f"{where}, variant {variant}" if variant is not None else where
    recipe = _parse(file, chosen, label, variant)
    return dataclasses.replace(recipe, variants=tuple(sorted(variants)))


def _parse(file: Path, data: Mapping[str, Any], where: str, variant: str | None) -> Recipe:
    preset = data.get("preset")
    if preset not in PRESETS:
        raise ConfigError(f"{where}: preset {preset!r} is not one of {sorted(PRESETS)}")
    model = {f"model.{k}": v for k, v in _flat(_mapping(data.get("model", {}), f"{where}: model"))}
    stages_data = _mapping(data.get("stages"), f"{where}: stages")
    missing = [s for s in STAGES if s not in stages_data]
    extra = sorted(set(stages_data) - set(STAGES))
    if missing or extra:
        raise ConfigError(
            f"{where}: stages must be exactly {list(STAGES)} (missing {missing}, unknown {extra})"
        )
    stages: dict[str, dict[str, Any]] = {}
    for stage in STAGES:
        settings = dict(_flat(_mapping(stages_data[stage], f"{where}: stages.{stage}")))
        for key, why in _NOT_IN_A_STAGE.items():
            if key in settings:
                raise ConfigError(f"{where}: stages.{stage}.{key}: {why}")
        stages[stage] = settings
    name = file.stem if variant is None else f"{file.stem}:{variant}"
    check = None
    if "check" in data:
        check_data = _mapping(data["check"], f"{where}: check")
        try:
            check = build(CheckSettings, check_data, "check")
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
        except TypeError as error:  # a required field missing
            raise ConfigError(f"{where}: check: {error}") from None
    recipe = Recipe(
        name=name,
        path=file,
        preset=preset,
        model=model,
        stages=stages,
        check=check,
        variant=variant,
    )
    for stage in STAGES:  # every key and value checked now, named with its section
        try:
            recipe.config(stage)
        except ConfigError as error:
            raise ConfigError(f"{where}: stages.{stage}: {error}") from None
    return recipe


def _with_variant(data: Mapping[str, Any], fragment: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe's data with a variant's fragment merged in, key by key."""
    return _deep_merge(data, {k: v for k, v in fragment.items() if k in VARIANT_KEYS})


def _deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping of keys, got {value!r}")
    return value


def _flat(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, value) pairs of a nested mapping (dotted keys may be written either way)."""
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out += _flat(value, path + ".")
        else:
            out.append((path, value))
    return out
