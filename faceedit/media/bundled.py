"""Files that ship with faceedit (the sample face), found relative to the package."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from faceedit.errors import InputError

ASSETS_DIR: Final[Path] = Path(__file__).resolve().parents[1] / "assets"
SAMPLE_IMAGE_NAME: Final[str] = "astronaut.png"


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
