"""Prepared dataset shards: what `faceedit-train prepare` writes and every stage reads directly.

Layout of a prepared folder (docs/training.md, "Prepared shards"):
    faceedit-shards.json                  the manifest, written last: its presence = complete
    prepare.json                          the options `prepare` ran with (checked on resume)
    <split>/images-00000.npy ...          (n, S, S, 3) uint8 RGB, already aligned/cropped and sized
    <split>/labels-00000.npy ...          (n, S, S) uint8 label maps (parsing datasets)
    <split>/shard-00000.json ...          per shard: count, source position reached, skips
    <split>/expression.npy                (N,) int64 unified expression (expression datasets)
    <split>/valence_arousal.npy           (N, 2) float32, NaN where not annotated
    <split>/source_index.npy              (N,) int64: each sample's index in the raw loader
    <split>/<fact>.npy                    (N,) per-sample facts some datasets record
                                          (facial-expressions: greyscale, labelled, file)
Each shard is a plain .npy file opened with numpy's memory map: reading a sample is a page-cache
copy, with no JPEG or PNG decoding (measured against JPEG-in-tar and PNG-label shards in
docs/training.md). Samples are stored in a seeded shuffle of the source order, so a shard is a
random subset and a rank that reads only its own shards still sees mixed classes.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from torch.utils.data import Dataset

from faceedit.errors import ConfigError, DatasetError
from trainer.data.celebamask import augment_pair
from trainer.data.common import (
    AugmentConfig,
    check_split,
    item_rng,
    resize_image,
    resize_labels,
    to_tensor,
)

logger = logging.getLogger("trainer.data")

MANIFEST: Final[str] = "faceedit-shards.json"
OPTIONS_FILE: Final[str] = "prepare.json"
FORMAT: Final[str] = "faceedit-shards"
FORMAT_VERSION: Final[int] = 1
# facial-expressions is both: aligned real faces with an expression each and a label map drawn
# from their landmarks (trainer/data/facial_expressions.py), so the parser stage and the
# gan/joint stages train from the same prepared folder.
PARSING_KINDS: Final[tuple[str, ...]] = ("celebamask-hq", "facial-expressions")
EXPRESSION_KINDS: Final[tuple[str, ...]] = ("affectnet", "rafd", "folders", "facial-expressions")
KINDS: Final[tuple[str, ...]] = tuple(dict.fromkeys(PARSING_KINDS + EXPRESSION_KINDS))


def images_file(index: int) -> str:
    return f"images-{index:05d}.npy"


def labels_file(index: int) -> str:
    return f"labels-{index:05d}.npy"


def shard_record_file(index: int) -> str:
    return f"shard-{index:05d}.json"


def is_prepared(root: str | os.PathLike[str]) -> bool:
    """True when `root` is a folder `prepare` finished writing (it holds the manifest)."""
    return (Path(root) / MANIFEST).is_file()


def looks_partly_prepared(root: str | os.PathLike[str]) -> bool:
    """True when `prepare` started in `root` but has not finished (no manifest yet)."""
    return (Path(root) / OPTIONS_FILE).is_file() and not is_prepared(root)


@dataclass(frozen=True)
class Manifest:
    """What a prepared folder holds: dataset kind, sample size, options, per-split shard sizes."""

    kind: str
    size: int
    options: Mapping[str, Any]
    splits: Mapping[str, Sequence[int]]  # split -> sample count of each shard, in order
    skipped: Mapping[str, Mapping[str, int]]  # split -> reason -> count

    @classmethod
    def read(cls, root: Path) -> Manifest:
        file = root / MANIFEST
        if not file.is_file():
            hint = (
                "prepare did not finish there: run the same 'faceedit-train prepare' again to "
                "resume it"
                if looks_partly_prepared(root)
                else "prepare one with 'faceedit-train prepare'"
            )
            raise DatasetError(f"{root} is not a prepared dataset folder ({hint})")
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {FORMAT!r}")
            if int(data.get("format_version", 0)) > FORMAT_VERSION:
                raise ValueError(
                    f"format version {data.get('format_version')}; this faceedit reads up to "
                    f"{FORMAT_VERSION}"
                )
            return cls(
                kind=str(data["kind"]),
                size=int(data["size"]),
                options=dict(data.get("options", {})),
                splits={str(k): [int(n) for n in v] for k, v in data["splits"].items()},
                skipped={str(k): dict(v) for k, v in data.get("skipped", {}).items()},
            )
        except (ValueError, KeyError, TypeError) as error:
            raise DatasetError(f"{file} is not a readable shard manifest: {error}") from None

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "kind": self.kind,
                "size": self.size,
                "options": dict(self.options),
                "splits": {k: list(v) for k, v in self.splits.items()},
                "skipped": {k: dict(v) for k, v in self.skipped.items()},
            },
            indent=1,
        )


# ------------------------------------------------------------------------------ datasets


class ShardDataset(Dataset):
    """Base of the prepared-shard datasets: memory-mapped shards opened lazily per process.

    The maps are opened on first access in each process (a DataLoader worker opens its own
    after the fork), and only the shards a process touches are mapped: under torchrun a rank
    that reads its own shards (trainer.stages.loop.EndlessLoader) maps only those.
    """

    kind: str = "prepared shards"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str,
        size: int,
        seed: int,
        expected: tuple[str, ...],
    ) -> None:
        check_split(split)
        if not isinstance(size, int) or size <= 0:
            raise ConfigError(f"size must be a positive integer, got {size!r}")
        self.root = Path(root)
        self.manifest = Manifest.read(self.root)
        if self.manifest.kind not in expected:
            raise DatasetError(
                f"{self.root} holds prepared {self.manifest.kind} shards; this needs "
                f"{' or '.join(expected)} data (prepare it with 'faceedit-train prepare "
                f"--{expected[0]} ROOT --out DIR')"
            )
        if split not in self.manifest.splits or not sum(self.manifest.splits[split]):
            raise DatasetError(
                f"{self.root}: the prepared {self.manifest.kind} data has no samples in split "
                f"{split!r} (splits: { {k: sum(v) for k, v in self.manifest.splits.items()} })"
            )
        self.split = split
        self.size = size
        self.seed = seed
        self.epoch = 0
        self.folder = self.root / split
        self.shard_sizes: tuple[int, ...] = tuple(self.manifest.splits[split])
        self.starts = np.concatenate([[0], np.cumsum(self.shard_sizes)]).astype(np.int64)
        self._maps: dict[tuple[str, int], np.ndarray] = {}
        if size != self.manifest.size:
            logger.warning(
                "%s: shards hold %d px samples and %d px were asked for: every sample is resized "
                "on load (slower; prepare again with --size %d)",
                self.root,
                self.manifest.size,
                size,
                size,
            )

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def skipped(self) -> dict[str, int]:
        """Rows `prepare` skipped for this split, by reason."""
        return dict(self.manifest.skipped.get(self.split, {}))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def locate(self, index: int) -> tuple[int, int]:
        """(shard, row) of sample `index`."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} is outside 0..{len(self) - 1}")
        shard = int(np.searchsorted(self.starts, index, side="right")) - 1
        return shard, index - int(self.starts[shard])

    def _map(self, name: str, shard: int) -> np.ndarray:
        key = (name, shard)
        array = self._maps.get(key)
        if array is None:
            file = self.folder / (images_file(shard) if name == "images" else labels_file(shard))
            try:
                array = np.load(file, mmap_mode="r")
            except (OSError, ValueError) as error:
                raise DatasetError(
                    f"{file}: cannot read this shard ({error}); prepare the folder again"
                ) from None
            if array.shape[0] != self.shard_sizes[shard]:
                raise DatasetError(
                    f"{file} holds {array.shape[0]} samples, the manifest says "
                    f"{self.shard_sizes[shard]}; prepare the folder again"
                )
            self._maps[key] = array
        return array

    def image_array(self, index: int) -> np.ndarray:
        """(S, S, 3) uint8 of sample `index`, at the asked size."""
        shard, row = self.locate(index)
        image = np.array(self._map("images", shard)[row])
        return resize_image(image, self.size) if self.size != image.shape[0] else image

    def label_array(self, index: int) -> np.ndarray:
        """(S, S) uint8 label map of sample `index` (parsing shards), at the asked size."""
        shard, row = self.locate(index)
        labels = np.array(self._map("labels", shard)[row])
        return resize_labels(labels, self.size) if self.size != labels.shape[0] else labels

    def __getstate__(self) -> dict[str, Any]:
        # Maps are per process: a worker re-opens what it reads.
        state = self.__dict__.copy()
        state["_maps"] = {}
        return state


