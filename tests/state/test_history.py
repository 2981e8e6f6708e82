"""The undo history is bounded and a drag is one step: every drag is a step, and the window may
run for hours (these were tests/ui/test_edit_history.py's, when the history was a QUndoStack)."""

from __future__ import annotations

from faceedit.state.document import EditState
from faceedit.state.history import UNDO_LIMIT, History


def _happy(value: float) -> EditState:
    return EditState(whole=(("happy", value),))


def test_the_history_keeps_the_newest_steps_up_to_its_limit() -> None:
    history: History[EditState] = History()
    for step in range(1, UNDO_LIMIT + 51):
        history.record(_happy((step - 1) / 1000), _happy(step / 1000), f"Change happy {step}")
    assert len(history) == UNDO_LIMIT and history.index == UNDO_LIMIT
    assert history.undo_text == f"Change happy {UNDO_LIMIT + 50}"
    assert history.steps[0].text == "Change happy 51"
    assert history.clean_index is None  # the saved point (the start) was dropped


def test_a_drag_is_one_step_holding_where_it_began_and_ended() -> None:
    history: History[EditState] = History()
    for step in range(1, 101):
        history.record(_happy((step - 1) / 100), _happy(step / 100), "Change happy", ("happy", 1))
    assert len(history) == 1
    assert history.steps[0].before == _happy(0.0) and history.steps[0].after == _happy(1.0)
    assert history.undo() == _happy(0.0) and history.redo() == _happy(1.0)


def test_dragging_back_to_the_start_leaves_no_step_to_undo_or_redo() -> None:
    history: History[EditState] = History()
    history.record(_happy(0.0), _happy(0.5), "Change happy", ("happy", 1))
    history.record(_happy(0.5), _happy(0.0), "Change happy", ("happy", 1))
    assert len(history) == 0 and not history.can_undo and not history.can_redo


def test_a_gesture_after_a_save_starts_a_new_step() -> None:
    history: History[EditState] = History()
    history.record(_happy(0.0), _happy(0.5), "Change happy", ("happy", 1))
    history.set_clean()
    history.record(_happy(0.5), _happy(0.7), "Change happy", ("happy", 1))
    assert len(history) == 2 and history.clean_index == 1


def test_a_new_step_drops_what_could_be_redone() -> None:
    history: History[EditState] = History()
    history.record(_happy(0.0), _happy(0.5), "Change happy")
    history.record(_happy(0.5), _happy(0.7), "Change happy")
    history.set_clean()
    history.undo()
    history.record(_happy(0.5), _happy(0.2), "Change happy")
    assert len(history) == 2 and not history.can_redo and history.clean_index is None
