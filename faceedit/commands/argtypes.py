"""argparse `type=` converters shared by the subcommands and the app, so all word refusals alike.

torch-free: `faceedit app` parses its flags with these before the window (and torch) loads.

Each raises argparse.ArgumentTypeError, which argparse turns into a usage error naming the option.
"""

from __future__ import annotations

import argparse
import math

from faceedit.vocab.expressions import parse_expression_spec
from faceedit.vocab.labels import REGION_NAMES


def non_negative_int(text: str) -> int:
    """A whole number >= 0 (e.g. warm-up runs, where none is a valid choice)."""
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1 (counts and intervals, where zero would mean no work at all)."""
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def int_list(text: str) -> tuple[int, ...]:
    """Comma-separated whole numbers >= 1: '128,256' -> (128, 256); empty parts are ignored."""
    return tuple(positive_int(part) for part in text.split(",") if part.strip())


def name_list(text: str) -> tuple[str, ...]:
    """Comma-separated names, stripped: 'tiny, paper-128' -> ('tiny', 'paper-128')."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def expression_argument(text: str) -> dict[str, float]:
    """argparse type for --expression: 'happy=0.8,surprised=0.2'."""
    try:
        weights = parse_expression_spec(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    _check_weights(weights, text)
    return weights


def region_argument(text: str) -> tuple[str, dict[str, float]]:
    """argparse type for --region: 'mouth:happy=1' -> ('mouth', {'happy': 1.0})."""
    region, sep, spec = text.partition(":")
    region = region.strip().lower()
    if not sep or not region or not spec.strip():
        raise argparse.ArgumentTypeError(
            f"{text!r} is not REGION:EXPRESSIONS; write e.g. mouth:happy=1 or "
            "eyes:surprised=0.5,happy=0.5"
        )
    if region not in REGION_NAMES:
        raise argparse.ArgumentTypeError(
            f"unknown region {region!r} in {text!r}; regions are {', '.join(REGION_NAMES)}"
        )
    try:
        weights = parse_expression_spec(spec)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"in {text!r}: {error}") from None
    _check_weights(weights, text)
    return region, weights


def editable_argument(text: str) -> tuple[str, ...]:
    """argparse type for --editable: 'mouth,eyes' -> ('mouth', 'eyes')."""
    names = tuple(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    if not names:
        raise argparse.ArgumentTypeError(
            f"--editable needs at least one region name; regions are {', '.join(REGION_NAMES)}"
        )
    unknown = [n for n in names if n not in REGION_NAMES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown region(s) {', '.join(map(repr, unknown))} in {text!r}; regions are "
            f"{', '.join(REGION_NAMES)}"
        )
    return names


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _check_weights(weights: dict[str, float], text: str) -> None:
    bad = {k: v for k, v in weights.items() if not math.isfinite(v) or v < 0}
    if bad:
        raise argparse.ArgumentTypeError(f"weights must be finite and >= 0 in {text!r}: {bad}")
