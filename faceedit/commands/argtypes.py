"""argparse `type=` converters shared by the subcommands, so every command words refusals alike.

Each raises argparse.ArgumentTypeError, which argparse turns into a usage error naming the option.
"""

from __future__ import annotations

import argparse


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


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
