"""Hostile training states: a `state.pt` with a missing entry, a wrong shape, a negative step,
no RNG state, or code inside is refused by `faceedit-train ... --resume` with a message saying
what is wrong, before anything in the run folder is written. (The rest of the hostile-input
corpus: tests/commands/test_hostile_corpus.py.)"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.trainer.stages.test_stages import one_thread  # noqa: F401 (an autouse fixture)
from trainer.commands.cli import main


class Payload:
    """Unpickling this would run code."""

    def __init__(self, victim: Path) -> None:
        self.victim = victim

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.victim,))


State = dict[str, Any]


def drop(*path: str) -> Callable[[State], object]:
    def change(state: State) -> None:
        node = state
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return change


def put(value: Any, *path: str) -> Callable[[State], object]:
    def change(state: State) -> None:
        node = state
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


def first_parser_tensor(state: State) -> str:
    return next(iter(state["stage"]["modules"]["parser"]))


def misshape(state: State) -> None:
    weights = state["stage"]["modules"]["parser"]
    key = next(k for k, v in weights.items() if v.dim() == 4)
    weights[key] = torch.zeros(3, 3, 3, 3)


def rename_loader(state: State) -> None:
    state["loaders"] = {"somewhere_else": state["loaders"].popitem()[1]}


def break_optimiser(state: State) -> None:
    state["stage"]["optimizers"]["parser"] = {"state": {}, "param_groups": []}


CASES: list[tuple[str, Callable[[State], object], str]] = [
    ("no step", drop("step"), "it has no 'step' entry"),
    ("negative step", put(-3, "step"), "'step' is -3, it cannot be negative"),
    ("step as text", put("5", "step"), "'step' is a str, expected a whole number"),
    ("no RNG entry", drop("rng"), "it has no 'rng' entry"),
    ("empty RNG list", put([], "rng"), "it holds no RNG state"),
    ("RNG without numpy", lambda s: s["rng"][0].pop("numpy"), "it has no 'rng[0].numpy' entry"),
    ("RNG of floats", lambda s: s["rng"][0].update(torch=torch.zeros(4)), "is not a torch RNG state"),
    ("no config", drop("config"), "it has no 'config' entry"),
    ("unknown stage", put("painting", "stage_name"), "'stage_name' is 'painting'"),
    ("no networks", drop("stage", "modules"), "it has no 'stage.modules' entry"),
    ("no optimisers", drop("stage", "optimizers"), "it has no 'stage.optimizers' entry"),
    ("a weight of another shape", misshape, "parser weights do not fit this run's network"),
    ("a missing weight", lambda s: s["stage"]["modules"]["parser"].pop(first_parser_tensor(s)), "parser weights do not fit"),
    ("weights that are not tensors", lambda s: s["stage"]["modules"]["parser"].update(x=[1, 2]), "is not a mapping of tensors"),
    ("negative data position", lambda s: next(iter(s["loaders"].values())).update(index=-1), "cannot be negative"),
    ("another loader", rename_loader, "has no data position for ['celebamask_hq']"),
    ("an empty optimiser", break_optimiser, "parser optimiser does not fit this run"),
    ("world size 0", put(0, "world_size"), "'world_size' is 0"),
]  # fmt: skip


def files(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def resume(run: Path) -> int:
    argv = ["parser", "--out", str(run), "--resume", "--steps", "3", "--num-workers", "0"]
    try:
        return main(argv)
    except SystemExit as exit_info:
        return int(exit_info.code or 0)


@pytest.mark.parametrize(("change", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_damaged_state_is_refused_naming_what_is_wrong_and_nothing_is_written(
    change: Callable[[State], object],
    message: str,
    runs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = tmp_path / "run"
    shutil.copytree(runs["parser_run"], run)
    state = torch.load(run / "state.pt", weights_only=True)
    change(state)
    torch.save(state, run / "state.pt")
    before = files(run)
    capsys.readouterr()
    assert resume(run) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err and "weights_only" not in err
    assert files(run) == before, "a refused resume must not write into the run folder"


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_a_state_holding_code_is_refused_unrun_in_plain_words(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    shutil.copytree(runs["parser_run"], run)
    victim = tmp_path / "payload-ran"
    state = torch.load(run / "state.pt", weights_only=True)
    state["note"] = Payload(victim)
    torch.save(state, run / "state.pt")
    assert resume(run) == 2
    err = capsys.readouterr().err
    assert (
        "this file contains code or objects faceedit will not load; only safetensors and plain "
        "tensor files are accepted" in err
    )
    assert "weights_only" not in err and "Traceback" not in err
    assert not victim.exists()
