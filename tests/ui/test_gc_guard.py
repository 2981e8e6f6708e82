"""Cycles are collected on the GUI thread while an inference thread runs (faceedit.ui.gc_guard)."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest

from faceedit.ui import gc_guard


class _Node:
    """A member of a reference cycle: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture()
def low_thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(1, 1, 1)
    yield
    gc.set_threshold(*saved)


def test_holds_nest_and_the_last_release_restores_collection(qapp: object) -> None:
    assert gc.isenabled() and not gc_guard.holding()
    gc_guard.hold()
    gc_guard.hold()
    assert not gc.isenabled() and gc_guard.holding()
    gc_guard.release()
    assert not gc.isenabled()
    gc_guard.release()
    assert gc.isenabled() and not gc_guard.holding()
    gc_guard.release()  # one too many: harmless
    assert gc.isenabled()


def test_collect_due_frees_cycles_once_a_threshold_is_passed(low_thresholds: None) -> None:
    gc.collect()
    gc.disable()
    try:
        ref = weakref.ref(_Node())
        garbage = [_Node() for _ in range(5)]  # counts past every threshold
        del garbage
        assert ref() is not None  # nothing collects it on its own
        assert gc_guard.collect_due() >= 0
        assert ref() is None
        gc.set_threshold(10**6, 10**6, 10**6)  # none due: nothing is collected
        gc.collect()
        assert gc_guard.collect_due() == -1
    finally:
        gc.enable()


def test_the_gui_thread_collects_what_other_threads_drop(
    qtbot,
    low_thresholds: None,  # type: ignore[no-untyped-def]
) -> None:
    freed_on: list[str] = []
    gc_guard.hold()
    try:

        def drop_cycles() -> None:
            for _ in range(50):
                node = _Node()
                weakref.finalize(node, lambda: freed_on.append(threading.current_thread().name))
                del node

        worker = threading.Thread(target=drop_cycles, name="worker")
        worker.start()
        worker.join()
        assert not freed_on  # the worker allocated past the thresholds, yet collected nothing
        qtbot.waitUntil(lambda: len(freed_on) == 50, timeout=5000)
        assert set(freed_on) == {threading.main_thread().name}
    finally:
        gc_guard.release()
    assert gc.isenabled()
