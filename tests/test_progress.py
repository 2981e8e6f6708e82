"""The one progress bar, on a fake clock: count, rate, ETA, terminal and log-file behaviour."""

from __future__ import annotations

import io

from faceedit.progress import ProgressBar, format_duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_rate_and_eta_come_from_the_work_done_since_start() -> None:
    clock = Clock()
    bar = ProgressBar(100, "step", start=40, unit=" it/s", stream=io.StringIO(), clock=clock)
    clock.now += 10.0
    bar.goto(60, "d 1.5")  # 20 steps in 10 s, resumed at 40: 2 it/s, 40 left
    assert bar.line(extra="d 1.5") == (
        "step [##############..........] 60/100  60% 2.00 it/s ETA 0:20 | d 1.5"
    )
    assert format_duration(3725) == "1:02:05" and format_duration(float("nan")) == "?"


def test_unknown_total_counts_instead() -> None:
    clock = Clock()
    bar = ProgressBar(None, "editing frames", unit=" fps", stream=io.StringIO(), clock=clock)
    clock.now += 4.0
    bar.update(12)
    assert bar.line() == "editing frames 12 done, 3.00 fps, 0:04"


def test_log_files_get_a_line_per_tenth_or_per_update() -> None:
    clock = Clock()
    log = io.StringIO()
    bar = ProgressBar(40, "editing", stream=log, clock=clock)
    for _ in range(40):
        clock.now += 0.5
        bar.update()
    bar.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 11 and "\r" not in log.getvalue()  # the first item, then each tenth
    assert "1/40" in lines[0] and "4/40" in lines[1] and "40/40 100%" in lines[-1]
    every = io.StringIO()
    steps = ProgressBar(1000, "step", stream=every, plain="every_update", clock=clock)
    for step in (10, 20, 30):
        steps.goto(step, f"g {step}")
    assert [line.split(" | ")[1] for line in every.getvalue().splitlines()] == [
        "g 10",
        "g 20",
        "g 30",
    ]


def test_a_terminal_gets_one_redrawn_line_throttled_and_padded() -> None:
    clock = Clock()
    term = Terminal()
    bar = ProgressBar(10, "editing", stream=term, clock=clock)
    bar.update(extra="a long first message")
    bar.update()  # within the redraw interval: not drawn
    assert term.getvalue().count("\r") == 1
    clock.now += 1.0
    bar.update()
    first, second = term.getvalue().split("\r")[1:]
    assert len(second) == len(first) and second.rstrip().endswith("ETA 0:02")  # 3 done in 1 s
    bar.update(7)  # finished: drawn at once and the line ended
    assert term.getvalue().endswith("\n") and "10/10 100%" in term.getvalue().split("\r")[-1]
    bar.close()
    assert not term.getvalue().endswith("\n\n")


def test_close_ends_an_unfinished_line_and_disabled_bars_stay_silent() -> None:
    term = Terminal()
    bar = ProgressBar(10, "editing", stream=term)
    bar.update()
    bar.close()
    assert term.getvalue().endswith("\n") and term.getvalue().count("\n") == 1
    quiet = Terminal()
    silent = ProgressBar(10, "editing", stream=quiet, enabled=False)
    silent.update(10)
    silent.close()
    assert quiet.getvalue() == "" and silent.position == 10
