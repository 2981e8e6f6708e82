"""Background compilation in a child process (compile_process): the real compile, a refused
file, cancelling. The in-process path, with stand-in compilers, is in test_engine_speed.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from faceedit.inference.engine import EditEngine
from tests.inference.test_engine import crop_of

ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter, so what the compile imported into the app's process is visible.
COMPILE_AND_EDIT = """
import json, sys
import numpy as np
from faceedit.inference.engine import EditEngine
from tests.inference.test_engine import crop_of

engine = EditEngine.load(sys.argv[1], "cpu")
crop = crop_of(32, seed=10)
before = engine.edit(crop, {"happy": 1})
assert engine.start_background_compile()
status = engine.wait_for_compile(300)
engine.clear_cache()
after = engine.edit(crop, {"happy": 1})
compiler = ("torch._dynamo.convert_frame", "torch._inductor.compile_fx", "torch._inductor.graph")
print(json.dumps({
    "state": status.state,
    "message": status.message,
    "difference": int(np.abs(after.crop.astype(int) - before.crop.astype(int)).max()),
    "attention": float(np.abs(after.attention - before.attention).max()),
    "compiled_calls": [wrapper.compiled_calls for wrapper in engine._compiling],
    "compiler_here": [name for name in compiler if name in sys.modules],
    "folder_left": __import__("os").path.exists(engine._child.job.folder),
}))
"""


@pytest.mark.slow
def test_compiles_in_a_child_process_and_edits_as_eagerly(tiny_model: Path, tmp_path: Path) -> None:
    """The real compiler (torch.export + AOTInductor) on the tiny model: 30-40 s on two cores."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"),  # cold, as on a first start
    }
    result = subprocess.run(
        [sys.executable, "-c", COMPILE_AND_EDIT, str(tiny_model)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["state"] == "ready", report["message"]
    assert report["compiled_calls"][0] >= 1 and report["compiled_calls"][1] >= 1
    assert report["difference"] <= 1, "compiled networks edit as the eager ones (float32 rounding)"
    assert report["attention"] <= 1e-4
    # The compiler ran in the child: its objects never reached this process's lock and collector.
    assert report["compiler_here"] == []
    assert not report["folder_left"], "the compiled libraries' folder is removed once loaded"


def test_a_file_changed_since_loading_is_not_compiled(
    tiny_model: Path, tiny_parser: Path, tmp_path: Path
) -> None:
    path = tmp_path / "model.safetensors"
    shutil.copyfile(tiny_model, path)
    engine = EditEngine.load(path, "cpu")
    crop = crop_of(32, seed=3)
    before = engine.edit(crop, {"sad": 1}).crop
    shutil.copyfile(tiny_parser, path)  # another model under the same name
    assert engine.start_background_compile()
    status = engine.wait_for_compile(120)
    assert status.state == "failed", status.message
    assert "uncompiled" in status.message and "changed since the app loaded it" in status.message
    assert engine._child is not None and not Path(engine._child.job.folder).exists()
    engine.clear_cache()
    assert (engine.edit(crop, {"sad": 1}).crop == before).all()
    assert all(wrapper.compiled_calls == 0 for wrapper in engine._compiling)


def test_stopping_ends_the_child_at_once(tiny_model: Path) -> None:
    engine = EditEngine.load(tiny_model, "cpu")
    assert engine.start_background_compile()
    engine.stop_background_compile()
    status = engine.wait_for_compile(60)
    assert status.state == "failed" and "cancelled" in status.message
    child = engine._child
    assert child is not None
    assert child._process is None or child._process.poll() is not None, "the child is gone"
    assert engine.edit(crop_of(32), {"happy": 1}).crop.shape == (32, 32, 3)


def test_the_child_reads_the_file_only_when_it_holds_the_engines_networks(
    tiny_model: Path,
) -> None:
    from faceedit.commands.bench.fixtures import random_checkpoint
    from faceedit.inference.engine import _file_holds
    from faceedit.inference.optimize import with_parser_resolution
    from faceedit.weights import checkpoint

    loaded = checkpoint.load(tiny_model)
    assert _file_holds(loaded)
    # Otherwise the engine writes its own networks for the child (a copy in the job's folder).
    other = loaded.config.parser.resolution * 2
    assert not _file_holds(with_parser_resolution(loaded, other))
    assert not _file_holds(random_checkpoint(loaded.config, "tiny"))
