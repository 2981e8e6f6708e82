"""The mouth lock's ceiling pastes the same person's real smile into the right footprints and
reports what a judge reads there."""

from __future__ import annotations

import numpy as np
import pytest

from faceedit.errors import DatasetError
from faceedit.vocab.labels import CLASS_INDEX
from trainer.data.landmark_labels import UNLABELLED
from trainer.judges.real.mouth_ceiling import (
    FOOTPRINTS,
    HAPPY,
    LOCK_FOOTPRINT,
    NEUTRAL,
    Reader,
    ceiling_of,
    colour_matched,
    footprints,
    same_person_pairs,
)

S = 32
CHEEK = (slice(18, 20), slice(4, 8))  # skin below the nose, off the lips


def labels(mouth_width: int) -> np.ndarray:
    """A face: skin everywhere but the top rows (unlabelled), a nose, lips of this width."""
    out = np.full((S, S), CLASS_INDEX["skin"], np.uint8)
    out[:4] = UNLABELLED
    out[10:16, 14:18] = CLASS_INDEX["nose"]
    half = mouth_width // 2
    out[22:24, 16 - half : 16 + half] = CLASS_INDEX["u_lip"]
    out[24:26, 16 - half : 16 + half] = CLASS_INDEX["l_lip"]
    return out


class Pairs:
    """Two people, each a grey neutral photo and a happy one with a white mouth and cheek."""

    def __init__(self) -> None:
        self.files = np.array(["Ann_1.jpg", "Ann_2.jpg", "Bob_1.jpg", "Bob_2.jpg", "Cy_1.jpg"])
        self.expression = np.array([NEUTRAL, HAPPY, NEUTRAL, HAPPY, NEUTRAL])
        self.labelled = np.ones(5, bool)

    def fact(self, name: str) -> np.ndarray | None:
        return {"file": self.files, "labelled": self.labelled}.get(name)

    def image_array(self, index: int) -> np.ndarray:
        checker = (np.indices((S, S)).sum(0) % 2).astype(np.uint8)
        image = np.repeat((80 + 40 * checker)[..., None], 3, axis=2)  # a spread to match
        if self.expression[index] == HAPPY:
            image[22:26, 10:22] = 250  # the smile, wider than the neutral lips
            image[CHEEK] = 250
        return image

    def label_array(self, index: int) -> np.ndarray:
        return labels(12 if self.expression[index] == HAPPY else 6)


def reader_of(rows: slice, cols: slice) -> Reader:
    """A judge that reads happy where the patch (rows, cols) is brighter than any skin."""

    def read(images: np.ndarray) -> np.ndarray:
        bright = images[:, rows, cols].mean(axis=(1, 2, 3)) > 150
        p = np.full((len(images), 8), 0.02)
        p[:, NEUTRAL] = np.where(bright, 0.1, 0.8)
        p[:, HAPPY] = np.where(bright, 0.8, 0.1)
        return p

    return read


def test_pairs_are_same_person_neutral_then_happy_and_people_without_a_smile_are_left_out() -> None:
    data = Pairs()
    assert same_person_pairs(list(data.files), data.expression, data.labelled) == [(0, 1), (2, 3)]
    unlabelled = data.labelled.copy()
    unlabelled[3] = False
    assert same_person_pairs(list(data.files), data.expression, unlabelled) == [(0, 1)]


def test_footprints_grow_from_the_neutral_mouth_to_the_whole_photo() -> None:
    masks = footprints(labels(6), labels(12))
    sizes = [int(masks[name].sum()) for name in FOOTPRINTS]
    assert sizes[0] == 0 and sizes[1] == 4 * 6 and sizes[2] == 4 * 12
    assert sizes == sorted(sizes) and sizes[-1] == S * S
    below = masks["the face below the nose"]
    assert not below[:16].any() and below[16:].all()


def test_colour_matching_moves_the_face_to_the_reference_statistics() -> None:
    rng = np.random.default_rng(0)
    source = rng.uniform(0, 120, (S, S, 3))
    reference = rng.uniform(100, 140, (S, S, 3))
    where = np.ones((S, S), bool)
    out = colour_matched(source, reference, where)
    assert np.allclose(out[where].mean(0), reference[where].mean(0), atol=0.5)
    assert np.allclose(out[where].std(0), reference[where].std(0), atol=0.5)


def test_a_judge_of_the_mouth_sees_the_smile_in_the_lock_and_one_of_the_cheek_does_not() -> None:
    mouth_reader = ceiling_of(Pairs(), reader_of(slice(22, 26), slice(13, 19)), "test")
    assert mouth_reader.pairs == 2 and mouth_reader.identities == 2
    read = {r.footprint: r.read_as_happy for r in mouth_reader.rows}
    assert read[FOOTPRINTS[0]] == 0.0 and read[LOCK_FOOTPRINT] == 1.0

    cheek_reader = ceiling_of(Pairs(), reader_of(*CHEEK), "test")
    read = {r.footprint: r.read_as_happy for r in cheek_reader.rows}
    assert read[LOCK_FOOTPRINT] == 0.0 and read["both photos' mouths"] == 0.0
    assert read["the face below the nose"] == 1.0 and read[FOOTPRINTS[-1]] == 1.0


def test_a_split_prepared_without_landmark_labels_gets_a_clear_message() -> None:
    data = Pairs()
    data.fact = lambda name: data.files if name == "file" else None  # type: ignore[method-assign]
    with pytest.raises(DatasetError, match="prepare the facial_expressions folder again"):
        ceiling_of(data, reader_of(*CHEEK), "test")
