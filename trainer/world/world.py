"""Orchestration: identities, their splits, what is rendered for whom, and the manifest.

Every identity is rendered in all eight expressions at intensity 1 (AffectNet layout, and the
pairs that are an edit's ground truth) and `celeba_per_identity` times in a random expression and
intensity (CelebAMask-HQ layout). Identities are split 80/10/10 into train/val/test, and both
layouts follow that split. The world is built in a staging folder beside DIR and renamed into
place at the end, so DIR is either absent, or complete.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

import numpy as np

from faceedit.errors import ConfigError, DatasetError
from faceedit.vocab.expressions import EXPRESSIONS
from faceedit.vocab.labels import CLASS_NAMES
from trainer.world.actions import ACTION_UNITS, PROTOTYPES, action_units, valence_arousal
from trainer.world.identity import Identity, sample_identity
from trainer.world.layouts import AffectNetWriter, CelebAMaskWriter, csv_text, encode_png
from trainer.world.render import IdentityRenderer, Rendering

VERSION: Final[int] = 1
CELEBAMASK_DIR: Final[str] = "celebamask-hq"
AFFECTNET_DIR: Final[str] = "affectnet"
PAIRS_FILE: Final[str] = "pairs.csv"
MANIFEST_FILE: Final[str] = "world.json"
PAIRS_LABELS_DIR: Final[str] = "pairs-labels"
# The first five are the contract; `labels` (the image's class map, a PNG of class indices 0..18
# relative to DIR) comes last so readers by column name or position are unaffected.
PAIRS_COLUMNS: Final[tuple[str, ...]] = (
    "identity",
    "split",
    "expression",
    "intensity",
    "image",
    "labels",
)
SPLIT_SHARES: Final[tuple[float, float]] = (0.1, 0.1)  # val, test; the rest is train
MIN_COUNT: Final[int] = 3
MIN_SIZE: Final[int] = 32
# Stream tags keep the identity, split and per-rendering draws independent of one another.
_LOOK, _RENDERING, _SPLIT = 0, 1, 2

CLASS_MEANINGS: Final[dict[str, str]] = {
    "background": "gradient and clutter shapes behind the person",
    "skin": "face skin (forehead to chin), including cheek shading",
    "l_brow": "image-left eyebrow",
    "r_brow": "image-right eyebrow",
    "l_eye": "image-left eye between the lids (sclera, iris, pupil)",
    "r_eye": "image-right eye between the lids",
    "eye_g": "glasses frames, bridge and temples (lenses are see-through)",
    "l_ear": "image-left ear",
    "r_ear": "image-right ear",
    "ear_r": "earring",
    "nose": "nose bridge and base (nostrils included)",
    "mouth": "the open mouth's inside, teeth included",
    "u_lip": "upper lip",
    "l_lip": "lower lip",
    "neck": "neck",
    "neck_l": "necklace",
    "cloth": "clothes on the shoulders",
    "hair": "hair (cap, fringe, long locks over the neck, bald sides)",
    "hat": "hat crown and brim",
}


@dataclass(frozen=True)
class WorldConfig:
    """count identities rendered at size x size px from `seed`."""

    count: int = 1000
    size: int = 128
    seed: int = 0
    celeba_per_identity: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.count, int) or self.count < MIN_COUNT:
            raise ConfigError(
                f"--count must be an integer >= {MIN_COUNT} (identities), got {self.count!r}"
            )
        if not isinstance(self.size, int) or self.size < MIN_SIZE:
            raise ConfigError(f"--size must be an integer >= {MIN_SIZE} px, got {self.size!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"--seed must be a non-negative integer, got {self.seed!r}")
        if self.celeba_per_identity < 1:
            raise ConfigError(f"celeba_per_identity must be >= 1, got {self.celeba_per_identity}")


def rng_for(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def split_identities(count: int, seed: int) -> dict[str, list[int]]:
    """Identity ids of each split: a seeded 80/10/10 shuffle, at least one in val and test."""
    order = rng_for(seed, _SPLIT).permutation(count)
    n_val = max(1, round(count * SPLIT_SHARES[0]))
    n_test = max(1, round(count * SPLIT_SHARES[1]))
    return {
        "train": sorted(int(i) for i in order[n_val + n_test :]),
        "val": sorted(int(i) for i in order[:n_val]),
        "test": sorted(int(i) for i in order[n_val : n_val + n_test]),
    }


def identity_of(seed: int, index: int) -> Identity:
    return sample_identity(rng_for(seed, _LOOK, index))


def celeba_draws(seed: int, index: int, count: int) -> list[tuple[str, float]]:
    """(expression, intensity) of each CelebAMask-HQ rendering of identity `index`."""
    out = []
    for k in range(count):
        rng = rng_for(seed, _RENDERING, index, k)
        out.append((EXPRESSIONS[int(rng.integers(len(EXPRESSIONS)))], float(rng.uniform(0.0, 1.0))))
    return out


@dataclass(frozen=True)
class IdentityRenderings:
    index: int
    identity: Identity
    expressions: tuple[Rendering, ...]  # the eight, at intensity 1, in EXPRESSIONS order
    celeba: tuple[tuple[str, float, Rendering], ...]


def render_identity(config: WorldConfig, index: int) -> IdentityRenderings:
    """All renderings of identity `index`."""
    identity = identity_of(config.seed, index)
    renderer = IdentityRenderer(identity, config.size)
    expressions = tuple(renderer.render(action_units(e, 1.0)) for e in EXPRESSIONS)
    celeba = tuple(
        (e, i, renderer.render(action_units(e, i)))
        for e, i in celeba_draws(config.seed, index, config.celeba_per_identity)
    )
    return IdentityRenderings(index, identity, expressions, celeba)


def iterate_world(config: WorldConfig) -> Iterator[IdentityRenderings]:
    for index in range(config.count):
        yield render_identity(config, index)


def check_output(out: Path) -> None:
    """Refuse an existing, non-empty DIR (or a file in its place)."""
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out} exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()):
        raise DatasetError(f"{out} exists and is not empty; choose a new --out or empty it first")


def is_world_data(path: str | os.PathLike[str]) -> bool:
    """Whether `path` lies in a world made by `faceedit-train synth` (its world.json above it)."""
    folder = Path(path).expanduser().resolve()
    return any((parent / MANIFEST_FILE).is_file() for parent in (folder, *folder.parents))


def build_world(
    config: WorldConfig,
    out: str | os.PathLike[str],
    progress: Callable[[int, int, float], None] | None = None,
) -> dict[str, object]:
    """Render the world into `out` and return its manifest (also written to world.json).

    `progress(done_identities, total, faces_per_second)` is called after each identity.
    """
    out = Path(out)
    check_output(out)
    splits = split_identities(config.count, config.seed)
    split_of = {i: name for name, ids in splits.items() for i in ids}
    CelebAMaskWriter.check_capacity(
        {name: len(ids) * config.celeba_per_identity for name, ids in splits.items()}
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        manifest = _write(config, staging, splits, split_of, progress)
        if out.is_dir():
            out.rmdir()  # empty, checked above
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _write(
    config: WorldConfig,
    root: Path,
    splits: dict[str, list[int]],
    split_of: dict[int, str],
    progress: Callable[[int, int, float], None] | None,
) -> dict[str, object]:
    celeba = CelebAMaskWriter(root / CELEBAMASK_DIR)
    affectnet = AffectNetWriter(root / AFFECTNET_DIR)
    pairs: list[tuple[object, ...]] = []
    started = time.perf_counter()
    faces = 0
    per_identity = config.celeba_per_identity
    for done, item in enumerate(iterate_world(config), start=1):
        split = split_of[item.index]
        folder = item.index * len(EXPRESSIONS) // 1000
        labels_dir = root / PAIRS_LABELS_DIR / str(folder)
        labels_dir.mkdir(parents=True, exist_ok=True)
        for code, (expression, rendering) in enumerate(
            zip(EXPRESSIONS, item.expressions, strict=True)
        ):
            name = f"{item.index:06d}_{expression}"
            path = affectnet.write(
                name=name,
                split=split,
                image=rendering.image,
                landmarks=rendering.landmarks,
                code=code,  # AffectNet codes 0..7 are EXPRESSIONS' order
                valence_arousal=valence_arousal(expression, 1.0),
                folder=folder,
            )
            (labels_dir / f"{name}.png").write_bytes(encode_png(rendering.labels))
            labels = f"{PAIRS_LABELS_DIR}/{folder}/{name}.png"
            pairs.append((item.index, split, expression, "1.0", f"{AFFECTNET_DIR}/{path}", labels))
        for k, (_, _, rendering) in enumerate(item.celeba):
            celeba.write(item.index * per_identity + k, split, rendering.image, rendering.labels)
        faces += len(item.expressions) + len(item.celeba)
        if progress is not None:
            progress(done, config.count, faces / max(time.perf_counter() - started, 1e-9))
    celeba.finish()
    affectnet.finish()
    (root / PAIRS_FILE).write_text(csv_text(PAIRS_COLUMNS, pairs), encoding="utf-8")
    manifest = _manifest(config, splits)
    (root / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def _manifest(config: WorldConfig, splits: dict[str, list[int]]) -> dict[str, object]:
    per = config.celeba_per_identity
    return {
        "version": VERSION,
        "generator": "faceedit-train synth",
        "config": asdict(config),
        "seed": config.seed,
        "size": config.size,
        "counts": {
            "identities": {k: len(v) for k, v in splits.items()},
            "celebamask_images": {k: len(v) * per for k, v in splits.items()},
            "affectnet_images": {k: len(v) * len(EXPRESSIONS) for k, v in splits.items()},
            "pairs": config.count * len(EXPRESSIONS),
        },
        "splits": splits,
        "layout": {
            "celebamask-hq": f"{CELEBAMASK_DIR}/: image id = identity * {per} + k (k < {per}); "
            "a random expression at a random intensity in [0, 1]",
            "affectnet": f"{AFFECTNET_DIR}/: every identity in all 8 expressions at intensity 1; "
            "training.csv = train identities, validation.csv = val and test identities",
            "pairs": f"{PAIRS_FILE}: {', '.join(PAIRS_COLUMNS)}; paths relative to this folder; "
            "labels: PNG of class indices (0..18, faceedit.vocab.labels order) of the image",
            "landmarks": "68 iBUG points in pixel coordinates (pixel centres at integers)",
            "sides": "l_* classes are the parts on the image's left",
        },
        "classes": {name: CLASS_MEANINGS[name] for name in CLASS_NAMES},
        "expressions": {
            name: {
                "affectnet_code": code,
                "action_units": PROTOTYPES[name],
                "valence_arousal_at_intensity_1": list(valence_arousal(name, 1.0)),
            }
            for code, name in enumerate(EXPRESSIONS)
        },
        "action_units": ACTION_UNITS,
        "unilateral": "a unit suffixed U acts on the identity's dominant side only",
    }
