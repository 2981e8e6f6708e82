"""Test-wide setup: offscreen Qt, one-thread deterministic CPU torch, the gpu marker's skip,
QSettings in tmp, and the tiny models every test that needs one shares."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# One intra-op thread: the tiny test networks gain nothing from a second, and on a busy machine
# two spin-waiting OpenMP threads per process tripled the suite's CPU time (4.5 vs 1.5 minutes).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any("gpu" in item.keywords for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA: torch.cuda.is_available() is False on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Every test starts from the same random state, so failures reproduce."""
    import numpy as np
    import torch

    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(autouse=True)
def _isolated_settings(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QSettings and other per-user state go to a temporary folder, never the user's home."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("FACEEDIT_SETTINGS_DIR", str(home / "settings"))
    # The app compiles its networks in the background by default (tens of seconds of both
    # cores); tests that are not about compilation start with it off, as a user could set it.
    (home / "settings").mkdir()
    (home / "settings" / "faceedit.ini").write_text("[performance]\ncompile=false\n")


# ---- shared tiny models ------------------------------------------------------------------------
# Building a checkpoint means training a tiny model for a few steps; every test that only needs
# "a model" shares these, built once per session. They are read-only: a test that needs to
# change a checkpoint copies it first.


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny preset's parser, generator and discriminator after three training steps."""
    from tests.factories import make_checkpoint

    path = make_checkpoint(tmp_path_factory.mktemp("tiny-model") / "tiny.safetensors")
    path.chmod(0o444)
    return path


@pytest.fixture(scope="session")
def tiny_parser(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint that holds only the tiny preset's parser (one training step)."""
    from tests.factories import make_checkpoint

    folder = tmp_path_factory.mktemp("tiny-parser")
    path = make_checkpoint(folder / "parser.safetensors", parts=("parser",), steps=1)
    path.chmod(0o444)
    return path


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a 2 MB tmpfs: writes there really run out of space (root only)."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"cannot mount a small tmpfs here (needs root): {mounted.stderr.decode()[:200]}"
        )
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
