"""Atomic file writes and the one output path policy (docs/architecture.md §7).

A crash or a kill mid-write never leaves a half-written file in place, and every writer of
images, videos, masks, checkpoints, run folders, reports and snapshots goes through here:

- `check_output_file` / `check_output_folder` look at a path before any work is done and refuse,
  naming the path and the reason, an output that is an existing folder (or file), whose parent
  is a regular file, that lies on a pseudo-filesystem (/proc, /sys, ...) or in a folder that
  cannot be written (tested by creating and removing a probe file, so it is right for root too);
- `atomic_path` turns every OSError of the write into an OutputError with the same wording and
  removes its temporary file on every failure path;
- new files get the mode a plain open() gives (0666 less the umask); replaced files keep theirs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from faceedit.errors import FaceEditError, OutputError

# File systems that hold no user files: writing there fails, or worse, does something else.
PSEUDO_FILESYSTEMS: Final[frozenset[str]] = frozenset(
    {
        "proc", "sysfs", "devpts", "devtmpfs", "cgroup", "cgroup2", "debugfs", "tracefs",
        "securityfs", "pstore", "configfs", "bpf", "fusectl", "mqueue", "binfmt_misc",
        "efivarfs", "autofs", "rpc_pipefs", "nsfs",
    }
)  # fmt: skip
_MOUNTINFO: Final[str] = "/proc/self/mountinfo"
# Less room than this beside a failed write means the write failed because the disk is full.
DISK_FULL_BYTES: Final[int] = 2**20
# How errno values read in a message: the reason, not the C name.
_REASONS: Final[dict[int, str]] = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EISDIR: "it is an existing folder, not a file",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENOENT: "a folder on the path does not exist and cannot be created",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EEXIST: "a file or folder of that name is in the way",
    errno.EFBIG: "the file is larger than this file system or the process's limit allows",
}
# The errors of a write that say what is wrong with the place, not with faceedit: a command
# reports them in one line with exit status 2 wherever they surface.
ENVIRONMENT_ERRNOS: Final[frozenset[int]] = frozenset(
    {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename.

    The temporary file lives in the same folder so `os.replace` is a rename on one file system,
    which POSIX and Windows both make atomic. On any error the temporary file is removed and
    the previous `path` (if any) is left untouched.
    """
    target = Path(path)
    try:
        if target.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
    except OSError as error:
        raise output_error(target, error) from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        # mkstemp creates 0600 files; give the result the mode a plain open() would have.
        os.chmod(tmp, final_mode(target))
        os.replace(tmp, target)
    except FaceEditError:
        tmp.unlink(missing_ok=True)
        raise
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise output_error(target, error) from None
    except Exception:
        # Writers that wrap the OS's error in their own (torch.save raises RuntimeError
        # "unexpected pos ..." when the disk fills) lose its errno: a full disk is told apart
        # by the room left beside the partial file.
        full = disk_full(target.parent)
        tmp.unlink(missing_ok=True)
        if full:
            raise output_error(target, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _process_umask() -> int:
    # os.umask can only be read by setting it; do that once, at import, before threads start.
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


_UMASK = _process_umask()


def final_mode(target: Path) -> int:
    """The existing file's mode, or 0666 less the process umask for a new file."""
    if target.exists():
        return target.stat().st_mode & 0o7777
    return 0o666 & ~_UMASK


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write `data` to `path` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 `text` to `path` atomically and return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


# ---------------------------------------------------------------------------- output path policy


def reason(error: OSError) -> str:
    """A short, plain reason for an OSError (no errno names, no traceback)."""
    if error.errno in _REASONS:
        return _REASONS[error.errno]
    return error.strerror or str(error) or type(error).__name__


def output_error(target: Path, error: OSError, what: str = "output") -> OutputError:
    """The OutputError for a failed write of `target`."""
    if isinstance(error, OutputError):
        return error
    return OutputError(f"{what} {target}: cannot be written: {reason(error)}")


def _free_bytes(folder: Path) -> int | None:
    """Bytes this user may still write where `folder` lies (or would lie); None if unknown."""
    try:
        return shutil.disk_usage(_nearest_existing(folder)).free
    except OSError:
        return None


def disk_full(folder: Path) -> bool:
    """Whether the disk holding `folder` has less than DISK_FULL_BYTES left for this user."""
    free = _free_bytes(folder)
    return free is not None and free < DISK_FULL_BYTES


def require_free_space(target: Path, needed: int, what: str = "output") -> None:
    """OutputError before a write of about `needed` bytes that the disk cannot hold."""
    free = _free_bytes(target.parent)
    if free is None:
        return  # unknown: let the write itself say
    if free < needed + DISK_FULL_BYTES:
        raise OutputError(
            f"{what} {target}: cannot be written: no space left on the device "
            f"({needed / 2**20:.1f} MB needed, {free / 2**20:.1f} MB free); free some space "
            "and run again"
        )


def free_space_text(folder: Path) -> str:
    """How much room is left where `folder` lies, for messages about incomplete writes."""
    free = _free_bytes(folder)
    if free is None:
        return "the free space on its disk is unknown"
    if free < DISK_FULL_BYTES:
        return f"only {free // 1024} KB are free on its disk (is the disk full?)"
    return f"{free / 2**30:.1f} GB are free on its disk"


def filesystem_type(path: Path) -> str | None:
    """The type of the file system `path` lies on (Linux mountinfo), or None when unknown."""
    try:
        lines = Path(_MOUNTINFO).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    resolved = str(path.resolve())
    best, kind = "", None
    for line in lines:
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5 or not right.split():
            continue
        mount = fields[4].replace("\\040", " ")
        inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, right.split()[0]
    return kind


def _nearest_existing(path: Path) -> Path:
    current = path
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def _probe(folder: Path) -> None:
    """Create and remove a file in `folder`: the one writability test that is right for root."""
    fd, name = tempfile.mkstemp(prefix=".faceedit-probe.", suffix=".tmp", dir=folder)
    os.close(fd)
    os.unlink(name)


def _check_location(target: Path, start: Path, what: str) -> None:
    """`start` (a folder that is, or will be, above the output) must be a creatable folder."""
    existing = _nearest_existing(start)
    if not existing.is_dir():
        raise OutputError(f"{what} {target}: cannot be created: {existing} is a file, not a folder")
    kind = filesystem_type(existing)
    if kind in PSEUDO_FILESYSTEMS:
        raise OutputError(
            f"{what} {target}: {existing} is on a pseudo-filesystem ({kind}) that holds no "
            "files; choose a folder on a disk"
        )
    try:
        _probe(existing)
    except OSError as error:
        raise OutputError(
            f"{what} {target}: cannot be written in {existing}: {reason(error)}"
        ) from None


def check_output_file(path: str | os.PathLike[str], what: str = "output") -> Path:
    """`path` as a Path if a file can be written there; OutputError naming path and reason.

    Nothing is created but a probe file, removed at once; missing parent folders are allowed
    (writers create them) when the nearest existing one is a writable folder.
    """
    target = Path(path).expanduser()
    if target.name in ("", ".", ".."):
        raise OutputError(f"{what} {str(path)!r}: is not a file name")
    if target.is_dir():
        raise OutputError(f"{what} {target}: is an existing folder, not a file; give a file name")
    if target.exists() and not target.is_file():
        raise OutputError(f"{what} {target}: exists and is not a regular file")
    _check_location(target, target.parent, what)
    return target


def check_output_folder(path: str | os.PathLike[str], what: str = "output folder") -> Path:
    """`path` as a Path if it is (or can be made) a writable folder; OutputError if not."""
    target = Path(path).expanduser()
    if target.exists() and not target.is_dir():
        raise OutputError(f"{what} {target}: is a file, not a folder")
    _check_location(target, target, what)
    return target


def make_folder(path: str | os.PathLike[str], what: str = "output folder") -> Path:
    """Create `path` (and its parents) after `check_output_folder`; OutputError on failure."""
    target = check_output_folder(path, what)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise output_error(target, error, what) from None
    return target
