"""faceedit's exceptions: each says what went wrong, with which file, and what to do next."""

from __future__ import annotations


class FaceEditError(Exception):
    """Base of every error faceedit reports to a user (caught by the CLI and the app)."""


class InputError(FaceEditError):
    """An image, video or camera that cannot be used (missing, corrupt, odd format)."""


class CheckpointError(FaceEditError):
    """A model file that is not a faceedit checkpoint, is damaged, or does not fit its config."""


class DatasetError(FaceEditError):
    """A dataset root that holds no usable sample, or is laid out differently than expected."""


class ConfigError(FaceEditError, ValueError):
    """A configuration value that is out of range or inconsistent with another one."""


class NoFaceError(InputError):
    """An image in which the detector found no face."""


class TrainingError(FaceEditError):
    """A training run that cannot go on (a non-finite loss, a resume that does not match)."""


class OutputError(FaceEditError, OSError):
    """An output path faceedit cannot write (read-only, a folder, a pseudo-filesystem, ...).

    Also an OSError, so code that guarded a write with `except OSError` still catches it.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
