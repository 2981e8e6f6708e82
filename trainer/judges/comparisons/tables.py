"""Comparison tables over seeds: mean +- std per variant and metric, the best marked, and
differences from the best that lie within the seeds' noise marked too; Markdown and LaTeX.

"Within noise": |mean_a - mean_b| <= 2 * sqrt(std_a^2 / n_a + std_b^2 / n_b), i.e. the gap is
under two standard errors of the difference (about a 95 % interval for normal seed-to-seed
variation). With fewer than two seeds on either side nothing can be said, and the table says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

NOISE_SE: Final[float] = 2.0
NOISE_MARK: Final[str] = "~"


@dataclass(frozen=True)
class Metric:
    """A table column: its header, and whether higher values are better."""

    header: str
    higher_is_better: bool
    digits: int = 3


@dataclass(frozen=True)
class Stat:
    """A metric over the seeds that measured it (None values are left out)."""

    mean: float | None
    std: float | None  # sample standard deviation (n - 1); None with fewer than two seeds
    n: int


def stat(values: Sequence[float | None]) -> Stat:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return Stat(None, None, 0)
    mean = sum(finite) / len(finite)
    if len(finite) < 2:
        return Stat(mean, None, len(finite))
    var = sum((v - mean) ** 2 for v in finite) / (len(finite) - 1)
    return Stat(mean, math.sqrt(var), len(finite))


def summarise(runs: Sequence[Mapping[str, Any]], metrics: Mapping[str, Metric]) -> dict[str, Stat]:
    """Per metric, the Stat over the runs (one scores dict per seed)."""
    return {key: stat([run.get(key) for run in runs]) for key in metrics}


def within_noise(a: Stat, b: Stat) -> bool | None:
    """Whether two variants' means differ by less than the noise; None when unknowable."""
    if a.mean is None or b.mean is None or a.std is None or b.std is None:
        return None
    margin = NOISE_SE * math.sqrt(a.std**2 / a.n + b.std**2 / b.n)
    return abs(a.mean - b.mean) <= margin


def best_variant(stats: Mapping[str, Mapping[str, Stat]], key: str, metric: Metric) -> str | None:
    measured = {name: s[key].mean for name, s in stats.items() if s[key].mean is not None}
    if not measured:
        return None
    pick = max if metric.higher_is_better else min
    return pick(measured, key=lambda name: measured[name] * 1.0)  # type: ignore[operator]  # None filtered above


def _cells(
    stats: Mapping[str, Mapping[str, Stat]], metrics: Mapping[str, Metric], latex: bool
) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {name: [] for name in stats}
    for key, metric in metrics.items():
        best = best_variant(stats, key, metric)
        for name, per_metric in stats.items():
            s = per_metric[key]
            if s.mean is None:
                rows[name].append("--" if latex else "n/a")
                continue
            value = f"{s.mean:.{metric.digits}f}"
            spread = "" if s.std is None else f"{s.std:.{metric.digits}f}"
            if latex:
                text = value if not spread else f"{value} \\pm {spread}"
                if name == best:
                    text = f"\\mathbf{{{text}}}"
                elif best is not None and within_noise(s, stats[best][key]):
                    text += "^{\\sim}"
                rows[name].append(f"${text}$")
            else:
                text = value if not spread else f"{value} ± {spread}"
                if name == best and len(stats) > 1:
                    text = f"**{text}**"
                elif best is not None and within_noise(s, stats[best][key]):
                    text += f" {NOISE_MARK}"
                rows[name].append(text)
    return rows


def comparison_tables(
    stats: Mapping[str, Mapping[str, Stat]], metrics: Mapping[str, Metric], name: str
) -> tuple[str, str]:
    """(Markdown, LaTeX) tables: rows variants, columns metrics, cells mean ± std (n seeds)."""
    headers = [
        "variant",
        "seeds",
        *(f"{m.header} {'↑' if m.higher_is_better else '↓'}" for m in metrics.values()),
    ]
    cells = _cells(stats, metrics, latex=False)
    seeds = {v: str(max((s.n for s in stats[v].values()), default=0)) for v in stats}
    rows = [[variant, seeds[variant], *cells[variant]] for variant in stats]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(items: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(items, widths, strict=True)) + " |"

    legend = (
        f"\nCells: mean ± std over seeds (sample std). **Bold**: best mean. `{NOISE_MARK}`: "
        f"within noise of the best (gap <= {NOISE_SE:g} standard errors of the difference); "
        "a difference without the mark is larger than the seeds' noise. With one seed no std "
        "and no noise mark can be given."
    )
    markdown = (
        "\n".join(
            [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
            + [line(r) for r in rows]
        )
        + "\n"
        + legend
    )

    latex_cells = _cells(stats, metrics, latex=True)
    columns = "l" + "r" * (1 + len(metrics))
    head = " & ".join(
        ["variant", "seeds"]
        + [
            _latex_escape(m.header) + (r" $\uparrow$" if m.higher_is_better else r" $\downarrow$")
            for m in metrics.values()
        ]
    )
    body = [
        " & ".join([f"\\texttt{{{_latex_escape(v)}}}", seeds[v], *latex_cells[v]]) + r" \\"
        for v in stats
    ]
    latex = (
        "\n".join(
            [
                f"% {name}: mean $\\pm$ std over seeds; bold best; $^{{\\sim}}$ within noise of it",
                "\\begin{tabular}{" + columns + "}",
                "\\toprule",
                head + r" \\",
                "\\midrule",
                *body,
                "\\bottomrule",
                "\\end{tabular}",
            ]
        )
        + "\n"
    )
    return markdown, latex


def _latex_escape(text: str) -> str:
    for char in ("\\", "&", "%", "_", "#", "$"):
        text = text.replace(char, "\\" + char if char != "\\" else r"\textbackslash{}")
    return text
