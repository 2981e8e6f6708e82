"""The rasteriser: one identity under any action units -> RGB image, label map, 68 landmarks.

What no expression changes (background, clothes, neck, ears, face, hair, glasses, hat, light,
noise) is drawn once per identity by `IdentityRenderer`; each rendering copies that base, paints
brows, eyes, nose, mouth and cheek shading into small windows around them, lays the identity's
fixed overlay (front hair, glasses, hat) on top, then lights, blurs and adds the identity's fixed
noise. Two renderings of one identity are therefore identical wherever their parts do not differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np

from faceedit.vocab.labels import CLASS_INDEX
from trainer.world.actions import ActionUnits
from trainer.world.canvas import (
    Canvas,
    Window,
    between,
    box,
    composite,
    ellipse,
    segment,
    superellipse,
)
from trainer.world.features import (
    Brow,
    Eye,
    FaceGeometry,
    Mouth,
    face_edge,
    face_half_width_at,
    geometry,
    landmarks68,
)
from trainer.world.identity import SIDES, Color, Identity

C: Final[dict[str, int]] = CLASS_INDEX
NO_LABEL: Final[int] = 255
SCLERA: Final[Color] = (0.9, 0.88, 0.85)
MOUTH_INSIDE: Final[Color] = (0.28, 0.06, 0.07)
TEETH: Final[Color] = (0.95, 0.93, 0.86)
LASHES: Final[Color] = (0.08, 0.06, 0.05)
PUPIL: Final[Color] = (0.03, 0.03, 0.03)
LENS: Final[Color] = (0.75, 0.82, 0.9)
# Side index 0 is image-left: its parts take the l_* classes.
SIDE_CLASSES: Final[dict[str, tuple[int, int]]] = {
    "brow": (C["l_brow"], C["r_brow"]),
    "eye": (C["l_eye"], C["r_eye"]),
    "ear": (C["l_ear"], C["r_ear"]),
}


@dataclass(frozen=True)
class Rendering:
    """image (S, S, 3) uint8 RGB; labels (S, S) uint8 class per pixel; landmarks (68, 2) float64
    in pixel coordinates (pixel centres at integers, iBUG order)."""

    image: np.ndarray
    labels: np.ndarray
    landmarks: np.ndarray


def _scale(color: Color, factor: float | tuple[float, float, float]) -> np.ndarray:
    return np.clip(np.asarray(color, dtype=np.float32) * np.asarray(factor, np.float32), 0, 1)


class Overlay:
    """Layers composited over the features (premultiplied colour, alpha and labels)."""

    def __init__(self, size: int) -> None:
        self.alpha = np.zeros((size, size, 1), dtype=np.float32)
        self.premultiplied = np.zeros((size, size, 3), dtype=np.float32)
        self.labels = np.full((size, size), NO_LABEL, dtype=np.uint8)

    def add(self, alpha: np.ndarray, color: np.ndarray | Color, label: int | None = None) -> None:
        a = alpha[..., None]
        self.premultiplied *= 1.0 - a
        self.premultiplied += a * np.asarray(color, dtype=np.float32)
        self.alpha += a * (1.0 - self.alpha)
        if label is not None:
            self.labels[alpha >= 0.5] = label


class IdentityRenderer:
    """Renders one identity at `size` px under any action units."""

    def __init__(self, identity: Identity, size: int) -> None:
        self.identity = identity
        self.size = size
        self.base = Canvas(size, identity.placement)
        self._face_distance = self._draw_base()
        self.overlay = self._draw_overlay()
        x, y = self.base.x, self.base.y
        light_dx, light_dy = math.cos(identity.light_angle), math.sin(identity.light_angle)
        light = 1.0 + identity.light_strength * ((x - 0.5) * light_dx + (y - 0.5) * light_dy)
        self.light = light[..., None].astype(np.float32)
        noise_rng = np.random.default_rng(identity.noise_seed)
        self.noise = noise_rng.standard_normal((size, size, 3), dtype=np.float32)
        self.noise *= identity.noise_sigma
        self.noise += 0.5  # rounding, folded in once
        # Expressions paint only inside `features`; finishing (overlay, light, blur, noise) is
        # redone in `finish`, that window grown by the blur's reach, and the rest of every
        # rendering is the identity's finished base, so it is the same in all of them.
        # Cheek shading lands only on face skin no overlay covers, so hair, ears, glasses and
        # background stay the same in every expression.
        self.bare_skin = (
            (self.base.labels == C["skin"]) & (self.overlay.labels == NO_LABEL)
        ).astype(np.float32)
        self.features = self._feature_window()
        reach = math.ceil(4.0 * identity.blur_sigma) + 1
        (rows, cols) = self.features
        self.finish = (
            slice(max(0, rows.start - reach), min(size, rows.stop + reach)),
            slice(max(0, cols.start - reach), min(size, cols.stop + reach)),
        )
        self.inner = (
            slice(rows.start - self.finish[0].start, rows.stop - self.finish[0].start),
            slice(cols.start - self.finish[1].start, cols.stop - self.finish[1].start),
        )
        self.finished_base, self.finished_labels = self._finish(
            self.base.color, self.base.labels, self.base.full()
        )

    def _feature_window(self) -> Window:
        """Pixels any action unit may paint: brows at their highest to the open mouth's chin
        and the cheek folds' outer ends (windows are padded and soft edges included)."""
        idn = self.identity
        top = idn.eye_y - idn.brow_gap - 0.08
        bottom = idn.mouth_y + 0.11
        window = self.base.window(0.5 - 0.235, top, 0.5 + 0.235, bottom)
        assert window is not None  # the face is always inside the crop
        return window

    def _finish(
        self, color: np.ndarray, labels: np.ndarray, window: Window
    ) -> tuple[np.ndarray, np.ndarray]:
        """Overlay, light, blur, noise and 8 bits of `window` of (color, labels)."""
        overlay = self.overlay
        color = np.asarray(color[window] * (1.0 - overlay.alpha[window]), dtype=np.float32)
        color += overlay.premultiplied[window]
        top = overlay.labels[window]
        labels = np.where(top != NO_LABEL, top, labels[window])
        color *= self.light[window]
        color = np.asarray(
            cv2.GaussianBlur(color, (0, 0), self.identity.blur_sigma), dtype=np.float32
        )
        color *= 255.0
        color += self.noise[window]
        np.minimum(np.maximum(color, 0.0, out=color), 255.0, out=color)
        return color.astype(np.uint8), labels

    # ---------------------------------------------------------------------- per rendering

    def render(self, units: ActionUnits) -> Rendering:
        """The identity under action units `units`."""
        geo = geometry(self.identity, units)
        canvas = self.base
        color, labels = canvas.color.copy(), canvas.labels.copy()
        work = _Work(canvas, color, labels)
        self._draw_cheeks(work, geo)
        self._draw_nose(work, geo)
        self._draw_mouth(work, geo.mouth)
        for side in range(2):
            self._draw_eye(work, geo.eyes[side], SIDE_CLASSES["eye"][side])
            self._draw_brow(work, geo.brows[side], SIDE_CLASSES["brow"][side])
        part, part_labels = self._finish(color, labels, self.finish)
        image, labels = self.finished_base.copy(), self.finished_labels.copy()
        image[self.features] = part[self.inner]
        labels[self.features] = part_labels[self.inner]
        points = self.identity.placement.to_pixels(landmarks68(self.identity, geo), self.size)
        return Rendering(image=image, labels=labels, landmarks=points)

    def _draw_cheeks(self, work: _Work, geo: FaceGeometry) -> None:
        idn, cheeks, mouth = self.identity, geo.cheeks, geo.mouth
        skin = idn.skin
        for side, sign in enumerate(SIDES):
            eye = geo.eyes[side]
            if cheeks.raise_ > 0:
                cx, cy = eye.centre[0], eye.centre[1] + 0.075
                win = work.window(cx - 0.07, cy - 0.045, cx + 0.07, cy + 0.045)
                if win is not None:
                    x, y = work.grid(win)
                    alpha = work.coverage(ellipse(x, y, cx, cy, 0.05, 0.03), 4.0)
                    work.paint(
                        win,
                        alpha * self.bare_skin[win] * min(0.35 * cheeks.raise_, 0.5),
                        _scale(skin, (1.06, 0.88, 0.88)),
                    )
            fold = min(cheeks.folds[side], 1.5)
            corner = (
                mouth.centre[0] + sign * mouth.half_widths[side],
                mouth.centre[1] + mouth.corner_dy[side],
            )
            if fold > 0:
                start = (0.5 + sign * (idn.nose_half_width + 0.012), idn.nose_tip_y + 0.005)
                end = (corner[0] + sign * 0.016, corner[1] + 0.012)
                win = work.window(*_box_of(start, end, 0.012))
                if win is not None:
                    x, y = work.grid(win)
                    alpha = work.coverage(segment(x, y, start, end, 0.002), 2.0)
                    work.paint(win, alpha * self.bare_skin[win] * 0.3 * fold, _scale(skin, 0.6))
            dimple = cheeks.dimples[side]
            if dimple > 0:
                cx, cy = corner[0] + sign * 0.012, corner[1] + 0.002
                win = work.window(cx - 0.015, cy - 0.015, cx + 0.015, cy + 0.015)
                if win is not None:
                    x, y = work.grid(win)
                    alpha = work.coverage(ellipse(x, y, cx, cy, 0.004, 0.008), 1.5)
                    work.paint(win, alpha * self.bare_skin[win] * 0.5 * dimple, _scale(skin, 0.55))

    def _draw_nose(self, work: _Work, geo: FaceGeometry) -> None:
        nose, skin = geo.nose, self.identity.skin
        hw = nose.half_width
        win = work.window(0.5 - hw - 0.02, nose.top_y - 0.01, 0.5 + hw + 0.02, nose.tip_y + 0.03)
        if win is None:
            return
        x, y = work.grid(win)
        along = np.clip((y - nose.top_y) / (nose.tip_y - nose.top_y), 0.0, 1.0)
        bridge = 0.010 + 0.012 * along
        ax = np.abs(x - 0.5)
        d_bridge = np.maximum(ax - bridge, np.maximum(nose.top_y - y, y - nose.tip_y))
        d_nose = np.minimum(d_bridge, ellipse(x, y, 0.5, nose.tip_y - 0.004, hw, 0.02))
        work.paint(win, work.coverage(d_nose), _scale(skin, 0.95), C["nose"])
        sides = np.maximum(np.abs(ax - bridge) - 0.002, nose.top_y + 0.035 - y)
        sides = np.maximum(sides, y - nose.tip_y + 0.012)
        work.paint(win, work.coverage(sides, 2.0) * 0.3, _scale(skin, 0.7))
        tip = ellipse(x, y, 0.5, nose.tip_y - 0.008, 0.012, 0.008)
        work.paint(win, work.coverage(tip, 2.0) * 0.4, _scale(skin, 1.1))
        for sign in SIDES:
            nostril = ellipse(x, y, 0.5 + sign * 0.45 * hw, nose.tip_y + 0.009, 0.009, 0.0045)
            work.paint(win, work.coverage(nostril), _scale(skin, 0.35))
        if nose.wrinkle > 0:
            for k in range(3):
                wy = nose.top_y + 0.015 + 0.009 * k
                line = segment(x, y, (0.5 - 0.016, wy + 0.003), (0.5 + 0.016, wy + 0.003), 0.0018)
                work.paint(
                    win, work.coverage(line, 1.5) * min(0.7 * nose.wrinkle, 0.8), _scale(skin, 0.5)
                )

    def _draw_mouth(self, work: _Work, mouth: Mouth) -> None:
        half = max(mouth.half_widths)
        cx, cy = mouth.centre
        win = work.window(cx - half - 0.01, cy - 0.07, cx + half + 0.01, cy + 0.09)
        if win is None:
            return
        x, y = work.grid(win)
        dx = x - cx
        s_raw = dx / np.where(dx < 0, mouth.half_widths[0], mouth.half_widths[1])
        s = np.clip(s_raw, -1.0, 1.0)
        beyond = (np.abs(s_raw) - 1.0) * half
        outer_upper, inner_upper, inner_lower, outer_lower = mouth.curves(s)
        lips = self.identity.lip_color
        upper = np.maximum(between(outer_upper, inner_upper, y), beyond)
        lower = np.maximum(between(inner_lower, outer_lower, y), beyond)
        inside = np.maximum(between(inner_upper, inner_lower, y), beyond)
        work.paint(win, work.coverage(upper), _scale(lips, 0.9), C["u_lip"])
        work.paint(win, work.coverage(lower), lips, C["l_lip"])
        opening = mouth.gap_upper + mouth.gap_lower
        if opening > 0:
            a_inside = work.coverage(inside)
            work.paint(win, a_inside, MOUTH_INSIDE, C["mouth"])
            profile = np.clip(1.0 - s * s, 0.0, 1.0)
            teeth_h = np.minimum(0.5 * opening, 0.013) * profile**0.3
            band = np.maximum(between(inner_upper, inner_upper + teeth_h, y), np.abs(s) - 0.8)
            work.paint(win, work.coverage(band) * a_inside, TEETH)
            if mouth.lower_teeth > 0:
                low_h = np.minimum(0.3 * opening * mouth.lower_teeth, 0.01) * profile**0.3
                band = np.maximum(between(inner_lower - low_h, inner_lower, y), np.abs(s) - 0.7)
                work.paint(win, work.coverage(band) * a_inside, TEETH)
        mid = 0.5 * (inner_upper + inner_lower)
        seam = np.maximum(np.abs(y - mid) - 0.002, beyond)
        closed = np.clip(1.0 - (inner_lower - inner_upper) / 0.006, 0.0, 1.0)
        work.paint(win, work.coverage(seam) * closed * 0.8, _scale(lips, 0.45))

    def _draw_eye(self, work: _Work, eye: Eye, label: int) -> None:
        cx, cy = eye.centre
        win = work.window(
            cx - eye.half_width - 0.01,
            cy - eye.upper - 0.025,
            cx + eye.half_width + 0.01,
            cy + eye.lower + 0.01,
        )
        if win is None:
            return
        x, y = work.grid(win)
        top, bottom = eye.lids(x)
        across = np.abs(x - cx) - eye.half_width
        crease = np.maximum(np.abs(y - (top - 0.011)) - 0.002, across + 0.008)
        work.paint(win, work.coverage(crease, 2.0) * 0.25, _scale(self.identity.skin, 0.6))
        a_eye = work.coverage(np.maximum(between(top, bottom, y), across))
        work.paint(win, a_eye, SCLERA, label)
        iris = work.coverage(ellipse(x, y, cx, cy + 0.001, 0.0165, 0.0165)) * a_eye
        work.paint(win, iris, self.identity.iris)
        work.paint(win, work.coverage(ellipse(x, y, cx, cy + 0.001, 0.0065, 0.0065)) * a_eye, PUPIL)
        lid = np.maximum(np.abs(y - top) - 0.0035, across - 0.002)
        work.paint(win, work.coverage(lid) * 0.9, LASHES)
        lower_lid = np.maximum(np.abs(y - bottom) - 0.0015, across)
        work.paint(win, work.coverage(lower_lid) * 0.3, LASHES)

    def _draw_brow(self, work: _Work, brow: Brow, label: int) -> None:
        (ix, iy), (ox, oy) = brow.inner, brow.outer
        reach = brow.thickness + abs(brow.arch) + 0.01
        win = work.window(
            min(ix, ox) - 0.01, min(iy, oy) - reach, max(ix, ox) + 0.01, max(iy, oy) + reach
        )
        if win is None:
            return
        x, y = work.grid(win)
        length = abs(ox - ix)
        s_raw = (x - ix) / (ox - ix)
        s = np.clip(s_raw, 0.0, 1.0)
        half = 0.5 * brow.thickness * (1.0 - 0.45 * s)
        d = np.maximum(
            np.abs(y - brow.centre_y(s)) - half, np.maximum(-s_raw, s_raw - 1.0) * length
        )
        work.paint(win, work.coverage(d), self.identity.brow_color, label)

    # ------------------------------------------------------------------------- per identity

    def _head(self) -> tuple[np.ndarray, np.ndarray]:
        """Signed distance to the face's skin and the face's normalised radius (for shading)."""
        idn, x, y = self.identity, self.base.x, self.base.y
        half = face_half_width_at(idn, y)
        dx, dy = np.abs(x - 0.5) / half, np.abs(y - idn.face_cy) / idn.face_half_height
        p = idn.face_power
        radius = (dx**p + dy**p) ** (1.0 / p)
        return (radius - 1.0) * idn.face_half_width * 0.9, radius

    def _hair_texture(self) -> np.ndarray:
        idn, x, y = self.identity, self.base.x, self.base.y
        strands = np.sin(x * 95.0 + 3.0 * np.sin(y * 17.0 + idn.hair_wave))
        return _scale(idn.hair_color, 1.0) * (1.0 + 0.14 * strands)[..., None]

    def _draw_base(self) -> np.ndarray:
        idn, canvas = self.identity, self.base
        full = canvas.full()
        x, y = canvas.x, canvas.y
        # background: a gradient and clutter
        c0, c1 = (np.asarray(c, dtype=np.float32) for c in idn.background)
        gx, gy = math.cos(idn.background_angle), math.sin(idn.background_angle)
        t = np.clip(0.5 + 0.9 * ((x - 0.5) * gx + (y - 0.5) * gy), 0.0, 1.0)[..., None]
        canvas.color[:] = c0 + t * (c1 - c0)
        for shape in idn.clutter:
            (sx, sy), (hx, hy) = shape.centre, shape.half_size
            d = ellipse(x, y, sx, sy, hx, hy) if shape.kind == "disc" else box(x, y, sx, sy, hx, hy)
            canvas.paint(full, canvas.coverage(d) * shape.alpha, shape.color)
        hair = self._hair_texture()
        fa, vol = idn.face_half_width, idn.hair_volume
        head = ellipse(x, y, 0.5, idn.face_cy - 0.02, fa + vol, idn.face_half_height + 0.8 * vol)
        if idn.hair_style == "long":
            hang = np.maximum(
                np.abs(x - 0.5) - (fa + vol), np.maximum(y - idn.hair_length_y, idn.face_cy - y)
            )
            canvas.paint(full, canvas.coverage(np.minimum(head, hang)), hair * 0.8, C["hair"])
        # neck, clothes, necklace
        chin = idn.face_cy + idn.face_half_height
        neck = np.maximum(np.abs(x - 0.5) - idn.neck_half_width, idn.face_cy - y)
        shade = (0.72 + 0.16 * np.clip((y - chin) / 0.08, 0.0, 1.0))[..., None]
        canvas.paint(full, canvas.coverage(neck), _scale(idn.skin, 1.0) * shade, C["neck"])
        top = 0.9
        shoulders = superellipse(x, y, 0.5, top + 0.32, idn.shoulder_half_width, 0.32, 3.0)
        neckline = ellipse(x, y, 0.5, top, idn.neck_half_width * 1.5, 0.06)
        cloth = _scale(idn.cloth, 1.0)
        if idn.cloth_stripes > 0:
            stripes = 1.0 - idn.cloth_stripes * (0.5 + 0.5 * np.sign(np.sin(y * 70.0)))
            cloth = cloth * stripes[..., None]
        canvas.paint(full, canvas.coverage(np.maximum(shoulders, -neckline)), cloth, C["cloth"])
        if idn.necklace is not None:
            nw = idn.neck_half_width
            arc = chin + 0.05 + 0.035 * ((x - 0.5) / nw) ** 2
            d = np.maximum(np.abs(y - arc) - 0.004, np.abs(x - 0.5) - nw * 1.05)
            canvas.paint(full, canvas.coverage(d), idn.necklace, C["neck_l"])
        # ears, face, earrings
        ear_y, ear_h = idn.eye_y + 0.045, idn.ear_size
        ear_x = face_edge(idn, ear_y) + 0.25 * ear_h
        for side, sign in enumerate(SIDES):
            ex = 0.5 + sign * ear_x
            canvas.paint(
                full,
                canvas.coverage(ellipse(x, y, ex, ear_y, 0.55 * ear_h, ear_h)),
                _scale(idn.skin, 0.92),
                SIDE_CLASSES["ear"][side],
            )
            inner = ellipse(x, y, ex + sign * 0.008, ear_y, 0.3 * ear_h, 0.65 * ear_h)
            canvas.paint(full, canvas.coverage(inner, 2.0) * 0.5, _scale(idn.skin, 0.7))
        face, radius = self._head()
        shading = (1.0 - 0.12 * np.clip((radius - 0.7) / 0.3, 0.0, 1.0))[..., None]
        canvas.paint(full, canvas.coverage(face), _scale(idn.skin, 1.0) * shading, C["skin"])
        if idn.earrings is not None:
            for sign in SIDES:
                ex, ey = 0.5 + sign * (ear_x + 0.004), ear_y + ear_h * 0.95 + 0.011
                canvas.paint(
                    full,
                    canvas.coverage(ellipse(x, y, ex, ey, 0.011, 0.011)),
                    idn.earrings,
                    C["ear_r"],
                )
        return face

    def _draw_overlay(self) -> Overlay:
        idn, canvas = self.identity, self.base
        x, y = canvas.x, canvas.y
        overlay = Overlay(self.size)
        fa, vol = idn.face_half_width, idn.hair_volume
        face = self._face_distance
        hair = self._hair_texture()
        head = ellipse(x, y, 0.5, idn.face_cy - 0.02, fa + vol, idn.face_half_height + 0.8 * vol)
        ax = np.abs(x - 0.5)
        side_y = idn.eye_y + 0.03
        if idn.hair_style == "bald":
            patch = ellipse(ax, y, fa + 0.5 * vol, idn.eye_y - 0.02, 0.06 + vol, 0.07)
            d_hair = np.maximum(np.maximum(head, -face - 0.004), patch)
        else:
            line = idn.hairline_y + (side_y - 0.01 - idn.hairline_y) * (ax / fa) ** 4
            if idn.hair_style == "fringe":
                line = line + 0.008 * np.sin(x * 70.0 + idn.hair_wave)
            elif idn.hair_style == "side_part":
                line = line + 0.12 * (x - 0.5) * math.copysign(1.0, math.sin(idn.hair_wave))
            visible_face = np.maximum(face + 0.003, line - y)
            d_hair = np.maximum(np.maximum(head, y - side_y), -visible_face)
            if idn.hair_style == "long":
                locks = np.maximum(fa - 0.025 - ax, ax - (fa + vol))
                locks = np.maximum(locks, np.maximum(y - idn.hair_length_y, idn.eye_y - 0.05 - y))
                d_hair = np.minimum(d_hair, locks)
        overlay.add(canvas.coverage(d_hair), hair, C["hair"])
        if idn.glasses is not None:
            frames = np.full_like(x, np.inf)
            lenses = np.full_like(x, np.inf)
            for sign in SIDES:
                ex, ey = 0.5 + sign * idn.eye_spacing, idn.eye_y + 0.004
                lens = superellipse(x, y, ex, ey, 0.064, 0.044, 3.0)
                lenses = np.minimum(lenses, lens)
                frames = np.minimum(frames, np.abs(lens) - 0.0045)
                outer = (ex + sign * 0.064, ey - 0.008)
                frames = np.minimum(
                    frames, segment(x, y, outer, (0.5 + sign * (fa + 0.01), ey - 0.012), 0.0035)
                )
            inner = idn.eye_spacing - 0.064
            frames = np.minimum(
                frames,
                segment(
                    x, y, (0.5 - inner, idn.eye_y - 0.008), (0.5 + inner, idn.eye_y - 0.008), 0.004
                ),
            )
            overlay.add(canvas.coverage(lenses) * 0.12, LENS)
            overlay.add(canvas.coverage(frames), idn.glasses, C["eye_g"])
        if idn.hat is not None:
            crown = np.maximum(
                ellipse(x, y, 0.5, idn.hat_y, fa + vol + 0.02, idn.hat_y + 0.03), y - idn.hat_y
            )
            brim = ellipse(x, y, 0.5, idn.hat_y, (fa + vol) * 1.3, 0.018)
            band = (1.0 - 0.35 * (np.abs(y - idn.hat_y + 0.02) < 0.012))[..., None]
            overlay.add(
                canvas.coverage(np.minimum(crown, brim)), _scale(idn.hat, 1.0) * band, C["hat"]
            )
        return overlay


class _Work:
    """The canvas grid with one rendering's colour and labels being painted."""

    def __init__(self, canvas: Canvas, color: np.ndarray, labels: np.ndarray) -> None:
        self.canvas, self.color, self.labels = canvas, color, labels
        self.window = canvas.window
        self.grid = canvas.grid
        self.coverage = canvas.coverage

    def paint(
        self, window: Window, alpha: np.ndarray, color: np.ndarray | Color, label: int | None = None
    ) -> None:
        composite(self.color, self.labels, window, alpha, color, label)


def _box_of(
    a: tuple[float, float], b: tuple[float, float], pad: float
) -> tuple[float, float, float, float]:
    return (
        min(a[0], b[0]) - pad,
        min(a[1], b[1]) - pad,
        max(a[0], b[0]) + pad,
        max(a[1], b[1]) + pad,
    )
