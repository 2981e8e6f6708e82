"""Frozen dataclass configs from plain mappings: one typed builder for the app and the trainer.

`ModelConfig` (rebuilt from a checkpoint's JSON), the trainer's `TrainConfig` (from config.yaml,
state.pt and `--set key=value`) and the expression classifier's config are all nested frozen
dataclasses. `build` makes any of them from a nested mapping: unknown keys are refused, values
are checked against (and converted to) the field annotations, nested dataclasses are built
recursively, and every failure is a ConfigError naming the dotted key. A class may list options
that experiments retired in a `RETIRED` class attribute (name -> the value they always had in
practice): a stored config that still holds one with that value loads with it dropped, any other
value is refused by name, since the code no longer does what it asked for
(docs/notes/retired-options.md). It lives here, beside
errors.py and fileio.py, because faceedit's model configs and the trainer both need it and
neither the model package (networks only) nor the trainer (faceedit never imports it) is the
right owner.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Final, Literal

from faceedit.errors import ConfigError


def build(cls: Any, data: Mapping[str, Any], owner: str = "") -> Any:
    """Construct dataclass `cls` from a nested mapping, with typed values and clear errors.

    `owner` is the dotted name errors start with (the class name, or "" for a top-level config).
    """
    name = owner or "config"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{name}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    data = drop_retired(cls, data, owner)
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError(f"{name}: unknown field(s) {unknown}; known: {sorted(fields)}")
    kwargs: dict[str, Any] = {}
    for field_name, value in data.items():
        key = f"{owner}.{field_name}" if owner else field_name
        hint = hints[field_name]
        if dataclasses.is_dataclass(hint):
            kwargs[field_name] = build(hint, value, key)
        else:
            kwargs[field_name] = coerce(value, hint, key)
    return cls(**kwargs)


def retired_options(cls: Any) -> Mapping[str, Any]:
    """The retired options of dataclass `cls`: name -> the one value still accepted."""
    retired: Mapping[str, Any] = getattr(cls, "RETIRED", {})
    return retired


def check_retired(cls: Any, name: str, value: Any, key: str) -> None:
    """Accept retired option `name` of `cls` only with the value it always had in practice."""
    old = retired_options(cls)[name]
    try:
        same = coerce(value, type(old), key) == old
    except ConfigError:
        same = False
    if not same:
        raise ConfigError(
            f"{key}={value!r}: this option was retired (docs/notes/retired-options.md: it did "
            f"not help in the measurements); only its old default {old!r} is still accepted, "
            "which is what faceedit now always does"
        )


def drop_retired(cls: Any, data: Mapping[str, Any], owner: str = "") -> Mapping[str, Any]:
    """`data` without the retired options of `cls` (each checked by `check_retired`)."""
    retired = retired_options(cls)
    if not isinstance(data, Mapping) or not any(name in retired for name in data):
        return data
    for name in retired:
        if name in data:
            check_retired(cls, name, data[name], f"{owner}.{name}" if owner else name)
    return {k: v for k, v in data.items() if k not in retired}


def plain(value: Any) -> Any:
    """Tuples to lists, recursively: YAML- and torch.load(weights_only)-friendly."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


_TRUE: Final[frozenset[str]] = frozenset({"true", "yes", "on", "1"})
_FALSE: Final[frozenset[str]] = frozenset({"false", "no", "off", "0"})


def parse_text(text: Any, hint: Any, key: str) -> Any:
    """Parse a command-line string into a value of type `hint`."""
    if not isinstance(text, str):
        return coerce(text, hint, key)
    origin = typing.get_origin(hint)
    if origin is tuple:
        inner = text.strip()
        if inner.startswith(("[", "(")) and inner.endswith(("]", ")")):
            inner = inner[1:-1]
        items = [item.strip() for item in inner.split(",") if item.strip()]
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(parse_text(item, args[0], key) for item in items)
        if len(items) != len(args):
            raise ConfigError(f"{key} needs {len(args)} comma-separated values, got {text!r}")
        return tuple(parse_text(item, arg, key) for item, arg in zip(items, args, strict=True))
    if dataclasses.is_dataclass(hint):
        raise ConfigError(f"{key} is a group of settings; set its fields, e.g. {key}.<field>=...")
    return coerce(text, hint, key)


def coerce(value: Any, hint: Any, key: str) -> Any:
    """Check/convert a (YAML-typed or string) value to the field type `hint`."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{key}={value!r} is not one of {list(choices)}")
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(hint):
            try:
                return coerce(value, arg, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError("; ".join(errors))
    if origin is tuple:
        if isinstance(value, str):
            return parse_text(value, hint, key)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key} needs a list of values, got {value!r}")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], key) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"{key} needs {len(args)} values, got {list(value)}")
        return tuple(coerce(v, a, key) for v, a in zip(value, args, strict=True))
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if hint is float:
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            with contextlib.suppress(ValueError):
                number = float(value)
        if number is None:
            raise ConfigError(f"{key} must be a number, got {value!r}")
        if not math.isfinite(number):
            raise ConfigError(f"{key} must be a finite number, got {value!r}")
        return number
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key} must be a string, got {value!r}")
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} is a group of settings and needs a mapping, got {value!r}")
        return value
    return value
