"""Same-person pairs: who is whose partner, deterministic draws, and the parts both show."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceedit.errors import ConfigError
from faceedit.vocab.labels import CLASS_INDEX
from trainer.data.pairs import PairedExpressions, part_mask, partner_table

SIZE = 8
FILES = ["Ann_Able_0001.jpg", "Ann_Able_0002.jpg", "Ann_Able_0003.jpg", "Bob_0001.jpg", "Cy_1.jpg"]
TARGETS = np.array([0, 1, 4, 1, 0])  # Ann: neutral, happy, fear; Bob: happy; Cy: neutral


class FakeShards:
    """The parts of ShardExpressions that PairedExpressions reads: sample k is filled with k."""

    def __init__(self, files: list[str] | None = FILES) -> None:
        self.files = files
        self.targets = TARGETS

    def fact(self, name: str) -> np.ndarray | None:
        return None if self.files is None or name != "file" else np.array(self.files)

    def __len__(self) -> int:
        return len(TARGETS)

    def label_array(self, index: int) -> np.ndarray:
        labels = np.zeros((SIZE, SIZE), np.uint8)
        labels[0, :] = CLASS_INDEX["skin"]
        labels[1 + index, :] = CLASS_INDEX["mouth"]  # each sample's mouth on its own row
        return labels

    def load_uint8(self, epoch: int, index: int) -> tuple[torch.Tensor, ...]:
        image = torch.full((3, SIZE, SIZE), index, dtype=torch.uint8)
        return image, torch.tensor(int(TARGETS[index])), torch.full((2,), float("nan"))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        image, label, valence_arousal = self.load_uint8(0, index)
        return image.float() / 127.5 - 1.0, label, valence_arousal


TEACHABLE = np.array([True, True, True, True, False, True, True, False])  # not fear, contempt


def test_partners_are_the_same_person_with_another_teachable_expression() -> None:
    identities = np.array(["Ann_Able", "Ann_Able", "Ann_Able", "Bob", "Cy"])
    table = partner_table(identities, TARGETS, TEACHABLE)
    assert [t.tolist() for t in table] == [[1], [0], [0, 1], [], []]


def test_a_pair_carries_the_partners_photo_label_and_both_photos_parts() -> None:
    paired = PairedExpressions(FakeShards(), TEACHABLE, seed=3)
    assert paired.share_with_partner == pytest.approx(3 / 5)
    image, label, _, partner, partner_label, has_partner, parts = paired.load_uint8(0, 0)
    assert int(label) == 0 and int(partner_label) == 1 and bool(has_partner)
    assert int(partner[0, 0, 0]) == 1 and int(image[0, 0, 0]) == 0
    rows = parts[0].any(dim=1).tolist()
    assert rows == [False, True, True, False, False, False, False, False]  # both mouths


def test_without_a_partner_a_sample_repeats_itself_and_says_so() -> None:
    paired = PairedExpressions(FakeShards(), TEACHABLE)
    image, _, _, partner, partner_label, has_partner, _ = paired[3]
    assert not bool(has_partner) and torch.equal(image, partner) and int(partner_label) == 1
    assert image.dtype == torch.float32 and float(image.max()) <= 1.0


def test_draws_follow_seed_epoch_and_index_so_a_resumed_run_draws_the_same() -> None:
    paired = PairedExpressions(FakeShards(), TEACHABLE, seed=0)
    draws = {e: paired.partner_of(e, 2) for e in range(40)}
    assert set(draws.values()) == {0, 1}  # either partner, depending on the epoch
    again = PairedExpressions(FakeShards(), TEACHABLE, seed=0)
    assert all(again.partner_of(e, 2) == d for e, d in draws.items())


def test_data_without_file_names_is_refused_with_a_reason() -> None:
    with pytest.raises(ConfigError, match="facial-expressions"):
        PairedExpressions(FakeShards(files=None), TEACHABLE)


def test_part_mask_keeps_the_expression_parts_only() -> None:
    labels = np.array([[CLASS_INDEX["skin"], CLASS_INDEX["u_lip"], CLASS_INDEX["l_brow"], 255]])
    assert part_mask(labels).tolist() == [[False, True, True, False]]
