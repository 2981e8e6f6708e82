"""trainer/config.py: `--set` overrides parsed by field type, YAML merges, resume checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceedit.errors import ConfigError
from trainer.config import (
    TrainConfig,
    apply_overrides,
    check_resumable,
    default_config,
    describe_differences,
    merge,
)


def test_overrides_are_parsed_by_field_type() -> None:
    base = default_config("joint", "tiny")
    config = apply_overrides(
        base,
        [
            "model.region_source=boxes",
            "model.freeze_parser=yes",
            "model.regions=brows,mouth",
            "model.parser.mean=[0.1, 0.2, 0.3]",
            "loss.cycle=2.5",
            "gan_optim.n_critic=3",
            "steps=1_000",
            "local_execution=grouped",
            "nonfinite_check=deferred",
        ],
    )
    assert config.model.region_source == "boxes" and config.model.freeze_parser is True
    assert config.model.regions == ("brows", "mouth")
    assert config.model.parser.mean == (0.1, 0.2, 0.3)
    assert config.loss.cycle == 2.5 and config.gan_optim.n_critic == 3 and config.steps == 1000
    assert config.local_execution == "grouped" and config.nonfinite_check == "deferred"
    text = describe_differences(config, base)
    assert "model.region_source: 'boxes'" in text and "loss.cycle" in text and "seed" not in text
    assert TrainConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("assignment", "named"),
    [
        ("model.parser.kind=resnet", "'resnet'"),
        ("loss.cycle=lots", "'lots'"),
        ("batch_size=0", "batch_size"),
        ("gan_optim.ema_decay=1.5", "1.5"),
        ("model.regions=brows,ears", "ears"),
        ("loss.cylce=1", "cylce"),
        ("model.freeze_parser=maybe", "maybe"),
        ("local_execution=batched", "batched"),
        ("nonfinite_check=never", "never"),
        ("model.parser.kind=bisenet", "at least 2 images"),  # with batch_size=1 below
    ],
)
def test_bad_values_are_refused_by_name(assignment: str, named: str) -> None:
    base = default_config("joint", "tiny").replace(batch_size=1)
    with pytest.raises(ConfigError, match=named.replace("[", r"\[")):
        apply_overrides(base, [assignment])


def test_yaml_values_merge_and_resume_refuses_a_different_experiment(tmp_path: Path) -> None:
    base = default_config("gan", "tiny")
    config = merge(base, {"loss": {"cycle": 3, "attention_tv": 0}, "model": {"regions": ["eyes"]}})
    assert config.loss.cycle == 3.0 and config.model.regions == ("eyes",)
    # allowed changes: how long, how often, and how the networks execute and are checked
    check_resumable(config, config.replace(steps=10, log_every=5, local_execution="grouped"))
    check_resumable(config, config.replace(nonfinite_check="deferred"))
    with pytest.raises(ConfigError, match=r"loss\.cycle"):
        check_resumable(config, merge(config, {"loss.cycle": 4}))


# What configs written before these options were retired (docs/notes/retired-options.md) held.
OLD_DEFAULTS = {
    "parser_optim": {"dice_weight": 0.0, "class_weight_power": 0.0},
    "gan_optim": {"critic_shift": 0, "critic_blur": 0.0, "critic_noise": 0.0},
    "model": {
        "global_generator": {"upsample": "transposed"},
        "local_generator": {"upsample": "transposed"},
    },
}


def _with_old_keys(data: dict, old: dict) -> dict:
    out = dict(data)
    for key, value in old.items():
        out[key] = _with_old_keys(data[key], value) if isinstance(value, dict) else value
    return out


def test_a_config_saved_before_the_retirements_loads_with_its_old_defaults(
    tmp_path: Path,
) -> None:
    """state.pt and config.yaml of old runs hold the retired keys with their defaults: loaded
    (TrainConfig.from_dict), merged (--config old/config.yaml) or set (--set), they are dropped."""
    import yaml

    config = default_config("gan", "tiny")
    old = _with_old_keys(config.to_dict(), OLD_DEFAULTS)
    assert TrainConfig.from_dict(old) == config
    assert merge(config, old) == config
    old_file = tmp_path / "config.yaml"
    old_file.write_text(yaml.safe_dump(old))
    from trainer.config import load_yaml

    assert merge(config, load_yaml(old_file)) == config
    assert (
        apply_overrides(config, ["parser_optim.dice_weight=0", "gan_optim.critic_shift=0"])
        == config
    )
    assert "dice_weight" not in TrainConfig.from_dict(old).to_dict()["parser_optim"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("parser_optim.dice_weight", 1.0),
        ("parser_optim.class_weight_power", 0.5),
        ("gan_optim.critic_shift", 2),
        ("gan_optim.critic_blur", 1.0),
        ("gan_optim.critic_noise", 0.05),
        ("model.global_generator.upsample", "resize"),
    ],
)
def test_a_retired_option_with_another_value_is_refused_by_name(key: str, value: object) -> None:
    config = default_config("gan", "tiny")
    *parents, leaf = key.split(".")
    nested: dict = {leaf: value}
    for name in reversed(parents):
        nested = {name: nested}
    old = _with_old_keys(config.to_dict(), nested)
    for load in (lambda: TrainConfig.from_dict(old), lambda: merge(config, {key: value})):
        with pytest.raises(ConfigError, match=rf"{leaf}=.*retired"):
            load()
    with pytest.raises(ConfigError, match="retired"):
        apply_overrides(config, [f"{key}={value}"])


def test_the_retired_lists_are_not_config_keys() -> None:
    with pytest.raises(ConfigError, match="unknown config key") as error:
        apply_overrides(default_config("gan", "tiny"), ["parser_optim.RETIRED=1"])
    assert "RETIRED" not in str(error.value).split("keys at")[1]
