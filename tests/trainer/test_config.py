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
        ],
    )
    assert config.model.region_source == "boxes" and config.model.freeze_parser is True
    assert config.model.regions == ("brows", "mouth")
    assert config.model.parser.mean == (0.1, 0.2, 0.3)
    assert config.loss.cycle == 2.5 and config.gan_optim.n_critic == 3 and config.steps == 1000
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
    check_resumable(config, config.replace(steps=10, log_every=5))  # allowed changes
    with pytest.raises(ConfigError, match=r"loss\.cycle"):
        check_resumable(config, merge(config, {"loss.cycle": 4}))
