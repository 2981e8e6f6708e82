"""Undo and redo of the edit settings: a bounded list of (before, after) snapshots, without Qt.

A slider drag merges into one step until the handle is let go, so undo steps back a gesture,
not a pixel; a drag back to where it began leaves no step. A step at the saved point is never
merged into, so the first gesture after a save is a step of its own. The oldest steps go
beyond UNDO_LIMIT: every drag is a step, and the window may run for hours (scripts/soak.py).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

UNDO_LIMIT: Final[int] = 200

S = TypeVar("S")


@dataclass
class Step(Generic[S]):
    """One undoable change: the settings before and after it, and what the Edit menu calls it."""

    text: str
    before: S
    after: S
    merge_key: Hashable | None = None


class History(Generic[S]):
    """The steps of one document; `index` steps are done, the rest can be redone."""

    def __init__(self, limit: int = UNDO_LIMIT) -> None:
        self.limit = limit
        self.steps: list[Step[S]] = []
        self.index = 0
        self.clean_index: int | None = 0  # None: the saved point was dropped or redone away

    def record(self, before: S, after: S, text: str, merge_key: Hashable | None = None) -> None:
        """Add a step (dropping what could be redone), or continue the newest step's gesture."""
        top = self._step_to_merge(merge_key)
        if top is not None:
            top.after = after
            if after == top.before:  # dragged back to where the gesture began: no step at all
                self.steps.pop()
                self.index -= 1
            return
        del self.steps[self.index :]
        if self.clean_index is not None and self.clean_index > self.index:
            self.clean_index = None
        self.steps.append(Step(text, before, after, merge_key))
        self.index += 1
        if len(self.steps) > self.limit:
            drop = len(self.steps) - self.limit
            del self.steps[:drop]
            self.index -= drop
            if self.clean_index is not None:
                self.clean_index = self.clean_index - drop if self.clean_index >= drop else None

    def _step_to_merge(self, merge_key: Hashable | None) -> Step[S] | None:
        if merge_key is None or self.index == 0 or self.index != len(self.steps):
            return None
        if self.index == self.clean_index:
            return None
        top = self.steps[-1]
        return top if top.merge_key == merge_key else None

    def undo(self) -> S | None:
        """The settings before the newest done step (None: nothing to undo)."""
        if not self.can_undo:
            return None
        self.index -= 1
        return self.steps[self.index].before

    def redo(self) -> S | None:
        if not self.can_redo:
            return None
        self.index += 1
        return self.steps[self.index - 1].after

    def set_clean(self) -> None:
        self.clean_index = self.index

    @property
    def can_undo(self) -> bool:
        return self.index > 0

    @property
    def can_redo(self) -> bool:
        return self.index < len(self.steps)

    @property
    def undo_text(self) -> str:
        return self.steps[self.index - 1].text if self.can_undo else ""

    @property
    def redo_text(self) -> str:
        return self.steps[self.index].text if self.can_redo else ""

    def __len__(self) -> int:
        return len(self.steps)
