"""UI tests answer the unsaved-edits question without a modal dialog (which would block)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from faceedit.ui import dialogs


class UnsavedAnswers:
    """Stands in for dialogs.ask_unsaved: records each question, gives `answer`."""

    def __init__(self) -> None:
        self.answer: dialogs.UnsavedAnswer = "discard"
        self.asked: list[str] = []
        self.about_video: list[bool] = []  # per question: asked about a video's frame

    def __call__(self, parent: object, action: str, video: bool = False) -> dialogs.UnsavedAnswer:
        self.asked.append(action)
        self.about_video.append(video)
        return self.answer


@pytest.fixture(scope="session", autouse=True)
def unsaved_answers() -> Iterator[UnsavedAnswers]:
    answers = UnsavedAnswers()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dialogs, "ask_unsaved", answers)
        yield answers


@pytest.fixture
def unsaved(unsaved_answers: UnsavedAnswers) -> Iterator[UnsavedAnswers]:
    """The recorder, reset for one test and back to "discard" after it."""
    unsaved_answers.asked.clear()
    unsaved_answers.about_video.clear()
    yield unsaved_answers
    unsaved_answers.answer = "discard"
    unsaved_answers.asked.clear()
    unsaved_answers.about_video.clear()
