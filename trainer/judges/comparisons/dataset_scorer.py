"""Scoring comparison variants on real datasets: `trainer.judges.evaluation` for each checkpoint.

The same data, classifier and FID network score every variant; the identity L1 is measured
over the same pixels for every variant (outside the union of all four keypoint-box regions of
the alignment template, grown by a margin: see evaluation.SHARED_OUTSIDE_GROW).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np

from trainer.judges.comparisons.tables import Metric
from trainer.judges.evaluation import (
    SUMMARY_METRICS,
    evaluate_checkpoint,
    write_report,
)

HIGHER_IS_BETTER: Final[dict[str, bool]] = {
    "miou": True,
    "mean_f1": True,
    "pixel_accuracy": True,
    "expression_accuracy": True,
    "target_probability": True,
    "identity_l1": False,
    "fid": False,
}


class DatasetScorer:
    """Scores checkpoints with `evaluate_checkpoint` on the user's datasets."""

    metrics: Mapping[str, Metric] = {
        key: Metric(header, HIGHER_IS_BETTER[key], 2 if key == "fid" else 3)
        for key, header in SUMMARY_METRICS.items()
    }

    def __init__(
        self,
        celebamask_hq: str,
        expression: tuple[str, str],
        options: Mapping[str, Any],
        log: Callable[[str], None] = print,
    ) -> None:
        self.celebamask_hq = celebamask_hq
        self.expression = expression
        self.options = dict(options)  # classifier, fid_network, reasons, split, limit, ...
        self.log = log
        self.notes: list[str] = [
            "identity L1: mean |edit - input| outside the union of the four keypoint-box "
            "regions of the alignment template (grown by a margin): the same pixels for every "
            "variant.",
        ]

    def score(self, checkpoint: Path, folder: Path) -> dict[str, Any]:
        report = evaluate_checkpoint(
            checkpoint,
            celebamask_hq=self.celebamask_hq,
            expression=self.expression,
            log=self.log,
            **self.options,
        )
        write_report(report, folder)
        for line in report.not_computed().items():
            note = f"not computed: {SUMMARY_METRICS[line[0]]}: {line[1]}"
            if note not in self.notes:
                self.notes.append(note)
        parser_note = report.info.get("parser_note")
        if parser_note and parser_note not in self.notes:
            self.notes.append(parser_note)
        return dict(report.summary)

    def grid(self, checkpoints: Mapping[str, Path]) -> np.ndarray | None:
        """The per-variant edit grids are in eval/{variant}/s{seed}/edits.png."""
        return None
