"""Dataset loaders that read CelebAMask-HQ, AffectNet, RaFD, facial_expressions and expression
folders as stored.

`build_expression_dataset` picks an expression loader by name from the explicit
EXPRESSION_DATASETS mapping (it lives here rather than in common.py, which the loaders import).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final, Literal

from faceedit.errors import ConfigError
from trainer.data.affectnet import AffectNet
from trainer.data.celebamask import CelebAMaskHQ
from trainer.data.common import AugmentConfig, ExpressionDataset, SkippedItem, Split
from trainer.data.facial_expressions import LEGEND, FacialExpressions
from trainer.data.folders import ExpressionFolders
from trainer.data.rafd import RaFD
from trainer.data.sampling import DistributedWeightedSampler, class_balanced_weights
from trainer.data.shards import ShardExpressions, ShardParsing, is_prepared

ExpressionKind = Literal["affectnet", "rafd", "folders", "facial_expressions"]
EXPRESSION_DATASETS: Final[dict[str, type[ExpressionDataset]]] = {
    "affectnet": AffectNet,
    "rafd": RaFD,
    "folders": ExpressionFolders,
    "facial_expressions": FacialExpressions,
}


def build_expression_dataset(
    kind: ExpressionKind, root: str | os.PathLike[str], split: Split, size: int, **kw: Any
) -> ExpressionDataset | ShardExpressions:
    """The expression dataset `kind` at `root`; extra keywords go to its class (align, seed...).

    A folder written by `faceedit-train prepare` is read from its shards, whatever `kind` says
    (its manifest names the dataset); `align` must then be the one it was prepared with.
    """
    if is_prepared(root):
        return ShardExpressions(
            root, split, size=size, seed=kw.get("seed", 0), align=kw.get("align")
        )
    try:
        cls = EXPRESSION_DATASETS[kind]
    except KeyError:
        raise ConfigError(
            f"unknown expression dataset {kind!r}; expected one of {list(EXPRESSION_DATASETS)}"
        ) from None
    return cls(root, split, size=size, **kw)


def open_parsing_dataset(
    root: str | os.PathLike[str],
    split: Split,
    size: int,
    augment: bool | AugmentConfig = False,
    seed: int = 0,
) -> CelebAMaskHQ | ShardParsing:
    """Face-parsing data at `root`: prepared shards (CelebAMask-HQ's, or facial_expressions'
    landmark labels) when `root` is a prepared folder, else CelebAMask-HQ's own files."""
    if is_prepared(root):
        return ShardParsing(root, split, size=size, augment=augment, seed=seed)
    if (Path(root) / LEGEND).is_file():
        raise ConfigError(
            f"{root} is the facial_expressions dataset, whose parsing labels are drawn from "
            "landmarks while preparing it: run 'faceedit-train prepare --facial-expressions "
            f"{root} --out DIR' and train from DIR"
        )
    return CelebAMaskHQ(root, split, size=size, augment=augment, seed=seed)


__all__ = [
    "EXPRESSION_DATASETS",
    "AffectNet",
    "AugmentConfig",
    "CelebAMaskHQ",
    "DistributedWeightedSampler",
    "ExpressionFolders",
    "FacialExpressions",
    "RaFD",
    "ShardExpressions",
    "ShardParsing",
    "SkippedItem",
    "build_expression_dataset",
    "class_balanced_weights",
    "is_prepared",
    "open_parsing_dataset",
]
