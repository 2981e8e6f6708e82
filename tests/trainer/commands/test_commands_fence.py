"""The trainer's command modules only parse arguments: the training and judging live in
trainer/stages/ and trainer/judges/, so no command imports another (except the shared flags in
common and the entry point cli), and stages and judges never import a command."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
COMMANDS = ROOT / "trainer" / "commands"
PACKAGES = frozenset({"trainer", "trainer.commands"})
SHARED = frozenset({"trainer.commands.common", "trainer.commands.cli"})


def imported(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (lazy imports in functions included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            if node.module in PACKAGES:  # `from trainer.commands import gan` imports a module
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def command_imports(path: Path) -> list[str]:
    """The trainer.commands modules `path` imports, other than itself and the shared ones."""
    own = f"trainer.commands.{path.stem}"
    return sorted(
        f"{path.name} imports {name}"
        for name in imported(path)
        if name.startswith("trainer.commands.") and name not in SHARED and name != own
    )


def test_no_command_module_imports_another() -> None:
    files = sorted(COMMANDS.glob("*.py"))
    assert len(files) > 5
    assert [line for path in files for line in command_imports(path)] == []


@pytest.mark.parametrize("package", ["stages", "judges", "data", "recipes", "research", "world"])
def test_stages_and_judges_never_import_a_command(package: str) -> None:
    files = sorted((ROOT / "trainer" / package).rglob("*.py"))
    assert files
    found = sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in imported(path)
        if name == "trainer.commands" or name.startswith("trainer.commands.")
    )
    assert found == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from trainer.commands.gan import GanStage\n", ["bad.py imports trainer.commands.gan"]),
        ("from trainer.commands import evaluate\n", ["bad.py imports trainer.commands.evaluate"]),
        (
            "def lazy():\n    import trainer.commands.joint\n",
            ["bad.py imports trainer.commands.joint"],
        ),
        ("from trainer.commands.common import resolve_config\n", []),
    ],
)
def test_the_fence_catches_an_offender(tmp_path: Path, source: str, expected: list[str]) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(source)
    assert command_imports(bad) == expected
