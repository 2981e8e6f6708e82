"""What the four dataset loaders share: image I/O, resizing, crops, colour jitter, per-item RNG,
seeded splits, skip bookkeeping and the base `Dataset` that survives unreadable files.

Every loader indexes its root once (cheap checks: CSV fields, file names, file existence) and
reads pixels lazily in `__getitem__`. Problems found while indexing drop the row; problems found
while loading (a corrupt JPEG) are replaced by another sample chosen deterministically, so a long
training run never dies on one bad file. Both kinds are counted in `dataset.skipped` and the
first few are logged on the "trainer.data" logger.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple, TypeVar, cast

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from faceedit.errors import ConfigError, DatasetError, FaceEditError, InputError, NoFaceError
from faceedit.media import sources

if TYPE_CHECKING:
    from faceedit.faces.detect import Face

logger = logging.getLogger("trainer.data")

Split = Literal["train", "val", "test"]
SPLITS: Final[tuple[str, ...]] = ("train", "val", "test")
# Seeded splits (when a dataset has no official one): 80 % train, 10 % validation, 10 % test.
SPLIT_RATIOS: Final[tuple[float, float, float]] = (0.8, 0.1, 0.1)
KeyT = TypeVar("KeyT", bound=Hashable)
# The suffixes faceedit.media.sources.read_image accepts (lower case, with the dot).
IMAGE_EXTENSIONS: Final[frozenset[str]] = sources.IMAGE_EXTENSIONS
MAX_EXAMPLES_PER_REASON: Final[int] = 5
# How many other samples __getitem__ tries before deciding the whole dataset is unreadable.
MAX_LOAD_ATTEMPTS: Final[int] = 32
# Errors that mean "this one file is bad"; anything else is a bug and propagates.
LOAD_ERRORS: Final[tuple[type[BaseException], ...]] = (FaceEditError, OSError, ValueError)
# Past the first few examples, the running total of load-time skips is logged at these counts.
_TOTALS_WORTH_LOGGING: Final[frozenset[int]] = frozenset({10, 100, 1000})
# Decoded samples (before augmentation) a dataset may keep in memory, per loading process: a
# dataset that fits (the procedural world's 1,536 parser images take 25 MB at 64 px, its 6,144
# expression crops 75 MB) is read from its files once instead of once per epoch; one that
# does not fit is never partly kept. CelebAMask-HQ's 15 part-mask PNGs per image made decoding
# 2.8 ms per sample, a third of a world-64 parser step on two cores.
DECODED_CACHE_BYTES: Final[int] = 256 << 20
DecodedT = TypeVar("DecodedT", bound=tuple[Any, ...])


class MismatchedSample(InputError):
    """A sample whose files do not fit together (part masks of another size than their image):
    skipped and counted, never trained on."""


# ---------------------------------------------------------------------------- image helpers


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file; faceedit.errors.InputError for a bad file.

    The one reader the app uses too (EXIF orientation, palette and grey to RGB, 16-bit to 8).
    """
    return sources.read_image(path)


def read_binary_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """(H, W) bool of a white-on-black mask stored as greyscale, palette or RGB image.

    The file is read as RGB whatever its mode, converted to greyscale (ITU-R 601 weights, as
    Pillow's "L") and thresholded at half intensity, so all three encodings give the same mask.
    """
    rgb = read_image(path).astype(np.float32)
    grey = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return grey >= 127.5


