"""Soak the app as a user would for minutes: memory, reference counts and GUI stalls over time.

Two modes:

    xvfb-run -a -s "-screen 0 1366x768x24" python scripts/soak.py window --minutes 10
    python scripts/soak.py session --edits 5000

`window` opens the real window (the app's own start-up path), then drags the expression sliders
with real mouse presses, moves and releases (and now and then undoes a drag) for the given time.
Every `--every` seconds it records the process's resident memory, the reference counts of None,
True and False (on CPython 3.11 they are not immortal: a binding that leaks or drops them
aborts the process), the results shown and the longest gap of a 10 ms GUI heartbeat.
`session` runs thousands of edits through the Qt-free EditSession on the bundled sample faces.

Both print a table and a verdict, and exit 1 when, over the second half of the run (caches and
the 200-command undo history fill in the first), memory grows past `--max-growth-mb` or a
reference count falls by more than `--max-drift` references along a fitted line (a rising
count is reported: it can never free the object).
Settings go to a temporary folder, never the user's own.
"""

from __future__ import annotations

import argparse
import collections
import gc
import itertools
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BEAT_MS = 10


@dataclass
class Sample:
    """One row of the soak's table."""

    seconds: float
    rss_mb: float
    none: int
    true: int
    false: int
    actions: int  # drags (window) or edits (session) so far
    results: int  # results shown (window) or computed (session)
    longest_gap_ms: float


