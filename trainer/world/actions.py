"""Facial action units (FACS), the eight expression prototypes built from them, and the valence
and arousal each expression carries.

An expression at intensity i activates each of its prototype's action units at weight * i, so
intensity 0 is the neutral face and every change grows monotonically with intensity. A unit
suffixed "U" acts on one side only: the identity's dominant side (contempt's half smile).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from faceedit.errors import ConfigError
from faceedit.vocab.expressions import EXPRESSIONS

ActionUnits = Mapping[str, float]

ACTION_UNITS: Final[dict[str, str]] = {
    "AU1": "inner brow raiser",
    "AU2": "outer brow raiser",
    "AU4": "brow lowerer (brows down and together)",
    "AU5": "upper lid raiser (eyes wide)",
    "AU6": "cheek raiser (lower lids pushed up, cheeks lifted)",
    "AU7": "lid tightener (eyes narrowed)",
    "AU9": "nose wrinkler (nostrils up, bridge wrinkled)",
    "AU10": "upper lip raiser",
    "AU12": "lip corner puller (corners up and out)",
    "AU14": "dimpler (corners tightened inwards, dimple)",
    "AU15": "lip corner depressor (corners down)",
    "AU16": "lower lip depressor",
    "AU20": "lip stretcher (mouth wide)",
    "AU23": "lip tightener (lips narrow)",
    "AU24": "lip pressor (lips thin)",
    "AU25": "lips part (teeth show)",
    "AU26": "jaw drop (mouth open)",
}
UNILATERAL_SUFFIX: Final[str] = "U"

# Weights of each expression's action units at intensity 1 (after EMFACS, exaggerated enough
# that the eight are told apart from brows, eyes and mouth at 64 px).
PROTOTYPES: Final[dict[str, dict[str, float]]] = {
    "neutral": {},
    "happy": {"AU6": 0.8, "AU12": 1.0, "AU25": 0.8},
    "sad": {"AU1": 1.0, "AU4": 0.6, "AU15": 1.0},
    "surprised": {"AU1": 1.0, "AU2": 1.0, "AU5": 1.0, "AU25": 0.5, "AU26": 1.0},
    "fearful": {
        "AU1": 1.0,
        "AU2": 0.6,
        "AU4": 0.6,
        "AU5": 1.0,
        "AU20": 1.0,
        "AU25": 1.0,
        "AU26": 0.35,
    },
    "disgusted": {"AU4": 0.4, "AU9": 1.0, "AU10": 0.9, "AU15": 0.5, "AU16": 0.6, "AU25": 0.3},
    "angry": {"AU4": 1.0, "AU5": 0.3, "AU7": 1.0, "AU23": 1.0, "AU24": 1.0},
    "contemptuous": {"AU12U": 1.0, "AU14U": 1.0},
}

# (valence, arousal) at intensity 1, after Russell's circumplex; scaled by intensity.
VALENCE_AROUSAL: Final[dict[str, tuple[float, float]]] = {
    "neutral": (0.0, 0.0),
    "happy": (0.8, 0.5),
    "sad": (-0.65, -0.35),
    "surprised": (0.2, 0.8),
    "fearful": (-0.6, 0.75),
    "disgusted": (-0.7, 0.35),
    "angry": (-0.6, 0.65),
    "contemptuous": (-0.5, 0.25),
}


def _check(expression: str, intensity: float) -> None:
    if expression not in PROTOTYPES:
        raise ConfigError(f"unknown expression {expression!r}; expected one of {list(EXPRESSIONS)}")
    if not 0.0 <= intensity <= 1.0:
        raise ConfigError(f"expression intensity must be in [0, 1], got {intensity}")


def action_units(expression: str, intensity: float = 1.0) -> dict[str, float]:
    """The action units of `expression` at `intensity` in [0, 1]."""
    _check(expression, intensity)
    return {unit: weight * intensity for unit, weight in PROTOTYPES[expression].items()}


def valence_arousal(expression: str, intensity: float = 1.0) -> tuple[float, float]:
    """(valence, arousal) in [-1, 1] of `expression` at `intensity`."""
    _check(expression, intensity)
    valence, arousal = VALENCE_AROUSAL[expression]
    return valence * intensity, arousal * intensity


def side_value(units: ActionUnits, unit: str, dominant: bool) -> float:
    """Activation of `unit` on one side: its bilateral part plus, on the dominant side, its
    unilateral part."""
    value = units.get(unit, 0.0)
    return value + units.get(unit + UNILATERAL_SUFFIX, 0.0) if dominant else value
