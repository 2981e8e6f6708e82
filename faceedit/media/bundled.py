"""Files that ship with faceedit (the sample faces, the bundled models), found relative to the
package.

The bundled models are one table (BUNDLED_MODELS): the real-face model, the default for photos,
video and cameras, and the demo model of procedural faces. Everything that locates one goes
through `bundled_path`, so tests can point the whole product at stand-ins by replacing that one
function.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from faceedit.errors import InputError

ASSETS_DIR: Final[Path] = Path(__file__).resolve().parents[1] / "assets"
SAMPLE_IMAGE_NAME: Final[str] = "real_face.jpg"
ASTRONAUT_IMAGE_NAME: Final[str] = "astronaut.png"
SAMPLES_DIR: Final[Path] = ASSETS_DIR / "samples"

TrainingDomain = Literal["procedural", "photos"]
TRAINING_DOMAINS: Final[tuple[TrainingDomain, ...]] = ("procedural", "photos")


@dataclass(frozen=True)
class BundledModel:
    """One model that ships with faceedit, named by a word wherever a checkpoint is taken."""

    word: str
    file_name: str
    label: str  # how the status bar and messages name it: "demo model"
    summary: str  # the status bar's few words on what it is for
    note: str  # one line on what it is good for (banner, tooltip, About)
    domain: TrainingDomain  # the faces it was trained on

    @property
    def badge(self) -> str:
        """The status bar's text: "Demo model: procedural faces only"."""
        return f"{self.label[0].upper()}{self.label[1:]}: {self.summary}"


REAL_WORD: Final[str] = "real"
DEMO_WORD: Final[str] = "demo"
# In order of preference: the first one installed is the default model.
BUNDLED_MODELS: Final[dict[str, BundledModel]] = {
    REAL_WORD: BundledModel(
        REAL_WORD,
        "real.safetensors",
        "real-face model",
        "real photos, 128 px",
        "real-face model, trained on real photographs (the facial_expressions dataset) at 128 px",
        "photos",
    ),
    DEMO_WORD: BundledModel(
        DEMO_WORD,
        "demo.safetensors",
        "demo model",
        "procedural faces only",
        "demo model, trained on procedural faces only; photos need the real-face model or "
        "another trained on real data (see docs/training.md)",
        "procedural",
    ),
}


def bundled_model(word: str) -> BundledModel:
    """The table's entry for `word` (any letter case); InputError naming the words if none."""
    try:
        return BUNDLED_MODELS[word.strip().lower()]
    except KeyError:
        raise InputError(
            f"{word!r} is not a bundled model; the bundled models are {', '.join(BUNDLED_MODELS)}"
        ) from None


def bundled_path(word: str) -> Path:
    """The file of bundled model `word`: the one place that locates the bundled models.

    InputError, naming the path, when it is not installed.
    """
    model = bundled_model(word)
    path = ASSETS_DIR / model.file_name
    if not path.is_file():
        raise InputError(
            f"the {model.label} is missing: expected {path}. It is part of the faceedit package "
            "(faceedit/assets/); reinstall faceedit, or pass your own checkpoint "
            "(docs/training.md says how to train one)."
        )
    return path


def is_installed(word: str) -> bool:
    """Whether bundled model `word` is installed (the app offers it only then)."""
    try:
        bundled_path(word)
    except InputError:
        return False
    return True


def default_checkpoint() -> str | None:
    """The word of the model used when none is given: `real` when installed, else `demo`,
    else None."""
    return next((word for word in BUNDLED_MODELS if is_installed(word)), None)


def bundled_for(pictures: Iterable[str | os.PathLike[str]]) -> str | None:
    """The bundled model made for these pictures: the demo model for procedural samples only,
    else (photos, a video, a camera: no pictures) the default. None: none is installed."""
    listed = list(pictures)
    if listed and all(is_procedural_sample(p) for p in listed):
        for word, model in BUNDLED_MODELS.items():
            if model.domain == "procedural" and is_installed(word):
                return word
    return default_checkpoint()


def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """A checkpoint argument as a path: a bundled model's word (`real`, `demo`) is its file.

    Used by `faceedit edit --checkpoint` and by the app's model loading alike.
    """
    word = str(path).strip().lower()
    if word in BUNDLED_MODELS:
        return bundled_path(word)
    return Path(path).expanduser()


def bundled_word(path: str | os.PathLike[str] | None) -> str | None:
    """Which bundled model `path` is (None: none, or not a bundled model's file)."""
    if not path:
        return None
    try:
        resolved = Path(path).expanduser().resolve()
    except OSError:
        return None
    for word in BUNDLED_MODELS:
        try:
            if resolved == bundled_path(word).resolve():
                return word
        except (InputError, OSError):
            continue
    return None


def is_demo_checkpoint(path: str | os.PathLike[str] | None) -> bool:
    """Whether `path` is the bundled demo model (False when there is none)."""
    return bundled_word(path) == DEMO_WORD


def training_domain(
    path: str | os.PathLike[str] | None, metadata: Mapping[str, object]
) -> TrainingDomain | None:
    """What a model was trained on: its checkpoint's `domain` (faceedit-train writes it:
    "procedural" for the world of `faceedit-train synth`, else "photos"), else the bundled
    table's (the demo model predates the field). None: the checkpoint does not say."""
    domain = metadata.get("domain")
    if domain in TRAINING_DOMAINS:
        return domain
    word = bundled_word(path)
    return None if word is None else BUNDLED_MODELS[word].domain


def sample_image_path() -> Path:
    """The sample face the app opens on: a held-out neutral photo of the facial_expressions
    dataset (test split, so no bundled model was trained on it)."""
    return _asset(SAMPLE_IMAGE_NAME, "sample image")


def astronaut_image_path() -> Path:
    """A 512x512 RGB public-domain NASA portrait with one face: the fixed picture the benchmark
    times and the tests detect and align."""
    return _asset(ASTRONAUT_IMAGE_NAME, "astronaut portrait")


def _asset(name: str, what: str) -> Path:
    path = ASSETS_DIR / name
    if not path.is_file():
        raise InputError(
            f"the {what} is missing: expected {path}. It is part of the faceedit package "
            "(faceedit/assets/); reinstall faceedit, or pass your own image."
        )
    return path


def procedural_samples() -> list[Path]:
    """The bundled procedural sample faces (aligned face crops the demo model was made for),
    sorted by name; empty when none are installed."""
    if not SAMPLES_DIR.is_dir():
        return []
    return sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix.lower() == ".png" and p.is_file())


def is_procedural_sample(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is one of the bundled procedural sample faces."""
    try:
        resolved = Path(path).expanduser().resolve()
        return any(resolved == sample.resolve() for sample in procedural_samples())
    except OSError:
        return False
