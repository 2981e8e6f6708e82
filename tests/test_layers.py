"""The layers in DESIGN.md section 4: core and model never import Qt, the UI never imports torch."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QT_MODULES = ("PySide6", "pyqtgraph", "shiboken6")
TORCH_MODULES = ("torch", "facenet_pytorch", "torchvision", "safetensors.torch")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def offenders(files: list[Path], banned: tuple[str, ...]) -> list[str]:
    found = []
    for path in files:
        for module in imported_modules(path):
            if any(module == b or module.startswith(b + ".") for b in banned):
                found.append(f"{path.relative_to(ROOT)} imports {module}")
    return found


def python_files(*parts: str) -> list[Path]:
    base = ROOT.joinpath(*parts)
    return sorted(base.rglob("*.py")) if base.is_dir() else [base]


def test_non_ui_modules_never_import_qt() -> None:
    non_ui = [
        p for p in python_files("faceedit") if "ui" not in p.relative_to(ROOT / "faceedit").parts
    ]
    assert non_ui, "no faceedit modules found"
    assert offenders(non_ui + python_files("trainer"), QT_MODULES) == []


def test_ui_never_imports_torch() -> None:
    assert offenders(python_files("faceedit", "ui"), TORCH_MODULES) == []


def test_trainer_never_imports_the_ui() -> None:
    assert offenders(python_files("trainer"), ("faceedit.ui",)) == []


def test_faceedit_never_imports_the_trainer() -> None:
    """trainer -> faceedit only: the bench reaches training throughput through an entry point."""
    assert offenders(python_files("faceedit"), ("trainer",)) == []


def test_model_package_does_no_io_or_ui() -> None:
    banned = ("faceedit.ui", "faceedit.inference.engine", "faceedit.weights.checkpoint", "cv2", "trainer")
    assert offenders(python_files("faceedit", "model"), banned) == []


@pytest.mark.parametrize(
    ("source", "banned", "expected"),
    [
        ("from PySide6.QtCore import QThread\n", QT_MODULES, "bad.py imports PySide6.QtCore"),
        # A lazy import inside a function, as the bench once reached the trainer.
        ("def lazy():\n    from trainer import steps\n", ("trainer",), "bad.py imports trainer"),
    ],
)
def test_the_checker_itself_catches_an_offender(
    tmp_path: Path, source: str, banned: tuple[str, ...], expected: str
) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(source)
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert offenders([bad], banned) == [expected]
    finally:
        ROOT = saved
