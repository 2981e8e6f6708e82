"""Console entry points: `faceedit [IMAGE_OR_VIDEO] [options]` opens the app; subcommands do the rest.

Each subcommand lives in its own module exposing `add_arguments(parser)` and `run(args) -> int`;
modules are imported only when their command runs, so `faceedit --help` stays instant and the
app's start does not pay for the benchmark's imports.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Mapping, Sequence
from typing import Final

from faceedit.errors import FaceEditError

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
    module = importlib.import_module(module_name)
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return int(module.run(args) or 0)
    except FaceEditError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


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
