from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from faceedit import fileio
from faceedit.errors import OutputError
from faceedit.fileio import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    check_output_file,
    check_output_folder,
    make_folder,
)


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


# ---------------------------------------------------------------- the output path policy


def test_write_failures_are_output_errors_naming_path_and_reason(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    with pytest.raises(OutputError, match=r"blocker/x.txt: cannot be written: "):
        atomic_write_text(blocker / "x.txt", "x")
    folder = tmp_path / "taken.txt"
    folder.mkdir()
    with pytest.raises(
        OutputError, match=r"taken\.txt: cannot be written: it is an existing folder"
    ):
        atomic_write_text(folder, "x")
    assert isinstance(OutputError("x"), OSError), "old `except OSError` guards still catch it"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "taken.txt"]


def test_an_os_error_inside_the_write_removes_the_temporary_file(tmp_path: Path) -> None:
    with (
        pytest.raises(OutputError, match=r"a.bin: cannot be written: no space left"),
        atomic_path(tmp_path / "a.bin") as tmp,
    ):
        tmp.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root / "blocker" / "deeper" / "x.png", "blocker is a file, not a folder"),
        (lambda root: root / "folder.png", "is an existing folder, not a file"),
        (lambda root: Path("/proc/self/faceedit.png"), "pseudo-filesystem (proc)"),
        (lambda root: Path("/sys/faceedit.png"), "pseudo-filesystem (sysfs)"),
        (lambda root: root / "..", "is not a file name"),
    ],
)
def test_check_output_file_refuses_with_the_reason(
    make: Callable[[Path], Path], message: str, tmp_path: Path
) -> None:
    (tmp_path / "blocker").write_text("a file")
    (tmp_path / "folder.png").mkdir()
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(OutputError) as info:
        check_output_file(make(tmp_path), "output")
    assert message in str(info.value) and str(info.value).startswith("output ")
    assert sorted(tmp_path.rglob("*")) == before, "the probe leaves nothing behind"


def test_check_output_file_accepts_new_nested_and_existing_files(tmp_path: Path) -> None:
    assert check_output_file(tmp_path / "new" / "deep" / "x.png") == tmp_path / "new/deep/x.png"
    assert not (tmp_path / "new").exists(), "checking creates no folder"
    (tmp_path / "old.png").write_bytes(b"x")
    assert check_output_file(tmp_path / "old.png").name == "old.png"


def test_check_output_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="file: is a file, not a folder"):
        check_output_folder(tmp_path / "file", "--out")
    with pytest.raises(OutputError, match=r"cannot be created: .*file is a file"):
        make_folder(tmp_path / "file" / "run", "--out")
    assert make_folder(tmp_path / "a" / "b").is_dir()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused_up_front(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            check_output_file(locked / "x.png")
    finally:
        locked.chmod(0o755)


def test_the_probe_is_what_decides_not_the_permission_bits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root without CAP_DAC_OVERRIDE, a read-only mount, a full disk: all fail the probe."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(fileio, "_probe", refuse)
    with pytest.raises(OutputError, match=r"cannot be written in .*: the file system is read-only"):
        check_output_file(tmp_path / "x.png")


def test_filesystem_type_reads_the_mount_table() -> None:
    if not Path("/proc/self/mountinfo").exists():
        pytest.skip("no Linux mount table")
    assert fileio.filesystem_type(Path("/proc/self")) == "proc"


# ---------------------------------------------------------------- full disks


class _Usage:
    """What shutil.disk_usage returns, with `free` bytes left."""

    def __init__(self, free: int) -> None:
        self.total, self.used, self.free = 2 * free + 1, free, free


def test_a_writer_error_on_a_full_disk_becomes_a_no_space_output_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # torch.save reports ENOSPC as RuntimeError("[enforce fail at inline_container.cc] ...")
    target = tmp_path / "state.pt"
    target.write_bytes(b"previous")
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda _: _Usage(4096))
    with (
        pytest.raises(OutputError, match=r"state\.pt: cannot be written: no space left"),
        atomic_path(target) as tmp,
    ):
        tmp.write_bytes(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64")
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]


def test_a_writer_error_with_room_left_is_not_called_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda _: _Usage(10 * 2**30))
    with pytest.raises(RuntimeError, match="a bug"), atomic_path(tmp_path / "x.bin") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("a bug")
    assert list(tmp_path.iterdir()) == []


def test_require_free_space_refuses_what_cannot_fit(small_disk: Path) -> None:
    with pytest.raises(
        OutputError, match=r"big\.bin: cannot be written: no space left .*MB needed"
    ):
        fileio.require_free_space(small_disk / "big.bin", 4 * 2**20, "training state")
    fileio.require_free_space(small_disk / "small.bin", 100_000)  # fits, with the margin
