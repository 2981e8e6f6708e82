"""What the stage and stage-command tests share: fixture datasets, `faceedit-train` called
in-process, and two short runs (parser, then gan) that later tests start from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from tests.trainer.fixtures import AffectNetRow, write_affectnet, write_celebamask_hq, write_rafd
from trainer.commands.cli import main

# Tiny model, 32 px, batches of 4, no worker processes, every step logged.
FAST = ["--preset", "tiny", "--batch-size", "4", "--num-workers", "0", "--log-every", "1"]


def write_datasets(root: Path) -> dict[str, Path]:
    """CelebAMask-HQ (about 32 training faces), RaFD (64 images) and AffectNet (40 rows, some
    without valence/arousal) in their real layouts."""
    paths = {"celeb": root / "celebamask", "rafd": root / "rafd", "affectnet": root / "affectnet"}
    write_celebamask_hq(paths["celeb"], range(40))
    write_rafd(paths["rafd"], subjects=range(1, 9), emotions=("happy", "angry", "sad", "neutral"))
    rows = [
        AffectNetRow(
            path=f"{i % 3}/face{i}.jpg",
            expression=i % 8,
            valence=-2.0 if i % 4 == 0 else 0.3,
            arousal=-2.0 if i % 4 == 0 else -0.2,
        )
        for i in range(40)
    ]
    write_affectnet(paths["affectnet"], rows)
    return paths


def train(*argv: str | Path) -> int:
    return main([str(a) for a in argv])


def load_state(run: Path) -> dict[str, Any]:
    return torch.load(run / "state.pt", weights_only=True)


def random_crop(size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def make_runs(root: Path) -> dict[str, Path]:
    """Datasets, a 2-step parser run and a 2-step gan run on AffectNet, under `root`."""
    paths = write_datasets(root / "data")
    paths["parser_run"], paths["gan_run"] = root / "p1", root / "g1"
    assert (
        train(
            "parser",
            "--celebamask-hq",
            paths["celeb"],
            *FAST,
            "--steps",
            2,
            "--out",
            paths["parser_run"],
        )
        == 0
    )
    assert (
        train(
            "gan",
            "--affectnet",
            paths["affectnet"],
            "--parser",
            paths["parser_run"] / "parser.safetensors",
            *FAST,
            "--steps",
            2,
            "--set",
            "gan_optim.n_critic=1",
            "--out",
            paths["gan_run"],
        )
        == 0
    )
    return paths
