"""Measure how long the app's GUI thread stalls, as a user would feel it: a QTimer heartbeat.

Opens the real window (the app's own start-up path: `faceedit.ui.app.run`'s options), beats a
10 ms QTimer from the moment the event loop runs, moves a slider once the first result is on
screen, and prints the longest gaps between beats and how long the edit took to show. Run it
under a real display (xvfb-run) and, to see the worst case, next to other work:

    xvfb-run -a -s "-screen 0 1366x768x24" python scripts/heartbeat.py --checkpoint demo \
        --seconds 25 [--compile] [--switch-to other.safetensors] [--why] [--drag] [--video V]

--drag keeps dragging a slider (as a hand would, a step every 30 ms) from the first result to the
end; --video plays a video file (from its start again whenever it ends) instead of a picture.

Settings go to a temporary folder, never the user's own.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

BEAT_MS = 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="demo")
    parser.add_argument("--seconds", type=float, default=25.0)
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--switch-to",
        metavar="CHECKPOINT",
        help="load this model as the Model menu does, --switch-at seconds after the start",
    )
    parser.add_argument("--switch-at", type=float, default=10.0)
    parser.add_argument(
        "--why", action="store_true", help="sample the GUI thread's stack in stalls"
    )
    parser.add_argument("--drag", action="store_true", help="keep dragging a slider")
    parser.add_argument("--video", type=Path, help="play this video instead of a picture")
    options = parser.parse_args()
    os.environ["FACEEDIT_SETTINGS_DIR"] = tempfile.mkdtemp(prefix="faceedit-heartbeat-")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

    started = time.perf_counter()
    from PySide6.QtCore import QTimer

    from faceedit.ui import app as app_module

    args = argparse.Namespace(
        source=str(options.video) if options.video else None,
        camera=None,
        checkpoint=options.checkpoint,
        no_checkpoint=False,
        device=options.device,
        expression=None,
        region=[],
        editable=None,
        aligned=None,
        compare=None,
        detect_every=None,
        precision=None,
        compile=options.compile,
        snapshot=None,
        timeout=0.0,
    )
    qapp = app_module._application()
    from faceedit.ui.main_window import MainWindow
    from faceedit.ui.settings import Preferences

    if hasattr(app_module, "preload_engine"):
        app_module.preload_engine()
    window = MainWindow(Preferences(), device=options.device)
    start_model = app_module._checkpoint_to_load(window, args)
    app_module._load_start_model_ahead(window, start_model[0], args.precision)  # as app.run does
    app_module.apply_options(window, args, start_model)
    window.show()
    beats: list[float] = []
    timer = QTimer()
    timer.setInterval(BEAT_MS)
    timer.timeout.connect(lambda: beats.append(time.perf_counter()))
    edit: dict[str, float] = {}

    results = {"count": 0}

    def on_update(update: object) -> None:
        now = time.perf_counter()
        results["count"] += 1
        if "first" not in edit:
            edit["first"] = now
            QTimer.singleShot(500, move_slider)
            if options.video:
                window.set_playing(True)
            if options.drag:
                QTimer.singleShot(1000, start_drag)
        elif (
            "asked" in edit
            and "shown" not in edit
            and getattr(update, "edited", False)
            and update.request_id >= edit["id"]  # type: ignore[attr-defined]
        ):
            edit["shown"] = now

    def move_slider() -> None:
        edit["asked"] = time.perf_counter()
        window.expressions.sliders["happy"].setValue(80)
        edit["id"] = window.request_id

    dragger = QTimer()
    dragger.setInterval(30)
    drag = {"value": 0, "step": 3}

    def start_drag() -> None:
        window.expressions.sliders["surprised"].sliderPressed.emit()
        dragger.start()

    def drag_step() -> None:
        value = drag["value"] + drag["step"]
        if not 0 <= value <= 100:
            drag["step"] = -drag["step"]
            value = drag["value"] + drag["step"]
        drag["value"] = value
        window.expressions.sliders["surprised"].setValue(value)

    dragger.timeout.connect(drag_step)
    if options.video:  # play from the start again whenever the video ends
        window.worker.playbackStopped.connect(
            lambda reason: (
                QTimer.singleShot(50, lambda: window.set_playing(True)) if not reason else None
            )
        )
    window.updateShown.connect(on_update)
    compiles: list[tuple[float, str, str]] = []
    window.worker.compileStatus.connect(
        lambda state, message: compiles.append((time.perf_counter() - started, state, message))
    )
    stalls = _StallSampler(beats, started) if options.why else None
    timer.start()

    def finish() -> None:
        window.document.mark_saved()  # the moved slider is no edit worth asking about
        qapp.quit()

    if options.switch_to:
        QTimer.singleShot(
            int(options.switch_at * 1000), lambda: window.load_checkpoint(options.switch_to)
        )
    QTimer.singleShot(int(options.seconds * 1000), finish)
    qapp.exec()
    window.close()
    gaps = sorted(((b - a) * 1000, a - started) for a, b in itertools.pairwise(beats))[::-1]
    load = os.getloadavg()
    print(f"compile={options.compile} device={options.device} load average {load[0]:.2f}")
    print(f"beats: {len(beats)} over {options.seconds:g} s; longest gaps (ms @ s after start):")
    print("  " + ", ".join(f"{g:.0f} @ {t:.1f}" for g, t in gaps[:8]))
    print(f"gaps over 100 ms: {sum(1 for g, _ in gaps if g > 100)}")
    if "first" in edit:
        after = [(g, t) for g, t in gaps if t >= edit["first"] - started]
        doing = ", ".join(
            what for what, on in (("dragging", options.drag), ("video", options.video)) if on
        )
        print(
            f"after the first result ({doing or 'idle'}): longest gap "
            f"{after[0][0] if after else 0:.0f} ms, gaps over 100 ms: "
            f"{sum(1 for g, _ in after if g > 100)}; {results['count']} results shown"
        )
    if beats:
        print(f"first beat {beats[0] - started:.1f} s after start (the window is up)")
    if "first" in edit:
        print(f"first result {edit['first'] - started:.1f} s after start")
    if "shown" in edit:
        print(f"slider edit shown {edit['shown'] - edit['asked']:.2f} s after the move")
    else:
        print("the slider edit was not shown in time")
    for at, state, message in compiles:
        print(f"compile {state} {at:.1f} s after start: {message}")
    if stalls is not None:
        stalls.report()
    os._exit(0)  # a background compile may still run; nothing is left to save


class _StallSampler:
    """A thread that, while no beat came for 80 ms, notes where the GUI thread's Python code is."""

    def __init__(self, beats: list[float], started: float) -> None:
        import collections
        import gc
        import threading

        self.beats = beats
        self.started = started
        self.samples: collections.Counter[str] = collections.Counter()
        self.main = threading.main_thread().ident
        # Cyclic garbage collections hold the interpreter lock throughout: note the long ones.
        self.collections: list[tuple[float, float, int, str]] = []
        self.holders: list[tuple[float, float, str]] = []
        self._gc_began = 0.0
        gc.callbacks.append(self._on_gc)
        threading.Thread(target=self._run, daemon=True).start()

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        import threading

        now = time.perf_counter()
        if phase == "start":
            self._gc_began = now
        elif now - self._gc_began > 0.02:
            self.collections.append(
                (
                    self._gc_began - self.started,
                    (now - self._gc_began) * 1000,
                    info["generation"],
                    threading.current_thread().name,
                )
            )

    def _run(self) -> None:
        import threading

        names = {}
        woke = time.perf_counter()
        while True:
            time.sleep(0.01)
            now = time.perf_counter()
            late, woke = now - woke, now
            if late > 0.08:
                # This thread could not run either: whoever held the interpreter lock has just
                # let go of it, so the other threads' stacks show what held it.
                names = {t.ident: t.name for t in threading.enumerate()}
                for ident, frame in sys._current_frames().items():
                    if ident not in (threading.get_ident(), self.main):
                        self.holders.append(
                            (
                                woke - late - self.started,
                                late * 1000,
                                f"{names.get(ident, ident)}: {_where(frame)}",
                            )
                        )
            if not self.beats or now - self.beats[-1] < 0.08:
                continue
            frame = sys._current_frames().get(self.main)
            if frame is not None:
                self.samples[_where(frame)] += 1

    def report(self) -> None:
        print("GUI thread during stalls (10 ms samples):")
        for where, count in self.samples.most_common(12):
            print(f"  {count:4d}  {where}")
        print(f"garbage collections over 20 ms: {len(self.collections)}")
        for at, ms, generation, thread in sorted(self.collections, key=lambda c: -c[1])[:8]:
            print(f"  {ms:.0f} ms @ {at:.1f} s, generation {generation}, in thread {thread}")
        print("other threads when the sampler itself waited over 80 ms for the lock:")
        for at, ms, where in sorted(self.holders, key=lambda h: -h[1])[:16]:
            print(f"  {ms:.0f} ms @ {at:.1f} s  {where}")


def _where(frame: object) -> str:
    """The innermost frames of a stack, innermost first, on one line."""
    import traceback

    stack = traceback.extract_stack(frame)[-5:]  # type: ignore[arg-type]
    return " < ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in stack[::-1])


if __name__ == "__main__":
    sys.exit(main())
