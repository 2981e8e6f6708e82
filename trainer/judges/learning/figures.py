"""The learning check's figures: the edit grid of held-out identities and each run's curves."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from faceedit.vocab.expressions import EXPRESSIONS
from trainer.judges import plots
from trainer.judges.world.held_out import HeldOut, PairKey

GRID_ROWS: Final[int] = 6
STAGES: Final[tuple[str, ...]] = ("parser", "gan", "joint")


def write_figures(
    held_out: HeldOut,
    edits: Mapping[PairKey, np.ndarray],
    runs: Mapping[str, Path],
    judge_losses: Sequence[float] | None,
    seed: int,
    out: Path,
) -> tuple[dict[str, str], dict[str, dict[str, list[Any]]]]:
    """edits.png (rows: held-out inputs; input, 8 edits, 8 truths), curves_<stage>.png and,
    when the judge was trained here, curves_judge.png. Returns the files by name and each
    stage's curves as [first, last] (step, value) per tag, for report.json."""
    rows = []
    for ident in list(held_out.table)[:GRID_ROWS]:
        source = 0  # neutral inputs
        inp = held_out.crops[(ident, source)]
        row = [inp]
        row += [edits.get((ident, source, t), inp) for t in range(len(EXPRESSIONS))]
        row += [held_out.crops[(ident, t)] for t in range(len(EXPRESSIONS))]
        rows.append(row)
    titles = ["input", *[f">{e[:7]}" for e in EXPRESSIONS], *[f"={e[:7]}" for e in EXPRESSIONS]]
    files = {"edits": str(plots.save_png(out / "edits.png", plots.image_grid(rows, titles)))}
    curves: dict[str, dict[str, list[Any]]] = {}
    for stage in STAGES:
        scalars = read_scalars(runs[stage] / "tensorboard")  # read once: figure and curves
        curves[stage] = {k: [v[0], v[-1]] for k, v in scalars.items() if v}
        series = {k: v for k, v in scalars.items() if not k.startswith(("lr/", "speed/"))}
        figure = plots.curves_figure(f"{stage} stage (seed {seed})", series)
        files[f"curves_{stage}"] = str(plots.save_png(out / f"curves_{stage}.png", figure))
    if judge_losses is not None:
        losses = list(enumerate(judge_losses, start=1))
        every = max(1, len(losses) // 60)
        smoothed = [
            (s, float(np.mean([v for _, v in losses[max(0, i - every) : i + 1]])))
            for i, (s, _) in enumerate(losses)
        ][::every]
        figure = plots.curves_figure("judge classifier", {"judge/cross_entropy": smoothed})
        files["curves_judge"] = str(plots.save_png(out / "curves_judge.png", figure))
    elif (out / "curves_judge.png").is_file():  # a rescored check keeps the curve it drew
        files["curves_judge"] = str(out / "curves_judge.png")
    return files, curves


def read_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """TensorBoard scalars of a run: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    # TensorBoard's directory watcher says "No path found after <file>" at INFO for every
    # events file it has read to the end: noise in the check's output, not a problem
    quiet = logging.getLogger("tensorboard")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        accumulator.Reload()
    finally:
        quiet.setLevel(level)
    return {
        tag: [(int(e.step), float(e.value)) for e in accumulator.Scalars(tag)]
        for tag in accumulator.Tags().get("scalars", [])
    }