def rss_mb() -> float:
    """This process's resident memory (Linux /proc; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def take(started: float, actions: int, results: int, longest_gap_ms: float) -> Sample:
    return Sample(
        seconds=time.perf_counter() - started,
        rss_mb=rss_mb(),
        none=sys.getrefcount(None),
        true=sys.getrefcount(True),
        false=sys.getrefcount(False),
        actions=actions,
        results=results,
        longest_gap_ms=longest_gap_ms,
    )


def census() -> collections.Counter[str]:
    """Live objects tracked by the cycle collector, by type name (--census: what grows)."""
    gc.collect()
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


def verdict(samples: list[Sample], max_growth_mb: float, max_drift: float) -> int:
    """Print the table and the judgement; 0 when steady, 1 when not."""
    print(f"{'s':>6} {'RSS MB':>8} {'None':>8} {'True':>7} {'False':>7} {'actions':>8} "
          f"{'results':>8} {'gap ms':>7}")  # fmt: skip
    for s in samples:
        print(
            f"{s.seconds:6.0f} {s.rss_mb:8.1f} {s.none:8d} {s.true:7d} {s.false:7d} "
            f"{s.actions:8d} {s.results:8d} {s.longest_gap_ms:7.0f}"
        )
    if len(samples) < 4:
        print("too short to judge")
        return 1
    # Bounded caches and the undo history (200 commands) fill early; a leak keeps growing. The
    # second half of the run says which: it is judged alone, by a least-squares line through
    # its samples (a single sample can catch references in flight: +-20 here).
    half = samples[len(samples) // 2 :]
    first, last = half[0], half[-1]
    actions = max(1, last.actions - first.actions)
    growth = fitted_change(half, "rss_mb")
    change = {name: fitted_change(half, name) for name in ("none", "true", "false")}
    print(
        f"second half ({first.seconds:.0f}-{last.seconds:.0f} s, {actions} actions), fitted "
        f"change: memory {growth:+.1f} MB; references "
        + ", ".join(f"{name} {value:+.0f}" for name, value in change.items())
        + f"; in all {last.actions} actions, {last.results} results in "
        f"{last.seconds / 60:.1f} min, memory {last.rss_mb - samples[0].rss_mb:+.1f} MB"
    )
    # A count that falls is fatal: once it reaches zero CPython frees None/True/False and
    # aborts (PySide6 6.12.0: about -800 a second of drags). One that rises without memory
    # growing is an extra reference held forever, which can never free anything (PySide6
    # 6.11.3's QPainter adds 6 to None per begin/end, i.e. per repaint); it is reported.
    falling = [name for name, value in change.items() if value < -max_drift]
    rising = [name for name, value in change.items() if value > max_drift]
    if rising:
        print(f"rising (harmless while memory stays flat): {', '.join(rising)}")
    steady = growth <= max_growth_mb and not falling
    print("steady" if steady else f"NOT steady (falling: {', '.join(falling) or 'none'})")
    return 0 if steady else 1


def fitted_change(samples: list[Sample], name: str) -> float:
    """The change of `name` from the first to the last sample along a least-squares line."""
    xs = [s.seconds for s in samples]
    ys = [float(getattr(s, name)) for s in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    return slope * (xs[-1] - xs[0])


# ---------------------------------------------------------------- the real window


def soak_window(options: argparse.Namespace) -> int:
    from PySide6.QtCore import QPoint, Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QSlider, QStyle, QStyleOptionSlider

    from faceedit.ui import app as app_module

    args = argparse.Namespace(
        source=options.image, camera=None, checkpoint=options.checkpoint, no_checkpoint=False,
        device="cpu", expression=None, region=[], editable=None, aligned=None, compare=None,
        detect_every=None, precision=None, compile=False, snapshot=None,
        timeout=0.0,
    )  # fmt: skip
    qapp = app_module._application()
    from faceedit.ui.main_window import MainWindow
    from faceedit.ui.settings import Preferences

    app_module.preload_engine()
    window = MainWindow(Preferences(), device="cpu")
    start_model = app_module._checkpoint_to_load(window, args)
    app_module._load_start_model_ahead(window, start_model[0], None)
    app_module.apply_options(window, args, start_model)
    window.show()

    started = time.perf_counter()
    beats: list[float] = []
    samples: list[Sample] = []
    state = {"drags": 0, "results": 0, "step": 0}
    censuses: list[collections.Counter[str]] = []
    names = list(window.expressions.sliders)

    def handle(slider: QSlider, value: int) -> QPoint:
        """Where the slider's handle would be at `value`, in the slider's own pixels."""
        style = QStyleOptionSlider()
        slider.initStyleOption(style)
        style.sliderPosition = style.sliderValue = value
        rect = slider.style().subControlRect(
            QStyle.ComplexControl.CC_Slider, style, QStyle.SubControl.SC_SliderHandle, slider
        )
        return rect.center()

    def drag_step() -> None:
        # One drag = press on the handle, 8 moves, release; a drag every ~10 timer ticks.
        step = state["step"]
        state["step"] += 1
        drag, phase = divmod(step, 10)
        slider = window.expressions.sliders[names[drag % len(names)]]
        if not slider.isEnabled():
            return
        low, high = slider.minimum(), slider.maximum()
        target = low + (high - low) * ((drag * 37) % 100) // 100
        if phase == 0:
            state["from"] = slider.value()
            QTest.mousePress(slider, Qt.MouseButton.LeftButton, pos=handle(slider, slider.value()))
        elif phase < 9:
            value = state["from"] + (target - state["from"]) * phase // 8
            QTest.mouseMove(slider, handle(slider, value))
        else:
            QTest.mouseRelease(slider, Qt.MouseButton.LeftButton, pos=handle(slider, target))
            state["drags"] += 1
            if state["drags"] % 25 == 0 and window.document.history.can_undo:
                window.document.undo()

    def on_update(_update: object) -> None:
        state["results"] += 1

    def sample() -> None:
        if options.census:
            censuses.append(census())
        gaps = [b - a for a, b in itertools.pairwise(beats)]
        longest = max(gaps, default=0.0) * 1000
        del beats[:-1]
        samples.append(take(started, state["drags"], state["results"], longest))
        print(f"  {samples[-1].seconds:5.0f} s: {samples[-1].rss_mb:.1f} MB, "
              f"{state['drags']} drags", flush=True)  # fmt: skip

    window.updateShown.connect(on_update)
    heartbeat = QTimer()
    heartbeat.setInterval(BEAT_MS)
    heartbeat.timeout.connect(lambda: beats.append(time.perf_counter()))
    heartbeat.start()
    dragger = QTimer()
    dragger.setInterval(options.tick_ms)
    dragger.timeout.connect(drag_step)
    sampler = QTimer()
    sampler.setInterval(int(options.every * 1000))
    sampler.timeout.connect(sample)

    def begin() -> None:
        sample()
        dragger.start()
        sampler.start()

    def finish() -> None:
        sample()
        dragger.stop()
        window.document.mark_saved()  # nothing worth a save prompt
        qapp.quit()

    QTimer.singleShot(int(options.warmup * 1000), begin)
    QTimer.singleShot(int((options.warmup + options.minutes * 60) * 1000), finish)
    qapp.exec()
    window.close()
    print(f"window soak: {options.minutes:g} min of slider drags, load average "
          f"{os.getloadavg()[0]:.2f}")  # fmt: skip
    if len(censuses) >= 2:
        growth = censuses[-1] - censuses[len(censuses) // 2]
        print("objects that grew over the second half:", growth.most_common(12))
    return verdict(samples, options.max_growth_mb, options.max_drift)


# ---------------------------------------------------------------- the Qt-free session


def soak_session(options: argparse.Namespace) -> int:
    from faceedit.inference.request import EditRequest
    from faceedit.inference.session import EditSession
    from faceedit.media import bundled

    session = EditSession(detect_every=1)
    report = session.load(str(bundled.resolve_checkpoint(options.checkpoint)), "cpu")
    if report.error:
        print(f"soak: {report.error}", file=sys.stderr)
        return 2
    images = (
        [str(options.image)] if options.image else [str(p) for p in bundled.procedural_samples()]
    )
    started = time.perf_counter()
    samples: list[Sample] = []
    every = max(1, options.edits // 20)
    for edit in range(options.edits):
        if edit % 100 == 0:
            session.open(images[(edit // 100) % len(images)])
        weight = ((edit * 37) % 100) / 100
        session.compute(EditRequest(condition={"happy": weight, "surprised": 1 - weight}))
        if edit == 10 or (edit > 10 and edit % every == 0):
            samples.append(take(started, edit, edit, 0.0))
    samples.append(take(started, options.edits, options.edits, 0.0))
    print(f"session soak: {options.edits} edits on {len(images)} image(s)")
    return verdict(samples, options.max_growth_mb, options.max_drift)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("window", "session"))
    parser.add_argument("--checkpoint", default="demo")
    parser.add_argument("--image", help="the picture to edit (default: the bundled samples)")
    parser.add_argument("--minutes", type=float, default=10.0, help="window: how long to drag")
    parser.add_argument("--warmup", type=float, default=15.0, help="window: seconds before")
    parser.add_argument("--tick-ms", type=int, default=30, help="window: mouse event interval")
    parser.add_argument("--every", type=float, default=30.0, help="window: seconds per sample")
    parser.add_argument("--edits", type=int, default=5000, help="session: how many edits")
    parser.add_argument("--census", action="store_true", help="print the object types that grew")
    parser.add_argument("--max-growth-mb", type=float, default=20.0)
    parser.add_argument("--max-drift", type=float, default=100.0)
    options = parser.parse_args()
    os.environ["FACEEDIT_SETTINGS_DIR"] = tempfile.mkdtemp(prefix="faceedit-soak-")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    code = soak_window(options) if options.mode == "window" else soak_session(options)
    sys.stdout.flush()
    os._exit(code)  # the worker thread holds nothing that needs saving


if __name__ == "__main__":
    sys.exit(main())
