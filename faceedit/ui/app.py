"""`faceedit [IMAGE_OR_VIDEO] [options]`: open the window (the bundled sample face by default).

With `--snapshot OUT.png` the window applies the options, waits for the first edited result,
saves a picture of itself and exits: a headless check that the whole app works, and how the
README's screenshot is made.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

from PySide6.QtCore import QEventLoop, QObject, Qt, QTimer
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QApplication

from faceedit.device import DEVICES
from faceedit.errors import FaceEditError
from faceedit.fileio import check_output_file
from faceedit.limits import (
    camera_index,
    editable_argument,
    expression_argument,
    positive_seconds,
    region_argument,
)
from faceedit.media import bundled
from faceedit.ui.settings import (
    APPLICATION,
    COMPARE_MODES,
    DETECT_EVERY_CHOICES,
    ORGANIZATION,
    PRECISIONS,
)
from faceedit.vocab.labels import REGION_NAMES

if TYPE_CHECKING:  # imported at run time only once the QApplication exists
    from faceedit.inference.session import FrameUpdate
    from faceedit.ui.main_window import MainWindow

DEFAULT_SNAPSHOT_TIMEOUT_S: Final[float] = 120.0
SNAPSHOT_SIZE: Final[tuple[int, int]] = (1440, 900)
EXIT_FAILED: Final[int] = 2
EXIT_TIMEOUT: Final[int] = 3
SETTLE_MS: Final[int] = 150
# Qt bindings that drop references to None/True/False on every signal emit and void Qt call; on
# CPython before 3.12, where those objects are not immortal, the app aborts within minutes
# (tests/ui/test_binding_refcounts.py; scripts/constraints.txt pins a verified release).
LEAKING_BINDINGS: Final[frozenset[str]] = frozenset({"6.12.0"})


def check_binding(version: str, python: tuple[int, int]) -> None:
    """Refuse a Qt binding known to abort the app here, before any work can be lost."""
    if python < (3, 12) and version in LEAKING_BINDINGS:
        raise FaceEditError(
            f"PySide6 {version} has a reference-count bug that aborts the app on Python "
            f"{python[0]}.{python[1]} after a minute or two of use; install the verified release "
            "with `bash scripts/setup.sh` (or `pip install -c scripts/constraints.txt -e .`)"
        )


# ---- command line -------------------------------------------------------------------------------


def _slider_range(args: argparse.Namespace) -> None:
    """The sliders span 0-100 %, so the window refuses weights above 1 instead of clipping them."""
    specs = [("--expression", args.expression or {})]
    specs += [(f"--region {region}", weights) for region, weights in args.region]
    for flag, weights in specs:
        big = {n: w for n, w in weights.items() if w > 1.0}
        if big:
            raise FaceEditError(
                f"{flag}: the window's sliders go up to 1 (100 %), got {big}; "
                "use `faceedit edit` for weights above 1"
            )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        nargs="?",
        metavar="IMAGE_OR_VIDEO",
        help="an image or a video file (default: the bundled sample face)",
    )
    parser.add_argument(
        "--camera",
        type=camera_index,
        metavar="INDEX",
        help="edit a webcam live (0 is the first camera)",
    )
    parser.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="a faceedit checkpoint (.safetensors), or a bundled model: `real` (trained on real "
        "photographs) or `demo` (procedural faces only); default: the last one used, else the "
        "bundled model made for the picture (the demo model for its procedural samples, "
        "else `real`, else `demo`)",
    )
    parser.add_argument(
        "--no-checkpoint",
        action="store_true",
        help="start without a model, even if one was used last time",
    )
    parser.add_argument(
        "--device",
        choices=DEVICES,
        help="where the models run (default: the last choice, else auto = CUDA if available)",
    )
    parser.add_argument(
        "--expression",
        type=expression_argument,
        metavar="SPEC",
        help="initial sliders, e.g. happy=0.8,surprised=0.2 (weights as given, not renormalised)",
    )
    parser.add_argument(
        "--region",
        type=region_argument,
        action="append",
        default=[],
        metavar="REGION:SPEC",
        help="give a region its own target, e.g. mouth:happy=1 (repeatable)",
    )
    parser.add_argument(
        "--editable",
        type=editable_argument,
        metavar="REGIONS",
        help=f"regions the edit may change, e.g. mouth,eyes (of {', '.join(REGION_NAMES)}); the rest stays as the input",
    )
    parser.add_argument(
        "--aligned",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the picture already is an aligned face crop: no face detection, the whole picture "
        "is edited (remembered, like the Model menu's toggle; default off, on for the demo "
        "model's procedural samples)",
    )
    _add_window_arguments(parser)


def _add_window_arguments(parser: argparse.ArgumentParser) -> None:
    """How the window looks and runs: layout, speed, snapshots."""
    parser.add_argument("--compare", choices=COMPARE_MODES, help="before/after layout")
    parser.add_argument(
        "--detect-every",
        type=int,
        choices=DETECT_EVERY_CHOICES,
        help="on video, detect every N frames and track between",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="auto: bfloat16 where the CPU or GPU runs it natively (faster previews, within a "
        "few grey levels); float32: exact. Remembered, like the Model menu's choice",
    )
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compile the networks in a background process after the first frame "
        "(remembered; default off)",
    )
    parser.add_argument(
        "--snapshot",
        metavar="OUT.png",
        help="apply the options, wait for the first edited result, save a picture of the window and exit",
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_SNAPSHOT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"how long --snapshot waits (default {DEFAULT_SNAPSHOT_TIMEOUT_S:g})",
    )


# ---- running ------------------------------------------------------------------------------------------


def app_icon() -> QIcon:
    """A small drawn icon (a face with a split line), so no image file is needed."""
    icon = QIcon()
    for size in (16, 32, 64, 128, 256):
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        p = QPainter(pixmap)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        s = size / 64

        def px(v: float) -> int:
            return int(v)  # Qt's integer overloads, which these floats always went to

        p.setBrush(QColor(42, 130, 218))
        p.setPen(Qt.PenStyle.NoPen)
        p.drawRoundedRect(px(2 * s), px(2 * s), px(60 * s), px(60 * s), 12 * s, 12 * s)
        p.setBrush(QColor(255, 214, 170))
        p.drawEllipse(px(14 * s), px(10 * s), px(36 * s), px(44 * s))
        p.setBrush(QColor(40, 40, 40))
        p.drawEllipse(px(23 * s), px(25 * s), px(5 * s), px(5 * s))
        p.drawEllipse(px(36 * s), px(25 * s), px(5 * s), px(5 * s))
        p.setPen(QPen(QColor(200, 40, 60), max(1.0, 3 * s)))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawArc(px(22 * s), px(30 * s), px(20 * s), px(14 * s), 200 * 16, 140 * 16)
        p.setPen(QPen(QColor(255, 255, 255), max(1.0, 2 * s)))
        p.drawLine(px(32 * s), px(6 * s), px(32 * s), px(58 * s))
        p.end()
        icon.addPixmap(pixmap)
    return icon


def choose_platform(snapshot: bool) -> None:
    """On Linux without a display, Qt aborts the process with its own message: a snapshot
    renders offscreen instead, and the window says plainly why it cannot open."""
    if sys.platform != "linux" or os.environ.get("QT_QPA_PLATFORM"):
        return
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    if snapshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return
    raise FaceEditError(
        "there is no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset): "
        "run faceedit in a desktop session, or `faceedit --snapshot out.png` for a picture of "
        "the window, or `faceedit edit` to edit without one"
    )


def _application() -> QApplication:
    existing = QApplication.instance()
    if existing is None:
        app = QApplication(sys.argv[:1])
        from faceedit.ui.theme import apply_theme

        apply_theme(app)
    else:
        assert isinstance(existing, QApplication)  # faceedit only ever makes a QApplication
        app = existing
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("faceedit")
    app.setWindowIcon(app_icon())
    return app


def run(args: argparse.Namespace) -> int:
    """Open the window as the arguments say; with --snapshot, return once the picture is saved."""
    import PySide6

    check_binding(PySide6.__version__, sys.version_info[:2])
    if args.source is not None and args.camera is not None:
        raise FaceEditError("give either IMAGE_OR_VIDEO or --camera, not both")
    if args.snapshot is not None:
        snapshot = Path(args.snapshot)
        if snapshot.suffix.lower() != ".png" or not snapshot.stem:
            raise FaceEditError(
                f"--snapshot writes a PNG; give a file name ending in .png, not {args.snapshot!r}"
            )
        check_output_file(snapshot, "--snapshot")
    _slider_range(args)
    if args.device == "cuda":
        _check_cuda()
    choose_platform(args.snapshot is not None)
    app = _application()
    from faceedit.ui.main_window import MainWindow  # after QApplication: it builds pixmaps
    from faceedit.ui.settings import Preferences

    # A snapshot reads the user's settings but never writes them (last checkpoint, recent files).
    prefs = Preferences.read_only() if args.snapshot else Preferences()
    preload_engine()
    if args.device:
        prefs.device = args.device
    window = MainWindow(prefs, device=args.device)
    start_model = _checkpoint_to_load(window, args)
    _load_start_model_ahead(window, start_model[0], args.precision)
    apply_options(window, args, start_model)
    if args.snapshot:
        code = take_snapshot(window, Path(args.snapshot), args.timeout, wants_edit=_asks_edit(args))
    else:
        window.show()
        _close_on_ctrl_c(window)
        code = app.exec()
    _end_without_waiting_for_compilation(window, code)
    return code


def _load_start_model_ahead(window: MainWindow, path: str | None, precision: str | None) -> None:
    """Build the start-up model on this thread before the window shows, for the worker to take
    (faceedit/inference/session.py:load_ahead says why); a file that fails is reported by the
    worker's own load, in the window."""
    from faceedit.inference.session import load_ahead

    if path is None:
        return
    try:
        resolved = bundled.resolve_checkpoint(path)
    except FaceEditError:
        return
    load_ahead(str(resolved), window.worker.device, precision or window.prefs.precision)


