"""Where brows, eyes, nose and mouth sit on one identity under given action units, and the 68
iBUG landmarks that follow from that geometry.

Each action unit moves the parts linearly in its activation (so more intensity, more change);
the coefficients are face-frame lengths at activation 1. Sides are indexed 0 = image-left,
1 = image-right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trainer.world.actions import ActionUnits, side_value
from trainer.world.identity import SIDES, Identity

NUM_LANDMARKS = 68


@dataclass(frozen=True)
class Brow:
    """A tapered arc from its inner end (s = 0) to its outer end (s = 1)."""

    inner: tuple[float, float]
    outer: tuple[float, float]
    arch: float
    thickness: float

    def centre_y(self, s: np.ndarray) -> np.ndarray:
        return self.inner[1] + (self.outer[1] - self.inner[1]) * s - 4.0 * self.arch * s * (1.0 - s)


@dataclass(frozen=True)
class Eye:
    """Almond eye: lids are arcs above and below its axis, meeting at its corners."""

    centre: tuple[float, float]
    half_width: float
    upper: float
    lower: float

    def lids(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(upper lid y, lower lid y) over x; they meet (zero opening) beyond the corners."""
        t = (x - self.centre[0]) / self.half_width
        profile = np.clip(1.0 - t * t, 0.0, 1.0)
        return (
            self.centre[1] - self.upper * profile**0.8,
            self.centre[1] + self.lower * profile**0.9,
        )


@dataclass(frozen=True)
class Nose:
    top_y: float
    tip_y: float
    half_width: float
    wrinkle: float  # AU9 strength: lines across the bridge


@dataclass(frozen=True)
class Mouth:
    """Lips around a mid-line that bends up (corner_dy < 0) or down at each corner.

    s runs from -1 (image-left corner) to 1; the opening and lip thicknesses vanish at the corners.
    """

    centre: tuple[float, float]
    half_widths: tuple[float, float]
    corner_dy: tuple[float, float]
    gap_upper: float
    gap_lower: float
    lip_upper: float
    lip_lower: float
    lower_teeth: float  # share of the opening the lower teeth fill (AU16, AU20)

    def curves(self, s: np.ndarray) -> tuple[np.ndarray, ...]:
        """(outer upper, inner upper, inner lower, outer lower) lip lines over s."""
        bend = np.where(s < 0, self.corner_dy[0], self.corner_dy[1])
        mid = self.centre[1] + bend * s * s
        profile = np.clip(1.0 - s * s, 0.0, 1.0)
        opening = profile**0.6
        inner_upper = mid - self.gap_upper * opening
        inner_lower = mid + self.gap_lower * opening
        bow = 1.0 - 0.3 * np.exp(-((s / 0.18) ** 2))  # Cupid's bow dips at the centre
        outer_upper = inner_upper - self.lip_upper * profile**0.4 * bow
        outer_lower = inner_lower + self.lip_lower * profile**0.5
        return outer_upper, inner_upper, inner_lower, outer_lower


@dataclass(frozen=True)
class Cheeks:
    raise_: float  # AU6: blush below the eyes
    folds: tuple[float, float]  # nasolabial fold darkness per side
    dimples: tuple[float, float]  # AU14 per side


@dataclass(frozen=True)
class FaceGeometry:
    brows: tuple[Brow, Brow]
    eyes: tuple[Eye, Eye]
    nose: Nose
    mouth: Mouth
    cheeks: Cheeks


