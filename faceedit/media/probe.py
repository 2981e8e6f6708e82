"""A cheap check that a file can be opened, before the app asks about the picture it replaces."""

from __future__ import annotations

import os

from PIL import Image, UnidentifiedImageError

from faceedit.errors import InputError
from faceedit.media.sources import (
    _PILLOW_FORMATS,
    _SUPPORTED_IMAGES,
    IMAGE_EXTENSIONS,
    _existing_file,
)


def probe(source: str | os.PathLike[str]) -> None:
    """Raise InputError, as opening would, for a file that plainly cannot be opened: missing,
    empty, a folder, unreadable, or an image whose header no supported format recognises.

    Cheap (a header read, no decoding), so the app can check a file before it asks whether to
    save the picture it would replace. A file that passes may still fail to decode in full.
    """
    path = _existing_file(source, what="image or video")
    try:
        with path.open("rb"):
            pass
    except PermissionError:
        raise InputError(
            f"{path}: permission denied; check that your user may read this file"
        ) from None
    except OSError as error:
        raise InputError(f"{path}: the file cannot be read ({error.strerror})") from None
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        return  # a video: its container is checked when it opens
    try:
        with Image.open(path) as opened:
            known = opened.format in _PILLOW_FORMATS
            found = opened.format
    except UnidentifiedImageError:
        raise InputError(
            f"{path}: not an image faceedit can read (the content is not {_SUPPORTED_IMAGES}, "
            "whatever the file name says); re-export it from an image editor"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise InputError(
            f"{path}: the image is damaged or truncated and cannot be decoded ({error}); "
            "re-download or re-export it"
        ) from None
    if not known:
        raise InputError(
            f"{path}: {found} images are not supported; convert it to {_SUPPORTED_IMAGES}"
        )
