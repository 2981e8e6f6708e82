from __future__ import annotations

import pytest

from faceedit.errors import ConfigError
from faceedit.model.config import ModelConfig, ParserConfig, preset


@pytest.mark.parametrize("name", ["paper-128", "tiny"])
def test_presets_round_trip_through_json(name: str) -> None:
    config = preset(name)
    assert ModelConfig.from_json(config.to_json()) == config


def test_validation_names_the_bad_value() -> None:
    with pytest.raises(ConfigError, match=r"crop_size.*30"):
        ModelConfig(crop_size=30)
    with pytest.raises(ConfigError, match="'resnet'"):
        ParserConfig(kind="resnet")  # type: ignore[arg-type]  # a kind outside the Literal, on purpose
    with pytest.raises(ConfigError, match="chin"):
        ModelConfig(regions=("eyes", "chin"))
    with pytest.raises(ConfigError, match="unknown field"):
        ModelConfig.from_dict({**preset("tiny").to_dict(), "colour": 3})
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("huge")


def test_condition_dim_counts_valence_arousal() -> None:
    assert preset("tiny").condition_dim == 8
    assert preset("tiny").replace(valence_arousal=True).condition_dim == 10