def _check_cuda() -> None:
    """--device cuda on a machine without a usable GPU is refused, as `faceedit edit` does,
    instead of the window quietly running on the CPU. (This loads torch on this thread, but
    only when a GPU was asked for by name.)"""
    from faceedit.device import resolve_device

    resolve_device("cuda")


def preload_engine() -> None:
    """Import torch and the engine on this (GUI) thread before the window shows (docs/architecture.md §3).

    Importing torch loads hundreds of megabytes of libraries while holding Python's global
    lock; done by the worker after the window is up, it froze the event loop for 0.5-3 s on
    a busy 2-core machine. Done here, the window appears a second later and never freezes.
    """
    import faceedit.inference.engine
    import faceedit.inference.pipeline
    import faceedit.weights.checkpoint  # noqa: F401  # imported for loading torch and safetensors
    from faceedit.faces.detect import _import_mtcnn

    _import_mtcnn()  # facenet-pytorch, the detector's package, imported once and kept


def _end_without_waiting_for_compilation(window: MainWindow, code: int) -> None:
    """End the process now if a background compile is still running at exit.

    The compiling child ends itself when this process ends (its stdin closes); the threads
    waiting for it need not be torn down with the interpreter. By now the window is closed, the
    worker has stopped, recordings are finished and the settings are written, so nothing is
    lost by not waiting.
    """
    if not window.worker.compiling_in_background():
        return
    window.prefs.sync()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _close_on_ctrl_c(window: MainWindow) -> None:
    """Ctrl+C in the terminal closes the window cleanly (worker stopped, layout saved).

    Python handles signals only between bytecodes, and Qt's loop runs in C++; a cheap timer
    hands control back to Python a few times a second so the handler can run.
    """
    signal.signal(signal.SIGINT, lambda *_: window.close())
    timer = QTimer(window)
    timer.timeout.connect(lambda: None)
    timer.start(200)


