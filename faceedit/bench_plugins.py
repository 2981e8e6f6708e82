"""What a `faceedit bench` section provided by another package receives (the plug-in contract).

A plug-in section is an entry point in the group `faceedit.bench_sections` (pyproject.toml)
whose object is a callable taking a `SectionContext`; the trainer's `training` section is one
(trainer/stages/throughput.py). The bench passes its own context (faceedit/commands/bench/
context.py), which mypy checks against these protocols where the plug-in is loaded, so a
plug-in depends on this module and faceedit/timing.py only, never on the command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import torch


class SectionSettings(Protocol):
    """The bench's settings a plug-in section may read."""

    @property
    def quick(self) -> bool: ...

    @property
    def repeats(self) -> int: ...

    @property
    def training_presets(self) -> tuple[str, ...]: ...

    @property
    def train_batch(self) -> int: ...


class SectionReport(Protocol):
    """The parts of the bench's report a plug-in section fills: rows of its own tables, notes,
    and the machine description (read only)."""

    @property
    def training(self) -> list[dict[str, Any]]: ...

    @property
    def training_data(self) -> list[dict[str, Any]]: ...

    @property
    def training_consumption(self) -> list[dict[str, Any]]: ...

    @property
    def notes(self) -> list[str]: ...

    @property
    def machine(self) -> dict[str, Any]: ...


class SectionContext(Protocol):
    """One device's run of the bench, as a plug-in section sees it."""

    @property
    def settings(self) -> SectionSettings: ...

    @property
    def report(self) -> SectionReport: ...

    @property
    def device(self) -> torch.device: ...

    @property
    def dev(self) -> str: ...
