"""Score an editor on held-out real photos: expression (the judge), locality, identity,
colour, the parser against the landmark labels, and the faces found.

Inputs are the original photos of the facial_expressions test identities
(`trainer.data.facial_expressions.split_files`), neutral-labelled ones for the edits; faces
are found by the product's detector. Every editor (the product and the controls) edits the
same faces, and every score is measured on the photo it returns, at the photo's resolution.
The judge reads each edit through the input's alignment (the same face, the same crop).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from faceedit.faces.align import align
from faceedit.faces.detect import Face
from faceedit.inference.engine import EditEngine
from faceedit.vocab.expressions import EXPRESSION_INDEX, EXPRESSIONS
from faceedit.vocab.labels import CLASS_INDEX, CLASS_NAMES, NUM_CLASSES
from trainer.data.common import read_image
from trainer.data.facial_expressions import (
    IMAGE_DIR,
    LEGEND,
    expression_counts,
    is_greyscale,
    read_legend,
    split_files,
    teachable_expressions,
)
from trainer.data.landmark_labels import landmark_label_map
from trainer.judges.classifier import ExpressionClassifier
from trainer.judges.evaluation import from_uint8_crops
from trainer.judges.real import measures
from trainer.judges.real.editors import CriticNoiseEditor, Edit, Editor, ProductEditor
from trainer.judges.real.identity import SAME_PERSON, Describer, descriptor_distance
from trainer.judges.real.mouth_ceiling import (
    LOCK_FOOTPRINT,
    MouthCeiling,
    judge_reader,
    mouth_ceiling,
)

JUDGE_CROP: Final[int] = 128  # the prepared crops' size: what the judge was trained from
TARGETS: Final[tuple[str, ...]] = ("happy", "surprised")
# The other expressions the real data can teach, measured on the product only (no goal).
SURVEY_TARGETS: Final[tuple[str, ...]] = ("sad", "angry", "disgusted")
LOCK_TARGET: Final[str] = "happy"
LOCK_REGIONS: Final[tuple[str, ...]] = ("mouth",)
MOUTH_CLASSES: Final[tuple[int, ...]] = tuple(CLASS_INDEX[n] for n in ("mouth", "u_lip", "l_lip"))
# A locked footprint "stays inside the mouth" when this share of it lies within the landmark
# lips grown by MOUTH_BAND eye distances (the landmark polygons are themselves approximate).
MOUTH_BAND: Final[float] = 0.15
# A footprint pixel beyond the lips grown by FAR_BAND eye-to-mouth distances (the eyes' mid-point
# to the lips' centre; unlike the eye distance, it barely shrinks on a turned face) is not on
# the mouth at all: on a cheek, an eye or the image's corner.
FAR_BAND: Final[float] = 0.5
GRID_ROWS: Final[int] = 8

Log = Callable[[str], None]


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetScores:
    """Edits towards one target: the judge's mean P(target), the share it reads as the target,
    and the share it reads as each expression."""

    target: str
    edits: int
    mean_probability: float | None
    read_as_target: float | None
    read_as: dict[str, float]


@dataclass(frozen=True)
class LockScores:
    """Edits towards `target` with only `regions` editable."""

    target: str
    regions: tuple[str, ...]
    expression: TargetScores
    changed_outside_footprint: int  # pixels changed outside the lock's footprint (goal 0)
    changed_pixels: int
    # per edit, the share of the footprint within the landmark lips (+ MOUTH_BAND); None
    # entries (an empty footprint, or an editor without one) are left out of the figures
    footprint_inside_mouth_mean: float | None
    footprint_inside_mouth_min: float | None
    footprint_edits: int
    footprint_worst_photo: str | None  # the photo of the worst share, to look at
    footprint_far_edits: int  # edits with footprint pixels beyond the lips + FAR_BAND (goal 0)


@dataclass(frozen=True)
class EditorScores:
    """Everything measured on one editor's edits of the same faces."""

    editor: str
    photos: int
    targets: dict[str, TargetScores]
    locked: LockScores
    identity_kept: float | None  # share of edits within SAME_PERSON of the input's descriptor
    identity_mean_distance: float | None
    background_mean_change: float | None  # grey levels outside the face, mean over edits
    greyscale_kept: float | None  # share of greyscale inputs whose edit stays greyscale
    tint_added: float | None  # mean channel spread added in the face, grey levels
    balance_shift: float | None  # colour photos: mean largest white-balance shift, grey levels
    colour_photos: int
    critic_probability: tuple[float, float] | None = None  # critic noise: before, after