def apply_options(
    window: MainWindow,
    args: argparse.Namespace,
    start_model: tuple[str | None, str | None] | None = None,
) -> None:
    """Set the window's controls and start loading as the command line says (`start_model`:
    `_checkpoint_to_load`'s answer, when the caller already asked it)."""
    if args.compare:
        window.set_compare_mode(args.compare)
    if args.detect_every:
        window.set_detect_every(args.detect_every)
    speed = {"precision": args.precision, "compile_networks": args.compile}
    if any(value is not None for value in speed.values()):
        window.set_speed(**{name: value for name, value in speed.items() if value is not None})
    window.load_checkpoint(*(start_model or _checkpoint_to_load(window, args)))
    if args.expression:
        window.expressions.set_condition(args.expression)
    for region, weights in args.region:
        window.expressions.set_condition(weights, region=region)
    if args.editable is not None:
        window.regions.set_editable(args.editable)
    # The command line's settings are where editing starts: nothing to undo. (The picture they
    # edit is still unsaved: quitting asks, as the title's marker says.)
    window.document.forget_history()
    if args.camera is not None:
        window.open_camera(args.camera)
    elif args.source is not None:
        window.open_path(args.source)  # with the demo model this turns aligned input off
    else:
        window.open_sample()  # the sample photo; with the demo model a procedural face, aligned
    if args.aligned is not None:
        window.set_aligned_input(args.aligned)


