"""The unified expression vocabulary and how AffectNet codes and RaFD names map onto it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np

EXPRESSIONS: Final[tuple[str, ...]] = (
    "neutral",
    "happy",
    "sad",
    "surprised",
    "fearful",
    "disgusted",
    "angry",
    "contemptuous",
)
NUM_EXPRESSIONS: Final[int] = len(EXPRESSIONS)
EXPRESSION_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(EXPRESSIONS)}

# AffectNet's `expression` column: 0..7 are the eight basic expressions, in our order;
# 8 (none), 9 (uncertain) and 10 (no face) are not expressions and are dropped.
AFFECTNET_CODES: Final[dict[int, int]] = {code: code for code in range(8)}
AFFECTNET_DROPPED: Final[frozenset[int]] = frozenset({8, 9, 10})

# RaFD's emotion field in its file names.
RAFD_NAMES: Final[dict[str, int]] = {
    "neutral": EXPRESSION_INDEX["neutral"],
    "happy": EXPRESSION_INDEX["happy"],
    "sad": EXPRESSION_INDEX["sad"],
    "surprised": EXPRESSION_INDEX["surprised"],
    "fearful": EXPRESSION_INDEX["fearful"],
    "disgusted": EXPRESSION_INDEX["disgusted"],
    "angry": EXPRESSION_INDEX["angry"],
    "contemptuous": EXPRESSION_INDEX["contemptuous"],
}

# Extra condition dimensions for models trained with AffectNet's continuous labels.
VALENCE_AROUSAL: Final[tuple[str, str]] = ("valence", "arousal")


def affectnet_to_index(code: int) -> int | None:
    """Unified index of an AffectNet expression code, or None for the dropped codes 8..10."""
    if code in AFFECTNET_DROPPED:
        return None
    if code not in AFFECTNET_CODES:
        raise ValueError(f"AffectNet expression code {code} is outside 0..10")
    return AFFECTNET_CODES[code]


def rafd_to_index(name: str) -> int:
    """Unified index of a RaFD emotion name."""
    try:
        return RAFD_NAMES[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown RaFD emotion {name!r}; expected one of {sorted(RAFD_NAMES)}"
        ) from None


def one_hot(index: int) -> np.ndarray:
    """(8,) float32 one-hot condition for a unified expression index."""
    vec = np.zeros(NUM_EXPRESSIONS, dtype=np.float32)
    vec[index] = 1.0
    return vec


def condition_vector(
    weights: Mapping[str, float] | Sequence[float] | np.ndarray,
    valence_arousal: tuple[float, float] | None = None,
) -> np.ndarray:
    """Build a condition from slider weights: non-negative, over the 8 expressions.

    The weights are used as given (not renormalised), so "happy=0.5" means half-way to happy;
    this is what the sliders set. Valence and arousal, when given, are appended in [-1, 1].
    """
    if isinstance(weights, Mapping):
        vec = np.zeros(NUM_EXPRESSIONS, dtype=np.float32)
        for name, weight in weights.items():
            if name not in EXPRESSION_INDEX:
                raise ValueError(
                    f"unknown expression {name!r}; expected one of {list(EXPRESSIONS)}"
                )
            vec[EXPRESSION_INDEX[name]] = float(weight)
    else:
        vec = np.asarray(weights, dtype=np.float32).reshape(-1)
        if vec.shape != (NUM_EXPRESSIONS,):
            raise ValueError(f"a condition has {NUM_EXPRESSIONS} weights, got {vec.shape[0]}")
    if not np.all(np.isfinite(vec)) or np.any(vec < 0):
        raise ValueError(f"expression weights must be finite and >= 0, got {vec.tolist()}")
    if valence_arousal is None:
        return vec
    va = np.clip(np.asarray(valence_arousal, dtype=np.float32), -1.0, 1.0)
    return np.concatenate([vec, va])


def parse_expression_spec(spec: str) -> dict[str, float]:
    """Parse 'happy=0.8,surprised=0.2' (a bare name means weight 1) into a mapping."""
    out: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, value = item.partition("=")
        name = name.strip().lower()
        if name not in EXPRESSION_INDEX:
            raise ValueError(
                f"unknown expression {name!r} in {spec!r}; expected one of {list(EXPRESSIONS)}"
            )
        if name in out:
            raise ValueError(f"{name!r} is given twice in {spec!r}; give each expression once")
        try:
            out[name] = float(value) if value else 1.0
        except ValueError:
            raise ValueError(f"weight {value!r} for {name!r} is not a number") from None
    return out