@dataclass(frozen=True)
class ParserScores:
    """The parser's labels on the prepared test crops against the landmark labels (255
    ignored), IoU per labelled class and their mean."""

    images: int
    miou: float | None
    iou: dict[str, float]


@dataclass(frozen=True)
class FoundScores:
    photos: int
    found: int

    @property
    def share(self) -> float | None:
        return self.found / self.photos if self.photos else None


@dataclass(frozen=True)
class RealFaceReport:
    checkpoint: str
    judge: dict[str, Any]
    inputs: tuple[str, ...]  # the neutral test photos edited
    skipped: dict[str, str]  # file -> why it was not edited
    editors: tuple[EditorScores, ...]
    parser: ParserScores | None
    found: FoundScores
    grid: tuple[tuple[np.ndarray, ...], ...] = field(default=(), repr=False)
    ceiling: MouthCeiling | None = None  # a real smile inside the mouth lock's footprints

    def editor(self, name: str) -> EditorScores:
        return next(e for e in self.editors if e.editor == name)


# --- inputs -----------------------------------------------------------------------------------


def test_photos(
    root: str | os.PathLike[str], expression: str | None = None, split: str = "test"
) -> list[str]:
    """The file names of `split`'s photos (identity split, seed 0), those labelled
    `expression` in the legend only when it is given."""
    files = split_files(root)[split]
    if expression is None:
        return files
    rows, _ = read_legend(Path(root) / LEGEND, lambda *args: None)
    wanted = EXPRESSION_INDEX[expression]
    return [f for f in files if f in rows and rows[f].expression == wanted]


def colour_photos(root: str | os.PathLike[str], split: str, limit: int | None) -> list[str]:
    """Up to `limit` colour (not greyscale) photos of `split`, spread over its file list."""
    folder = Path(root) / IMAGE_DIR
    found = [f for f in split_files(root)[split] if not is_greyscale(read_image(folder / f))]
    return [found[i] for i in measures.spread_indices(len(found), limit)]


# --- scoring ----------------------------------------------------------------------------------


@dataclass
class _Tally:
    """Running sums of one editor's measurements."""

    probs: dict[str, list[np.ndarray]] = field(default_factory=dict)
    lock_probs: list[np.ndarray] = field(default_factory=list)
    changed_outside: int = 0
    changed: int = 0
    inside: list[tuple[float, str]] = field(default_factory=list)  # (share, photo)
    far: int = 0
    distances: list[float] = field(default_factory=list)
    background: list[float] = field(default_factory=list)
    grey_kept: list[bool] = field(default_factory=list)
    tint: list[float] = field(default_factory=list)
    balance: list[float] = field(default_factory=list)
    critic: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class _Face:
    """What is known about one input face before any edit."""

    file: str
    photo: np.ndarray
    face: Face
    face_mask: np.ndarray  # (H, W) bool
    descriptor: np.ndarray
    mouth: np.ndarray  # (S, S) bool landmark lips in the model's crop
    band: int
    far_band: int
    grey: bool


def _target_scores(target: str, probs: Sequence[np.ndarray]) -> TargetScores:
    if not probs:
        return TargetScores(target, 0, None, None, {})
    p = np.stack(probs)
    index = EXPRESSION_INDEX[target]
    read = p.argmax(axis=1)
    return TargetScores(
        target,
        len(p),
        float(p[:, index].mean()),
        float((read == index).mean()),
        {name: float((read == i).mean()) for i, name in enumerate(EXPRESSIONS)},
    )


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


@torch.no_grad()
def _judge(judge: ExpressionClassifier, output: np.ndarray, face: Face) -> np.ndarray:
    crop = align(output, face, size=JUDGE_CROP).crop
    return judge.probabilities(from_uint8_crops([crop]))[0].numpy()