def _checkpoint_to_load(  # type: ignore[no-untyped-def]
    window, args: argparse.Namespace
) -> tuple[str | None, str | None]:
    """(checkpoint, note): the checkpoint given, else the one remembered, else the bundled model
    made for the picture (bundled.bundled_for: the real-face model unless the picture is a
    procedural sample; None when none is installed); the note says so when the remembered one
    is gone (it is then forgotten).

    --no-checkpoint starts without a model; --snapshot never uses a remembered one, so its
    picture depends on the command line alone.
    """
    if args.checkpoint is not None:
        return str(args.checkpoint), None
    if args.no_checkpoint or args.snapshot:
        return None, None
    missing = window.prefs.forget_missing_checkpoint()
    last = window.prefs.last_checkpoint
    if last:
        return str(last), None
    pictures = [] if args.source is None or args.camera is not None else [args.source]
    fallback = bundled.bundled_for(pictures)
    note = None
    if missing:
        instead = (
            f"the bundled {bundled.BUNDLED_MODELS[fallback].label} is loaded instead"
            if fallback
            else "no model is loaded"
        )
        note = (
            f"The model used last time, {missing}, is no longer there (moved or deleted): "
            f"{instead}. Load another with File > Load Checkpoint (Ctrl+L)."
        )
    return fallback, note


def _asks_edit(args: argparse.Namespace) -> bool:
    weights = dict(args.expression or {})
    for _region_name, region_weights in args.region:
        weights.update(region_weights)
    return any(w > 0 for w in weights.values())


class _SnapshotWaiter(QObject):
    """Waits for the first result computed with the loaded model and the command-line settings."""

    def __init__(self, window: MainWindow, wants_edit: bool, timeout_s: float) -> None:
        super().__init__(window)
        self.window = window
        self.wants_edit = wants_edit
        self.loop = QEventLoop()
        self.error: str | None = None
        self.code = EXIT_TIMEOUT
        self.error = f"no result within {timeout_s:g} s (raise --timeout on a slow machine)"
        window.updateShown.connect(self._on_update)
        window.messageShown.connect(self._on_message)
        QTimer.singleShot(int(timeout_s * 1000), self.loop.quit)

    def _on_update(self, update: FrameUpdate) -> None:
        window = self.window
        if window.model_info is None or update.request_id < window.settled_request_id:
            return  # computed before the model and the settings were in place
        if not update.boxes:
            self._finish(EXIT_FAILED, "no face was found in the input, so there is nothing to edit")
        elif self.wants_edit and not update.edited:
            missing = (
                " ".join(window.model_info.capabilities.missing)
                or "the model did not edit the face"
            )
            self._finish(
                EXIT_FAILED, f"an expression was asked for but cannot be applied: {missing}"
            )
        else:
            self._finish(0, None)

    def _on_message(self, kind: str, text: str) -> None:
        if kind == "error":
            self._finish(EXIT_FAILED, text)

    def _finish(self, code: int, error: str | None) -> None:
        self.code, self.error = code, error
        self.loop.quit()


def _settle(milliseconds: int) -> None:
    """Run the event loop for a moment so pending layouts and repaints finish."""
    loop = QEventLoop()
    QTimer.singleShot(milliseconds, loop.quit)
    loop.exec()


def take_snapshot(window: MainWindow, path: Path, timeout_s: float, wants_edit: bool) -> int:
    """Show the window, wait for the edited result, save `window.grab()` to `path`, close."""
    window.remember_layout = False
    width, height = SNAPSHOT_SIZE
    if QGuiApplication.platformName() != "offscreen":  # a real screen: never larger than it,
        screen = window.available_geometry()  # so a laptop's shows the window as it is there
        width, height = min(width, screen.width()), min(height, screen.height())
        window.move(screen.topLeft())
    window.resize(width, height)
    window.show()
    waiter = _SnapshotWaiter(window, wants_edit, timeout_s)
    try:
        waiter.loop.exec()
        if waiter.code == 0:
            window.plots.redraw()
            _settle(SETTLE_MS)  # plot axes size themselves to their labels over two layout passes
            image = window.grab().toImage()
            path.parent.mkdir(parents=True, exist_ok=True)
            from faceedit.media.images import save_png
            from faceedit.ui.widgets.image_view import qimage_to_array

            save_png(path, qimage_to_array(image))
            print(f"faceedit: saved a snapshot of the window to {path}")
    finally:
        window.document.mark_saved()  # the command line's edit, not the user's: never ask
        window.close()
    if waiter.code != 0:
        print(f"faceedit: snapshot failed: {waiter.error}", file=sys.stderr)
    return waiter.code
