"""Loading a model must not import torch's compiler: 1.3 s of imports under Python's global lock,
which froze the window whenever its worker thread loaded a checkpoint."""

from __future__ import annotations

import subprocess
import sys

import pytest

from faceedit.media.bundled import bundled_path

LOAD_THEN_LIST = """
import sys

import pytest
from faceedit.inference.engine import EditEngine
EditEngine.load(sys.argv[1], "cpu", precision="auto")
print("torch._dynamo" in sys.modules, "sympy" in sys.modules)
"""


@pytest.mark.slow
def test_loading_a_model_imports_no_compiler() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOAD_THEN_LIST, str(bundled_path("demo"))],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert done.stdout.split() == ["False", "False"], done.stderr