def _measure(
    tally: _Tally,
    known: _Face,
    edit: Edit,
    describer: Describer,
) -> None:
    """Identity, background and colour of one edit."""
    before, after = known.photo, edit.output
    distance = descriptor_distance(known.descriptor, describer.describe(after, known.face.box))
    tally.distances.append(distance)
    tally.background.append(measures.mean_change(before, after, ~known.face_mask))
    if known.grey:
        tally.grey_kept.append(is_greyscale(after))
        tally.tint.append(
            measures.channel_spread(after, known.face_mask)
            - measures.channel_spread(before, known.face_mask)
        )


def _know(file: str, photo: np.ndarray, face: Face, describer: Describer, crop_size: int) -> _Face:
    points = describer.landmarks(photo, face.box)
    alignment = align(photo, face, size=crop_size)
    crop_points = alignment.to_crop(points)
    labels = landmark_label_map(crop_points, crop_size)
    eyes = crop_points[36:42].mean(axis=0), crop_points[42:48].mean(axis=0)
    band = max(1, round(MOUTH_BAND * float(np.hypot(*(eyes[1] - eyes[0])))))
    eye_to_mouth = crop_points[48:68].mean(axis=0) - (eyes[0] + eyes[1]) / 2
    far_band = max(1, round(FAR_BAND * float(np.hypot(*eye_to_mouth))))
    return _Face(
        file=file,
        photo=photo,
        face=face,
        face_mask=measures.face_mask(points, photo.shape),
        descriptor=describer.describe(photo, face.box),
        mouth=np.isin(labels, MOUTH_CLASSES),
        band=band,
        far_band=far_band,
        grey=is_greyscale(photo),
    )


FaceFinder = Callable[[np.ndarray, object], list[Face]]


def score_editors(
    editors: Sequence[Editor],
    find_faces: FaceFinder,
    judge: ExpressionClassifier,
    root: str | os.PathLike[str],
    files: Sequence[str],
    describer: Describer,
    crop_size: int,
    colour_files: Sequence[str] = (),
    log: Log = print,
) -> tuple[tuple[EditorScores, ...], dict[str, str], tuple[tuple[np.ndarray, ...], ...], list[str]]:
    """Edit every face of `files` (under root/images) with every editor: `TARGETS` unlocked
    (the first editor, the product, also `SURVEY_TARGETS`),
    LOCK_TARGET locked to LOCK_REGIONS; `colour_files` are edited towards LOCK_TARGET to read
    the white balance. `find_faces(photo, key)` is the product's detector (ProductEditor.faces);
    the first face it returns is edited.

    Returns the scores per editor, the files skipped with why, grid rows (the input, the first
    editor's edits, their first one's difference x4) and the files edited."""
    judge.eval()
    folder = Path(root) / IMAGE_DIR

    def targets_of(editor: Editor) -> tuple[str, ...]:
        return TARGETS + SURVEY_TARGETS if editor is editors[0] else TARGETS

    tallies = {e.name: _Tally(probs={t: [] for t in targets_of(e)}) for e in editors}
    skipped: dict[str, str] = {}
    grid: list[tuple[np.ndarray, ...]] = []
    edited: list[str] = []
    for number, file in enumerate(files):
        photo = read_image(folder / file)
        faces = find_faces(photo, file)
        if not faces:
            skipped[file] = "no face found"
            continue
        known = _know(file, photo, faces[0], describer, crop_size)
        edited.append(file)
        row: list[np.ndarray] = [align(photo, known.face, size=JUDGE_CROP).crop]
        for editor in editors:
            tally = tallies[editor.name]
            for target in targets_of(editor):
                edit = editor(photo, known.face, target, None, file)
                tally.probs[target].append(_judge(judge, edit.output, known.face))
                _measure(tally, known, edit, describer)
                if isinstance(editor, CriticNoiseEditor) and editor.last_critic_gain:
                    tally.critic.append(editor.last_critic_gain)
                if editor is editors[0] and len(grid) < GRID_ROWS:
                    row.append(align(edit.output, known.face, size=JUDGE_CROP).crop)
            locked = editor(photo, known.face, LOCK_TARGET, LOCK_REGIONS, file)
            tally.lock_probs.append(_judge(judge, locked.output, known.face))
            _measure(tally, known, locked, describer)
            moved = measures.changed(photo, locked.output)
            allowed = locked.footprint if locked.footprint is not None else np.zeros_like(moved)
            tally.changed += int(moved.sum())
            tally.changed_outside += int((moved & ~allowed).sum())
            if locked.crop_footprint is not None:
                share = measures.share_inside(locked.crop_footprint, known.mouth, known.band)
                if share is not None:
                    tally.inside.append((share, file))
                    near = measures.share_inside(locked.crop_footprint, known.mouth, known.far_band)
                    tally.far += int(near is not None and near < 1.0)
        if len(grid) < GRID_ROWS and len(row) == 1 + len(targets_of(editors[0])):
            difference = np.abs(row[1].astype(np.int16) - row[0].astype(np.int16)) * 4
            row.append(np.clip(difference, 0, 255).astype(np.uint8))
            grid.append(tuple(row))
        if (number + 1) % 10 == 0 or number + 1 == len(files):
            log(f"real-face scoring: {number + 1}/{len(files)} photos")
    for file in colour_files:
        photo = read_image(folder / file)
        faces = find_faces(photo, ("colour", file))
        if not faces:
            continue
        for editor in editors:
            edit = editor(photo, faces[0], LOCK_TARGET, None, ("colour", file))
            tallies[editor.name].balance.append(measures.balance_shift(photo, edit.output))
    scores = tuple(
        _editor_scores(e.name, tallies[e.name], len(edited), len(colour_files)) for e in editors
    )
    return scores, skipped, tuple(grid), edited


