"""Scores of a trained model against the procedural world's ground truth (trainer/world).

The world renders every identity in all eight expressions, pixel-aligned (`pairs.csv`), so an
edit of identity i towards happy can be compared with identity i's real happy rendering. Only
held-out identities are scored. Everything here reads the world's on-disk files, never its
generator, so the same code scores any dataset written in that layout.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from faceedit.errors import DatasetError
from faceedit.faces.align import REGION_LEVEL, align, paste_back, whole_image_face
from faceedit.inference.engine import EditEngine
from faceedit.inference.outputs import EditResult
from faceedit.model.config import ModelConfig
from faceedit.vocab.expressions import EXPRESSION_INDEX, EXPRESSIONS
from faceedit.vocab.labels import CLASS_INDEX, region_classes
from trainer.data.affectnet import CSV_FILES as AFFECTNET_CSV
from trainer.data.affectnet import LIST_DIR as AFFECTNET_LIST_DIR
from trainer.data.common import read_image, resize_image, to_tensor
from trainer.judges.classifier import ExpressionClassifier
from trainer.stages.steps import condition

PAIRS_FILE: Final[str] = "pairs.csv"
PAIRS_COLUMNS: Final[tuple[str, ...]] = ("identity", "split", "expression", "intensity", "image")
# Classes that are not part of the face: what a local expression edit must leave alone.
OUTSIDE_FACE: Final[tuple[str, ...]] = ("background", "neck", "neck_l", "cloth", "hair", "hat")
EDIT_BATCH: Final[int] = 32


@dataclass(frozen=True)
class Rendering:
    """One row of pairs.csv: an identity shown in one expression."""

    identity: str
    split: str
    expression: int
    intensity: float
    image: Path


def read_pairs(world: Path) -> list[Rendering]:
    """pairs.csv of a world folder (image paths resolved against the folder)."""
    path = Path(world) / PAIRS_FILE
    if not path.is_file():
        raise DatasetError(f"{path} does not exist: make the world with 'faceedit-train synth'")
    rows: list[Rendering] = []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in PAIRS_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetError(f"{path}: columns {missing} are missing (has {reader.fieldnames})")
        for number, row in enumerate(reader, start=2):
            name = row["expression"].strip()
            if name in EXPRESSION_INDEX:
                expression = EXPRESSION_INDEX[name]
            elif name.isdigit() and int(name) < len(EXPRESSIONS):
                expression = int(name)
            else:
                raise DatasetError(f"{path}:{number}: unknown expression {name!r}")
            image = Path(row["image"])
            rows.append(
                Rendering(
                    identity=row["identity"].strip(),
                    split=row["split"].strip(),
                    expression=expression,
                    intensity=float(row["intensity"] or 1.0),
                    image=image if image.is_absolute() else Path(world) / image,
                )
            )
    if not rows:
        raise DatasetError(f"{path} holds no renderings")
    return rows


def by_identity(rows: Iterable[Rendering], split: str) -> dict[str, dict[int, Rendering]]:
    """identity -> expression -> rendering, for the identities of `split` with intensity 1."""
    table: dict[str, dict[int, Rendering]] = {}
    for row in rows:
        if row.split == split and row.intensity == 1.0:
            table.setdefault(row.identity, {})[row.expression] = row
    return {k: v for k, v in sorted(table.items()) if len(v) == len(EXPRESSIONS)}


def held_out_identities(world: Path, count: int) -> dict[str, dict[int, Rendering]]:
    """The first `count` held-out (test) identities rendered in every expression (by_identity)."""
    return dict(list(by_identity(read_pairs(world), "test").items())[:count])


def world_valence_arousal(world: Path) -> list[tuple[float, float]]:
    """Per expression, the mean (valence, arousal) of the world's AffectNet-layout training
    list: what an edit towards that expression is conditioned on in the world's scoring."""
    return mean_valence_arousal(
        Path(world) / "affectnet" / AFFECTNET_LIST_DIR / AFFECTNET_CSV["train"]
    )


