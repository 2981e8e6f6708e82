"""The undo history is bounded: every drag is a command, and the window may run for hours."""

from __future__ import annotations

import gc

from PySide6.QtWidgets import QWidget

from faceedit.ui.edit_history import UNDO_LIMIT, EditHistory, EditState


def test_the_history_keeps_the_newest_commands_up_to_its_limit(qapp) -> None:  # type: ignore[no-untyped-def]
    owner = QWidget()
    value = {"happy": 0.0}

    def capture() -> EditState:
        return EditState(whole=(("happy", value["happy"]),))

    history = EditHistory(capture, lambda state: None, owner)
    for step in range(1, UNDO_LIMIT + 51):
        value["happy"] = step / 1000
        assert history.record(f"Change happy {step}")
    assert history.stack.count() == UNDO_LIMIT
    assert history.stack.text(history.stack.count() - 1) == f"Change happy {UNDO_LIMIT + 50}"
    assert history.stack.text(0) == "Change happy 51"


def _history(owner: QWidget) -> tuple[EditHistory, dict[str, float]]:
    value = {"happy": 0.0}
    history = EditHistory(
        lambda: EditState(whole=(("happy", value["happy"]),)), lambda state: None, owner
    )
    return history, value


def test_a_drag_is_one_command_and_leaves_no_command_objects_behind(qapp) -> None:  # type: ignore[no-untyped-def]
    # PySide never freed the commands QUndoStack merged away: every drag leaked its states.
    owner = QWidget()
    history, value = _history(owner)
    for step in range(1, 101):
        value["happy"] = step / 100
        history.record("Change happy", merge_key=("happy", 1))
    gc.collect()
    alive = [o for o in gc.get_objects() if type(o).__name__ == "_SetState"]
    assert history.stack.count() == 1 and len(alive) == 1
    assert alive[0].after == EditState(whole=(("happy", 1.0),))


def test_dragging_back_to_the_start_leaves_no_step_to_undo_or_redo(qapp) -> None:  # type: ignore[no-untyped-def]
    owner = QWidget()
    history, value = _history(owner)
    value["happy"] = 0.5
    history.record("Change happy", merge_key=("happy", 1))
    value["happy"] = 0.0
    history.record("Change happy", merge_key=("happy", 1))
    assert history.stack.count() == 0 and not history.stack.canRedo()


def test_a_gesture_after_a_save_starts_a_new_command(qapp) -> None:  # type: ignore[no-untyped-def]
    owner = QWidget()
    history, value = _history(owner)
    value["happy"] = 0.5
    history.record("Change happy", merge_key=("happy", 1))
    history.stack.setClean()
    value["happy"] = 0.7
    history.record("Change happy", merge_key=("happy", 1))
    assert history.stack.count() == 2 and not history.stack.isClean()