def _editor_scores(name: str, tally: _Tally, photos: int, colour: int) -> EditorScores:
    worst = min(tally.inside) if tally.inside else None
    critic = None
    if tally.critic:
        before, after = np.mean(np.array(tally.critic), axis=0)
        critic = (float(before), float(after))
    return EditorScores(
        editor=name,
        photos=photos,
        targets={t: _target_scores(t, p) for t, p in tally.probs.items()},
        locked=LockScores(
            target=LOCK_TARGET,
            regions=LOCK_REGIONS,
            expression=_target_scores(LOCK_TARGET, tally.lock_probs),
            changed_outside_footprint=tally.changed_outside,
            changed_pixels=tally.changed,
            footprint_inside_mouth_mean=_mean([share for share, _ in tally.inside]),
            footprint_inside_mouth_min=worst[0] if worst else None,
            footprint_edits=len(tally.inside),
            footprint_worst_photo=worst[1] if worst else None,
            footprint_far_edits=tally.far,
        ),
        identity_kept=measures.fraction([d <= SAME_PERSON for d in tally.distances]),
        identity_mean_distance=_mean(tally.distances),
        background_mean_change=_mean(tally.background),
        greyscale_kept=measures.fraction(tally.grey_kept),
        tint_added=_mean(tally.tint),
        balance_shift=_mean(tally.balance),
        colour_photos=colour,
        critic_probability=critic,
    )


def score_parser(
    engine: EditEngine, prepared: str | os.PathLike[str], limit: int | None = None
) -> ParserScores:
    """The engine's parse of the prepared test crops against their landmark labels."""
    from trainer.data.shards import ShardParsing, read_fact

    data = ShardParsing(prepared, "test", size=JUDGE_CROP)
    labelled = read_fact(data.folder, "labelled", len(data))
    indices = [i for i in range(len(data)) if labelled is None or bool(labelled[i])]
    indices = [indices[i] for i in measures.spread_indices(len(indices), limit)]
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    for index in indices:
        image, truth = data.arrays(0, index)
        engine.clear_cache()
        prediction = engine.parse(np.ascontiguousarray(image)).labels
        matrix += measures.labelled_confusion(prediction, truth, NUM_CLASSES)
    ious = measures.labelled_iou(matrix)
    return ParserScores(
        len(indices), measures.mean_iou(ious), {CLASS_NAMES[c]: v for c, v in ious.items()}
    )


def faces_found(
    find_faces: FaceFinder, root: str | os.PathLike[str], files: Sequence[str]
) -> FoundScores:
    """How many of the photos the product's detector finds a face in."""
    folder = Path(root) / IMAGE_DIR
    found = 0
    for file in files:
        try:
            photo = read_image(folder / file)
        except Exception:  # an unreadable photo is a photo without a face found
            continue
        found += bool(find_faces(photo, ("found", file)))
    return FoundScores(len(files), found)


