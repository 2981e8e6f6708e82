"""The section registry: the built-in sections by name, and those that plug-ins provide.

A plug-in is an entry point in the group `faceedit.bench_sections` whose name is one of
SECTIONS and whose object is a callable taking a `faceedit.bench_plugins.SectionContext` (the
bench's Context satisfies it; mypy checks that in `load_plugin`). The trainer provides `training` this
way (trainer.stages.throughput:section_training), so faceedit never imports the trainer (docs/architecture.md §2:
trainer -> faceedit, never the reverse), and a faceedit without the trainer still runs every
other section and says in one note why `training` was skipped.

Entry points are read from the installed package metadata, which an editable install writes
when it is (re)installed (scripts/setup.sh reinstalls whenever pyproject.toml changes), and, for a
name the metadata lacks, from the source checkout's own pyproject.toml: a checkout run with
PYTHONPATH and no install (a GPU server's own PyTorch, say) still finds the trainer's sections.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Final

from faceedit.bench_plugins import SectionContext
from faceedit.commands.bench.baseline import section_baseline
from faceedit.commands.bench.context import Context
from faceedit.commands.bench.optimizations import section_optimizations
from faceedit.commands.bench.parse import section_parse
from faceedit.commands.bench.settings import SECTIONS
from faceedit.commands.bench.slider import section_slider
from faceedit.commands.bench.stages import section_stages
from faceedit.commands.bench.video import section_pipeline

SectionFunction = Callable[[Context], None]
# What a plug-in provides: it sees the bench's context only through the plug-in contract.
PluginFunction = Callable[[SectionContext], None]

PLUGIN_GROUP: Final[str] = "faceedit.bench_sections"
BUILTIN_SECTIONS: Final[dict[str, SectionFunction]] = {
    "stages": section_stages,
    "parse": section_parse,
    "baseline": section_baseline,
    "slider": section_slider,
    "optimizations": section_optimizations,
    "pipeline": section_pipeline,
}
# The sections only a plug-in can run, in SECTIONS order: ("training",).
PLUGIN_SECTIONS: Final[tuple[str, ...]] = tuple(n for n in SECTIONS if n not in BUILTIN_SECTIONS)


def section_functions(names: Sequence[str]) -> dict[str, SectionFunction]:
    """Each requested section's function, plug-ins loaded now (once per run, not per device).

    A plug-in that is not found or does not load becomes a function that records why it was
    skipped, so the run goes on, as it does for other missing pieces.
    """
    needs_plugins = any(n not in BUILTIN_SECTIONS for n in names)
    found = plugin_entry_points() if needs_plugins else {}
    out: dict[str, SectionFunction] = {}
    for name in names:
        builtin = BUILTIN_SECTIONS.get(name)
        out[name] = builtin if builtin is not None else load_plugin(name, found.get(name))
    return out


def plugin_entry_points(
    group: str = PLUGIN_GROUP, checkout: Path | None = None
) -> dict[str, metadata.EntryPoint]:
    """Entry points of `group` by name: the installed ones, then the source checkout's own."""
    installed = _by_name(metadata.entry_points(group=group))
    return {**checkout_entry_points(group, checkout), **installed}


def checkout_entry_points(
    group: str = PLUGIN_GROUP, checkout: Path | None = None
) -> dict[str, metadata.EntryPoint]:
    """The entry points of `group` declared in the pyproject.toml beside the faceedit package,
    when faceedit runs from a source checkout; none for an installed wheel (no such file)."""
    root = checkout or Path(__file__).resolve().parents[3]
    try:
        with (root / "pyproject.toml").open("rb") as file:
            project = tomllib.load(file).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    if project.get("name") != "faceedit":
        return {}  # some other project's file above an installed faceedit
    table = project.get("entry-points", {}).get(group, {})
    return {
        name: metadata.EntryPoint(name=name, value=value, group=group)
        for name, value in table.items()
        if isinstance(name, str) and isinstance(value, str)
    }


def load_plugin(name: str, entry_point: metadata.EntryPoint | None) -> SectionFunction:
    """The plug-in's section function, or a stand-in that notes in one line why it is missing."""
    if entry_point is None:
        return _skipped(
            f"{name}: no plug-in provides this section (entry point {name!r} in group "
            f"{PLUGIN_GROUP!r}, installed with the trainer package: reinstall with "
            "'bash scripts/setup.sh' or 'pip install -e .'); skipped"
        )
    try:
        function = entry_point.load()
    except (ImportError, AttributeError) as error:
        reason = f"{type(error).__name__}: {error}".replace("\n", " ")
        return _skipped(
            f"{name}: the plug-in {entry_point.value} does not load ({reason}); skipped"
        )
    if not callable(function):
        return _skipped(f"{name}: the plug-in {entry_point.value} is not callable; skipped")
    section: PluginFunction = function
    return section  # a Context is a SectionContext: mypy checks the bench keeps the contract


def _by_name(entry_points: Iterable[metadata.EntryPoint]) -> dict[str, metadata.EntryPoint]:
    """First entry point of each name (a name given twice is a packaging mistake, not a choice)."""
    out: dict[str, metadata.EntryPoint] = {}
    for entry_point in entry_points:
        out.setdefault(entry_point.name, entry_point)
    return out


def _skipped(note: str) -> SectionFunction:
    """A section that only records `note`, once per device, as the bench does for other gaps."""

    def note_skip(ctx: Context) -> None:
        ctx.report.notes.append(note)

    return note_skip
