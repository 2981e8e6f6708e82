"""Never lose work: a SIGKILLed run resumes bit for bit, a kill mid-checkpoint keeps the previous
one, a non-finite loss stops the run with the last good checkpoint, and the data position is
part of the state."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import trainer.stages.losses
from faceedit.errors import TrainingError
from faceedit.weights import checkpoint
from tests.trainer.fixtures import AffectNetRow, write_affectnet, write_celebamask_hq
from tests.trainer.stages.test_stages import FAST, one_thread  # noqa: F401 (an autouse fixture)
from trainer.commands.cli import main
from trainer.commands.common import RESUME_AUTO, RESUME_YES, settle_resume
from trainer.stages.distributed import DistInfo
from trainer.stages.loop import STEP_DELAY_ENV, EndlessLoader
from trainer.stages.preemption import EXIT_REQUEUE
from trainer.stages.state import SLOW_WRITE_ENV, load_state, save_state

ROOT = Path(__file__).resolve().parents[3]
KILL_TIMEOUT_S = 120


@pytest.fixture
def deterministic() -> Iterator[None]:
    """`--deterministic` switches a process-wide torch flag: switch it back afterwards."""
    yield
    torch.use_deterministic_algorithms(False)


def run_cli(*argv: Any) -> int:
    return main([str(a) for a in argv])


def start_cli(*argv: Any, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`faceedit-train ...` in a real child process, with this process's thread count."""
    full_env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()), **env}
    return subprocess.Popen(
        [sys.executable, "-m", "trainer.commands.cli", *map(str, argv)],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for(condition: Any, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + KILL_TIMEOUT_S
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {process.stderr.read().decode()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def saved_step(run: Path) -> int:
    try:
        return int(torch.load(run / "state.pt", weights_only=True)["step"])
    except (FileNotFoundError, RuntimeError, EOFError):
        return -1


def assert_same_state(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["step"] == b["step"]
    assert a["loaders"] == b["loaders"]
    for name, module in a["stage"]["modules"].items():
        other = b["stage"]["modules"][name]
        different = [k for k in module if not torch.equal(module[k], other[k])]
        assert not different, f"{name}: {len(different)} tensors differ, e.g. {different[:3]}"
    for name, opt in a["stage"]["optimizers"].items():
        for index, values in opt["state"].items():
            for key, value in values.items():
                assert torch.equal(value, b["stage"]["optimizers"][name]["state"][index][key])


@pytest.fixture
def gan_inputs(tmp_path: Path, tiny_parser: Path) -> dict[str, Path]:
    """16 AffectNet faces (4 batches an epoch, so 6 steps cross an epoch) and a tiny parser."""
    rows = [AffectNetRow(path=f"a/f{i}.jpg", expression=i % 8) for i in range(16)]
    write_affectnet(tmp_path / "affectnet", rows)
    return {"affectnet": tmp_path / "affectnet", "parser": tiny_parser}


def gan_args(inputs: dict[str, Path], out: Path) -> list[Any]:
    return [
        "gan",
        "--affectnet",
        inputs["affectnet"],
        "--parser",
        inputs["parser"],
        *FAST,
        "--steps",
        6,
        "--checkpoint-every",
        1,
        "--deterministic",
        "--set",
        "gan_optim.n_critic=2",
        "--out",
        out,
    ]


@pytest.mark.slow
def test_a_sigkilled_run_resumes_exactly(
    gan_inputs: dict[str, Path], tmp_path: Path, deterministic: None
) -> None:
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert run_cli(*gan_args(gan_inputs, straight)) == 0

    process = start_cli(*gan_args(gan_inputs, killed), env={STEP_DELAY_ENV: "0.5"})
    wait_for(lambda: saved_step(killed) >= 3, process, "the step-3 checkpoint")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    stopped_at = saved_step(killed)
    assert 3 <= stopped_at < 6, "the kill did not land mid-run"

    assert run_cli("gan", "--out", killed, "--resume") == 0
    expected, resumed = load_state(straight / "state.pt"), load_state(killed / "state.pt")
    assert resumed["loaders"]["expressions"]["epoch"] == 1  # the run crossed an epoch
    assert_same_state(expected, resumed)
    a, b = (
        checkpoint.load(straight / "model.safetensors"),
        checkpoint.load(killed / "model.safetensors"),
    )
    for part in ("generator", "discriminator", "parser"):
        sa, sb = getattr(a, part).state_dict(), getattr(b, part).state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), part


@pytest.mark.slow
def test_sigterm_saves_the_state_and_the_same_command_continues_exactly(
    gan_inputs: dict[str, Path], tmp_path: Path, deterministic: None
) -> None:
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert run_cli(*gan_args(gan_inputs, straight)) == 0
    # One command for a requeued job: no state yet, so `--resume auto` starts the run; with
    # checkpoints only at the end, any state mid-run is the one SIGTERM made.
    command = [
        *gan_args(gan_inputs, stopped),
        *("--checkpoint-every", 100, "--resume", "auto"),
    ]
    process = start_cli(*command, env={STEP_DELAY_ENV: "0.5"})
    wait_for(lambda: (stopped / "tensorboard").is_dir(), process, "the first step")
    time.sleep(1.0)
    os.kill(process.pid, signal.SIGTERM)
    _, stderr = process.communicate(timeout=KILL_TIMEOUT_S)
    assert process.returncode == EXIT_REQUEUE, stderr.decode()
    stopped_at = saved_step(stopped)
    assert 1 <= stopped_at < 6, "SIGTERM did not land mid-run"
    assert f"stopped by SIGTERM at step {stopped_at} of 6" in stderr.decode()
    assert (stopped / "model.safetensors").is_file()

    assert run_cli(*command) == 0  # the same command again: it continues
    assert_same_state(load_state(straight / "state.pt"), load_state(stopped / "state.pt"))


def test_resume_auto_continues_only_where_a_state_was_saved(tmp_path: Path) -> None:
    def settled(resume: str | None, out: Path) -> bool:
        return settle_resume(argparse.Namespace(resume=resume, out=str(out)))

    assert not settled(RESUME_AUTO, tmp_path / "new")  # nothing saved: a fresh run
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "state.pt").write_bytes(b"")
    assert settled(RESUME_AUTO, tmp_path / "old")
    assert settled(RESUME_YES, tmp_path / "new") and not settled(None, tmp_path / "old")


@pytest.mark.slow
def test_a_kill_during_a_checkpoint_write_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    write_celebamask_hq(tmp_path / "celeb", range(20))
    out = tmp_path / "run"
    args = ["parser", "--celebamask-hq", tmp_path / "celeb", *FAST, "--steps", 4]
    process = start_cli(*args, "--checkpoint-every", 1, "--out", out, env={SLOW_WRITE_ENV: "2"})

    def second_write_in_progress() -> bool:
        return saved_step(out) == 1 and any(out.glob(".state.pt.*.tmp"))

    wait_for(second_write_in_progress, process, "the second checkpoint write")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert list(out.glob(".state.pt.*.tmp")), "the kill should have left the half-written file"
    assert load_state(out / "state.pt")["step"] == 1  # the previous checkpoint, intact
    checkpoint.load(out / "parser.safetensors")

    assert run_cli("parser", "--out", out, "--resume") == 0
    assert load_state(out / "state.pt")["step"] == 4
    assert not list(out.glob(".*.tmp")), "resume cleans up what the kill left behind"


def test_a_failed_state_write_leaves_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.pt"
    save_state(path, {"step": 1, "weights": torch.arange(4)})

    def broken_save(obj: Any, file: Any) -> None:
        Path(file).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr("trainer.stages.state.torch.save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_state(path, {"step": 2, "weights": torch.zeros(4)})
    monkeypatch.undo()
    state = torch.load(path, weights_only=True)  # not a whole training state: no load_state
    assert state["step"] == 1 and torch.equal(state["weights"], torch.arange(4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.pt"]


def test_a_damaged_state_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "state.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="damaged"):
        load_state(tmp_path / "state.pt")
    with pytest.raises(TrainingError, match="--resume"):
        load_state(tmp_path / "missing.pt")


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_celebamask_hq(tmp_path / "celeb", range(20))
    real_ohem = trainer.stages.losses.ohem_cross_entropy
    calls = {"n": 0}

    def ohem_with_a_nan(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls["n"] += 1  # one call per step: the tiny UNet has no auxiliary heads
        loss = real_ohem(*args, **kwargs)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(trainer.stages.losses, "ohem_cross_entropy", ohem_with_a_nan)
    out = tmp_path / "run"
    code = run_cli(
        "parser",
        "--celebamask-hq",
        tmp_path / "celeb",
        *FAST,
        "--steps",
        5,
        "--checkpoint-every",
        1,
        "--out",
        out,
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "parser/ohem" in err and "step 3" in err and "Traceback" not in err
    state = load_state(out / "state.pt")
    assert state["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["stage"]["modules"]["parser"].values())
    checkpoint.load(out / "parser.safetensors")


def test_resume_continues_only_the_same_experiment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_celebamask_hq(tmp_path / "celeb", range(20))
    out = tmp_path / "run"
    assert (
        run_cli("parser", "--celebamask-hq", tmp_path / "celeb", *FAST, "--steps", 1, "--out", out)
        == 0
    )
    assert run_cli("parser", "--out", out, "--resume", "--set", "parser_optim.lr=0.5") == 2
    assert "parser_optim.lr" in capsys.readouterr().err
    assert run_cli("gan", "--out", out, "--resume") == 2
    assert "faceedit-train parser --resume" in capsys.readouterr().err
    assert run_cli("parser", "--out", out, "--resume", "--steps", 2) == 0  # a longer run is fine
    assert load_state(out / "state.pt")["step"] == 2
    assert run_cli("parser", "--out", tmp_path / "never-ran", "--resume") == 2
    assert "no training state" in capsys.readouterr().err


class _Numbers(torch.utils.data.Dataset):
    """Item i is (i, epoch * 1000 + i): shows which sample and which epoch's augmentation."""

    def __init__(self, size: int) -> None:
        self.size, self.epoch = size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> tuple[int, int]:
        return i, self.epoch * 1000 + i


def _batches(loader: EndlessLoader, count: int) -> list[list[int]]:
    return [next(loader)[1].tolist() for _ in range(count)]


def test_the_data_position_restores_the_same_batches() -> None:
    info = DistInfo(0, 1, 0, torch.device("cpu"))
    straight = EndlessLoader(_Numbers(10), 3, seed=5, info=info)  # 3 batches an epoch
    expected = _batches(straight, 8)
    first = EndlessLoader(_Numbers(10), 3, seed=5, info=info)
    head = _batches(first, 4)
    position = first.state_dict()
    assert position == {"epoch": 1, "index": 1}
    resumed = EndlessLoader(_Numbers(10), 3, seed=5, info=info)
    resumed.load_state_dict(position)
    assert head + _batches(resumed, 4) == expected
    assert expected[0] != expected[3], "each epoch has its own order"
    assert all(v >= 1000 for batch in expected[3:6] for v in batch), "epoch-1 augmentations"