# --- the whole report -------------------------------------------------------------------------


def score_real_faces(
    checkpoint: str | os.PathLike[str],
    data: str | os.PathLike[str],
    prepared: str | os.PathLike[str],
    judge_path: str | os.PathLike[str],
    limit: int | None = None,
    survey_limit: int | None = None,
    colour_limit: int | None = 20,
    controls: bool = True,
    log: Log = print,
) -> RealFaceReport:
    """Score `checkpoint` on the neutral photos of the test identities of `data` (at most
    `limit`, spread over the list), with the controls beside it; the parser on the prepared
    test crops and the faces found on all test photos (at most `survey_limit` each); the white
    balance on up to `colour_limit` colour photos of the val identities (the test split's
    photos are all greyscale)."""
    from faceedit.faces.detect import FaceDetector
    from faceedit.inference.pipeline import FramePipeline
    from faceedit.weights import checkpoint as checkpoint_io
    from trainer.judges.classifier import evaluate_classifier, load_classifier
    from trainer.judges.real.editors import IdentityEditor, PatchEditor
    from trainer.judges.real.identity import shared_describer
    from trainer.judges.real.judge import teachable_accuracy

    loaded = checkpoint_io.load(checkpoint, device="cpu")
    engine = EditEngine(loaded, device="cpu", precision="float32")
    product = ProductEditor(FramePipeline(engine, FaceDetector(device="cpu")))
    judge_file = load_classifier(judge_path)
    judge = judge_file.model
    describer = shared_describer()

    # 1. The judge, scored on the prepared test crops' teachable expressions.
    from trainer.data import build_expression_dataset

    held_out = build_expression_dataset(
        "facial_expressions", prepared, "test", judge.config.image_size
    )
    judge_scores = evaluate_classifier(judge, held_out)
    train_counts = expression_counts(
        {"train": np.load(Path(prepared) / "train" / "expression.npy")}
    )
    teachable = teachable_expressions(train_counts["train"])
    accuracy = teachable_accuracy(judge_scores.confusion, teachable, judge.config.class_names)
    log(f"judge: test accuracy {judge_scores.accuracy:.3f}, teachable {accuracy.accuracy}")

    # 2. The editors on the neutral test photos.
    editors: list[Editor] = [product]
    if controls:
        editors += [IdentityEditor(), PatchEditor()]
        if loaded.discriminator is not None and loaded.generator is not None:
            critics = CriticNoiseEditor(loaded.unified(), loaded.discriminator, engine.crop_size)
            editors.append(critics)
    neutral = test_photos(data, "neutral")
    files = [neutral[i] for i in measures.spread_indices(len(neutral), limit)]
    colour = colour_photos(data, "val", colour_limit) if colour_limit else []
    log(f"real-face scoring: {len(files)} neutral test photos, {len(colour)} colour photos")
    scores, skipped, grid, edited = score_editors(
        editors, product.faces, judge, data, files, describer, engine.crop_size, colour, log
    )

    # 3. The parser and the detector.
    parser = score_parser(engine, prepared, survey_limit) if engine.capabilities.can_parse else None
    everyone = test_photos(data)
    survey = [everyone[i] for i in measures.spread_indices(len(everyone), survey_limit)]
    found = faces_found(product.faces, data, survey)

    # 4. What the mouth alone can carry: real smiles pasted into neutral photos.
    ceiling = mouth_ceiling(prepared, judge_reader(judge))
    log(
        f"mouth ceiling: a real smile in the lock's footprint is read as happy "
        f"{ceiling.row(LOCK_FOOTPRINT).read_as_happy:.3f} ({ceiling.pairs} same-person pairs)"
    )
    return RealFaceReport(
        checkpoint=str(checkpoint),
        judge={
            "path": str(judge_path),
            "image_size": judge.config.image_size,
            "test_accuracy": judge_scores.accuracy,
            "test_count": judge_scores.count,
            "teachable": accuracy.to_dict(),
            "training": judge_file.metadata.get("training"),
        },
        inputs=tuple(edited),
        skipped=skipped,
        editors=scores,
        parser=parser,
        found=found,
        grid=grid,
        ceiling=ceiling,
    )
