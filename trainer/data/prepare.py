"""One pass from a dataset as distributed to prepared shards (trainer/data/shards.py).

Each split is read through its raw loader (the same indexing, alignment, crops and label maps
as training from the raw files), in a seeded shuffle of the loader's order, by DataLoader
workers. Samples are gathered into shards of about `shard_bytes`; each shard is written
atomically, then its record (shard-NNNNN.json: count, how far into the shuffled source it
reached, what it skipped). A re-run with the same options continues after the last recorded
shard, so an interrupted prepare loses at most one shard of work. Unreadable files and images
without a face are skipped and counted by reason, as are rows the loader's index dropped. The
manifest is written last.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, cast

import numpy as np
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from faceedit.errors import ConfigError, DatasetError, NoFaceError
from faceedit.fileio import atomic_path, atomic_write_text
from trainer.data.common import LOAD_ERRORS, SPLITS, FaceDataset, Split
from trainer.data.shards import (
    EXPRESSION_KINDS,
    KINDS,
    MANIFEST,
    OPTIONS_FILE,
    PARSING_KINDS,
    Manifest,
    images_file,
    is_prepared,
    labels_file,
    shard_record_file,
)

logger = logging.getLogger("trainer.data")

# About 256 MB per shard: few enough files for a network file system, small enough that a
# resumed prepare redoes little and that ranks can split even a small dataset's shards.
DEFAULT_SHARD_BYTES: Final[int] = 256 * 2**20
ORDER_SALT: Final[int] = 0x5A4D


@dataclass(frozen=True)
class PrepareOptions:
    """What a prepared folder is made from; a resumed prepare must be given the same."""

    kind: str
    source: str
    size: int
    align: str = ""
    seed: int = 0
    splits: tuple[str, ...] = SPLITS
    shard_bytes: int = DEFAULT_SHARD_BYTES

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"dataset kind {self.kind!r} is not one of {list(KINDS)}")
        if not isinstance(self.size, int) or self.size <= 0:
            raise ConfigError(f"--size must be a positive number of pixels, got {self.size!r}")
        bad = [s for s in self.splits if s not in SPLITS]
        if bad or not self.splits:
            raise ConfigError(f"splits must be some of {list(SPLITS)}, got {list(self.splits)}")
        if self.shard_bytes <= 0:
            raise ConfigError(f"shard size must be positive, got {self.shard_bytes} bytes")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "splits": list(self.splits)}


def open_source(options: PrepareOptions, split: str) -> FaceDataset:
    """The raw loader `prepare` reads one split with (no augmentation: shards store the plain
    aligned samples; training augments them on the fly)."""
    from trainer.data import EXPRESSION_DATASETS
    from trainer.data.celebamask import CelebAMaskHQ

    if is_prepared(options.source):
        raise ConfigError(f"{options.source} is a prepared folder already; give the dataset's root")
    chosen = cast(Split, split)  # one of SPLITS: PrepareOptions checks
    if options.kind == "facial-expressions":
        from trainer.data.dlib_landmarks import INSTALL_HINT, available

        if not available():  # checked here: in the workers it would fail every sample
            raise ConfigError(
                f"preparing facial_expressions draws label maps from dlib's 68 landmarks: "
                f"{INSTALL_HINT}"
            )
    if options.kind == "celebamask-hq":
        return CelebAMaskHQ(options.source, chosen, size=options.size)
    extra: dict[str, Any] = {"align": options.align} if options.align else {}
    loader = EXPRESSION_DATASETS[options.kind.replace("-", "_")]
    try:
        return loader(options.source, chosen, size=options.size, **extra)
    except ValueError as error:
        raise ConfigError(f"--align for {options.kind}: {error}") from None


class _Items(IterableDataset):
    """(position, arrays or None, skip reason, detail) for positions start.. of `order`, each
    worker taking every num_workers-th position; the main process restores the order."""

    def __init__(self, dataset: FaceDataset, order: np.ndarray, start: int) -> None:
        self.dataset, self.order, self.start = dataset, order, start

    def __iter__(self) -> Iterator[tuple[int, Any, str, str]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for position in range(self.start + worker, len(self.order), workers):
            index = int(self.order[position])
            try:
                arrays = self.dataset.prepared_arrays(index)  # type: ignore[attr-defined]  # every loader has it
            except LOAD_ERRORS as error:
                reason = "no face detected" if isinstance(error, NoFaceError) else "unreadable file"
                yield position, None, reason, f"{self.dataset._describe(index)}: {error}"
                continue
            yield position, arrays, "", ""


def _in_order(loader: DataLoader) -> Iterator[tuple[int, Any, str, str]]:
    """Items by position: workers deliver round-robin, so a small reorder buffer suffices."""
    pending: dict[int, tuple[int, Any, str, str]] = {}
    expected: int | None = None
    for item in loader:
        pending[item[0]] = item
        if expected is None:
            expected = min(pending)
        while expected in pending:
            yield pending.pop(expected)
            expected += 1
    for position in sorted(pending):  # nothing should remain; keep order if it does
        yield pending[position]


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.ascontiguousarray(array))


class _SplitWriter:
    """Buffers samples of one split and writes them shard by shard (resumably).

    A parsing dataset's sample is (image, labels), an expression dataset's its image; one that
    is both (facial-expressions) gives (image, labels, facts), facts being per-sample values
    (flags, the file name) kept in each shard's record and written as <split>/<fact>.npy.
    """

    def __init__(self, folder: Path, kind: str, per_shard: int) -> None:
        self.folder, self.kind, self.per_shard = folder, kind, per_shard
        self.parsing = kind in PARSING_KINDS
        self.expressions = kind in EXPRESSION_KINDS
        self.facts: dict[str, list[Any]] = {}
        self.records: list[dict[str, Any]] = []
        self.images: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.expression: list[int] = []
        self.valence_arousal: list[list[float]] = []
        self.source_index: list[int] = []
        self.skipped: dict[str, int] = {}
        self.examples: list[str] = []

    def resume(self) -> int:
        """Read the shards already written; returns the source position to continue from."""
        self.folder.mkdir(parents=True, exist_ok=True)
        index = 0
        while (self.folder / shard_record_file(index)).is_file():
            record = json.loads((self.folder / shard_record_file(index)).read_text("utf-8"))
            if not (self.folder / images_file(index)).is_file():
                break
            self.records.append(record)
            index += 1
        return int(self.records[-1]["source_end"]) if self.records else 0

    def add(
        self,
        arrays: Any,
        source_index: int,
        expression: int = 0,
        va: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        self.source_index.append(source_index)
        if self.parsing and self.expressions:
            image, labels, facts = arrays
            for name, value in facts.items():
                self.facts.setdefault(name, []).append(_plain(value))
        elif self.parsing:
            image, labels = arrays
        else:
            image, labels = arrays, None
        self.images.append(image)
        if self.parsing:
            self.labels.append(labels)
        if self.expressions:
            self.expression.append(int(expression))
            self.valence_arousal.append([float(va[0]), float(va[1])])

    def skip(self, reason: str, detail: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if len(self.examples) < 5:
            self.examples.append(f"{reason}: {detail}")

    @property
    def full(self) -> bool:
        return len(self.images) >= self.per_shard

    def flush(self, source_end: int) -> None:
        """Write the buffered samples as the next shard (nothing when the buffer is empty)."""
        if not self.images:
            return
        index = len(self.records)
        _save_npy(self.folder / images_file(index), np.stack(self.images))
        if self.parsing:
            _save_npy(self.folder / labels_file(index), np.stack(self.labels))
        record: dict[str, Any] = {
            "count": len(self.images),
            "source_end": source_end,
            "skipped": self.skipped,
            "expression": self.expression,
            "valence_arousal": self.valence_arousal,
            "source_index": self.source_index,
        }
        if self.facts:
            record["facts"] = self.facts
        atomic_write_text(self.folder / shard_record_file(index), json.dumps(record))
        self.records.append(record)
        self.images, self.labels, self.expression, self.valence_arousal = [], [], [], []
        self.source_index = []
        self.facts = {}
        self.skipped = {}

    def finish(self, index_skips: dict[str, int]) -> tuple[list[int], dict[str, int]]:
        """Write the split's label arrays; (shard sizes, skips by reason)."""
        skipped = dict(index_skips)
        source = [i for r in self.records for i in r["source_index"]]
        _save_npy(self.folder / "source_index.npy", np.asarray(source, dtype=np.int64))
        for record in self.records:
            for reason, count in record["skipped"].items():
                skipped[reason] = skipped.get(reason, 0) + int(count)
        for name in sorted({n for r in self.records for n in r.get("facts", {})}):
            values = [v for r in self.records for v in r["facts"][name]]
            _save_npy(self.folder / f"{name}.npy", np.asarray(values))
        if self.expressions:
            expression = [e for r in self.records for e in r["expression"]]
            va = [p for r in self.records for p in r["valence_arousal"]]
            _save_npy(self.folder / "expression.npy", np.asarray(expression, dtype=np.int64))
            _save_npy(
                self.folder / "valence_arousal.npy",
                np.asarray(va, dtype=np.float32).reshape(-1, 2),
            )
        return [int(r["count"]) for r in self.records], skipped


