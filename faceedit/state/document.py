"""The open document: the source, its edit settings, its undo history, whether it is modified,
and which results may be shown (docs/architecture.md §3, App state). No Qt: the window observes
it, so what the title, the prompts and the Edit menu say is one object's facts, tested without a
display.

The rules it keeps:
- An undo step is a change of the edited picture. Choosing a face or locking regions while no
  edit is asked for changes no pixel: the setting is taken, but it is no step and no edit.
- Modified means the edited picture differs from what was last saved of this source (the
  input itself, until the first save or recording). A new source therefore starts modified
  when the controls it inherits edit it, and unmodified when they do not.
- Every source has its own history: opening one starts an empty one, so undo never reaches
  into the file opened before.
- Reset to input clears every edit: sliders, region targets and valence/arousal steering.
- A source replaces the document only once it has opened: a file that fails to open leaves the
  document, its edits and their history as they were.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import Final

from faceedit.state.history import History

NO_MODEL_SCORES: Final[str] = "Expression scores appear once a model is loaded."
NO_CLASSIFIER: Final[str] = (
    "Expression scores need a checkpoint with a discriminator (its classification head)."
)
NO_SOURCE_SCORES: Final[str] = "Expression scores appear once a picture is open."
NO_FACE_SCORES: Final[str] = "No expression scores: no face was found."
WAITING_SCORES: Final[str] = "Expression scores appear with the next computed picture."


@dataclass(frozen=True)
class EditState:
    """Every edit setting of the window, hashable and comparable."""

    whole: tuple[tuple[str, float], ...] = ()  # non-zero whole-face weights
    own: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()  # region -> its own weights
    editable: tuple[str, ...] | None = None  # None: every region may change
    valence_arousal: tuple[float, float] | None = None
    face_index: int | None = None
    all_faces: bool = False

    @property
    def edits(self) -> bool:
        """Whether these settings change the picture at all (EditRequest.is_identity's rule)."""
        weights = any(w > 0 for _, w in self.whole) or any(
            w > 0 for _, region in self.own for _, w in region
        )
        return weights or self.valence_arousal is not None

    def look(self) -> tuple[object, ...]:
        """What decides the edited picture: equal looks are equal pictures."""
        if not self.edits:
            return ()
        return (
            self.whole,
            self.own,
            self.editable,
            self.valence_arousal,
            self.face_index,
            self.all_faces,
        )

    def reset(self) -> EditState:
        """The input's own look: no weights, no region targets, no valence/arousal."""
        return replace(self, whole=(), own=(), valence_arousal=None)


class Event:
    """A list of callbacks without arguments (the window's observers)."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] = []

    def connect(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def emit(self) -> None:
        for callback in list(self._callbacks):
            callback()


@dataclass
class DocumentEvents:
    """controls: the settings changed from outside the controls (undo, Reset, a face chosen),
    so the panels must show them. state: the history, the modified flag or the source changed."""

    controls: Event = field(default_factory=Event)
    state: Event = field(default_factory=Event)


class Document:
    """The open source and its edit; the window shows it and forwards every user action to it."""

    def __init__(self, controls: EditState | None = None) -> None:
        self.events = DocumentEvents()
        self.controls = controls or EditState()
        self.history: History[EditState] = History()
        self.source_name: str | None = None  # None: nothing open
        self.source_is_video = False
        self._saved_look: tuple[object, ...] = ()
        # Results are shown only from the source whose serial this is; None while one opens.
        self.shown_serial: int | None = 0
        self.request_id = 0
        self.settled_request_id = 0  # the first request sent with the current model's settings

    # ---- what the window shows -------------------------------------------------------------------

    @property
    def modified(self) -> bool:
        """Whether the edited picture differs from what was last saved of this source."""
        return self.source_name is not None and self.controls.look() != self._saved_look

    @property
    def title(self) -> str:
        """The window title, with Qt's [*] where the modified marker goes."""
        return f"{self.source_name}[*] - faceedit" if self.source_name else "faceedit[*]"

    @property
    def undo_text(self) -> str:
        return self.history.undo_text

    @property
    def redo_text(self) -> str:
        return self.history.redo_text

    # ---- edits --------------------------------------------------------------------------------

    def edit(self, state: EditState, text: str, merge_key: Hashable | None = None) -> bool:
        """The controls now hold `state`: one undo step when the picture changes (False: none)."""
        if state == self.controls:
            return False
        before, self.controls = self.controls, state
        if before.look() == state.look():
            self.events.state.emit()
            return False  # a setting that changes no pixel: taken, but no step, no edit
        self.history.record(before, state, text, merge_key)
        self.events.state.emit()
        return True

    def _set(self, state: EditState, text: str) -> bool:
        """A change made here rather than by the controls: they are told to show it."""
        stepped = self.edit(state, text)
        self.events.controls.emit()
        return stepped

    def reset(self) -> bool:
        """Back to the input's own look, valence/arousal steering included: one step."""
        return self._set(self.controls.reset(), "Reset to input")

    def choose_face(self, index: int) -> bool:
        """Edit face `index` only (a click on the picture)."""
        return self._set(
            replace(self.controls, face_index=index, all_faces=False), f"Choose face {index + 1}"
        )

    def stop_steering(self) -> bool:
        """The valence/arousal panel was closed: what is not shown does not steer."""
        if self.controls.valence_arousal is None:
            return False
        return self._set(
            replace(self.controls, valence_arousal=None), "Stop steering valence and arousal"
        )

    def rebase(self, state: EditState) -> None:
        """Take `state` without a step (a new model has other regions)."""
        self.controls = state
        self.events.state.emit()

    def forget_history(self) -> None:
        """Start the history here (the command line's settings are where editing starts)."""
        self.history = History()
        self.events.state.emit()

    def undo(self) -> bool:
        return self._go(self.history.undo())

    def redo(self) -> bool:
        return self._go(self.history.redo())

    def _go(self, state: EditState | None) -> bool:
        if state is None:
            return False
        self.controls = state
        self.events.controls.emit()
        self.events.state.emit()
        return True

    # ---- sources and saving ------------------------------------------------------------------------

    def begin_opening(self) -> None:
        """A source was asked for: no result may be shown until it has opened or failed."""
        self.shown_serial = None

    def source_opened(self, name: str, serial: int, is_video: bool = False) -> None:
        """The new source replaces the document: its own history, nothing saved of it yet."""
        self.source_name = name
        self.source_is_video = is_video
        self.shown_serial = serial
        self.controls = replace(self.controls, face_index=None)  # another picture's faces
        self.history = History()
        self._saved_look = ()
        self.events.state.emit()

    def source_failed(self, previous_serial: int | None) -> None:
        """The source did not open: the document shows the one it had, unchanged."""
        self.shown_serial = 0 if previous_serial is None else previous_serial

    def shows(self, serial: int | None) -> bool:
        """Whether a result computed on source `serial` (None: no source) may be shown now."""
        return self.shown_serial is not None and serial in (None, self.shown_serial)

    def mark_saved(self) -> None:
        """The edited picture (or the edited stream, recorded) is on disk."""
        self._saved_look = self.controls.look()
        self.history.set_clean()
        self.events.state.emit()


def scores_note(
    model_can_score: bool | None, source_open: bool, face_found: bool | None
) -> str | None:
    """Why the score chart is empty (None: it is not, or will not be for a reason worth saying).

    model_can_score: None while no model is loaded. face_found: None until the first result.
    """
    if model_can_score is None:
        return NO_MODEL_SCORES
    if not model_can_score:
        return NO_CLASSIFIER
    if not source_open:
        return NO_SOURCE_SCORES
    if face_found is False:
        return NO_FACE_SCORES
    return WAITING_SCORES
