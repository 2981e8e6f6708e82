"""faceedit.configs: the one builder of frozen dataclass configs from mappings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from faceedit.configs import build, parse_text, plain
from faceedit.errors import ConfigError
from faceedit.model.config import ModelConfig, preset
from trainer.config import TrainConfig, default_config
from trainer.judges.classifier import ClassifierConfig


@dataclass(frozen=True)
class Inner:
    kind: Literal["a", "b"] = "a"
    sizes: tuple[int, ...] = (1,)
    rate: float = 0.5


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)
    flag: bool = False


def test_builds_nested_dataclasses_with_typed_values() -> None:
    built = build(Outer, {"name": "y", "inner": {"sizes": [2, 3], "rate": 1}, "flag": "yes"})
    assert built == Outer(name="y", inner=Inner(sizes=(2, 3), rate=1.0), flag=True)
    assert isinstance(built.inner.rate, float)
    assert plain({"a": (1, (2, 3))}) == {"a": [1, [2, 3]]}
    assert parse_text("[4, 5]", tuple[int, ...], "sizes") == (4, 5)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"colour": 3}, r"Outer: unknown field\(s\) \['colour'\]"),
        ({"inner": {"kind": "c"}}, r"Outer\.inner\.kind='c' is not one of \['a', 'b'\]"),
        ({"inner": {"sizes": "x"}}, r"Outer\.inner\.sizes must be an integer"),
        ({"inner": 3}, r"Outer\.inner is a group of settings|Outer\.inner: expected a mapping"),
        ({"flag": "maybe"}, r"Outer\.flag must be true or false"),
    ],
)
def test_bad_data_names_the_dotted_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(Outer, data, "Outer")


def test_app_trainer_and_classifier_configs_share_it() -> None:
    model = preset("tiny")
    assert ModelConfig.from_dict(model.to_dict()) == model
    train = default_config("joint", "tiny")
    assert TrainConfig.from_dict(train.to_dict()) == train
    classifier = ClassifierConfig(base_channels=8, image_size=32)
    assert ClassifierConfig.from_dict(classifier.to_dict()) == classifier
    for builder, data, owner in [
        (ModelConfig.from_dict, {"colour": 1}, "ModelConfig"),
        (TrainConfig.from_dict, {"colour": 1}, "config"),
        (ClassifierConfig.from_dict, {"colour": 1}, "ClassifierConfig"),
    ]:
        with pytest.raises(ConfigError, match=rf"^{owner}: unknown field\(s\) \['colour'\]"):
            builder(data)
    with pytest.raises(ConfigError, match=r"model\.parser\.kind='resnet'"):
        TrainConfig.from_dict({**train.to_dict(), "model": {"parser": {"kind": "resnet"}}})
