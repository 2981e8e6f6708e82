"""Files that ship with faceedit (the sample faces, the demo model), found relative to the package.

Everything that locates the demo model goes through `demo_checkpoint_path`, so tests can point
the whole product at a stand-in by replacing that one function.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final, Literal

from faceedit.errors import InputError

ASSETS_DIR: Final[Path] = Path(__file__).resolve().parents[1] / "assets"
SAMPLE_IMAGE_NAME: Final[str] = "astronaut.png"
DEMO_CHECKPOINT_NAME: Final[str] = "demo.safetensors"
SAMPLES_DIR: Final[Path] = ASSETS_DIR / "samples"
# The word that stands for the bundled demo model wherever a checkpoint path is accepted.
DEMO_WORD: Final[str] = "demo"
# What the demo model is good for, said wherever it is in use (status bar, About dialog).
DEMO_NOTE: Final[str] = (
    "demo model, trained on procedural faces; real photos need a model trained on real data "
    "(see docs/training.md)"
)


def sample_image_path() -> Path:
    """The bundled sample face: a 512x512 RGB public-domain NASA portrait with one face.

    The app opens it when started without a file, and tests detect and align it.
    """
    path = ASSETS_DIR / SAMPLE_IMAGE_NAME
    if not path.is_file():
        raise InputError(
            f"the sample image is missing: expected {path}. It is part of the faceedit "
            "package (faceedit/assets/); reinstall faceedit, or pass your own image."
        )
    return path


def demo_checkpoint_path() -> Path:
    """The bundled demo model: a small faceedit checkpoint trained on procedural faces.

    It shows that the whole method runs end to end without any dataset; on real photos it
    does little, which the app says wherever it is loaded.
    """
    path = ASSETS_DIR / DEMO_CHECKPOINT_NAME
    if not path.is_file():
        raise InputError(
            f"the demo model is missing: expected {path}. It is part of the faceedit package "
            "(faceedit/assets/); reinstall faceedit, or pass your own checkpoint "
            "(docs/training.md says how to train one)."
        )
    return path


def demo_available() -> bool:
    """Whether the demo model is installed (the app offers it only then)."""
    try:
        demo_checkpoint_path()
    except InputError:
        return False
    return True


def procedural_samples() -> list[Path]:
    """The bundled procedural sample faces (aligned face crops the demo model was made for),
    sorted by name; empty when none are installed."""
    if not SAMPLES_DIR.is_dir():
        return []
    return sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix.lower() == ".png" and p.is_file())


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """A checkpoint argument as a path: the word `demo` is the bundled demo model.

    Used by `faceedit edit --checkpoint` and by the app's model loading alike.
    """
    if str(path).strip().lower() == DEMO_WORD:
        return demo_checkpoint_path()
    return Path(path).expanduser()


TrainingDomain = Literal["procedural", "photos"]
TRAINING_DOMAINS: Final[tuple[TrainingDomain, ...]] = ("procedural", "photos")


def training_domain(
    path: str | os.PathLike[str] | None, metadata: Mapping[str, object]
) -> TrainingDomain | None:
    """What a model was trained on: its checkpoint's `domain` (faceedit-train writes it:
    "procedural" for the world of `faceedit-train synth`, else "photos"); the bundled demo model
    predates it and is procedural. None: the checkpoint does not say."""
    domain = metadata.get("domain")
    if domain in TRAINING_DOMAINS:
        return domain
    return "procedural" if is_demo_checkpoint(path) else None


def is_procedural_sample(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is one of the bundled procedural sample faces."""
    try:
        resolved = Path(path).expanduser().resolve()
        return any(resolved == sample.resolve() for sample in procedural_samples())
    except OSError:
        return False


def is_demo_checkpoint(path: str | os.PathLike[str] | None) -> bool:
    """Whether `path` is the bundled demo model (False when there is none)."""
    if not path:
        return False
    try:
        demo = demo_checkpoint_path()
    except InputError:
        return False
    try:
        return Path(path).expanduser().resolve() == demo.resolve()
    except OSError:
        return False