def _plain(value: Any) -> Any:
    """A fact as JSON stores it (numpy scalars to Python's)."""
    return value.item() if isinstance(value, np.generic) else value


Progress = Callable[[int, int, dict[str, int]], None]


def check_options(out: Path, options: PrepareOptions) -> None:
    """Refuse to mix options in one folder: a resumed prepare must use the same ones."""
    file = out / OPTIONS_FILE
    if file.is_file():
        saved = json.loads(file.read_text("utf-8"))
        if saved != options.to_dict():
            differ = sorted(
                k
                for k in saved.keys() | options.to_dict().keys()
                if saved.get(k) != options.to_dict().get(k)
            )
            raise ConfigError(
                f"{out} holds a prepare made with other options ({', '.join(differ)}: "
                f"{ {k: saved.get(k) for k in differ} }); resume it with the same options, or "
                "choose another --out"
            )
    elif out.exists() and any(out.iterdir()):
        raise ConfigError(
            f"{out} is not empty and holds no prepare to resume; choose another --out"
        )


def prepare(
    options: PrepareOptions,
    out: str | os.PathLike[str],
    workers: int = 0,
    progress: Progress | None = None,
    stop_after_shards: int | None = None,
) -> Manifest | None:
    """Prepare (or finish preparing) `out`; returns the manifest, or None when stopped early.

    `stop_after_shards` stops after writing that many shards in this call, as an interruption
    would (for tests of resuming).
    """
    folder = Path(out)
    if (folder / MANIFEST).is_file():
        manifest = Manifest.read(folder)
        logger.info("%s is already prepared (%s); nothing to do", folder, manifest.kind)
        return manifest
    check_options(folder, options)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / OPTIONS_FILE, json.dumps(options.to_dict()))
    sources = {split: open_source(options, split) for split in options.splits}
    total = sum(len(d) for d in sources.values())
    done = 0
    written = 0
    splits: dict[str, list[int]] = {}
    skipped: dict[str, dict[str, int]] = {}
    sample_bytes = options.size * options.size * (4 if options.kind in PARSING_KINDS else 3)
    per_shard = max(1, options.shard_bytes // sample_bytes)
    for split, dataset in sources.items():
        writer = _SplitWriter(folder / split, options.kind, per_shard)
        order = np.random.default_rng(
            np.random.SeedSequence([options.seed, ORDER_SALT, SPLITS.index(split)])
        ).permutation(len(dataset))
        start = writer.resume()
        done += start
        if start < len(order):
            loader = DataLoader(
                _Items(dataset, order, start),
                batch_size=None,
                num_workers=workers,
                collate_fn=lambda item: item,
            )
            for position, arrays, reason, detail in _in_order(loader):
                if arrays is None:
                    writer.skip(reason, detail)
                else:
                    record = dataset._items[int(order[position])]
                    writer.add(
                        arrays,
                        int(order[position]),
                        getattr(record, "expression", 0),
                        getattr(record, "valence_arousal", (0.0, 0.0)),
                    )
                done += 1
                if writer.full:
                    writer.flush(position + 1)
                    written += 1
                    if stop_after_shards is not None and written >= stop_after_shards:
                        return None
                if progress is not None:
                    progress(done, total, dict(writer.skipped))
            writer.flush(len(order))
        sizes, split_skips = writer.finish(dataset.skipped)
        for example in writer.examples:
            logger.warning("prepare %s: skipped %s", split, example)
        if not sum(sizes):
            raise DatasetError(
                f"prepare: no readable samples in split {split!r} of {options.source}"
            )
        splits[split], skipped[split] = sizes, split_skips
    manifest = Manifest(
        kind=options.kind,
        size=options.size,
        # The crop actually used (the loader's default when --align was not given).
        options={**options.to_dict(), "align": getattr(dataset, "align", options.align)},
        splits=splits,
        skipped=skipped,
    )
    atomic_write_text(folder / MANIFEST, manifest.to_json())
    return manifest


def default_workers() -> int:
    """Every core this process may use (prepare is pure decoding)."""
    try:
        return max(0, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


__all__ = ["DEFAULT_SHARD_BYTES", "PrepareOptions", "default_workers", "prepare"]