def as_crop(image: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 3) uint8: a rendering as the model's crop (resized only if it is not)."""
    return image if image.shape[:2] == (size, size) else resize_image(image, size)


def load_crop(path: Path, size: int) -> np.ndarray:
    """(size, size, 3) uint8 RGB crop of a rendering."""
    return as_crop(read_image(path), size)


class RenderingSet(Dataset):
    """(image (3, S, S) in [-1, 1], expression index) pairs: the judge's data."""

    def __init__(self, rows: Sequence[Rendering], size: int, view_size: int | None = None) -> None:
        self.rows = list(rows)
        self.size = size
        self.view_size = view_size or size  # bilinear upsampling, as the judge's probabilities
        self.targets = [r.expression for r in self.rows]  # for class-balanced sampling

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        row = self.rows[index]
        image = to_tensor(load_crop(row.image, self.size))
        if self.view_size != self.size:
            image = F.interpolate(
                image[None],
                size=(self.view_size,) * 2,
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )[0]
        return image, row.expression


def crops_to_tensor(crops: Sequence[np.ndarray]) -> Tensor:
    """B (S, S, 3) uint8 crops -> (B, 3, S, S) in [-1, 1]."""
    stacked = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()
    return stacked / 127.5 - 1.0


# --- edits against the ground truth -----------------------------------------------------------


@dataclass
class EditScores:
    """Held-out edits towards every other expression, judged and compared with the truth."""

    edits: int = 0
    judged_as_target: int = 0
    target_probability: float = 0.0  # summed judge probability of the target
    l1_edit: float = 0.0  # summed mean |edit - truth| in [0, 1] units
    l1_input: float = 0.0  # summed mean |input - truth|
    # l1_edit split by the expression's footprint (where input and truth differ): inside, the
    # edit has to redraw the expression; outside, every change is one the truth does not have
    l1_edit_in_footprint: float = 0.0
    l1_edit_off_footprint: float = 0.0
    # the metric's sensitivity: the true change itself, misplaced by one pixel (truth_moved)
    l1_truth_moved: float = 0.0
    per_target: dict[str, list[int]] = field(default_factory=dict)  # name -> [hits, count]

    @property
    def judge_accuracy(self) -> float:
        return self.judged_as_target / max(self.edits, 1)

    @property
    def mean_target_probability(self) -> float:
        return self.target_probability / max(self.edits, 1)

    @property
    def mean_l1_edit(self) -> float:
        return self.l1_edit / max(self.edits, 1)

    @property
    def mean_l1_input(self) -> float:
        return self.l1_input / max(self.edits, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "edits": self.edits,
            "judge_accuracy": self.judge_accuracy,
            "mean_target_probability": self.mean_target_probability,
            "mean_l1_edit_to_truth": self.mean_l1_edit,
            "mean_l1_input_to_truth": self.mean_l1_input,
            "mean_l1_edit_to_truth_in_footprint": self.l1_edit_in_footprint / max(self.edits, 1),
            "mean_l1_edit_to_truth_off_footprint": self.l1_edit_off_footprint / max(self.edits, 1),
            "mean_l1_truth_moved_1px": self.l1_truth_moved / max(self.edits, 1),
            "per_target_accuracy": {
                name: hits / max(count, 1) for name, (hits, count) in self.per_target.items()
            },
        }


EditFunction = Callable[[list[np.ndarray], int], list[np.ndarray]]

# More than two grey levels in some channel: the renderer's anti-aliasing and noise stay out.
_FOOTPRINT_LEVELS: Final[float] = 2.5 / 127.5


def expression_footprint(original: Tensor, truth: Tensor) -> Tensor:
    """(B, 1, S, S) bool: where the input and the truth of the target differ, images in
    [-1, 1]; the pixels an edit must redraw."""
    return (original - truth).abs().amax(1, keepdim=True) > _FOOTPRINT_LEVELS


