"""Preferences that survive a restart (device, recent files, overlay, layout), kept in QSettings.

If FACEEDIT_SETTINGS_DIR is set (the tests do), everything goes to an INI file there instead of
the user's own settings, so a test run never changes what a user sees.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final, Literal, Protocol, TypeVar, get_args

from PySide6.QtCore import QByteArray, QSettings

from faceedit.device import DEVICES, DeviceChoice
from faceedit.ui.overlay import OVERLAY_MODES, OverlayMode

ChoiceT = TypeVar("ChoiceT")

ORGANIZATION: Final[str] = "faceedit"
APPLICATION: Final[str] = "faceedit"
SETTINGS_DIR_ENV: Final[str] = "FACEEDIT_SETTINGS_DIR"
MAX_RECENT: Final[int] = 10

CompareMode = Literal["side_by_side", "split"]
COMPARE_MODES: Final[tuple[CompareMode, ...]] = get_args(CompareMode)
DETECT_EVERY_CHOICES: Final[tuple[int, ...]] = (1, 3, 5, 10)
# The app offers the two precisions that make sense for a preview: "auto" (bfloat16 where the
# hardware runs it natively, else float32) and exact float32. Names as in faceedit.inference.optimize.
PrecisionChoice = Literal["auto", "float32"]
PRECISIONS: Final[tuple[PrecisionChoice, ...]] = get_args(PrecisionChoice)
# Smallest face (pixels) searched for in videos and cameras; still images always search from 20.
STREAM_MIN_FACE_CHOICES: Final[tuple[int, ...]] = (20, 40, 60, 100)


def open_settings() -> QSettings:
    """The settings store: an INI file in $FACEEDIT_SETTINGS_DIR, else the platform's default."""
    folder = os.environ.get(SETTINGS_DIR_ENV)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return QSettings(str(Path(folder) / "faceedit.ini"), QSettings.Format.IniFormat)
    return QSettings(ORGANIZATION, APPLICATION)


class SettingsStore(Protocol):
    """What Preferences needs of QSettings (ReadOnlySettings has the same)."""

    def value(self, key: str, defaultValue: Any = None) -> Any: ...  # Qt's name

    def setValue(self, key: str, value: Any) -> None: ...  # Qt's name

    def remove(self, key: str) -> None: ...

    def sync(self) -> None: ...


_REMOVED: Final = object()


class ReadOnlySettings:
    """The user's settings read as they are; changes live in memory only and are never written.

    `--snapshot` runs with this, so taking a picture of the window never changes the user's
    last checkpoint, recent files, layout or anything else.
    """

    def __init__(self, base: QSettings) -> None:
        self._base = base
        self._changes: dict[str, Any] = {}

    def value(self, key: str, defaultValue: Any = None) -> Any:  # Qt's name
        if key in self._changes:
            changed = self._changes[key]
            return defaultValue if changed is _REMOVED else changed
        return self._base.value(key, defaultValue)

    def setValue(self, key: str, value: Any) -> None:  # Qt's name
        self._changes[key] = value

    def remove(self, key: str) -> None:
        self._changes[key] = _REMOVED

    def sync(self) -> None:
        """Nothing to write: that is the point."""


