"""Atomic file writes: a crash or a kill mid-write never leaves a half-written file in place."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename.

    The temporary file lives in the same folder so `os.replace` is a rename on one file system,
    which POSIX and Windows both make atomic. On any error the temporary file is removed and
    the previous `path` (if any) is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        # mkstemp creates 0600 files; give the result the mode a plain open() would have.
        os.chmod(tmp, _final_mode(target))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _process_umask() -> int:
    # os.umask can only be read by setting it; do that once, at import, before threads start.
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


_UMASK = _process_umask()


def _final_mode(target: Path) -> int:
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


def default_file_mode(target: str | os.PathLike[str]) -> int:
    """The mode a plain open() would give a new `target` (an existing file keeps its own)."""
    return _final_mode(Path(target))