def truth_moved(original: Tensor, truth: Tensor, footprint: Tensor) -> Tensor:
    """The true edit misplaced by one pixel to the right: the truth's changed pixels moved over
    the input. How the L1 ratio scores a perfect expression drawn one pixel off."""
    moved = torch.roll(footprint, 1, dims=3)
    return torch.where(moved, torch.roll(truth, 1, dims=3), original)


def _summed_mean_l1(a: Tensor, b: Tensor, where: Tensor | None = None) -> float:
    """Sum over the batch of each image's mean |a - b| in [0, 1] units (zero outside `where`)."""
    difference = (a - b).abs() / 2
    if where is not None:
        difference = difference * where
    return float(difference.flatten(1).mean(1).sum())


def shown_crop(crop: np.ndarray, result: EditResult) -> np.ndarray:
    """What the app shows for an aligned face crop: the edit's change pasted back onto the
    crop as the pipeline's `--aligned` path does (faceedit.faces.align.paste_back), weighted by
    where the model edits (`result.weight`: the attention's leak is dropped) and, under a
    region lock, gated by the locked regions' footprint (`result.lock`)."""
    alignment = align(crop, whole_image_face(crop.shape), size=result.crop.shape[0])
    return paste_back(
        crop, alignment, result.crop, crop_mask=result.weight, region_mask=result.lock
    )


def engine_editor(
    engine: EditEngine, valence_arousal: Sequence[tuple[float, float]], shown: bool = True
) -> EditFunction:
    """Edit crops towards expression `target` with the engine, uint8 out: what the app shows
    (`shown_crop`), or with `shown=False` the generator's own crop, before paste-back.

    `valence_arousal` per expression: models trained on AffectNet-style data take valence and
    arousal in their condition; the world's mean for the target expression is what they saw.
    """

    def edit(crops: list[np.ndarray], target: int) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for start in range(0, len(crops), EDIT_BATCH):
            batch = crops[start : start + EDIT_BATCH]
            results = engine.edit_batch(
                batch, {EXPRESSIONS[target]: 1.0}, valence_arousal=_pair(valence_arousal[target])
            )
            out += [
                shown_crop(crop, r) if shown else r.crop
                for crop, r in zip(batch, results, strict=True)
            ]
        return out

    return edit


@torch.no_grad()
def score_edits(
    edit: EditFunction,
    judge: ExpressionClassifier,
    table: dict[str, dict[int, Rendering]],
    size: int,
    sources: Sequence[int] = tuple(range(len(EXPRESSIONS))),
) -> tuple[EditScores, dict[tuple[str, int, int], np.ndarray]]:
    """Edit each identity's rendering of each source expression towards every other expression.

    Returns the scores and the edits keyed (identity, source, target), for the image grid.
    """
    judge.eval()
    scores = EditScores(per_target={name: [0, 0] for name in EXPRESSIONS})
    crops = {
        (ident, e): load_crop(row.image, size)
        for ident, renders in table.items()
        for e, row in renders.items()
    }
    edits: dict[tuple[str, int, int], np.ndarray] = {}
    for target in range(len(EXPRESSIONS)):
        keys = [(ident, s) for ident in table for s in sources if s != target]
        if not keys:
            continue
        inputs = [crops[k] for k in keys]
        outputs = edit(inputs, target)
        truth = crops_to_tensor([crops[(ident, target)] for ident, _ in keys])
        edited = crops_to_tensor(outputs)
        original = crops_to_tensor(inputs)
        probs = judge.probabilities(edited)
        hits = probs.argmax(1) == target
        scores.edits += len(keys)
        scores.judged_as_target += int(hits.sum())
        scores.target_probability += float(probs[:, target].sum())
        footprint = expression_footprint(original, truth)
        scores.l1_edit += _summed_mean_l1(edited, truth)
        scores.l1_input += _summed_mean_l1(original, truth)
        scores.l1_edit_in_footprint += _summed_mean_l1(edited, truth, footprint)
        scores.l1_edit_off_footprint += _summed_mean_l1(edited, truth, ~footprint)
        scores.l1_truth_moved += _summed_mean_l1(truth_moved(original, truth, footprint), truth)
        tally = scores.per_target[EXPRESSIONS[target]]
        tally[0] += int(hits.sum())
        tally[1] += len(keys)
        for key, out in zip(keys, outputs, strict=True):
            edits[(key[0], key[1], target)] = out
    return scores, edits


