"""A NaN or infinite loss stops the run (trainer/stages/nonfinite.py): "immediate" in the phase
it happens, as ever; "deferred" at the next logging step or checkpoint, with no host read per
phase, naming the loss and the step, and with nothing saved from that step on. Both train alike."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch.multiprocessing.spawn import spawn

import trainer.stages.losses
from faceedit.errors import TrainingError
from faceedit.weights import checkpoint
from tests.trainer.conftest import one_thread
from tests.trainer.fixtures import write_celebamask_hq
from tests.trainer.stage_runs import FAST, train
from tests.trainer.stages.in_memory import CPU, IN_MEMORY_SETTINGS, stage_on_tensors
from trainer.config import NonFiniteCheck, default_config, merge
from trainer.stages import loop
from trainer.stages.distributed import DistInfo
from trainer.stages.gan import GanStage
from trainer.stages.nonfinite import NonFiniteGuard, resolve_check
from trainer.stages.run_log import NullLogger
from trainer.stages.state import load_state

NAN = torch.tensor(float("nan"))
needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="the host reads it removes are CUDA synchronisations"
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


def losses(**values: float) -> dict[str, torch.Tensor]:
    return {name: torch.tensor(value) for name, value in values.items()}


# ---------------------------------------------------------------------------- the guard


def test_auto_reads_on_the_host_on_the_cpu_and_defers_on_cuda() -> None:
    assert resolve_check("auto", torch.device("cpu")) == "immediate"
    assert resolve_check("auto", torch.device("cuda", 0)) == "deferred"
    assert resolve_check("immediate", torch.device("cuda")) == "immediate"
    assert resolve_check("deferred", torch.device("cpu")) == "deferred"


def test_immediate_stops_in_the_phase_before_backward() -> None:
    guard = NonFiniteGuard("immediate", CPU)
    assert float(guard.total(losses(a=1.0, b=2.0), step=0)) == 3.0
    with pytest.raises(TrainingError) as error:
        guard.total(losses(a=1.0, b=float("nan")), step=2)
    assert str(error.value) == (
        "non-finite loss b at step 3 (a=1, b=nan); stopping. The last checkpoint is kept: "
        "lower the learning rate or check the data, then --resume"
    )


def test_deferred_keeps_the_first_bad_step_until_the_check() -> None:
    guard = NonFiniteGuard("deferred", CPU)
    for step in range(2):
        guard.total(losses(**{"d/adv": 1.0, "d/gp": 0.5}), step)
    guard.check()  # all finite so far
    guard.total(losses(**{"d/adv": 1.0, "d/gp": float("inf")}), step=2)  # no error yet
    guard.total(losses(**{"g/adv": float("nan"), "g/cycle": 1.0}), step=2)
    guard.total(losses(**{"d/adv": float("nan"), "d/gp": 0.5}), step=3)
    with pytest.raises(TrainingError) as error:
        guard.check()
    message = str(error.value)
    assert message.startswith("non-finite loss d/gp at step 3 (d/adv=1, d/gp=inf); stopping.")
    assert "The weights after step 3 were not saved" in message
    assert "g/adv" not in message and "The last checkpoint is kept" in message


def test_a_sum_that_overflows_is_named_as_such() -> None:
    guard = NonFiniteGuard("immediate", CPU)
    with pytest.raises(TrainingError, match="non-finite sum of the losses at step 1;"):
        guard.total(losses(a=3e38, b=3e38), step=0)


# ---------------------------------------------------------------------------- whole runs


def parser_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, nan_at: int, *flags: Any
) -> tuple[int, int]:
    """A tiny parser run whose loss is NaN in step `nan_at` (1-based): (exit code, steps run)."""
    write_celebamask_hq(tmp_path / "celeb", range(20))
    real_ohem = trainer.stages.losses.ohem_cross_entropy
    calls = {"n": 0}

    def ohem_with_a_nan(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls["n"] += 1  # one call per step: the tiny UNet has no auxiliary heads
        loss = real_ohem(*args, **kwargs)
        return loss * NAN if calls["n"] == nan_at else loss

    monkeypatch.setattr(trainer.stages.losses, "ohem_cross_entropy", ohem_with_a_nan)
    argv = ["parser", "--celebamask-hq", tmp_path / "celeb", *FAST, "--steps", 8, *flags]
    code = train(*argv, "--set", f"nonfinite_check={mode}", "--out", tmp_path / "run")
    return code, calls["n"]


@pytest.mark.parametrize(
    ("mode", "stops_after", "unsaved"),
    [("immediate", 3, False), ("deferred", 4, True)],  # deferred: at step 4's checkpoint
)
def test_a_nan_stops_the_run_with_the_last_good_checkpoint(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mode: str,
    stops_after: int,
    unsaved: bool,
) -> None:
    flags = ("--checkpoint-every", 2, "--log-every", 8)
    code, steps_run = parser_run(tmp_path, monkeypatch, mode, 3, *flags)
    err = capsys.readouterr().err
    assert code == 2 and steps_run == stops_after
    assert "non-finite loss parser/ohem at step 3 (parser/ohem=nan)" in err
    assert ("The weights after step 3 were not saved" in err) == unsaved
    assert "Traceback" not in err
    state = load_state(tmp_path / "run" / "state.pt")
    assert state["step"] == 2
    assert all(torch.isfinite(v).all() for v in state["stage"]["modules"]["parser"].values())
    checkpoint.load(tmp_path / "run" / "parser.safetensors")


def test_deferred_stops_at_the_next_logging_step_before_any_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = ("--checkpoint-every", 8, "--log-every", 4)
    code, steps_run = parser_run(tmp_path, monkeypatch, "deferred", 2, *flags)
    assert code == 2 and steps_run == 4
    assert "parser/ohem at step 2" in capsys.readouterr().err
    assert not (tmp_path / "run" / "state.pt").exists()
    assert not (tmp_path / "run" / "parser.safetensors").exists()


# ---------------------------------------------------------------------------- gan stage


def gan_stage(mode: str, **settings: object) -> GanStage:
    config = merge(
        default_config("gan", "tiny"),
        {**IN_MEMORY_SETTINGS, "gan_optim.n_critic": 1, "nonfinite_check": mode, **settings},
    )
    return stage_on_tensors(config)


def test_both_checks_train_alike() -> None:
    logged, weights = {}, {}
    for mode in ("immediate", "deferred"):
        stage = gan_stage(mode)
        assert stage.guard.deferred == (mode == "deferred")
        torch.manual_seed(1)  # the gradient penalty's interpolation weights
        logged[mode] = [
            {k: float(v.detach()) for k, v in stage.train_step(step).items()} for step in range(3)
        ]
        weights[mode] = loop.weights_digest(stage.networks())
    assert logged["immediate"] == logged["deferred"]  # bit for bit: the same arithmetic
    assert weights["immediate"] == weights["deferred"]


@pytest.mark.parametrize(
    ("mode", "checked_after"),
    [
        ("deferred", [2, 4, 4]),  # logging steps 2 and 4, the checkpoint at 4
        ("immediate", [1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 4]),  # + the D and G phases of each step
    ],
)
def test_deferred_reads_the_flag_at_logging_steps_and_checkpoints_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, checked_after: list[int]
) -> None:
    stage = gan_stage(mode, steps=4, log_every=2, checkpoint_every=4, image_every=100)
    started: list[int] = []
    step = stage.train_step
    checked: list[int] = []
    check = NonFiniteGuard.check

    def counting_step(index: int) -> dict[str, torch.Tensor]:
        started.append(index)
        return step(index)

    def counting_check(guard: NonFiniteGuard) -> None:
        checked.append(len(started))
        check(guard)

    monkeypatch.setattr(stage, "train_step", counting_step)
    monkeypatch.setattr(NonFiniteGuard, "check", counting_check)
    loop.train(stage, stage.config, tmp_path, CPU, NullLogger())
    assert checked == checked_after


@needs_cuda
def test_a_deferred_phase_never_waits_for_the_gpu() -> None:
    cuda = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cuda"))
    named = {"a": torch.ones((), device="cuda"), "b": torch.full((), float("nan"), device="cuda")}
    deferred, immediate = NonFiniteGuard("deferred", cuda), NonFiniteGuard("immediate", cuda)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        deferred.total(named, step=0)
        with pytest.raises(RuntimeError, match="synchroniz"):
            immediate.total(named, step=0)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    with pytest.raises(TrainingError, match="loss b at step 1"):
        deferred.check()


# ---------------------------------------------------------------------------- torchrun


def _rank_checks(rank: int, world: int, store: str, mode: NonFiniteCheck, out: str) -> None:
    """One rank: its losses are NaN in step 2 on rank 1 only; it writes what stopped it."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    guard = NonFiniteGuard(mode, DistInfo(rank, world, rank, torch.device("cpu")))
    reached = "no error"
    try:
        for step in range(3):
            bad = rank == 1 and step == 1
            reached = f"phase of step {step + 1}"
            guard.total(losses(**{"d/gp": float("nan") if bad else 1.0}), step)
        reached = "check"
        guard.check()
        reached = "no error"
    except TrainingError as error:
        reached += f": {error}"
    finally:
        dist.destroy_process_group()
    Path(out, f"rank{rank}.txt").write_text(reached)


@pytest.mark.parametrize(
    ("mode", "stopped_in"), [("immediate", "phase of step 2"), ("deferred", "check")]
)
@pytest.mark.slow
def test_every_rank_stops_at_the_same_point(tmp_path: Path, mode: str, stopped_in: str) -> None:
    store = tmp_path / "store"
    spawn(_rank_checks, args=(2, str(store), mode, str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = ((tmp_path / f"rank{r}.txt").read_text() for r in (0, 1))
    assert rank0.startswith(f"{stopped_in}: non-finite a loss on another process at step 2;")
    assert rank1.startswith(f"{stopped_in}: non-finite loss d/gp at step 2 (d/gp=nan);")
