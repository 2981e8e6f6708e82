"""Undo and redo of the edit settings (docs/architecture.md §3, App state): one QUndoStack of snapshots.

Every change of the controls that shape the edit (expression sliders, per-region targets,
region lock, valence/arousal, face choice) becomes one command holding the settings before and
after. A slider drag merges into one command until the handle is let go, so undo steps back a
gesture, not a pixel. Applying a snapshot sets the panels without recording, then recomputes.
The stack's clean state is "nothing edited since the last save or the last opened picture".
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from PySide6.QtGui import QUndoCommand, QUndoStack
from PySide6.QtWidgets import QWidget


@dataclass(frozen=True)
class EditState:
    """Every edit setting of the window, hashable and comparable."""

    whole: tuple[tuple[str, float], ...] = ()  # non-zero whole-face weights
    own: tuple[tuple[str, tuple[tuple[str, float], ...]], ...] = ()  # region -> its own weights
    editable: tuple[str, ...] | None = None  # None: every region may change
    valence_arousal: tuple[float, float] | None = None
    face_index: int | None = None
    all_faces: bool = False


class _SetState(QUndoCommand):
    def __init__(
        self,
        history: EditHistory,
        before: EditState,
        after: EditState,
        text: str,
        merge_key: Hashable | None,
    ) -> None:
        super().__init__(text)
        self.history, self.before, self.after, self.merge_key = history, before, after, merge_key
        self._pushed = False

    def redo(self) -> None:
        if self._pushed:  # the first redo is the push: the controls already show `after`
            self.history.apply(self.after)
        self._pushed = True

    def undo(self) -> None:
        self.history.apply(self.before)


UNDO_LIMIT: Final[int] = 200


class EditHistory:
    """Records edit-setting changes on an undo stack; `capture` reads and `restore` sets them."""

    def __init__(
        self,
        capture: Callable[[], EditState],
        restore: Callable[[EditState], None],
        parent: QWidget,
    ) -> None:
        self.stack = QUndoStack(parent)
        # A bounded history: every slider drag is a command, so an unbounded stack grows for
        # as long as the window is used (scripts/soak.py measures the app's steady state).
        self.stack.setUndoLimit(UNDO_LIMIT)
        self._capture, self._restore = capture, restore
        self._current = capture()
        self._quiet = 0  # > 0 while applying a snapshot or inside a batch

    @property
    def current(self) -> EditState:
        return self._current

    def record(self, text: str, merge_key: Hashable | None = None) -> bool:
        """Push the change since the last record as one command; False when nothing changed."""
        if self._quiet:
            return False
        after = self._capture()
        if after == self._current:
            return False
        before, self._current = self._current, after
        top = self._command_to_merge(merge_key)
        if top is not None:
            top.after = after
            if after == top.before:  # dragged back to where the gesture began: no step at all
                top.setObsolete(True)
                self.stack.undo()  # Qt deletes an obsolete command when it is undone
            return True
        self.stack.push(_SetState(self, before, after, text, merge_key))
        return True

    def _command_to_merge(self, merge_key: Hashable | None) -> _SetState | None:
        """The newest command, when `merge_key` continues its gesture and it may still change.

        Merged here rather than by QUndoStack's mergeWith: PySide never frees the Python
        command that Qt merges away and deletes, so every slider drag leaked its states
        (scripts/soak.py). As in Qt, a command at the clean state is never merged into.
        """
        stack = self.stack
        if merge_key is None or stack.index() != stack.count() or stack.index() == 0:
            return None
        if stack.index() == stack.cleanIndex():
            return None
        top = stack.command(stack.index() - 1)
        if isinstance(top, _SetState) and top.merge_key == merge_key:
            return top
        return None

    @contextmanager
    def batch(self, text: str) -> Iterator[None]:
        """Several control changes recorded as one command (Reset, the command line's options)."""
        self._quiet += 1
        try:
            yield
        finally:
            self._quiet -= 1
        self.record(text)

    def rebase(self) -> None:
        """Take the controls as they are now without a command (a model changed the regions)."""
        self._current = self._capture()

    def apply(self, state: EditState) -> None:
        """Set the controls to `state` without recording it (undo, redo)."""
        self._quiet += 1
        try:
            self._restore(state)
        finally:
            self._quiet -= 1
        self._current = self._capture()