def resize_image(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize an (H, W, C) uint8 image to `size` (S or (W, H)) with area interpolation."""
    width, height = (size, size) if isinstance(size, int) else size
    if image.shape[1] == width and image.shape[0] == height:
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def resize_labels(labels: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize an (H, W) uint8 label map (or bool mask) with nearest neighbour: no new classes."""
    width, height = (size, size) if isinstance(size, int) else size
    if labels.shape[1] == width and labels.shape[0] == height:
        return labels
    dtype = labels.dtype
    out = cv2.resize(labels.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    return out.astype(dtype)


def crop_square(image: np.ndarray, x0: float, y0: float, side: float) -> np.ndarray:
    """The square [x0, x0 + side) x [y0, y0 + side) of `image`, black where it leaves the image."""
    left, top, extent = round(x0), round(y0), max(1, round(side))
    height, width = image.shape[:2]
    out = np.zeros((extent, extent, *image.shape[2:]), dtype=image.dtype)
    sx0, sy0 = max(left, 0), max(top, 0)
    sx1, sy1 = min(left + extent, width), min(top + extent, height)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = image[sy0:sy1, sx0:sx1]
    return out


def box_crop(
    image: np.ndarray, box: tuple[float, float, float, float], margin: float, size: int
) -> np.ndarray:
    """A size x size crop of the box (x, y, w, h) grown by `margin` of its size on every side.

    The grown box is made square around its centre (side = its longer edge) so faces are never
    stretched; parts outside the image are black.
    """
    x, y, w, h = box
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    return resize_image(crop_square(image, cx - side / 2.0, cy - side / 2.0, side), size)


def box_crop_points(
    points: np.ndarray, box: tuple[float, float, float, float], margin: float, size: int
) -> np.ndarray:
    """(N, 2) float32: frame points (pixel centres at integers) moved as `box_crop` moves pixels."""
    x, y, w, h = box
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    left, top, extent = round(cx - side / 2.0), round(cy - side / 2.0), max(1, round(side))
    scale = size / extent
    moved = (np.asarray(points, np.float64).reshape(-1, 2) - (left, top) + 0.5) * scale - 0.5
    return moved.astype(np.float32)


def whole_square(image: np.ndarray) -> tuple[float, float, float, float]:
    """The (x, y, w, h) box of the largest centred square of `image`: for box_crop and
    box_crop_points, so an already aligned crop and its points are resized the same way."""
    height, width = image.shape[:2]
    side = min(height, width)
    return ((width - side) / 2, (height - side) / 2, side, side)


def centre_square_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The largest centred square of `image`, resized to size x size."""
    return box_crop(image, whole_square(image), 0.0, size)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32 in [-1, 1]."""
    chw = np.ascontiguousarray(image.transpose(2, 0, 1))
    return torch.from_numpy(chw).float().div_(127.5).sub_(1.0)


def color_jitter(
    image: np.ndarray,
    rng: np.random.Generator,
    brightness: float = 0.2,
    contrast: float = 0.2,
    saturation: float = 0.2,
) -> np.ndarray:
    """Scale brightness, contrast and saturation of an (H, W, 3) uint8 image by 1 +- each amount.

    Brightness (x b), contrast (around the mean grey) and saturation (around each pixel's grey)
    are linear in the colour, and the ITU-R 601 grey weights sum to 1, so the three compose to
    one 3x3 matrix plus an offset: out = c b (s I + (1 - s) 1 w^T) x + (1 - c) m, with m the
    mean grey after the brightness scale. cv2.transform applies it in one pass (about 0.03 ms at
    256 px, against 1.9 ms for the three float32 passes it replaces; docs/training.md).
    """
    if brightness == contrast == saturation == 0:
        return image
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float64)
    b, c, s = (rng.uniform(1.0 - a, 1.0 + a) for a in (brightness, contrast, saturation))
    mean_grey = b * float(np.dot(cv2.mean(image)[:3], weights))
    matrix = np.empty((3, 4), dtype=np.float64)
    matrix[:, :3] = c * b * (s * np.eye(3) + (1.0 - s) * np.outer(np.ones(3), weights))
    matrix[:, 3] = (1.0 - c) * mean_grey
    return np.asarray(cv2.transform(np.ascontiguousarray(image), matrix))


# ----------------------------------------------------------------------- faces (lazy import)


def align_five_points(image: np.ndarray, points: np.ndarray, size: int) -> np.ndarray:
    """size x size crop of `image` aligned by a similarity transform of its 5 face points.

    `points` (5, 2) are (x, y) of: image-left eye centre, image-right eye centre, nose tip,
    image-left and image-right mouth corners (faceedit.faces.detect.LANDMARK_NAMES). The transform and
    the template are faceedit.faces.align's, so training crops match what the app feeds the model.
    """
    return align_with_points(image, points, size)[0]


def align_with_points(
    image: np.ndarray, points: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(aligned crop, the same 5 points in the crop's pixels): the face's own keypoints after
    alignment, which the keypoint-box regions are built from (they are near, not on, the
    template: a similarity cannot move five points of a real face onto it exactly)."""
    from faceedit.faces.align import align

    five = np.asarray(points, dtype=np.float64).reshape(5, 2)
    alignment = align(image, five, size=size)
    return alignment.crop, alignment.to_crop(five).astype(np.float32)


_DETECTOR: Any = None


def detect_and_align(image: np.ndarray, size: int) -> np.ndarray | None:
    """The largest detected face of `image`, aligned to size x size; None when there is none."""
    found = detect_align_points(image, size)
    return None if found is None else found[0]


def detect_align_points(image: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The largest detected face of `image`, aligned to size x size, with its detected 5 points
    in the crop's pixels; None when there is none.

    Runs MTCNN (faceedit.faces.detect.FaceDetector) once per image: slow (about 0.4 s for a 256 px
    image on a 2-core CPU), so meant for small datasets or for building a pre-aligned copy. The detector runs on
    the CPU: DataLoader workers are forked, and CUDA cannot be used in forked processes. One
    detector per process, built on first use.
    """
    from faceedit.faces.align import align

    face = detect_largest_face(image)
    if face is None:
        return None
    alignment = align(image, face, size=size)
    return alignment.crop, alignment.to_crop(face.landmarks).astype(np.float32)


def detect_largest_face(image: np.ndarray) -> Face | None:
    """The largest face MTCNN finds in `image` (the app's detector, on the CPU, one per
    process, built on first use), or None."""
    global _DETECTOR
    from faceedit.faces.detect import FaceDetector

    if _DETECTOR is None:
        _DETECTOR = FaceDetector(device="cpu")
    faces: list[Face] = _DETECTOR.detect(image)  # largest first
    return faces[0] if faces else None


# ------------------------------------------------------------------- randomness and splits


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for one item in one epoch: the same (seed, epoch, index) always draws the
    same augmentation, whichever worker or rank loads it and whether or not the run resumed."""
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, index]))


def seeded_split(
    keys: Iterable[KeyT], seed: int = 0, ratios: Sequence[float] = SPLIT_RATIOS
) -> dict[KeyT, str]:
    """Assign each distinct key to "train", "val" or "test" by a seeded shuffle.

    Keys are sorted first, so the result depends only on the set of keys and the seed, not on
    the order the file system lists them in. With 3 or more keys, validation and test get at
    least one key each, so tiny datasets still have every split.
    """
    ordered = sorted(set(keys), key=lambda k: (str(type(k)), k))
    count = len(ordered)
    order = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED])).permutation(count)
    n_val = round(count * ratios[1])
    n_test = round(count * ratios[2])
    if count >= 3:
        n_val, n_test = max(1, n_val), max(1, n_test)
    n_train = count - n_val - n_test
    names = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
    return {ordered[i]: names[rank] for rank, i in enumerate(order)}


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")


# ------------------------------------------------------------------------ skip bookkeeping


class SkippedItem(NamedTuple):
    """One offender: why it was skipped, which file or row, and details."""

    reason: str
    item: str
    detail: str


class SkipLog:
    """Counts skipped rows/files by reason and keeps the first few of each for the log."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.counts: dict[str, int] = {}
        self.examples: list[SkippedItem] = []

    def add(self, reason: str, item: object, detail: str = "") -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if self.counts[reason] <= MAX_EXAMPLES_PER_REASON:
            self.examples.append(SkippedItem(reason, str(item), detail))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """'3 x reason, 1 x other' in decreasing count, or 'nothing'."""
        if not self.counts:
            return "nothing"
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return ", ".join(f"{n} x {reason}" for reason, n in ranked)

    def log_index(self, kept: int) -> None:
        """Log what indexing kept and skipped (warning when anything was skipped)."""
        if not self.counts:
            logger.info("%s: %d samples", self.name, kept)
            return
        lines = [f"{self.name}: {kept} samples; skipped {self.total}: {self.summary()}"]
        lines += [
            f"  {e.reason}: {e.item}{f' ({e.detail})' if e.detail else ''}" for e in self.examples
        ]
        logger.warning("\n".join(lines))


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentations for face parsing; applied only when a loader has augment on."""

    flip_prob: float = 0.5
    scale: tuple[float, float] = (0.75, 1.25)
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2

    def __post_init__(self) -> None:
        if not 0.0 <= self.flip_prob <= 1.0:
            raise ConfigError(f"AugmentConfig.flip_prob must be in [0, 1], got {self.flip_prob}")
        lo, hi = self.scale
        if not 0 < lo <= hi:
            raise ConfigError(f"AugmentConfig.scale must satisfy 0 < low <= high, got {self.scale}")
        jitter = dict(
            brightness=self.brightness, contrast=self.contrast, saturation=self.saturation
        )
        bad = {k: v for k, v in jitter.items() if not 0.0 <= v < 1.0}
        if bad:
            raise ConfigError(f"AugmentConfig jitter amounts must be in [0, 1): {bad}")


# -------------------------------------------------------------------------- base dataset


class FaceDataset(Dataset):
    """Base of every loader: epoch-aware RNG, skip counting, replacement of unreadable samples.

    Subclasses fill `self._items` while indexing, then call `_finish_index`, and implement
    `_load(index, rng)`. Load-time skips are counted in the process that found them: with
    DataLoader workers each worker keeps its own count and logs its own offenders.
    """

    kind: str = "dataset"

    def __init__(self, root: str | os.PathLike[str], split: str, size: int, seed: int) -> None:
        check_split(split)
        if not isinstance(size, int) or size <= 0:
            raise ConfigError(f"size must be a positive integer, got {size!r}")
        self.root = Path(root)
        self.split = split
        self.size = size
        self.seed = seed
        self.epoch = 0
        self._items: list[Any] = []
        self._skips = SkipLog(f"{self.kind} {split} at {self.root}")
        self._unreadable: set[int] = set()
        self.cache_bytes = DECODED_CACHE_BYTES  # 0: decode every time
        self._decoded: dict[Hashable, tuple[Any, ...]] = {}
        self._keeps_decoded: bool | None = None  # decided by the first decoded sample

    # -- public

    def __len__(self) -> int:
        return len(self._items)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentations __getitem__ draws (call once per epoch)."""
        self.epoch = int(epoch)

    @property
    def skipped(self) -> dict[str, int]:
        """Number of skipped rows/files by reason (index time and, in this process, load time)."""
        return dict(self._skips.counts)

    @property
    def skipped_examples(self) -> list[SkippedItem]:
        """The first few offenders of each reason."""
        return list(self._skips.examples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        count = len(self._items)
        if not -count <= index < count:
            raise IndexError(f"index {index} out of range for {count} samples")
        index %= count
        for step in range(min(count, MAX_LOAD_ATTEMPTS)):
            # A bad sample is replaced by the next ones in order: deterministic, and each
            # replacement draws exactly what it would draw if asked for directly.
            candidate = (index + step) % count
            if candidate in self._unreadable:
                continue
            try:
                return self._load(candidate, item_rng(self.seed, self.epoch, candidate))
            except LOAD_ERRORS as error:
                self._mark_unreadable(candidate, error)
        raise DatasetError(
            f"{self._skips.name}: none of {min(count, MAX_LOAD_ATTEMPTS)} samples from index "
            f"{index} on could be read ({self._skips.summary()}). Check that the files under "
            f"{self.root} are complete and readable (a partial download or extraction?)."
        )

    # -- for subclasses

    def _load(self, index: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def _decoded_once(self, key: Hashable, decode: Callable[[], DecodedT]) -> DecodedT:
        """`decode()` of the sample `key` names, kept when the whole dataset fits the cache
        (`cache_bytes`, judged by the first sample's size): its files are then read once. The
        kept arrays are read-only, so an augmentation that changed one in place would fail
        loudly instead of corrupting later epochs. A file that fails to decode raises as
        before and is never kept."""
        kept = self._decoded.get(key)
        if kept is not None:
            return cast(DecodedT, kept)
        value = decode()
        arrays = [a for a in value if isinstance(a, np.ndarray)]
        if self._keeps_decoded is None:  # the first sample decides, for the whole dataset
            size = sum(a.nbytes for a in arrays)
            self._keeps_decoded = size * len(self) <= self.cache_bytes
        if self._keeps_decoded:
            for array in arrays:
                array.setflags(write=False)
            self._decoded[key] = value
        return value

    def _describe(self, index: int) -> str:
        """The file (or row) behind item `index`, for messages."""
        return str(self._items[index])

    def _mark_unreadable(self, index: int, error: BaseException) -> None:
        self._unreadable.add(index)
        if isinstance(error, NoFaceError):
            reason = "no face detected"
        elif isinstance(error, MismatchedSample):
            reason = "masks that do not fit their image"
        else:
            reason = "unreadable file"
        self._skips.add(reason, self._describe(index), str(error))
        total = self._skips.total
        if self._skips.counts[reason] <= MAX_EXAMPLES_PER_REASON:
            logger.warning(
                "%s: skipping %s (%s); using another sample instead (%d skipped so far: %s)",
                self._skips.name,
                self._describe(index),
                error,
                total,
                self._skips.summary(),
            )
        elif total in _TOTALS_WORTH_LOGGING or total % 10000 == 0:
            logger.warning(
                "%s: %d samples skipped so far (%s)", self._skips.name, total, self._skips.summary()
            )

    def _finish_index(self, expected: str, found: str) -> None:
        """Log the index and refuse an empty one with a message naming root, layout and findings."""
        self._skips.log_index(len(self._items))
        if not self._items:
            raise DatasetError(
                f"{self.kind} at {self.root}: no usable samples for split {self.split!r}.\n"
                f"Expected: {expected}\nFound: {found}\nSkipped: {self._skips.summary()}"
            )


class ExpressionRecord(NamedTuple):
    """One indexed expression sample: its image, unified expression and optional extras."""

    path: Path
    expression: int
    valence_arousal: tuple[float, float] = (math.nan, math.nan)
    box: tuple[float, float, float, float] | None = None  # (x, y, w, h) in pixels
    points: np.ndarray | None = None  # (5, 2) eye centres, nose tip, mouth corners


class ExpressionDataset(FaceDataset):
    """Base of the expression loaders: items are ExpressionRecords, output is the same triple.

    `dataset[i]` -> (image (3, S, S) float32 in [-1, 1], expression int64 scalar,
    valence_arousal (2,) float32, NaN when the dataset has none for that image). With
    `return_points` set, a fourth element: the face's 5 keypoints (5, 2) float32 in crop
    pixels (annotated or detected, moved by the same crop transform as the pixels), NaN when
    the sample has none; the keypoint-box regions are built from them.
    """

    _items: list[ExpressionRecord]
    return_points: bool = False

    @property
    def targets(self) -> np.ndarray:
        """(N,) int64 unified expression index of every sample, without reading any image."""
        return np.fromiter((r.expression for r in self._items), dtype=np.int64, count=len(self))

    @property
    def has_valence_arousal(self) -> np.ndarray:
        """(N,) bool: which samples carry valence and arousal labels."""
        va = np.array([r.valence_arousal for r in self._items], dtype=np.float32).reshape(-1, 2)
        return np.asarray(np.isfinite(va).all(axis=1))

    def _describe(self, index: int) -> str:
        return str(self._items[index].path)

    def _crop(self, image: np.ndarray, record: ExpressionRecord) -> np.ndarray:
        """(S, S, 3) uint8 face crop of `image`; each loader chooses how."""
        raise NotImplementedError

    def prepared_arrays(self, index: int) -> np.ndarray:
        """(S, S, 3) uint8 face crop of item `index`: what `faceedit-train prepare` stores
        (raises the load errors of a bad file, NoFaceError where detection finds none)."""
        record = self._items[index]
        return self._crop(read_image(record.path), record)

    def _crop_points(
        self, image: np.ndarray, record: ExpressionRecord
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(crop, its 5 keypoints in crop pixels or None): the detector's points when the
        loader aligns by detection (align="detect"), else none; AffectNet overrides this with
        its annotated landmarks."""
        if getattr(self, "align", None) == "detect":
            found = detect_align_points(image, self.size)
            if found is not None:
                return found
        return self._crop(image, record), None

    def _decode(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """(crop, its keypoints or None) of item `index`, as `_load` returns them."""
        record = self._items[index]
        image = read_image(record.path)
        if not self.return_points:
            return self._crop(image, record), None
        return self._crop_points(image, record)

    def _load(self, index: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        record = self._items[index]
        # keyed by return_points too: the stage may ask for keypoints after the first reads
        crop, points = self._decoded_once((index, self.return_points), lambda: self._decode(index))
        out = (
            to_tensor(crop),  # (3, S, S) in [-1, 1]
            torch.tensor(record.expression, dtype=torch.int64),
            torch.tensor(record.valence_arousal, dtype=torch.float32),  # (2,), NaN = missing
        )
        if not self.return_points:
            return out
        if points is None:
            keypoints = torch.full((5, 2), math.nan)
        else:
            keypoints = torch.tensor(np.asarray(points, np.float32).reshape(5, 2))  # a copy
        return (*out, keypoints)


def describe_folder(folder: Path, limit: int = 8) -> str:
    """A short listing of a folder's entries, for error messages."""
    if not folder.is_dir():
        return f"{folder} does not exist"
    names = sorted(p.name for p in folder.iterdir())
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return (", ".join(names[:limit]) + more) or "empty"


def list_image_files(folder: Path, recursive: bool = True) -> list[Path]:
    """Image files under `folder` (by extension, hidden files ignored), sorted."""
    pattern = folder.rglob("*") if recursive else folder.glob("*")
    return sorted(
        p
        for p in pattern
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    )
