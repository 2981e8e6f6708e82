"""The one progress bar: `faceedit edit` over files and frames, `faceedit-train` over steps.

    editing [########............] 12/30  40% 3.1/s ETA 0:06 | extra text

On a terminal it redraws one line (at most every `MIN_REDRAW_S`, and always at the end). In a
log file (not a TTY) redrawing would leave one line per draw, so it writes whole lines instead:
one per tenth of the total (a batch over thousands of frames), or one per update where the
caller already updates rarely (the trainer, at its log steps).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Final, Literal, TextIO

PlainLines = Literal["tenths", "every_update"]
BAR_WIDTH: Final[int] = 24
MIN_REDRAW_S: Final[float] = 0.1


def format_duration(seconds: float) -> str:
    """'1:02:03' / '4:05' style, or '?' before there is anything to estimate from."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_rate(rate: float) -> str:
    """Three significant digits around 1/s, without an exponent at high rates."""
    return f"{rate:.2f}" if rate < 10 else f"{rate:.1f}" if rate < 100 else f"{rate:.0f}"


class ProgressBar:
    """Count, fraction, rate and ETA of a job of `total` items (None: unknown, shown as a count).

    `start` is where a resumed job begins: the rate counts only what this process did, so a
    resumed run's ETA is not skewed by the work it skipped. `clock` is injectable for tests.
    """

    def __init__(
        self,
        total: int | None,
        label: str,
        *,
        start: int = 0,
        unit: str = "/s",
        stream: TextIO | None = None,
        enabled: bool = True,
        plain: PlainLines = "tenths",
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.total = total if total is not None and total > 0 else None
        self.label = label
        self.start = self.position = start
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.plain = plain
        self.clock = clock
        self.started = clock()
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_draw = -math.inf
        self._last_tenth = -1
        self._drawn_len = 0

    @property
    def finished(self) -> bool:
        return self.total is not None and self.position >= self.total

    def update(self, count: int = 1, extra: str = "") -> None:
        """Advance by `count` items and draw if due."""
        self.goto(self.position + count, extra)

    def goto(self, position: int, extra: str = "") -> None:
        """Set the position (e.g. the training step) and draw if due; `extra` follows a '|'."""
        self.position = position
        if not self.enabled:
            return
        now = self.clock()
        if self.interactive:
            if self.finished or now - self._last_draw >= MIN_REDRAW_S:
                self._last_draw = now
                text = self.line(now, extra)
                pad = " " * max(0, self._drawn_len - len(text))
                self._drawn_len = len(text)
                self._write("\r" + text + pad + ("\n" if self.finished else ""))
                if self.finished:
                    self._drawn_len = 0
        elif self.plain == "every_update":
            self._write(self.line(now, extra) + "\n")
        elif self.total is not None:
            tenth = 10 * min(self.position, self.total) // self.total
            if tenth != self._last_tenth:
                self._last_tenth = tenth
                self._write(self.line(now, extra) + "\n")

    def close(self) -> None:
        """End a redrawn line, so the next message starts on its own line."""
        if self.enabled and self.interactive and self._drawn_len:
            self._write("\n")
        self._drawn_len = 0

    def line(self, now: float | None = None, extra: str = "") -> str:
        elapsed = (self.clock() if now is None else now) - self.started
        done = self.position - self.start
        rate = done / elapsed if elapsed > 0 and done > 0 else 0.0
        speed = f"{format_rate(rate)}{self.unit}"
        if self.total is None:
            text = f"{self.label} {self.position} done, {speed}, {format_duration(elapsed)}"
        else:
            fraction = min(max(self.position / self.total, 0.0), 1.0)
            filled = round(fraction * BAR_WIDTH)
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            eta = (self.total - self.position) / rate if rate > 0 else math.nan
            text = (
                f"{self.label} [{bar}] {self.position}/{self.total} {fraction:4.0%} {speed} "
                f"ETA {format_duration(eta)}"
            )
        return f"{text} | {extra}" if extra else text

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
