"""Editors the real-face scorer measures: the product, and controls that must score low.

An editor takes a photo, the face the product's detector found in it, a target expression
and an optional region lock, and returns the edited photo (`Edit`). `ProductEditor` is
faceedit's own path (FramePipeline: align, parse, generate, paste back, as `faceedit edit`
runs it); the controls are what a scorer must not be fooled by:

- `IdentityEditor` returns the input (every change-based score must read 0);
- `PatchEditor` paints a constant smile-coloured patch over the mouth (teeth between red
  lips), the cheapest "happy" a judge that looks only at colour would accept;
- `CriticNoiseEditor` adds a small per-image noise, optimised against the checkpoint's own
  critic (the discriminator's global expression head) to raise its P(target): the shortcut a
  generator trained against that critic can take (trainer/judges/controls.py, which the
  learning check's control uses too). The judge must not read it as the target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import cv2
import numpy as np
import torch

from faceedit.faces.align import REGION_LEVEL, Alignment, align, paste_back, warp_to_frame
from faceedit.faces.detect import Face
from faceedit.inference.pipeline import FramePipeline
from faceedit.inference.request import EditRequest
from faceedit.model.discriminator import HierarchicalDiscriminator
from faceedit.model.unified import UnifiedModel
from faceedit.vocab.expressions import EXPRESSION_INDEX
from trainer.judges.controls import NOISE_LEVELS, NOISE_STEPS, critic_noise
from trainer.judges.evaluation import from_uint8_crops, to_uint8_crops

# The patch: white teeth between red lips, a constant colour for every face.
TEETH: Final[tuple[int, int, int]] = (235, 230, 220)
LIPS: Final[tuple[int, int, int]] = (190, 60, 70)


@dataclass(frozen=True)
class Edit:
    """An edited photo and, under a region lock, the lock's footprint in the photo (pixels
    outside it may not change: faceedit.faces.align.paste_back's promise)."""

    output: np.ndarray  # (H, W, 3) uint8 RGB, the photo's size
    footprint: np.ndarray | None = None  # (H, W) bool, only for a locked product edit
    crop_footprint: np.ndarray | None = None  # (S, S) bool, the same in the model's crop


class Editor(Protocol):
    """Edits one face of a photo towards `target` (an expression name)."""

    name: str

    def __call__(
        self,
        photo: np.ndarray,
        face: Face,
        target: str,
        editable: Sequence[str] | None = None,
        key: object = None,
    ) -> Edit: ...


class ProductEditor:
    """faceedit's own path: FramePipeline.process with the request `faceedit edit
    --expression TARGET=1 [--editable ...]` makes. `key` names the photo, so its faces are
    detected once (the pipeline's still-image cache) for all of its edits."""

    name = "product"

    def __init__(self, pipeline: FramePipeline) -> None:
        self.pipeline = pipeline
        self._key: object = None

    def faces(self, photo: np.ndarray, key: object) -> list[Face]:
        """The faces the product's detector finds in `photo` (cached for `key`)."""
        if key is None or key != self._key:
            self.pipeline.reset()
            self._key = key
        return self.pipeline.faces(photo, key)[0]

    def __call__(
        self,
        photo: np.ndarray,
        face: Face,
        target: str,
        editable: Sequence[str] | None = None,
        key: object = None,
    ) -> Edit:
        faces = self.faces(photo, key)
        index = next((i for i, f in enumerate(faces) if f is face), None)
        request = EditRequest(
            condition={target: 1.0},
            editable_regions=tuple(editable) if editable is not None else None,
            face_index=index,
        )
        result = self.pipeline.process(photo, request, frame_key=key)
        footprint = crop_footprint = None
        processed = result.processed[0] if result.processed else None
        if editable is not None and processed is not None and processed.edit is not None:
            lock = processed.edit.lock
            if lock is not None:
                footprint = frame_footprint(lock, processed.alignment, photo.shape)
                crop_footprint = lock >= REGION_LEVEL
        return Edit(result.output, footprint, crop_footprint)


def frame_footprint(lock: np.ndarray, alignment: Alignment, shape: tuple[int, ...]) -> np.ndarray:
    """(H, W) bool: where a region lock's soft union (S, S), warped into the photo as
    paste_back warps it, reaches REGION_LEVEL: the only pixels a locked edit may change."""
    rows, cols = slice(0, shape[0]), slice(0, shape[1])
    warped = warp_to_frame(lock.astype(np.float32), alignment, rows, cols, cv2.INTER_LINEAR)
    return np.asarray(warped >= REGION_LEVEL)


class IdentityEditor:
    """Returns the photo unchanged."""

    name = "identity"

    def __call__(
        self,
        photo: np.ndarray,
        face: Face,
        target: str,
        editable: Sequence[str] | None = None,
        key: object = None,
    ) -> Edit:
        return Edit(photo.copy())


def mouth_patch(photo: np.ndarray, face: Face) -> np.ndarray:
    """`photo` with a constant smile painted between the detector's mouth corners: an
    ellipse of red lips around a band of white teeth, as wide as the mouth and a third as
    tall, whatever the face."""
    out = photo.copy()
    left, right = face.landmarks[3], face.landmarks[4]
    centre = (left + right) / 2
    width = float(np.hypot(*(right - left)))
    angle = float(np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0])))
    axes = (max(1, round(0.6 * width)), max(1, round(0.22 * width)))
    point = (round(centre[0]), round(centre[1]))
    cv2.ellipse(out, point, axes, angle, 0, 360, LIPS, -1)
    inner = (max(1, round(0.45 * width)), max(1, round(0.1 * width)))
    cv2.ellipse(out, point, inner, angle, 0, 360, TEETH, -1)
    return out


class PatchEditor:
    """Paints the same smile patch (`mouth_patch`) on every face, whatever the target."""

    name = "fixed patch"

    def __call__(
        self,
        photo: np.ndarray,
        face: Face,
        target: str,
        editable: Sequence[str] | None = None,
        key: object = None,
    ) -> Edit:
        return Edit(mouth_patch(photo, face))


class CriticNoiseEditor:
    """Adds noise of at most `levels` grey levels to the face's aligned crop, aimed at the
    global critic's P(target) for `steps` steps (trainer.judges.controls.critic_noise), and
    pastes the noise back into the photo as the product pastes an edit."""

    name = "critic noise"

    def __init__(
        self,
        model: UnifiedModel,
        critics: HierarchicalDiscriminator,
        crop_size: int,
        levels: float = NOISE_LEVELS,
        steps: int = NOISE_STEPS,
    ) -> None:
        self.model = model.eval()
        self.critics = critics.eval()
        self.crop_size = crop_size
        self.levels = levels
        self.steps = steps
        self.last_critic_gain: tuple[float, float] | None = None  # P(target) before, after

    def __call__(
        self,
        photo: np.ndarray,
        face: Face,
        target: str,
        editable: Sequence[str] | None = None,
        key: object = None,
    ) -> Edit:
        alignment = align(photo, face, size=self.crop_size)
        x = from_uint8_crops([alignment.crop])
        index = torch.tensor([EXPRESSION_INDEX[target]])
        noise = critic_noise(self.model, self.critics, x, index, self.levels, self.steps)
        self.last_critic_gain = (float(noise.before[0]), float(noise.after[0]))
        return Edit(paste_back(photo, alignment, to_uint8_crops(noise.images)[0]))
