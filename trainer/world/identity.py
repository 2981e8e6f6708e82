"""Sampling a face's look: everything about a face that its expression does not change.

All lengths are in face-frame units (fractions of the aligned crop, see canvas.py); colours are
RGB in [0, 1]. An identity's renderings share all of this, so they differ only in expression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from trainer.world.canvas import Placement

Color = tuple[float, float, float]
HairStyle = Literal["bald", "short", "fringe", "long", "side_part"]
HAIR_STYLES: Final[tuple[HairStyle, ...]] = ("bald", "short", "fringe", "long", "side_part")
HAIR_STYLE_WEIGHTS: Final[tuple[float, ...]] = (0.1, 0.25, 0.2, 0.3, 0.15)

# Skin from light to dark: an identity's tone is a random point between neighbours.
SKIN_TONES: Final[tuple[Color, ...]] = (
    (0.97, 0.83, 0.72),
    (0.90, 0.72, 0.58),
    (0.78, 0.58, 0.43),
    (0.60, 0.42, 0.29),
    (0.42, 0.28, 0.19),
    (0.30, 0.20, 0.14),
)
HAIR_COLORS: Final[tuple[Color, ...]] = (
    (0.06, 0.05, 0.05),
    (0.18, 0.11, 0.07),
    (0.36, 0.23, 0.13),
    (0.80, 0.65, 0.40),
    (0.55, 0.24, 0.10),
    (0.62, 0.62, 0.62),
)
IRIS_COLORS: Final[tuple[Color, ...]] = (
    (0.25, 0.15, 0.08),
    (0.15, 0.30, 0.55),
    (0.25, 0.40, 0.25),
    (0.40, 0.40, 0.42),
)
METALS: Final[tuple[Color, ...]] = ((0.85, 0.70, 0.25), (0.80, 0.80, 0.82), (0.75, 0.45, 0.30))
SIDES: Final[tuple[int, int]] = (-1, 1)  # image-left, image-right


@dataclass(frozen=True)
class Shape:
    """One background clutter shape: 'disc', 'box' or 'bar' (a long thin box)."""

    kind: Literal["disc", "box", "bar"]
    centre: tuple[float, float]
    half_size: tuple[float, float]
    color: Color
    alpha: float


@dataclass(frozen=True)
class Identity:
    """One face's look. Field groups: placement; head and skin; eyes, brows, nose and mouth at
    rest; hair; accessories; clothes; scene (background, light, blur, noise)."""

    placement: Placement
    # head: a superellipse whose lower half narrows by `jaw_taper` towards the chin
    skin: Color
    face_cy: float
    face_half_width: float
    face_half_height: float
    face_power: float
    jaw_taper: float
    ear_size: float
    neck_half_width: float
    # features at rest
    eye_y: float
    eye_spacing: float  # eye centre to the face's midline
    eye_half_width: float
    eye_upper: float  # opening of the upper lid above the eye's axis
    eye_lower: float
    iris: Color
    brow_gap: float  # brow above the eye's axis
    brow_thickness: float
    brow_arch: float
    brow_inner: float  # inner end to the midline
    brow_outer: float
    brow_color: Color
    nose_tip_y: float
    nose_half_width: float
    mouth_y: float
    mouth_half_width: float
    lip_upper: float
    lip_lower: float
    lip_color: Color
    dominant_side: int  # -1 image-left, 1 image-right: the side of one-sided action units
    # hair
    hair_style: HairStyle
    hair_color: Color
    hair_volume: float
    hairline_y: float
    hair_length_y: float  # where long hair ends
    hair_wave: float  # phase of the hairline's and strands' ripple
    # accessories
    glasses: Color | None
    earrings: Color | None
    hat: Color | None
    hat_y: float
    necklace: Color | None
    # clothes
    cloth: Color
    cloth_stripes: float  # stripe contrast, 0 for plain cloth
    shoulder_half_width: float
    # scene
    background: tuple[Color, Color]
    background_angle: float
    clutter: tuple[Shape, ...]
    light_angle: float
    light_strength: float
    blur_sigma: float  # in pixels
    noise_sigma: float  # in 0..255 grey levels
    noise_seed: int


def _pick(rng: np.random.Generator, options: tuple[Color, ...], jitter: float) -> Color:
    base = np.asarray(options[int(rng.integers(len(options)))])
    return _color(base + rng.normal(0.0, jitter, 3))


def _color(value: np.ndarray) -> Color:
    r, g, b = (float(v) for v in np.clip(value, 0.0, 1.0))
    return r, g, b


def _between(rng: np.random.Generator, options: tuple[Color, ...]) -> Color:
    """A random point on the piecewise-linear path through `options`."""
    t = rng.uniform(0.0, len(options) - 1)
    i = min(int(t), len(options) - 2)
    a, b = np.asarray(options[i]), np.asarray(options[i + 1])
    return _color(a + (t - i) * (b - a) + rng.normal(0.0, 0.015, 3))


def _chance(rng: np.random.Generator, p: float) -> bool:
    return bool(rng.random() < p)


def _clutter(rng: np.random.Generator) -> tuple[Shape, ...]:
    shapes = []
    for _ in range(int(rng.integers(2, 8))):
        kind = ("disc", "box", "bar")[int(rng.integers(3))]
        half = (float(rng.uniform(0.03, 0.2)), float(rng.uniform(0.03, 0.2)))
        if kind == "bar":
            half = (float(rng.uniform(0.3, 0.8)), float(rng.uniform(0.01, 0.04)))
            if _chance(rng, 0.5):
                half = half[::-1]
        shapes.append(
            Shape(
                kind=kind,  # type: ignore[arg-type]
                centre=(float(rng.uniform(-0.1, 1.1)), float(rng.uniform(-0.1, 1.1))),
                half_size=half,
                color=_color(rng.uniform(0.0, 1.0, 3)),
                alpha=float(rng.uniform(0.3, 0.9)),
            )
        )
    return tuple(shapes)


def sample_identity(rng: np.random.Generator) -> Identity:
    """A random face look; the draws depend only on `rng`."""
    u = rng.uniform
    skin = _between(rng, SKIN_TONES)
    hair_style: HairStyle = HAIR_STYLES[int(rng.choice(len(HAIR_STYLES), p=HAIR_STYLE_WEIGHTS))]
    hair_color = _pick(rng, HAIR_COLORS, 0.03)
    dark_brows = np.asarray(hair_color) * 0.6 if sum(hair_color) < 1.5 else (0.3, 0.2, 0.12)
    # Never lighter than 0.45 x the skin, so brows show on dark skin under light hair too.
    brow_color = _color(
        np.minimum(np.asarray(dark_brows) + rng.normal(0, 0.02, 3), 0.45 * np.asarray(skin))
    )
    # Part skin, part a fixed lip red: lips stay visible on dark skin too.
    lip_color = _color(
        0.6 * np.asarray(skin) * (0.8, 0.55, 0.55) + 0.4 * np.array((0.62, 0.25, 0.27))
    )
    face_half_width = u(0.205, 0.245)
    hairline = {
        "bald": u(0.04, 0.09),
        "short": u(0.17, 0.23),
        "fringe": u(0.28, 0.31),
        "long": u(0.17, 0.24),
        "side_part": u(0.18, 0.24),
    }[hair_style]
    colours = (_color(u(0.0, 1.0, 3)), _color(u(0.0, 1.0, 3)))
    return Identity(
        placement=Placement(
            angle=float(u(-0.1, 0.1)),
            scale=float(u(0.93, 1.07)),
            shift=(float(u(-0.025, 0.025)), float(u(-0.025, 0.025))),
        ),
        skin=skin,
        face_cy=u(0.46, 0.49),
        face_half_width=face_half_width,
        face_half_height=u(0.34, 0.37),
        face_power=u(2.0, 2.8),
        jaw_taper=u(0.0, 0.3),
        ear_size=u(0.05, 0.065),
        neck_half_width=u(0.09, 0.12),
        eye_y=u(0.398, 0.41),
        eye_spacing=u(0.105, 0.115),
        eye_half_width=u(0.046, 0.054),
        eye_upper=u(0.019, 0.024),
        eye_lower=u(0.011, 0.014),
        iris=_pick(rng, IRIS_COLORS, 0.03),
        brow_gap=u(0.045, 0.055),
        brow_thickness=u(0.015, 0.022),
        brow_arch=u(0.004, 0.014),
        brow_inner=u(0.028, 0.036),
        brow_outer=u(0.16, 0.175),
        brow_color=brow_color,
        nose_tip_y=u(0.52, 0.535),
        nose_half_width=u(0.033, 0.042),
        mouth_y=u(0.65, 0.665),
        mouth_half_width=u(0.082, 0.095),
        lip_upper=u(0.010, 0.015),
        lip_lower=u(0.013, 0.019),
        lip_color=lip_color,
        dominant_side=SIDES[int(rng.integers(2))],
        hair_style=hair_style,
        hair_color=hair_color,
        hair_volume=u(0.02, 0.06),
        hairline_y=hairline,
        hair_length_y=u(0.85, 1.05),
        hair_wave=u(0.0, 2 * np.pi),
        glasses=_pick(rng, ((0.05, 0.05, 0.05), (0.35, 0.2, 0.1), (0.7, 0.7, 0.72)), 0.03)
        if _chance(rng, 0.25)
        else None,
        earrings=_pick(rng, METALS, 0.03) if _chance(rng, 0.25) else None,
        hat=_color(u(0.0, 1.0, 3)) if _chance(rng, 0.15) else None,
        hat_y=u(0.17, 0.22),
        necklace=_pick(rng, METALS, 0.03) if _chance(rng, 0.15) else None,
        cloth=_color(u(0.0, 1.0, 3)),
        cloth_stripes=u(0.1, 0.4) if _chance(rng, 0.3) else 0.0,
        shoulder_half_width=u(0.40, 0.52),
        background=colours,
        background_angle=u(0.0, 2 * np.pi),
        clutter=_clutter(rng),
        light_angle=u(0.0, 2 * np.pi),
        light_strength=u(0.0, 0.35),
        blur_sigma=u(0.3, 0.7),
        noise_sigma=u(1.0, 4.0),
        noise_seed=int(rng.integers(2**31)),
    )
