"""A trainer whose disk fills says so in one line (exit 2) and keeps the last good state.

torch.save reports a full disk as RuntimeError("[enforce fail at inline_container.cc] ...
unexpected pos"), which once reached the user as "a fault of faceedit" (exit 70).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tests.trainer.stages.test_hostile_state import files, resume
from tests.trainer.stages.test_stages import one_thread  # noqa: F401 (an autouse fixture)
from trainer.stages import state as state_module
from trainer.stages.state import save_state


def fill(folder: Path, leave: int) -> None:
    """Fill the disk holding `folder` until about `leave` bytes are free."""
    free = shutil.disk_usage(folder).free
    (folder / "filler.bin").write_bytes(b"\0" * max(0, free - leave))


def test_a_state_that_cannot_fit_is_refused_before_writing(small_disk: Path) -> None:
    target = small_disk / "state.pt"
    save_state(target, {"w": torch.zeros(10)})
    before = target.read_bytes()
    with pytest.raises(OSError, match=r"state\.pt: cannot be written: no space left"):
        save_state(target, {"w": torch.zeros(2**20)})  # 4 MB on a 2 MB disk
    assert target.read_bytes() == before


def test_torch_saves_failing_on_a_full_disk_are_no_space_errors(
    small_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = small_disk / "state.pt"
    save_state(target, {"w": torch.zeros(10)})
    before = target.read_bytes()
    fill(small_disk, 64 * 1024)
    # Past the early check (as when another writer fills the disk during the save):
    monkeypatch.setattr(state_module, "require_free_space", lambda *args: None)
    with pytest.raises(OSError, match=r"state\.pt: cannot be written: no space left"):
        save_state(target, {"w": torch.zeros(200_000)})  # 800 KB into 64 KB
    assert target.read_bytes() == before
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler.bin", "state.pt"]


def test_a_resumed_run_on_a_full_disk_exits_2_with_one_line_and_keeps_its_state(
    runs: dict[str, Path], small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = small_disk / "run"
    try:
        shutil.copytree(runs["parser_run"], run, ignore=shutil.ignore_patterns("events.*"))
    except OSError:
        pytest.skip("the tiny parser run does not fit the small disk")
    fill(small_disk, 16 * 1024)
    before = files(run)
    capsys.readouterr()
    assert resume(run) == 2
    err = capsys.readouterr().err
    assert "no space left" in err and "Traceback" not in err, err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert errors == [err.strip().splitlines()[-1]], err  # one error line, the last
    assert files(run)["state.pt"] == before["state.pt"]
