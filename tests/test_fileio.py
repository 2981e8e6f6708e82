from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from faceedit.fileio import atomic_path, atomic_write_bytes, atomic_write_text


def test_writes_replace_in_one_step(tmp_path: Path) -> None:
    target = atomic_write_text(tmp_path / "sub" / "a.txt", "first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = atomic_write_text(tmp_path / "a.txt", "precious")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_new_files_get_the_usual_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    made = atomic_write_text(tmp_path / "new.txt", "x")
    assert stat.S_IMODE(made.stat().st_mode) == 0o666 & ~umask
    existing = tmp_path / "kept.txt"
    existing.write_text("old")
    existing.chmod(0o640)
    atomic_write_text(existing, "new")
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640
