"""PNG figures for reports: loss curves, bar charts with error bars and image grids, drawn
with OpenCV.

OpenCV is already a dependency (the data loaders and the app use it); matplotlib would add
about 40 MB and a font cache for a few line plots, so the curves are drawn here directly: one
panel per loss, its own y range, the step on x, a light grid and the first/last values written.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import cv2
import numpy as np

from faceedit.fileio import atomic_write_bytes

PANEL_SIZE: Final[tuple[int, int]] = (360, 200)  # width, height of one curve panel
MARGIN: Final[tuple[int, int, int, int]] = (52, 12, 24, 30)  # left, right, top, bottom
COLUMNS: Final[int] = 3
FONT: Final[int] = cv2.FONT_HERSHEY_SIMPLEX
WHITE: Final[tuple[int, int, int]] = (255, 255, 255)
GRID: Final[tuple[int, int, int]] = (225, 225, 225)
AXIS: Final[tuple[int, int, int]] = (90, 90, 90)
LINE: Final[tuple[int, int, int]] = (40, 90, 200)  # RGB blue
TEXT: Final[tuple[int, int, int]] = (20, 20, 20)

Series = Sequence[tuple[int, float]]


def _tick(value: float) -> str:
    if value == 0 or 1e-2 <= abs(value) < 1e4:
        return f"{value:.3g}"
    return f"{value:.1e}"


def curve_panel(title: str, points: Series) -> np.ndarray:
    """(H, W, 3) uint8 RGB plot of one (step, value) series."""
    width, height = PANEL_SIZE
    left, right, top, bottom = MARGIN
    panel = np.full((height, width, 3), WHITE, dtype=np.uint8)
    cv2.putText(panel, title[:48], (left, 16), FONT, 0.42, TEXT, 1, cv2.LINE_AA)
    finite = [(s, v) for s, v in points if math.isfinite(v)]
    if not finite:
        cv2.putText(panel, "no data", (left, height // 2), FONT, 0.5, AXIS, 1, cv2.LINE_AA)
        return panel
    steps = np.array([s for s, _ in finite], dtype=np.float64)
    values = np.array([v for _, v in finite], dtype=np.float64)
    x0, x1 = float(steps.min()), float(steps.max())
    y0, y1 = float(values.min()), float(values.max())
    if x1 == x0:
        x1 = x0 + 1.0
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = 0.05 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad
    plot_w, plot_h = width - left - right, height - top - bottom

    def to_pixel(step: float, value: float) -> tuple[int, int]:
        px = left + (step - x0) / (x1 - x0) * plot_w
        py = top + (1.0 - (value - y0) / (y1 - y0)) * plot_h
        return round(px), round(py)

    for k in range(5):  # horizontal grid lines with their values
        value = y0 + (y1 - y0) * k / 4
        _, py = to_pixel(x0, value)
        cv2.line(panel, (left, py), (left + plot_w, py), GRID, 1)
        cv2.putText(panel, _tick(value), (2, py + 4), FONT, 0.33, AXIS, 1, cv2.LINE_AA)
    for k in range(3):  # step labels
        step = x0 + (x1 - x0) * k / 2
        px, _ = to_pixel(step, y0)
        label = f"{step:.0f}"
        cv2.putText(panel, label, (px - 8 * k, height - 10), FONT, 0.33, AXIS, 1, cv2.LINE_AA)
    cv2.rectangle(panel, (left, top), (left + plot_w, top + plot_h), AXIS, 1)
    pixels = np.array([to_pixel(s, v) for s, v in zip(steps, values, strict=True)], np.int32)
    if len(pixels) == 1:
        cv2.circle(panel, tuple(int(c) for c in pixels[0]), 3, LINE, -1, cv2.LINE_AA)
    else:
        cv2.polylines(panel, [pixels.reshape(-1, 1, 2)], False, LINE, 1, cv2.LINE_AA)
    note = f"{_tick(values[0])} -> {_tick(values[-1])}"
    cv2.putText(panel, note, (left + plot_w - 130, 16), FONT, 0.38, LINE, 1, cv2.LINE_AA)
    return panel


def curves_figure(title: str, series: Mapping[str, Series]) -> np.ndarray:
    """Panels for every series (sorted by name) under a title line, COLUMNS per row."""
    return panels_figure(title, [curve_panel(name, series[name]) for name in sorted(series)])


def panels_figure(title: str, panels: Sequence[np.ndarray]) -> np.ndarray:
    """Panels of PANEL_SIZE laid out COLUMNS per row under a title line."""
    width, height = PANEL_SIZE
    rows = max(1, -(-len(panels) // COLUMNS))
    figure = np.full((28 + rows * height, COLUMNS * width, 3), WHITE, dtype=np.uint8)
    cv2.putText(figure, title, (8, 20), FONT, 0.6, TEXT, 1, cv2.LINE_AA)
    for k, panel in enumerate(panels):
        row, col = divmod(k, COLUMNS)
        y, x = 28 + row * height, col * width
        figure[y : y + height, x : x + width] = panel
    return figure


# Bar colours (RGB), one per variant in table order.
BAR_COLOURS: Final[tuple[tuple[int, int, int], ...]] = (
    (40, 90, 200),
    (220, 120, 30),
    (40, 150, 70),
    (190, 50, 50),
    (130, 80, 170),
    (120, 120, 120),
)

Bar = tuple[str, float | None, float | None]  # label, mean (None: not measured), std (or None)


def bar_panel(title: str, bars: Sequence[Bar]) -> np.ndarray:
    """(H, W, 3) uint8 RGB bar chart of one metric: one bar per variant with a +-std error bar;
    the y axis starts at 0 unless values are negative."""
    width, height = PANEL_SIZE
    left, right, top, bottom = MARGIN
    bottom += 12  # room for the variant names
    panel = np.full((height, width, 3), WHITE, dtype=np.uint8)
    cv2.putText(panel, title[:48], (left, 16), FONT, 0.42, TEXT, 1, cv2.LINE_AA)
    measured = [(m, s or 0.0) for _, m, s in bars if m is not None and math.isfinite(m)]
    plot_w, plot_h = width - left - right, height - top - bottom
    if not measured:
        cv2.putText(panel, "no data", (left, height // 2), FONT, 0.5, AXIS, 1, cv2.LINE_AA)
        return panel
    y0 = min(0.0, *(m - s for m, s in measured))
    y1 = max(0.0, *(m + s for m, s in measured))
    if y1 == y0:
        y1 = y0 + 1.0
    y1 += 0.08 * (y1 - y0)

    def to_y(value: float) -> int:
        return round(top + (1.0 - (value - y0) / (y1 - y0)) * plot_h)

    for k in range(5):
        value = y0 + (y1 - y0) * k / 4
        py = to_y(value)
        cv2.line(panel, (left, py), (left + plot_w, py), GRID, 1)
        cv2.putText(panel, _tick(value), (2, py + 4), FONT, 0.33, AXIS, 1, cv2.LINE_AA)
    cv2.rectangle(panel, (left, top), (left + plot_w, top + plot_h), AXIS, 1)
    slot = plot_w / max(1, len(bars))
    for k, (label, mean, std) in enumerate(bars):
        x0 = round(left + k * slot + 0.18 * slot)
        x1 = round(left + (k + 1) * slot - 0.18 * slot)
        cx = (x0 + x1) // 2
        colour = BAR_COLOURS[k % len(BAR_COLOURS)]
        name = label[:10]
        cv2.putText(panel, name, (cx - 3 * len(name), height - 8), FONT, 0.33, TEXT, 1, cv2.LINE_AA)
        if mean is None or not math.isfinite(mean):
            cv2.putText(panel, "n/a", (cx - 9, to_y(0.0) - 4), FONT, 0.33, AXIS, 1, cv2.LINE_AA)
            continue
        cv2.rectangle(panel, (x0, to_y(max(mean, 0.0))), (x1, to_y(min(mean, 0.0))), colour, -1)
        if std:
            lo, hi = to_y(mean - std), to_y(mean + std)
            cv2.line(panel, (cx, lo), (cx, hi), TEXT, 1, cv2.LINE_AA)
            cv2.line(panel, (cx - 4, lo), (cx + 4, lo), TEXT, 1, cv2.LINE_AA)
            cv2.line(panel, (cx - 4, hi), (cx + 4, hi), TEXT, 1, cv2.LINE_AA)
        top_y = to_y(mean + (std or 0.0)) if mean >= 0 else to_y(0.0)
        cv2.putText(
            panel, _tick(mean), (x0, max(top + 9, top_y - 4)), FONT, 0.3, TEXT, 1, cv2.LINE_AA
        )
    return panel


def bar_figure(title: str, metrics: Mapping[str, Sequence[Bar]]) -> np.ndarray:
    """One bar panel per metric (in the given order) under a title line, COLUMNS per row."""
    return panels_figure(title, [bar_panel(name, bars) for name, bars in metrics.items()])


def image_grid(
    rows: Sequence[Sequence[np.ndarray]],
    column_titles: Sequence[str] = (),
    scale: int = 2,
    gap: int = 2,
    row_titles: Sequence[str] = (),
) -> np.ndarray:
    """Equal-size (S, S, 3) uint8 RGB images laid out in rows, upscaled by `scale` (nearest),
    with optional column titles above and row titles on the left."""
    if not rows or not rows[0]:
        raise ValueError("an image grid needs at least one image")
    size = rows[0][0].shape[0] * scale
    columns = max(len(r) for r in rows)
    title_h = 16 if column_titles else 0
    title_w = 8 + 7 * max((len(t[:12]) for t in row_titles), default=0) if row_titles else 0
    height = title_h + len(rows) * (size + gap)
    width = title_w + columns * (size + gap)
    grid = np.full((height, width, 3), WHITE, dtype=np.uint8)
    for c, title in enumerate(column_titles[:columns]):
        x = title_w + c * (size + gap) + 2
        cv2.putText(grid, title[:9], (x, 12), FONT, 0.33, TEXT, 1, cv2.LINE_AA)
    for r, title in enumerate(row_titles[: len(rows)]):
        y = title_h + r * (size + gap) + size // 2 + 4
        cv2.putText(grid, title[:12], (3, y), FONT, 0.36, TEXT, 1, cv2.LINE_AA)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            big = cv2.resize(image, (size, size), interpolation=cv2.INTER_NEAREST)
            y, x = title_h + r * (size + gap), title_w + c * (size + gap)
            grid[y : y + size, x : x + size] = big
    return grid


def save_png(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write an RGB uint8 image as PNG, atomically."""
    target = Path(path)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"could not encode {target} as PNG")
    return atomic_write_bytes(target, encoded.tobytes())
