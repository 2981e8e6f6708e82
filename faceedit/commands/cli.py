"""Console entry points: `faceedit [IMAGE_OR_VIDEO] [options]` opens the app; subcommands do the rest.

Each subcommand lives in its own module exposing `add_arguments(parser)` and `run(args) -> int`;
modules are imported only when their command runs, so `faceedit --help` stays instant and the
app's start does not pay for the benchmark's imports.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import Final

from faceedit.errors import FaceEditError
from faceedit.fileio import ENVIRONMENT_ERRNOS, reason

# name -> (module, one-line help)
COMMANDS: Final[dict[str, tuple[str, str]]] = {
    "edit": (
        "faceedit.commands.edit",
        "edit an image, a folder of images or a video without the window",
    ),
    "import-parser": (
        "faceedit.commands.import_parser",
        "convert a face-parsing.PyTorch 79999_iter.pth into a faceedit checkpoint",
    ),
    "bench": (
        "faceedit.commands.bench",
        "measure every stage's latency and throughput against its floor",
    ),
}
APP_MODULE: Final[str] = "faceedit.ui.app"
# Set (to anything but "" or "0") to print the traceback of an unexpected error, like --debug.
DEBUG_ENV: Final[str] = "FACEEDIT_DEBUG"
DEBUG_FLAG: Final[str] = "--debug"
EXIT_ERROR: Final[int] = 2  # bad input, a refused file, an unwritable output
EXIT_UNEXPECTED: Final[int] = 70  # EX_SOFTWARE: a fault of faceedit, not of the input
EXIT_INTERRUPTED: Final[int] = 130


def run_command(
    prog: str,
    description: str,
    commands: Mapping[str, tuple[str, str]],
    argv: Sequence[str],
    default_module: str | None = None,
) -> int:
    """Dispatch argv to a subcommand module (or the default one) and turn errors into messages."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    argv = list(argv)
    epilog = _epilog(prog, commands)
    if argv and argv[0] in commands:
        module_name, help_text = commands[argv[0]]
        parser = argparse.ArgumentParser(prog=f"{prog} {argv[0]}", description=help_text)
        argv = argv[1:]
    elif default_module is not None:
        module_name = default_module
        parser = argparse.ArgumentParser(
            prog=prog,
            description=description,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    else:
        wants_help = bool(argv) and argv[0] in ("-h", "--help")
        stream = sys.stdout if wants_help else sys.stderr
        if argv and not wants_help:
            print(f"{prog}: unknown command {argv[0]!r}", file=stream)
        print(f"usage: {prog} COMMAND [options]\n\n{description}\n\n{epilog}", file=stream)
        return 0 if wants_help else 2
    debug = debug_requested(argv)
    try:
        module = importlib.import_module(module_name)
        module.add_arguments(parser)
        parser.add_argument(
            DEBUG_FLAG,
            action="store_true",
            help=f"print the traceback of an unexpected error (or set {DEBUG_ENV}=1)",
        )
        args = parser.parse_args(argv)
        return int(module.run(args) or 0)
    except FaceEditError as error:
        # An error may name its own status (a preempted training run: "requeue me").
        code = int(getattr(error, "exit_code", EXIT_ERROR))
        print(f"{prog}: {'error: ' if code == EXIT_ERROR else ''}{error}", file=sys.stderr)
        if debug:
            traceback.print_exc()
        return code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as error:
        if error.errno not in ENVIRONMENT_ERRNOS:
            return _unexpected(prog, error, debug)
        where = f"{error.filename}: " if error.filename else ""
        print(f"{prog}: error: {where}{reason(error)}", file=sys.stderr)
        if debug:
            traceback.print_exc()
        return EXIT_ERROR
    except Exception as error:  # the crash-proof top level: one line, never a bare traceback
        return _unexpected(prog, error, debug)


def _unexpected(prog: str, error: Exception, debug: bool) -> int:
    print(f"{prog}: error: {describe_unexpected(error)}", file=sys.stderr)
    if debug:
        traceback.print_exc()
    else:
        print(
            f"{prog}: run again with {DEBUG_FLAG} (or {DEBUG_ENV}=1) for the traceback",
            file=sys.stderr,
        )
    return EXIT_UNEXPECTED


def debug_requested(argv: Sequence[str]) -> bool:
    """--debug anywhere on the command line, or FACEEDIT_DEBUG set: tracebacks are printed."""
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def describe_unexpected(error: BaseException) -> str:
    """One line for an exception faceedit did not anticipate, naming a file where one is known."""
    if isinstance(error, MemoryError):
        return (
            "out of memory; the input or a setting asks for more than this machine has "
            "(a smaller --batch-size, image or model)"
        )
    if isinstance(error, OSError):
        from faceedit.fileio import reason

        names = [str(n) for n in (error.filename, error.filename2) if n is not None]
        return f"{' -> '.join(names) + ': ' if names else ''}{reason(error)}"
    if isinstance(error, RecursionError):
        return "the input is nested too deeply to process"
    text = " ".join(str(error).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"unexpected {type(error).__name__}" + (f": {text}" if text else "")


def _epilog(prog: str, commands: Mapping[str, tuple[str, str]]) -> str:
    lines = ["commands:"] + [
        f"  {name:<15} {help_text}" for name, (_, help_text) in commands.items()
    ]
    lines.append(f"\nRun '{prog} COMMAND --help' for a command's options.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """`faceedit`: the desktop app, or one of the subcommands in COMMANDS."""
    return run_command(
        "faceedit",
        "Open the faceedit window on an image, a video or a camera (the bundled sample by default).",
        COMMANDS,
        sys.argv[1:] if argv is None else argv,
        default_module=APP_MODULE,
    )


if __name__ == "__main__":
    sys.exit(main())
