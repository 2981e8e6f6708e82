"""The judges an evaluation is scored with, loaded from the files the user names."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from trainer.judges.classifier import ExpressionClassifier, load_classifier
from trainer.judges.fid import WEIGHTS_FILE_NAME, load_fid_inception

logger = logging.getLogger("trainer.judges.evaluation")


@dataclass
class LoadedJudges:
    """The expression classifier and FID network (None when not given), and why each is missing."""

    classifier: ExpressionClassifier | None = None
    fid_network: nn.Module | None = None
    reasons: dict[str, str] = field(default_factory=dict)


def load_judges(
    classifier: Path | None, fid_weights: Path | None, device: torch.device
) -> LoadedJudges:
    """Load the classifier file and pytorch-fid's Inception weights; nothing is downloaded."""
    judges = LoadedJudges()
    if classifier is not None:
        loaded = load_classifier(classifier, device)
        judges.classifier = loaded.model
        accuracy = loaded.held_out_accuracy
        logger.info(
            "classifier %s (held-out accuracy %s)",
            classifier,
            "unknown" if accuracy is None else f"{accuracy:.4f}",
        )
    else:
        judges.reasons["expression_accuracy"] = (
            "no --classifier given (train one with 'faceedit-train classifier')"
        )
    if fid_weights is not None:
        judges.fid_network = load_fid_inception(fid_weights, device)
    else:
        judges.reasons["fid"] = f"no --fid-weights given (pytorch-fid's {WEIGHTS_FILE_NAME})"
    return judges
