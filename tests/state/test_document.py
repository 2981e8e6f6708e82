"""The app's rules as facts of one Qt-free object (issue 30): what is modified, what Reset
clears, which history belongs to which source, what the score chart says."""

from __future__ import annotations

from dataclasses import replace

from faceedit.state.document import (
    NO_CLASSIFIER,
    NO_FACE_SCORES,
    WAITING_SCORES,
    Document,
    EditState,
    scores_note,
)

HAPPY = EditState(whole=(("happy", 1.0),))


def _opened(name: str = "face.png", serial: int = 1) -> Document:
    document = Document()
    document.begin_opening()
    document.source_opened(name, serial)
    return document


def test_reset_clears_valence_arousal_steering_too() -> None:
    document = _opened()
    document.edit(replace(HAPPY, valence_arousal=(0.5, 0.5)), "Steer valence and arousal")
    shown: list[EditState] = []
    document.events.controls.connect(lambda: shown.append(document.controls))
    assert document.reset()
    assert document.controls.valence_arousal is None and not document.controls.edits
    assert shown == [document.controls] and not document.modified
    assert document.undo_text == "Reset to input"


def test_closing_the_valence_arousal_panel_stops_steering_as_one_step() -> None:
    document = _opened()
    document.edit(EditState(valence_arousal=(0.5, -0.2)), "Steer valence and arousal")
    assert document.stop_steering() and document.controls.valence_arousal is None
    assert not document.stop_steering()  # already off: nothing to do
    document.undo()
    assert document.controls.valence_arousal == (0.5, -0.2)


def test_choosing_a_face_with_nothing_edited_is_no_edit_and_no_step() -> None:
    document = _opened()
    assert not document.choose_face(1)
    assert document.controls.face_index == 1
    assert not document.modified and not document.history.can_undo
    # With an edit, the face chosen changes the picture: a step, and modified.
    document.edit(HAPPY, "Change happy")
    document.mark_saved()
    assert document.choose_face(0) and document.modified
    assert document.undo_text == "Choose face 1"


def test_a_new_source_starts_with_its_own_history_and_is_modified_when_edited() -> None:
    document = _opened("sample.png", 1)
    document.edit(HAPPY, "Change happy")
    document.begin_opening()
    document.source_opened("other.png", 2)
    # The inherited sliders edit the new picture, which is not saved: modified.
    assert document.controls == HAPPY and document.modified
    # The sample's step is not this file's: nothing to undo.
    assert not document.history.can_undo and document.undo_text == ""
    assert document.title == "other.png[*] - faceedit"
    document.reset()
    assert not document.modified and document.undo_text == "Reset to input"


def test_a_new_source_with_nothing_edited_is_not_modified() -> None:
    document = _opened()
    document.edit(replace(EditState(), editable=("mouth",)), "Change region lock")
    document.source_opened("other.png", 2)
    assert not document.modified


def test_a_source_that_fails_to_open_keeps_the_document_and_its_edit() -> None:
    document = _opened("face.png", 1)
    document.edit(HAPPY, "Change happy")
    document.begin_opening()
    assert not document.shows(1)  # nothing shown while the new one opens
    document.source_failed(1)
    assert document.shows(1) and not document.shows(2)
    assert document.modified and document.undo_text == "Change happy"


def test_saving_or_recording_clears_modified_and_editing_back_sets_it() -> None:
    document = _opened("clip.mp4", 1)
    document.edit(HAPPY, "Change happy")
    document.mark_saved()
    assert not document.modified
    document.edit(EditState(), "Change happy")
    assert document.modified  # the saved file is happy; the picture is not
    document.undo()
    assert not document.modified


def test_nothing_open_is_never_modified() -> None:
    document = Document(HAPPY)
    assert not document.modified and document.title == "faceedit[*]"


def test_the_score_chart_says_why_it_is_empty_only_when_true() -> None:
    assert scores_note(False, True, True) == NO_CLASSIFIER
    assert scores_note(True, True, None) == WAITING_SCORES  # a model with a discriminator
    assert scores_note(True, False, None) != NO_CLASSIFIER  # a failed --camera 0
    assert scores_note(True, True, False) == NO_FACE_SCORES
