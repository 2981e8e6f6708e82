"""What the sections measure: the models and their variants, a face scene, inputs, a video.

Nothing here times anything; everything here is built once per device by the runner.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import cv2
import numpy as np
import torch
from torch import Tensor

from faceedit.errors import FaceEditError
from faceedit.faces.align import Alignment, align
from faceedit.faces.detect import Face, FaceDetector
from faceedit.inference import optimize
from faceedit.inference.engine import EditEngine
from faceedit.media.bundled import astronaut_image_path
from faceedit.media.sources import VideoWriter, read_image
from faceedit.model.config import ModelConfig
from faceedit.model.unified import UnifiedModel
from faceedit.vocab.expressions import EXPRESSIONS
from faceedit.weights import checkpoint as checkpoint_io

# eager: the checkpoint as loaded. optimized: optimize.optimize_checkpoint (exact, float32).
# bfloat16 / float16: optimized and run in reduced precision (outputs stay float32).
# A "+compile" suffix (e.g. "bfloat16+compile") adds torch.compile with freezing.
Variant = str
FRAME_SIZE: Final[tuple[int, int]] = (640, 480)  # (width, height) of the end-to-end video
MOTION_PERIOD: Final[int] = 90  # frames of the generated video's back-and-forth motion
DTYPES: Final[dict[str, torch.dtype]] = {"bfloat16": torch.bfloat16, "float16": torch.float16}
RANDOM_WEIGHTS_NOTE: Final[str] = (
    "random weights of the preset: this measures speed only, outputs are meaningless"
)


@dataclass
class Models:
    """The networks measured on one device: the loaded (or random) checkpoint and its variants."""

    loaded: checkpoint_io.LoadedCheckpoint
    device: torch.device
    variants: dict[str, UnifiedModel]

    @property
    def config(self) -> ModelConfig:
        return self.loaded.config


def random_checkpoint(config: ModelConfig, name: str) -> checkpoint_io.LoadedCheckpoint:
    """Randomly initialised networks of `config`, shaped like a loaded checkpoint (bench only)."""
    model = UnifiedModel(config).eval()
    return checkpoint_io.LoadedCheckpoint(
        path=Path(f"<random {name}>"),
        config=config,
        parser=model.parser,
        generator=model.generator,
        discriminator=None,
        metadata={"random": True},
    )


def variant_checkpoint(
    loaded: checkpoint_io.LoadedCheckpoint, device: torch.device, variant: Variant
) -> checkpoint_io.LoadedCheckpoint:
    """The checkpoint's networks as an uncompiled variant runs them, for the per-stage tables
    (compiled variants are measured through the engine: variant_engine)."""
    base, _, extra = variant.partition("+")
    if extra:
        raise ValueError(f"variant_checkpoint builds uncompiled variants only, not {variant!r}")
    if base == "eager":
        return loaded
    precision = "float32" if base == "optimized" else base
    return optimize.optimize_checkpoint(loaded, device, precision=precision)  # type: ignore[arg-type]  # a Variant's base names a precision


def variant_engine(
    loaded: checkpoint_io.LoadedCheckpoint, device: torch.device, variant: Variant
) -> EditEngine:
    """The engine the app would build for `variant`: the same optimisation, precision and
    background compilation (waited for here: a benchmark measures the compiled networks)."""
    base, _, extra = variant.partition("+")
    if base == "eager":
        engine = EditEngine(loaded, device, optimize_networks=False)
    else:
        engine = EditEngine(loaded, device, "float32" if base == "optimized" else base)  # type: ignore[arg-type]  # as above
    if extra == "compile":
        engine.start_background_compile()
        status = engine.wait_for_compile()
        if status.state != "ready":
            raise FaceEditError(f"torch.compile failed for the {variant} variant: {status.message}")
    return engine


def headline_suffix(variant: Variant) -> str:
    """'' for the float32 optimised path, else e.g. '_bfloat16' or '_bfloat16_compile'."""
    return "" if variant == "optimized" else "_" + variant.replace("+", "_")


def reduced_precision(device: torch.device) -> tuple[Variant, ...]:
    """The reduced precision the app picks on `device` ("auto"), if its hardware has one."""
    precision = optimize.resolve_precision("auto", device)
    return () if precision == "float32" else (precision,)


def build_models(
    loaded: checkpoint_io.LoadedCheckpoint, device: torch.device, variants: Sequence[Variant]
) -> Models:
    built: dict[str, UnifiedModel] = {}
    for variant in variants:
        source = variant_checkpoint(loaded, device, variant)
        built[variant] = source.unified().to(device).eval()
    return Models(loaded, device, built)


def sample_frame(
    size: tuple[int, int] = FRAME_SIZE, scale: float = 0.55, shift: float = 0.5
) -> np.ndarray:
    """A (H, W, 3) frame with the astronaut portrait, scaled to `scale` of the frame height."""
    width, height = size
    face = read_image(astronaut_image_path())
    side = max(16, round(scale * height))
    small = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    frame = np.empty((height, width, 3), np.uint8)
    frame[:] = (92, 98, 110)
    x = round(shift * (width - side))
    y = (height - side) // 2
    frame[y : y + side, x : x + side] = small
    return frame


def make_video(path: Path, frames: int, fps: float = 25.0) -> Path:
    """A 640x480 video of the sample face moving across the frame and changing size.

    The motion repeats every MOTION_PERIOD frames whatever the length, so a short video moves
    as fast as a long one (about 20 px per frame at most, a brisk head movement at 25 fps).
    """
    with VideoWriter(path, fps, FRAME_SIZE) as writer:
        for i in range(frames):
            phase = i / MOTION_PERIOD
            shift = 0.5 + 0.45 * math.sin(2 * math.pi * phase)
            scale = 0.5 + 0.12 * math.sin(4 * math.pi * phase)
            writer.write(sample_frame(FRAME_SIZE, scale, shift))
    return path


@dataclass
class Scene:
    """A frame with one detected face, the detector that found it, and its aligned crops."""

    frame: np.ndarray
    face: Face
    detector: FaceDetector

    def alignment(self, size: int) -> Alignment:
        return align(self.frame, self.face, size=size)


def make_scene(device: torch.device) -> Scene:
    detector = FaceDetector(device="cuda" if device.type == "cuda" else "cpu")
    frame = sample_frame()
    faces = detector.detect(frame)
    if not faces:
        raise FaceEditError("the face detector found no face in the bundled sample frame")
    return Scene(frame, faces[0], detector)


def crops_tensor(scene: Scene, size: int, batch: int, device: torch.device) -> Tensor:
    """(B, 3, S, S) in [-1, 1]: the sample face aligned at S, repeated B times."""
    crop = torch.from_numpy(scene.alignment(size).crop).permute(2, 0, 1).float() / 127.5 - 1
    return crop[None].repeat(batch, 1, 1, 1).to(device)


def conditions(batch: int, dim: int, device: torch.device, seed: int = 0) -> Tensor:
    """(B, C) slider-like mixtures of two expressions."""
    gen = torch.Generator().manual_seed(seed)
    out = torch.zeros(batch, dim)
    for i in range(batch):
        picks = torch.randperm(len(EXPRESSIONS), generator=gen)[:2]
        out[i, picks] = torch.rand(2, generator=gen)
    return out.to(device)
