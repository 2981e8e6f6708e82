"""PNG figures for reports: loss curves and image grids, drawn with OpenCV.

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
    names = sorted(series)
    width, height = PANEL_SIZE
    rows = max(1, -(-len(names) // COLUMNS))
    figure = np.full((28 + rows * height, COLUMNS * width, 3), WHITE, dtype=np.uint8)
    cv2.putText(figure, title, (8, 20), FONT, 0.6, TEXT, 1, cv2.LINE_AA)
    for k, name in enumerate(names):
        row, col = divmod(k, COLUMNS)
        y, x = 28 + row * height, col * width
        figure[y : y + height, x : x + width] = curve_panel(name, series[name])
    return figure


def image_grid(
    rows: Sequence[Sequence[np.ndarray]],
    column_titles: Sequence[str] = (),
    scale: int = 2,
    gap: int = 2,
) -> np.ndarray:
    """Equal-size (S, S, 3) uint8 RGB images laid out in rows, upscaled by `scale` (nearest),
    with optional column titles above."""
    if not rows or not rows[0]:
        raise ValueError("an image grid needs at least one image")
    size = rows[0][0].shape[0] * scale
    columns = max(len(r) for r in rows)
    title_h = 16 if column_titles else 0
    height = title_h + len(rows) * (size + gap)
    width = columns * (size + gap)
    grid = np.full((height, width, 3), WHITE, dtype=np.uint8)
    for c, title in enumerate(column_titles[:columns]):
        cv2.putText(grid, title[:9], (c * (size + gap) + 2, 12), FONT, 0.33, TEXT, 1, cv2.LINE_AA)
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            big = cv2.resize(image, (size, size), interpolation=cv2.INTER_NEAREST)
            y, x = title_h + r * (size + gap), c * (size + gap)
            grid[y : y + size, x : x + size] = big
    return grid


def save_png(path: str | os.PathLike[str], image: np.ndarray) -> Path:
    """Write an RGB uint8 image as PNG, atomically."""
    target = Path(path)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"could not encode {target} as PNG")
    return atomic_write_bytes(target, encoded.tobytes())
