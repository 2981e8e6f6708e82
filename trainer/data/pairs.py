"""Same-person pairs: each face with a photo of the same identity showing another expression.

The critics alone teach real faces slowly: a 2-core CPU affords a few thousand GAN iterations,
and in that time their expression heads pull edits into speckle rather than a smile
(docs/real-faces.md). A photo of the same person smiling says what the smile looks like on that
face. `PairedExpressions` gives every sample such a partner where the data has one; the GAN
stage then asks for the partner's expression and adds a loss (trainer/stages/losses.py,
`paired_loss`) that compares the edit with the partner, blurred and brightness-matched, inside
the face parts both photos' landmark labels mark (brows, eyes, nose, lips, inner mouth).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Final

import numpy as np
import torch
from torch.utils.data import Dataset

from faceedit.errors import ConfigError
from faceedit.vocab.labels import CLASS_INDEX
from trainer.data.facial_expressions import identity_of

# The parts a change of expression moves; the paired loss looks only there.
PART_CLASSES: Final[tuple[int, ...]] = tuple(
    CLASS_INDEX[name]
    for name in ("nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip")
)


def part_mask(labels: np.ndarray) -> np.ndarray:
    """(S, S) bool: the expression-bearing parts of one landmark label map."""
    return np.isin(labels, PART_CLASSES)


def partner_table(
    identities: np.ndarray, targets: np.ndarray, teachable: np.ndarray
) -> list[np.ndarray]:
    """Per sample: the indices of the same identity's samples with another, teachable expression.

    identities (N,) strings; targets (N,) expression indices; teachable (num_expressions,) bool.
    """
    by_identity: dict[str, list[int]] = defaultdict(list)
    for index, identity in enumerate(identities):
        by_identity[str(identity)].append(index)
    table: list[np.ndarray] = []
    for index, identity in enumerate(identities):
        same = np.asarray(by_identity[str(identity)], dtype=np.int64)
        other = same[(targets[same] != targets[index]) & teachable[targets[same]]]
        table.append(other)
    return table


class PairedExpressions(Dataset):
    """A prepared facial-expressions split whose samples carry a same-person partner.

    `ds[i]` -> (image, expression, valence_arousal, partner image, partner expression,
    has_partner bool, parts (1, S, S) bool: both photos' expression parts). A sample without a
    partner repeats itself with has_partner False. The partner is drawn from (seed, epoch,
    index), so a resumed run draws the same ones. Images are uint8 from `load_uint8` (the
    loader converts them), float32 in [-1, 1] from `ds[i]`.
    """

    def __init__(self, base: Any, teachable: np.ndarray, seed: int = 0) -> None:
        files = base.fact("file") if callable(getattr(base, "fact", None)) else None
        if files is None:
            raise ConfigError(
                "loss.paired needs a prepared facial-expressions folder (it records each "
                "photo's file name, hence its identity); prepare it again with this version"
            )
        self.base = base
        self.seed = seed
        self.epoch = 0
        identities = np.asarray([identity_of(str(name)) for name in files])
        self.partners = partner_table(identities, np.asarray(base.targets), teachable)

    def __len__(self) -> int:
        return len(self.base)

    @property
    def targets(self) -> np.ndarray:
        return np.asarray(self.base.targets)

    @property
    def share_with_partner(self) -> float:
        return float(np.mean([len(p) > 0 for p in self.partners])) if self.partners else 0.0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def partner_of(self, epoch: int, index: int) -> int | None:
        choices = self.partners[index]
        if not len(choices):
            return None
        rng = np.random.default_rng([self.seed, epoch, index])
        return int(choices[rng.integers(len(choices))])

    def _pair(self, epoch: int, index: int) -> tuple[int, torch.Tensor, torch.Tensor]:
        """(the partner's index, or `index` itself without one; has_partner; both photos'
        expression parts (1, S, S))."""
        partner = self.partner_of(epoch, index)
        other = index if partner is None else partner
        parts = part_mask(self.base.label_array(index)) | part_mask(self.base.label_array(other))
        return other, torch.tensor(partner is not None), torch.from_numpy(parts[None])

    def load_uint8(self, epoch: int, index: int) -> tuple[torch.Tensor, ...]:
        other, has_partner, parts = self._pair(epoch, index)
        partner_image, partner_label, _ = self.base.load_uint8(epoch, other)
        return (
            *self.base.load_uint8(epoch, index),
            partner_image,
            partner_label,
            has_partner,
            parts,
        )

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        index = int(index)
        other, has_partner, parts = self._pair(self.epoch, index)
        partner_image, partner_label, _ = self.base[other]
        return (*self.base[index], partner_image, partner_label, has_partner, parts)


__all__ = ["PART_CLASSES", "PairedExpressions", "part_mask", "partner_table"]