class ShardParsing(ShardDataset):
    """Prepared CelebAMask-HQ: `ds[i]` -> (image (3, S, S) float32 in [-1, 1], labels (S, S)
    int64), the raw loader's contract and, for the same index, epoch and seed, its values.

    `load_uint8(epoch, index)` returns the same sample as uint8 tensors (image (3, S, S),
    labels (S, S)): a quarter of the bytes through the DataLoader's worker pipes, converted to
    float on the training device (trainer.stages.loop.EndlessLoader).
    """

    kind = "prepared CelebAMask-HQ"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str,
        size: int = 512,
        augment: bool | AugmentConfig = False,
        seed: int = 0,
    ) -> None:
        super().__init__(root, split, size, seed, PARSING_KINDS)
        if augment is True:
            augment = AugmentConfig()
        self.augment: AugmentConfig | None = augment or None

    def arrays(self, epoch: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(image (S, S, 3) uint8, labels (S, S) uint8) of sample `index` in `epoch`."""
        image, labels = self.image_array(index), self.label_array(index)
        if self.augment is not None:
            # The raw loader's paired augmentation with the same draws: a shard sample equals
            # the raw loader's sample for the same (seed, epoch, index).
            image, labels = augment_pair(
                image, labels, item_rng(self.seed, epoch, index), self.augment
            )
        return image, labels

    def load_uint8(self, epoch: int, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, labels = self.arrays(epoch, index)
        chw = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        return chw, torch.from_numpy(np.ascontiguousarray(labels))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, labels = self.arrays(self.epoch, int(index))
        return to_tensor(image), torch.from_numpy(labels.astype(np.int64))


class ShardExpressions(ShardDataset):
    """Prepared expression data (AffectNet, RaFD or folders): `ds[i]` -> (image (3, S, S)
    float32 in [-1, 1], expression int64, valence_arousal (2,) float32, NaN where missing), the
    raw loaders' contract. `targets` and `has_valence_arousal` come from small arrays, so
    class-balanced weights never touch an image."""

    kind = "prepared expression data"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str,
        size: int = 128,
        seed: int = 0,
        align: str | None = None,
    ) -> None:
        super().__init__(root, split, size, seed, EXPRESSION_KINDS)
        prepared_align = str(self.manifest.options.get("align", ""))
        if align and align != prepared_align:
            raise ConfigError(
                f"{self.root} was prepared with align={prepared_align!r}; align={align!r} needs "
                "its own prepared folder (the crops are made once, by prepare)"
            )
        self.expression = np.load(self.folder / "expression.npy").astype(np.int64)
        self.valence_arousal = np.load(self.folder / "valence_arousal.npy").astype(np.float32)
        if len(self.expression) != len(self) or self.valence_arousal.shape != (len(self), 2):
            raise DatasetError(
                f"{self.folder}: the label arrays do not match the shards' {len(self)} samples; "
                "prepare the folder again"
            )

    @property
    def targets(self) -> np.ndarray:
        return self.expression

    @property
    def has_valence_arousal(self) -> np.ndarray:
        return np.asarray(np.isfinite(self.valence_arousal).all(axis=1))

    def fact(self, name: str) -> np.ndarray | None:
        """(N,) per-sample fact `prepare` recorded for this split (facial-expressions:
        "greyscale" bool, "labelled" bool, "file" str), or None when it recorded none."""
        return read_fact(self.folder, name, len(self))

    def load_uint8(self, epoch: int, index: int) -> tuple[torch.Tensor, ...]:
        del epoch  # expression batches are not augmented here (the critics augment on device)
        image = self.image_array(index)
        return (
            torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            torch.tensor(self.expression[index], dtype=torch.int64),
            torch.from_numpy(self.valence_arousal[index].copy()),
        )

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        index = int(index)
        return (
            to_tensor(self.image_array(index)),
            torch.tensor(self.expression[index], dtype=torch.int64),
            torch.from_numpy(self.valence_arousal[index].copy()),
        )


def read_fact(folder: Path, name: str, count: int) -> np.ndarray | None:
    """(count,) array of <folder>/<name>.npy, None when absent (DatasetError when it does not
    match the split's sample count)."""
    file = folder / f"{name}.npy"
    if not file.is_file():
        return None
    values = np.load(file)  # numbers, booleans or fixed-width strings: never pickled objects
    if values.shape != (count,):
        raise DatasetError(
            f"{file} holds {values.shape} values for {count} samples; prepare the folder again"
        )
    return np.asarray(values)


__all__ = [
    "KINDS",
    "MANIFEST",
    "Manifest",
    "ShardExpressions",
    "ShardParsing",
    "is_prepared",
]