def geometry(identity: Identity, units: ActionUnits) -> FaceGeometry:
    """The parts of `identity` under action units `units` (absent units are 0)."""
    idn = identity

    def au(unit: str, side: int = 0) -> float:
        return side_value(units, unit, dominant=side == idn.dominant_side)

    brows, eyes = [], []
    for sign in SIDES:
        eye_x = 0.5 + sign * idn.eye_spacing
        base_y = idn.eye_y - idn.brow_gap
        inner_raise = 0.032 * au("AU1") - 0.028 * au("AU4") - 0.006 * au("AU9")
        outer_raise = 0.034 * au("AU2") + 0.008 * au("AU1") - 0.008 * au("AU4")
        inner_x = 0.5 + sign * (idn.brow_inner - 0.012 * au("AU4"))
        brows.append(
            Brow(
                inner=(inner_x, base_y - inner_raise + 0.004),
                outer=(0.5 + sign * idn.brow_outer, base_y - outer_raise + 0.006),
                arch=idn.brow_arch * (1.0 + 0.6 * au("AU2") - 0.5 * au("AU4")),
                thickness=idn.brow_thickness * (1.0 + 0.25 * au("AU4")),
            )
        )
        upper = idn.eye_upper * (1.0 + 0.8 * au("AU5") - 0.5 * au("AU7") - 0.3 * au("AU6"))
        lower = idn.eye_lower * (1.0 + 0.2 * au("AU5") - 0.5 * au("AU7") - 0.6 * au("AU6"))
        eyes.append(
            Eye(
                centre=(eye_x, idn.eye_y),
                half_width=idn.eye_half_width,
                upper=max(upper, 0.25 * idn.eye_upper),
                lower=max(lower, 0.15 * idn.eye_lower),
            )
        )
    lift = 0.008 * au("AU9") + 0.004 * au("AU10")
    nose = Nose(
        top_y=idn.eye_y + 0.005,
        tip_y=idn.nose_tip_y - lift,
        half_width=idn.nose_half_width + 0.008 * au("AU9"),
        wrinkle=au("AU9"),
    )
    half_widths, corner_dy, folds, dimples = [], [], [], []
    for side in SIDES:
        pull, dimple = au("AU12", side), au("AU14", side)
        half_widths.append(
            idn.mouth_half_width
            * (
                1.0
                + 0.12 * pull
                + 0.30 * au("AU20")
                + 0.10 * dimple
                - 0.12 * au("AU23")
                - 0.05 * au("AU24")
                - 0.22 * au("AU26")
            )
        )
        corner_dy.append(
            -0.034 * pull
            + 0.028 * au("AU15")
            - 0.012 * dimple
            + 0.004 * au("AU20")
            + 0.004 * au("AU16")
        )
        folds.append(pull + 0.6 * au("AU9") + 0.5 * au("AU10") + 0.4 * au("AU20"))
        dimples.append(dimple)
    gap_upper = 0.006 * au("AU25") + 0.010 * au("AU26") + 0.012 * au("AU10")
    gap_lower = 0.008 * au("AU25") + 0.040 * au("AU26") + 0.014 * au("AU16")
    press = 0.25 * au("AU23") + 0.2 * au("AU24")
    mouth = Mouth(
        centre=(0.5, idn.mouth_y),
        half_widths=(half_widths[0], half_widths[1]),
        corner_dy=(corner_dy[0], corner_dy[1]),
        gap_upper=gap_upper,
        gap_lower=gap_lower,
        lip_upper=idn.lip_upper * max(0.4, 1.0 - press - 0.3 * au("AU10")),
        lip_lower=idn.lip_lower * max(0.4, 1.0 - press + 0.1 * au("AU16")),
        lower_teeth=min(1.0, 0.5 * au("AU20") + 0.6 * au("AU16")),
    )
    cheeks = Cheeks(raise_=au("AU6"), folds=(folds[0], folds[1]), dimples=(dimples[0], dimples[1]))
    return FaceGeometry(
        brows=(brows[0], brows[1]), eyes=(eyes[0], eyes[1]), nose=nose, mouth=mouth, cheeks=cheeks
    )


# ------------------------------------------------------------------------------- landmarks


