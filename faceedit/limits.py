"""The ranges faceedit accepts (expression weights, seeds, steps, batch sizes, ...) and the
argparse `type=` converters that enforce them, shared by `faceedit`'s commands, the app and the
trainer, so all word refusals alike.

A neutral module, beside errors.py and fileio.py: the UI and the trainer use it without
importing the command line (faceedit/commands), and it is torch-free, because the app parses
its flags with these before the window (and torch) loads.

Each converter raises argparse.ArgumentTypeError, which argparse turns into a usage error naming
the option; the trainer's configs check the same limits (trainer/config.py).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Final

from faceedit.vocab.expressions import parse_expression_spec
from faceedit.vocab.labels import REGION_NAMES

# The documented range of an expression weight: 0 (none) to 2 (twice the trained strength).
# Beyond it the generators extrapolate far outside anything they were trained on (at 1e30
# every pixel saturates and the face turns black).
MAX_EXPRESSION_WEIGHT: Final[float] = 2.0
# Camera indices OpenCV accepts (faceedit.media.sources.MAX_CAMERA_INDEX; torch- and cv2-free here).
MAX_CAMERA_INDEX: Final[int] = 999
# Smallest and largest face a detector may be asked to look for, in pixels.
MIN_FACE_PIXELS: Final[int] = 12
MAX_FACE_PIXELS: Final[int] = 8192
# The longest a command waits for something (a day).
MAX_WAIT_S: Final[float] = 86400.0


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


def bounded_int(low: int, high: int, what: str = "") -> Callable[[str], int]:
    """argparse type for a whole number in [low, high]; `what` says what the bounds mean."""

    def convert(text: str) -> int:
        value = _whole_number(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be from {low} to {high}{f' ({what})' if what else ''}, got {value}"
            )
        return value

    convert.__name__ = f"whole number in [{low}, {high}]"
    return convert


def camera_index(text: str) -> int:
    """argparse type for --camera: 0 (the first camera) .. MAX_CAMERA_INDEX."""
    return bounded_int(0, MAX_CAMERA_INDEX, "0 is the first camera")(text)


def positive_seconds(text: str) -> float:
    """argparse type for a timeout: a finite number of seconds above 0, at most a day."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or not 0 < value <= MAX_WAIT_S:
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds above 0 and at most {MAX_WAIT_S:g}, got {text!r}"
        )
    return value


# Seeds: what numpy, torch and python's random all accept.
MAX_SEED: Final[int] = 2**32 - 1
# Generous upper bounds of the trainer's counts: beyond them a value is a typo.
MAX_STEPS: Final[int] = 10**9
MAX_BATCH: Final[int] = 65536
MAX_WORKERS: Final[int] = 1024
MAX_IMAGE_SIZE: Final[int] = 4096


def seed_argument(text: str) -> int:
    """argparse type for --seed: 0 .. 2**32 - 1."""
    return bounded_int(0, MAX_SEED)(text)


def steps_argument(text: str) -> int:
    """argparse type for a number of steps (or an interval in steps): 1 .. 10**9."""
    return bounded_int(1, MAX_STEPS)(text)


def batch_argument(text: str) -> int:
    """argparse type for a batch size: 1 .. 65536."""
    return bounded_int(1, MAX_BATCH)(text)


def workers_argument(text: str) -> int:
    """argparse type for DataLoader worker processes: -1 (auto), 0 (load in the main process)
    .. 1024."""
    return bounded_int(-1, MAX_WORKERS, "-1 chooses from the cores, 0 loads in the main process")(
        text
    )


def image_size_argument(text: str) -> int:
    """argparse type for an image side in pixels: 1 .. 4096 (commands check their own minimum)."""
    return bounded_int(1, MAX_IMAGE_SIZE)(text)


def positive_float(text: str) -> float:
    """argparse type for a finite number above 0 (a learning rate)."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type for a finite number >= 0 (a weight decay)."""
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
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
    bad = {
        k: v
        for k, v in weights.items()
        if not math.isfinite(v) or not 0 <= v <= MAX_EXPRESSION_WEIGHT
    }
    if bad:
        raise argparse.ArgumentTypeError(
            f"weights must lie in [0, {MAX_EXPRESSION_WEIGHT:g}] in {text!r}: {bad}"
        )
