"""`faceedit-train real-faces-score`: measure a checkpoint on held-out real faces.

Edits the neutral photos of the facial_expressions test identities through the product's
own path (detection included), judged by an expression classifier trained on the train
split (`faceedit-train classifier --facial-expressions PREPARED --shift 4 --colour 0.3
--noise 0.1 ...`, or trainer.judges.real.judge.train_real_judge) and by dlib's face
descriptor, with controls (the input itself, a painted smile, noise aimed at the checkpoint's
critics) scored the same way. Writes report.json, report.md and edits.png to --out;
trainer/judges/real/ holds the measurements.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from faceedit.limits import bounded_int
from trainer.judges.real.report import goals, write_report
from trainer.judges.real.scorer import score_real_faces

logger = logging.getLogger("trainer.judges.real")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help="the model.safetensors to score"
    )
    parser.add_argument(
        "--data",
        required=True,
        type=Path,
        help="the facial_expressions root (images/, data/legend.csv)",
    )
    parser.add_argument(
        "--prepared",
        required=True,
        type=Path,
        help="its folder prepared by 'faceedit-train prepare' (landmark labels of the test split)",
    )
    parser.add_argument(
        "--judge", required=True, type=Path, help="the judge (faceedit-train classifier)"
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="folder for report.json, report.md, edits.png"
    )
    parser.add_argument(
        "--limit",
        type=bounded_int(1, 10**6),
        default=None,
        help="edit at most N neutral test photos, spread over the list (default all)",
    )
    parser.add_argument(
        "--survey-limit",
        type=bounded_int(1, 10**6),
        default=None,
        help="parse and detect at most N test crops/photos (default all)",
    )
    parser.add_argument(
        "--colour-limit",
        type=bounded_int(0, 10**6),
        default=20,
        help="colour photos (val identities) for the white balance (default 20; 0: none)",
    )
    parser.add_argument("--no-controls", action="store_true", help="score the product only")
    parser.add_argument("--threads", type=bounded_int(1, 1024), default=1)


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    report = score_real_faces(
        args.checkpoint,
        args.data,
        args.prepared,
        args.judge,
        limit=args.limit,
        survey_limit=args.survey_limit,
        colour_limit=args.colour_limit or None,
        controls=not args.no_controls,
        log=logger.info,
    )
    paths = write_report(report, args.out)
    for goal in goals(report):
        verdict = "n/a" if goal.passed is None else ("pass" if goal.passed else "FAIL")
        value = "n/a" if goal.measured is None else f"{goal.measured:.3f}"
        print(f"{verdict:>4}  {goal.target}: {value} (goal {goal.goal})")
    print(f"report written to {paths['markdown']}")
    return 0