def face_half_width_at(identity: Identity, y: float | np.ndarray) -> float | np.ndarray:
    """Half-width of the head's superellipse at height y, before the jaw taper narrows it."""
    below = np.clip((np.asarray(y) - identity.face_cy) / identity.face_half_height, 0.0, 1.0)
    return identity.face_half_width * (1.0 - identity.jaw_taper * below * below)


def face_edge(identity: Identity, y: float) -> float:
    """Distance from the midline to the face's outline at height y (0 above or below it)."""
    dy = min(abs(y - identity.face_cy) / identity.face_half_height, 1.0)
    p = identity.face_power
    return float(face_half_width_at(identity, y)) * (1.0 - dy**p) ** (1.0 / p)


def jaw_points(identity: Identity, count: int = 17) -> np.ndarray:
    """(count, 2) points on the jaw from the image-left side at the face's centre height, round
    the chin, to the image-right side."""
    power = identity.face_power
    points = []
    for k in range(count):
        angle = math.pi - k * math.pi / (count - 1)
        cos, sin = math.cos(angle), math.sin(angle)
        dy = abs(sin) ** (2.0 / power)
        dx = math.copysign(abs(cos) ** (2.0 / power), cos)
        y = identity.face_cy + identity.face_half_height * dy
        points.append((0.5 + float(face_half_width_at(identity, y)) * dx, y))
    return np.array(points)


def landmarks68(identity: Identity, geo: FaceGeometry) -> np.ndarray:
    """(68, 2) face-frame landmarks in the iBUG 300-W order: jaw 0-16, brows 17-26, nose 27-35,
    eyes 36-47, mouth 48-67 (image-left to image-right, as the annotation tools do)."""
    points: list[tuple[float, float]] = [tuple(p) for p in jaw_points(identity)]
    for brow, fractions in zip(
        geo.brows, ((1, 0.75, 0.5, 0.25, 0), (0, 0.25, 0.5, 0.75, 1)), strict=True
    ):
        for s in fractions:
            x = brow.inner[0] + (brow.outer[0] - brow.inner[0]) * s
            points.append((x, float(brow.centre_y(np.asarray(s)))))
    nose = geo.nose
    for y in np.linspace(nose.top_y, nose.tip_y, 4):
        points.append((0.5, float(y)))
    nostril_y = nose.tip_y + 0.012
    for fraction, drop in ((-1, 0.0), (-0.5, 0.004), (0, 0.006), (0.5, 0.004), (1, 0.0)):
        points.append((0.5 + fraction * nose.half_width, nostril_y + drop))
    for eye, order in zip(geo.eyes, ((-1, -1 / 3, 1 / 3, 1, 1 / 3, -1 / 3),) * 2, strict=True):
        cx, _ = eye.centre
        xs = np.array([cx + t * eye.half_width for t in order])
        upper, lower = eye.lids(xs)
        ys = [float(upper[0]), float(upper[1]), float(upper[2]), float(upper[3])]
        ys += [float(lower[4]), float(lower[5])]
        points += [(float(x), y) for x, y in zip(xs, ys, strict=True)]
    mouth = geo.mouth

    def on_mouth(s_values: tuple[float, ...], curve: int) -> list[tuple[float, float]]:
        s = np.asarray(s_values)
        ys = mouth.curves(s)[curve]
        halves = np.where(s < 0, mouth.half_widths[0], mouth.half_widths[1])
        xs = mouth.centre[0] + s * halves
        return [(float(x), float(y)) for x, y in zip(xs, ys, strict=True)]

    third = 1 / 3
    points += on_mouth((-1.0, -2 * third, -third, 0.0, third, 2 * third, 1.0), 0)
    points += on_mouth((2 * third, third, 0.0, -third, -2 * third), 3)
    points += on_mouth((-0.95, -0.5, 0.0, 0.5, 0.95), 1)
    points += on_mouth((0.5, 0.0, -0.5), 2)
    out = np.array(points, dtype=np.float64)
    assert out.shape == (NUM_LANDMARKS, 2)
    return out