class _Flag:
    """A boolean preference stored under `key`; anything unreadable reads as the default.

    An INI file gives booleans back as the strings 'true' and 'false'.
    """

    def __init__(self, key: str, default: bool) -> None:
        self.key, self.default = key, default

    def __get__(self, prefs: Preferences, owner: type | None = None) -> bool:
        value = prefs.store.value(self.key, self.default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return self.default

    def __set__(self, prefs: Preferences, value: bool) -> None:
        prefs.store.setValue(self.key, bool(value))


class _RunFlag:
    """A boolean choice kept for this run only: never read from nor written to the store."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = f"_run_{name}"

    def __get__(self, prefs: Preferences, owner: type | None = None) -> bool:
        return bool(getattr(prefs, self.name, False))

    def __set__(self, prefs: Preferences, value: bool) -> None:
        setattr(prefs, self.name, bool(value))


class Preferences:
    """Typed access to the settings store; bad stored values fall back to the defaults."""

    def __init__(self, store: QSettings | SettingsStore | None = None) -> None:
        self.store: QSettings | SettingsStore = store if store is not None else open_settings()

    @classmethod
    def read_only(cls) -> Preferences:
        """The user's preferences, changeable for this run only (nothing is written back)."""
        return cls(ReadOnlySettings(open_settings()))

    # ---- generic helpers -----------------------------------------------------------------

    def _choice(self, key: str, choices: tuple[ChoiceT, ...], default: ChoiceT) -> ChoiceT:
        value = self.store.value(key, default)
        return next((choice for choice in choices if choice == value), default)

    def _int_choice(self, key: str, choices: tuple[int, ...], default: int) -> int:
        try:
            raw: Any = self.store.value(key, default)  # whatever the file holds
            value = int(raw)
        except (TypeError, ValueError):
            return default
        return value if value in choices else default

    def _set_choice(self, key: str, choices: tuple[object, ...], value: object) -> None:
        if value not in choices:
            name = key.rsplit("/", 1)[-1]
            raise ValueError(f"{name} must be one of {choices}, got {value!r}")
        self.store.setValue(key, value)

    def _float(self, key: str, default: float, low: float, high: float) -> float:
        try:
            raw: Any = self.store.value(key, default)  # whatever the file holds
            value = float(raw)
        except (TypeError, ValueError):
            return default
        return min(max(value, low), high)

    def _paths(self, key: str) -> list[str]:
        value: Any = self.store.value(key, [])
        if isinstance(value, str):  # an INI file stores a one-item list as a plain string
            value = [value]
        return [str(v) for v in (value or []) if v]

    def _push_path(self, key: str, path: str | os.PathLike[str]) -> list[str]:
        text = str(Path(path).expanduser().resolve())
        paths = [text] + [p for p in self._paths(key) if p != text]
        paths = paths[:MAX_RECENT]
        self.store.setValue(key, paths)
        return paths

    # ---- values ----------------------------------------------------------------------------

    @property
    def device(self) -> DeviceChoice:
        return self._choice("model/device", DEVICES, "auto")

    @device.setter
    def device(self, value: DeviceChoice) -> None:
        self._set_choice("model/device", DEVICES, value)

    @property
    def last_checkpoint(self) -> str | None:
        value = self.store.value("model/last_checkpoint", "")
        return str(value) if value else None

    @last_checkpoint.setter
    def last_checkpoint(self, value: str | None) -> None:
        self.store.setValue("model/last_checkpoint", value or "")

    @property
    def detect_every(self) -> int:
        return self._int_choice("video/detect_every", DETECT_EVERY_CHOICES, 5)

    @detect_every.setter
    def detect_every(self, value: int) -> None:
        self.store.setValue("video/detect_every", int(value))

    @property
    def precision(self) -> PrecisionChoice:
        return self._choice("performance/precision", PRECISIONS, "auto")

    @precision.setter
    def precision(self, value: PrecisionChoice) -> None:
        self._set_choice("performance/precision", PRECISIONS, value)

    # Compile the networks in a background process after the first frame: for this run only
    # (the Model menu or --compile). Remembered, it restarted a 2-minute compile taking both
    # cores of a small machine at every launch and model load without asking; on a CPU it
    # gains ~10 % (docs/architecture.md §3).
    compile_networks = _RunFlag()
    # Videos: parse every frame (masks follow the mouth) or only when the detector runs.
    reparse_every_frame = _Flag("video/reparse_every_frame", default=False)
    # Every picture already is an aligned face crop: no detection, the whole image is edited.
    aligned_input = _Flag("model/aligned_input", default=False)

    @property
    def stream_min_face(self) -> int:
        return self._int_choice("video/min_face", STREAM_MIN_FACE_CHOICES, 60)

    @stream_min_face.setter
    def stream_min_face(self, value: int) -> None:
        self.store.setValue("video/min_face", int(value))

    @property
    def overlay_opacity(self) -> float:
        return self._float("overlay/opacity", 0.5, 0.0, 1.0)

    @overlay_opacity.setter
    def overlay_opacity(self, value: float) -> None:
        self.store.setValue("overlay/opacity", float(value))

    @property
    def overlay_mode(self) -> OverlayMode:
        return self._choice("overlay/mode", OVERLAY_MODES, "filled")

    @overlay_mode.setter
    def overlay_mode(self, value: OverlayMode) -> None:
        self.store.setValue("overlay/mode", value)

    @property
    def compare_mode(self) -> CompareMode:
        return self._choice("view/compare", COMPARE_MODES, "split")

    @compare_mode.setter
    def compare_mode(self, value: CompareMode) -> None:
        self.store.setValue("view/compare", value)

    @property
    def recent_files(self) -> list[str]:
        return self._paths("recent/files")

    def existing_recent_files(self) -> list[str]:
        """The recent files that still exist; deleted or moved ones leave the list."""
        return self._existing_paths("recent/files")

    @property
    def last_save_folder(self) -> str | None:
        """The folder the last save went to: save dialogs start there."""
        value = self.store.value("recent/save_folder", "")
        return str(value) if value else None

    @last_save_folder.setter
    def last_save_folder(self, value: str | None) -> None:
        self.store.setValue("recent/save_folder", value or "")

    def add_recent_file(self, path: str | os.PathLike[str]) -> list[str]:
        return self._push_path("recent/files", path)

    @property
    def recent_checkpoints(self) -> list[str]:
        return self._paths("recent/checkpoints")

    def existing_recent_checkpoints(self) -> list[str]:
        """The recent checkpoints that still exist; deleted or moved ones leave the list."""
        return self._existing_paths("recent/checkpoints")

    def _existing_paths(self, key: str) -> list[str]:
        paths = self._paths(key)
        existing = [p for p in paths if Path(p).is_file()]
        if existing != paths:
            self.store.setValue(key, existing)
        return existing

    def forget_missing_checkpoint(self) -> str | None:
        """The remembered checkpoint if its file is gone (then forgotten, with every recent
        checkpoint that is gone too), else None."""
        last = self.last_checkpoint
        if not last or Path(last).is_file():
            return None
        self.last_checkpoint = None
        self.existing_recent_checkpoints()
        return last

    def add_recent_checkpoint(self, path: str | os.PathLike[str]) -> list[str]:
        return self._push_path("recent/checkpoints", path)

    def clear_recent(self) -> None:
        self.store.remove("recent/files")
        self.store.remove("recent/checkpoints")

    # ---- window layout -----------------------------------------------------------------------

    def layout(self) -> tuple[QByteArray | None, QByteArray | None]:
        """Saved (geometry, dock state) of the main window, or None where nothing is saved."""
        geometry = self.store.value("window/geometry")
        state = self.store.value("window/state")
        return (
            geometry if isinstance(geometry, QByteArray) else None,
            state if isinstance(state, QByteArray) else None,
        )

    def save_layout(self, geometry: QByteArray, state: QByteArray) -> None:
        self.store.setValue("window/geometry", geometry)
        self.store.setValue("window/state", state)

    def sync(self) -> None:
        self.store.sync()
