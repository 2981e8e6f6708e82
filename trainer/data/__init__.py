"""Dataset loaders that read CelebAMask-HQ, AffectNet, RaFD and expression folders as stored.

`build_expression_dataset` picks an expression loader by name from the explicit
EXPRESSION_DATASETS mapping (it lives here rather than in common.py, which the loaders import).
"""

from __future__ import annotations

import os
from typing import Any, Final, Literal

from faceedit.errors import ConfigError
from trainer.data.affectnet import AffectNet
from trainer.data.celebamask import CelebAMaskHQ
from trainer.data.common import AugmentConfig, ExpressionDataset, SkippedItem, Split
from trainer.data.folders import ExpressionFolders
from trainer.data.rafd import RaFD
from trainer.data.sampling import DistributedWeightedSampler, class_balanced_weights

ExpressionKind = Literal["affectnet", "rafd", "folders"]
EXPRESSION_DATASETS: Final[dict[str, type[ExpressionDataset]]] = {
    "affectnet": AffectNet,
    "rafd": RaFD,
    "folders": ExpressionFolders,
}


def build_expression_dataset(
    kind: ExpressionKind, root: str | os.PathLike[str], split: Split, size: int, **kw: Any
) -> ExpressionDataset:
    """The expression dataset `kind` at `root`; extra keywords go to its class (align, seed...)."""
    try:
        cls = EXPRESSION_DATASETS[kind]
    except KeyError:
        raise ConfigError(
            f"unknown expression dataset {kind!r}; expected one of {list(EXPRESSION_DATASETS)}"
        ) from None
    return cls(root, split, size=size, **kw)


__all__ = [
    "EXPRESSION_DATASETS",
    "AffectNet",
    "AugmentConfig",
    "CelebAMaskHQ",
    "DistributedWeightedSampler",
    "ExpressionFolders",
    "RaFD",
    "SkippedItem",
    "build_expression_dataset",
    "class_balanced_weights",
]
