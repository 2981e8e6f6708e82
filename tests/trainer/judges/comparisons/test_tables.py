"""Comparison tables over seeds: mean ± std, the best in bold, differences within noise marked;
the LaTeX twin; bar plots with error bars."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainer.judges import plots
from trainer.judges.comparisons.tables import (
    Metric,
    comparison_tables,
    stat,
    summarise,
    within_noise,
)

METRICS = {"acc": Metric("accuracy", True), "err": Metric("error", False, 2)}


def test_stat_is_mean_and_sample_std_and_skips_missing_values() -> None:
    s = stat([1.0, 2.0, 3.0, None, float("nan")])
    assert s.mean == 2.0 and s.std == pytest.approx(1.0) and s.n == 3
    assert stat([4.0]).std is None and stat([None]).mean is None


def test_within_noise_uses_two_standard_errors_of_the_difference() -> None:
    a, b = stat([0.50, 0.52, 0.54]), stat([0.51, 0.53, 0.55])
    assert within_noise(a, b) is True
    far = stat([0.90, 0.91, 0.92])
    assert within_noise(a, far) is False
    assert within_noise(stat([0.5]), far) is None  # one seed: unknowable


def test_tables_mark_the_best_and_what_is_within_noise() -> None:
    runs = {
        "global": [
            {"acc": 0.20, "err": 0.10},
            {"acc": 0.22, "err": 0.12},
            {"acc": 0.24, "err": 0.11},
        ],
        "joint": [
            {"acc": 0.60, "err": 0.11},
            {"acc": 0.62, "err": 0.10},
            {"acc": 0.64, "err": None},
        ],
    }
    stats = {name: summarise(r, METRICS) for name, r in runs.items()}
    markdown, latex = comparison_tables(stats, METRICS, "demo")
    rows = {
        cells[0]: cells
        for line in markdown.splitlines()
        if line.startswith("| ")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    assert rows["joint"][2] == "**0.620 ± 0.020**"  # best accuracy, clearly apart
    assert rows["global"][2] == "0.220 ± 0.020"  # no mark: the gap exceeds the noise
    assert rows["global"][3] == "0.11 ± 0.01 ~"  # error: joint's 0.105 is better, within noise
    assert rows["joint"][3] == "**0.11 ± 0.01**" and rows["joint"][1] == "3"
    assert "\\begin{tabular}{lrrr}" in latex and "\\mathbf{0.620 \\pm 0.020}" in latex
    assert "$\\downarrow$" in latex and "\\texttt{joint}" in latex


def test_bar_figure_draws_every_metric_with_error_bars() -> None:
    figure = plots.bar_figure(
        "demo",
        {"accuracy": [("global", 0.2, 0.02), ("joint", 0.6, 0.05)], "fid": [("a", None, None)]},
    )
    assert figure.dtype == np.uint8 and figure.ndim == 3
    width, height = plots.PANEL_SIZE
    panel = figure[28 : 28 + height, :width]
    assert (panel != 255).any(axis=2).sum() > 500  # bars drawn
    assert math.isclose(figure.shape[1], plots.COLUMNS * width)