def mean_conditions(
    targets: Tensor, config: ModelConfig, valence_arousal: Sequence[tuple[float, float]]
) -> Tensor:
    """(B, C) conditions towards `targets`: one-hot, plus each expression's mean valence and
    arousal (mean_valence_arousal) if the model takes them, as the engine gets them here."""
    va = torch.tensor([valence_arousal[int(t)] for t in targets], dtype=torch.float32)
    return condition(targets, va, config)


def mean_valence_arousal(affectnet_csv: Path) -> list[tuple[float, float]]:
    """Per expression, the mean (valence, arousal) of an AffectNet-layout list ((0, 0) if none)."""
    sums = np.zeros((len(EXPRESSIONS), 2))
    counts = np.zeros(len(EXPRESSIONS))
    with open(affectnet_csv, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            try:
                code = int(row["expression"])
                va = float(row["valence"]), float(row["arousal"])
            except (KeyError, ValueError):
                continue
            if 0 <= code < len(EXPRESSIONS) and all(-1.0 <= v <= 1.0 for v in va):
                sums[code] += va
                counts[code] += 1
    means = sums / np.maximum(counts, 1)[:, None]
    return [(float(v), float(a)) for v, a in means]


# --- locality ---------------------------------------------------------------------------------


@dataclass
class LocalityScores:
    """How far edits reach, as the app shows them (`shown_crop`): with the region lock, and
    outside the face without it; the generator's own crops are counted alongside."""

    allowed: tuple[str, ...]
    locked_pixels: int = 0  # pixels outside the allowed regions (ground truth)
    locked_changed: int = 0  # of those, pixels whose uint8 value changed at all
    locked_band_pixels: int = 0  # the same, leaving out a band around the allowed regions
    locked_band_changed: int = 0
    # Pixels outside the lock's footprint as the model parses them (soft union of the allowed
    # regions' masks below REGION_LEVEL): what the lock promises never to change.
    locked_parse_pixels: int = 0
    locked_parse_changed: int = 0
    locked_changed_raw: int = 0  # locked_changed in the generator's own crops
    outside_pixels: int = 0  # outside-the-face pixels (ground truth) in unlocked edits
    outside_change: float = 0.0  # summed mean |change| over channels, [0, 1] units
    outside_change_raw: float = 0.0  # the same in the generator's own crops
    band: int = 2

    @property
    def locked_exact_fraction(self) -> float:
        return 1.0 - self.locked_changed / max(self.locked_pixels, 1)

    @property
    def locked_band_exact_fraction(self) -> float:
        return 1.0 - self.locked_band_changed / max(self.locked_band_pixels, 1)

    @property
    def locked_parse_exact_fraction(self) -> float:
        return 1.0 - self.locked_parse_changed / max(self.locked_parse_pixels, 1)

    @property
    def outside_mean_change(self) -> float:
        return self.outside_change / max(self.outside_pixels, 1)

    @property
    def outside_mean_change_raw(self) -> float:
        return self.outside_change_raw / max(self.outside_pixels, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed_regions": list(self.allowed),
            "measured_on": "what the app shows (paste-back onto the aligned crop)",
            "locked_pixels": self.locked_pixels,
            "locked_changed": self.locked_changed,
            "locked_exact_fraction": self.locked_exact_fraction,
            "band_px": self.band,
            "locked_beyond_band_pixels": self.locked_band_pixels,
            "locked_beyond_band_changed": self.locked_band_changed,
            "locked_beyond_band_exact_fraction": self.locked_band_exact_fraction,
            "locked_outside_parse_pixels": self.locked_parse_pixels,
            "locked_outside_parse_changed": self.locked_parse_changed,
            "locked_outside_parse_exact_fraction": self.locked_parse_exact_fraction,
            "locked_changed_generator_crop": self.locked_changed_raw,
            "outside_face_pixels": self.outside_pixels,
            "outside_face_mean_change": self.outside_mean_change,
            "outside_face_mean_change_x255": 255 * self.outside_mean_change,
            "outside_face_mean_change_x255_generator_crop": 255 * self.outside_mean_change_raw,
        }


def score_locality(
    engine: EditEngine,
    crops: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    allowed: Sequence[str],
    valence_arousal: Sequence[tuple[float, float]],
    band: int = 2,
) -> LocalityScores:
    """Edit every crop towards every expression twice: region-locked to `allowed` (pixels of
    the other classes must not change at all) and unlocked (pixels outside the face should
    barely change). `labels` are the ground-truth (S, S) class maps of the crops."""
    import cv2

    scores = LocalityScores(tuple(allowed), band=band)
    allowed_classes = [c for group in region_classes(tuple(allowed)) for c in group]
    outside_classes = [CLASS_INDEX[name] for name in OUTSIDE_FACE]
    kernel = np.ones((2 * band + 1, 2 * band + 1), np.uint8)
    masks = []
    for label in labels:
        inside = np.isin(label, allowed_classes)
        grown = cv2.dilate(inside.astype(np.uint8), kernel).astype(bool)
        masks.append((~inside, ~grown, np.isin(label, outside_classes)))
    for target, name in enumerate(EXPRESSIONS):
        va = _pair(valence_arousal[target])
        for start in range(0, len(crops), EDIT_BATCH):
            batch = list(crops[start : start + EDIT_BATCH])
            locked = engine.edit_batch(
                batch, {name: 1.0}, editable_regions=list(allowed), valence_arousal=va
            )
            free = engine.edit_batch(batch, {name: 1.0}, valence_arousal=va)
            for k, (crop, lock_out, free_out) in enumerate(zip(batch, locked, free, strict=True)):
                outside, beyond, not_face = masks[start + k]
                assert lock_out.lock is not None  # a locked edit reports its lock
                changed = (shown_crop(crop, lock_out) != crop).any(axis=2)
                off_parse = lock_out.lock < REGION_LEVEL
                scores.locked_pixels += int(outside.sum())
                scores.locked_changed += int((changed & outside).sum())
                scores.locked_band_pixels += int(beyond.sum())
                scores.locked_band_changed += int((changed & beyond).sum())
                scores.locked_parse_pixels += int(off_parse.sum())
                scores.locked_parse_changed += int((changed & off_parse).sum())
                changed_raw = (lock_out.crop != crop).any(axis=2)
                scores.locked_changed_raw += int((changed_raw & outside).sum())
                scores.outside_pixels += int(not_face.sum())
                scores.outside_change += _mean_change(shown_crop(crop, free_out), crop, not_face)
                scores.outside_change_raw += _mean_change(free_out.crop, crop, not_face)
    return scores


def _mean_change(edited: np.ndarray, crop: np.ndarray, where: np.ndarray) -> float:
    """Summed (over `where`) mean absolute change over the channels, in [0, 1] units."""
    diff = np.abs(edited.astype(np.int16) - crop.astype(np.int16)).mean(2)
    return float(diff[where].sum()) / 255.0


def _pair(values: Sequence[float]) -> tuple[float, float]:
    """(valence, arousal) as the engine takes it."""
    valence, arousal = values
    return float(valence), float(arousal)
