"""How much of a smile the mouth alone carries, as the judge reads it: the ceiling of the
mouth lock's target.

For every held-out person with a neutral and a happy photo, the happy photo (colour-matched
to the neutral one over the face) is pasted into the neutral photo inside footprints of
growing size, from the neutral mouth to the whole face below the nose, and the judge reads
each composite. A real smile of the same person is what a perfect generator could paint; where
the judge does not read it as happy inside a footprint, no generator confined to that
footprint will be read as happy either. The prepared crops are the judge's own input (aligned
128 px crops with landmark labels), so nothing is detected or aligned again.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from faceedit.errors import DatasetError
from faceedit.vocab.expressions import EXPRESSION_INDEX
from faceedit.vocab.labels import CLASS_INDEX
from trainer.data.facial_expressions import identity_of
from trainer.data.landmark_labels import UNLABELLED
from trainer.judges.classifier import ExpressionClassifier
from trainer.judges.evaluation import from_uint8_crops

MOUTH: Final[tuple[int, ...]] = tuple(CLASS_INDEX[n] for n in ("mouth", "u_lip", "l_lip"))
NOSE: Final[int] = CLASS_INDEX["nose"]
NEUTRAL: Final[int] = EXPRESSION_INDEX["neutral"]
HAPPY: Final[int] = EXPRESSION_INDEX["happy"]
PER_IDENTITY: Final[int] = 3  # neutral photos per person (a few people have hundreds)
# The footprints, smallest first: the lock's own (the input's mouth), then what a smile's
# wider mouth needs, then past the lips.
FOOTPRINTS: Final[tuple[str, ...]] = (
    "nothing (the neutral photo)",
    "the neutral photo's mouth (the lock's footprint)",
    "both photos' mouths",
    "both mouths grown 3 px",
    "both mouths grown 6 px",
    "the face below the nose",
    "everything (the happy photo)",
)
LOCK_FOOTPRINT: Final[str] = FOOTPRINTS[1]

Reader = Callable[[np.ndarray], np.ndarray]  # (N, S, S, 3) uint8 -> (N, classes) probabilities


@dataclass(frozen=True)
class CeilingRow:
    """How the judge reads a real smile pasted inside one footprint."""

    footprint: str
    read_as_happy: float
    mean_probability: float  # the judge's mean P(happy)


@dataclass(frozen=True)
class MouthCeiling:
    """One row per footprint (FOOTPRINTS order), over `pairs` same-person pairs of `split`."""

    split: str
    pairs: int
    identities: int
    rows: tuple[CeilingRow, ...]

    def row(self, footprint: str) -> CeilingRow:
        return next(r for r in self.rows if r.footprint == footprint)


def same_person_pairs(
    files: Sequence[str],
    expression: np.ndarray,
    labelled: np.ndarray,
    per_identity: int = PER_IDENTITY,
) -> list[tuple[int, int]]:
    """(neutral, happy) index pairs of the same person, both with landmark labels: up to
    `per_identity` neutral photos each, their partners taken in turn from the person's happy
    photos."""
    people: dict[str, dict[int, list[int]]] = defaultdict(lambda: {NEUTRAL: [], HAPPY: []})
    for index, file in enumerate(files):
        label = int(expression[index])
        if label in (NEUTRAL, HAPPY) and bool(labelled[index]):
            people[identity_of(str(file))][label].append(index)
    pairs = []
    for person in sorted(people):
        neutral, happy = people[person][NEUTRAL], people[person][HAPPY]
        if happy:
            pairs += [(n, happy[k % len(happy)]) for k, n in enumerate(neutral[:per_identity])]
    return pairs


def colour_matched(source: np.ndarray, reference: np.ndarray, where: np.ndarray) -> np.ndarray:
    """`source` (float32) with each channel's mean and spread inside `where` set to
    `reference`'s: two photos of one person differ in light and exposure, which the judge
    should not read."""
    s, r = source.astype(np.float32), reference.astype(np.float32)
    inside_s, inside_r = s[where], r[where]
    scaled = (s - inside_s.mean(0)) / (inside_s.std(0) + 1e-3) * inside_r.std(0)
    return np.clip(scaled + inside_r.mean(0), 0.0, 255.0)


def grown(mask: np.ndarray, radius: int) -> np.ndarray:
    """`mask` dilated by a square of `radius` pixels."""
    if radius == 0:
        return mask
    t = torch.from_numpy(mask.astype(np.float32))[None, None]
    return F.max_pool2d(t, 2 * radius + 1, 1, radius)[0, 0].numpy() > 0.5


def footprints(neutral_labels: np.ndarray, happy_labels: np.ndarray) -> dict[str, np.ndarray]:
    """Each of FOOTPRINTS as a boolean mask of the neutral crop."""
    mouth_n, mouth_h = np.isin(neutral_labels, MOUTH), np.isin(happy_labels, MOUTH)
    both = mouth_n | mouth_h
    face = (neutral_labels != UNLABELLED) & (happy_labels != UNLABELLED)
    rows = np.nonzero(neutral_labels == NOSE)[0]
    below_nose = np.zeros_like(face)
    below_nose[(int(rows.max()) + 1 if rows.size else 0) :] = True
    masks = (
        np.zeros_like(face),
        mouth_n,
        both,
        grown(both, 3),
        grown(both, 6),
        below_nose & face,
        np.ones_like(face),
    )
    return dict(zip(FOOTPRINTS, masks, strict=True))


def composite(neutral: np.ndarray, happy: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """The neutral photo with the happy one inside `footprint` (uint8)."""
    out = np.where(footprint[..., None], happy, neutral.astype(np.float32))
    return np.asarray(out.round(), dtype=np.uint8)


def judge_reader(judge: ExpressionClassifier, batch: int = 64) -> Reader:
    """A Reader over an ExpressionClassifier (its `probabilities` of [-1, 1] images)."""

    def read(images: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return np.concatenate(
                [
                    judge.probabilities(
                        from_uint8_crops(list(images[start : start + batch]))
                    ).numpy()
                    for start in range(0, len(images), batch)
                ]
            )

    return read


class PairSource(Protocol):
    """What the ceiling reads of a prepared split (trainer.data.shards.ShardExpressions)."""

    expression: np.ndarray

    def fact(self, name: str) -> np.ndarray | None: ...
    def image_array(self, index: int) -> np.ndarray: ...
    def label_array(self, index: int) -> np.ndarray: ...


def mouth_ceiling(
    prepared: str | os.PathLike[str],
    read: Reader,
    split: str = "test",
    per_identity: int = PER_IDENTITY,
) -> MouthCeiling:
    """The judge's reading of a real smile inside each footprint, over the same-person pairs
    of `split` in a prepared facial_expressions folder."""
    from trainer.data.shards import ShardExpressions

    return ceiling_of(ShardExpressions(prepared, split), read, split, per_identity)


def ceiling_of(
    data: PairSource, read: Reader, split: str, per_identity: int = PER_IDENTITY
) -> MouthCeiling:
    """mouth_ceiling over an open split."""
    files, labelled = data.fact("file"), data.fact("labelled")
    if files is None or labelled is None:
        raise DatasetError(
            f"the {split} split records no file names or landmark labels: prepare the "
            "facial_expressions folder again with this faceedit"
        )
    pairs = same_person_pairs([str(f) for f in files], data.expression, labelled, per_identity)
    composites: dict[str, list[np.ndarray]] = {name: [] for name in FOOTPRINTS}
    for n, h in pairs:
        neutral, labels_n = data.image_array(n), data.label_array(n)
        labels_h = data.label_array(h)
        face = (labels_n != UNLABELLED) & (labels_h != UNLABELLED)
        happy = colour_matched(data.image_array(h), neutral, face)
        for name, mask in footprints(labels_n, labels_h).items():
            composites[name].append(composite(neutral, happy, mask))
    rows = []
    for name in FOOTPRINTS:
        p = read(np.stack(composites[name])) if pairs else np.zeros((0, HAPPY + 1))
        rows.append(
            CeilingRow(
                name,
                float((p.argmax(1) == HAPPY).mean()) if len(p) else float("nan"),
                float(p[:, HAPPY].mean()) if len(p) else float("nan"),
            )
        )
    people = {identity_of(str(files[n])) for n, _ in pairs}
    return MouthCeiling(split, len(pairs), len(people), tuple(rows))
