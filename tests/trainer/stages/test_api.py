"""trainer.stages.api: the one way to run a stage, called as library code (no command line)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from faceedit.errors import ConfigError, TrainingError
from trainer.recipes import load_recipe
from trainer.stages.api import saved_config, stage_config, train_stage

RUN = {"batch_size": 4, "num_workers": 0, "log_every": 1}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def test_a_stage_trains_resumes_and_reports_what_it_left(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    data = {"celebamask_hq": str(runs["celeb"])}
    config = stage_config("parser", preset_name="tiny", data=data, updates=[{**RUN, "steps": 1}])
    out = tmp_path / "p"
    result = train_stage(config, None, out, device="cpu", threads=1)
    assert (result.stage, result.step, result.out) == ("parser", 1, out)
    assert result.checkpoint == out / "parser.safetensors" and result.checkpoint.is_file()
    assert result.state.is_file() and result.config == config
    assert torch.get_num_threads() == 1  # the threads it was given are handed back
    with pytest.raises(TrainingError, match="already holds a training run"):
        train_stage(config, None, out, device="cpu")
    # a resumed run may train longer, nothing else
    longer = stage_config("parser", base=saved_config(out, "parser"), updates=[{"steps": 2}])
    assert train_stage(longer, None, out, device="cpu", resume=True).step == 2
    other = stage_config("parser", base=saved_config(out, "parser"), sets=["loss.cycle=1"])
    with pytest.raises(ConfigError, match=r"loss\.cycle"):
        train_stage(other, None, out, device="cpu", resume=True)
    with pytest.raises(TrainingError, match="'parser' run"):
        saved_config(out, "gan")


def test_the_order_is_recipe_then_updates_then_datasets_then_sets(tmp_path: Path) -> None:
    recipe = load_recipe("world-64")
    config = stage_config(
        "parser",
        recipe=recipe,
        data={"celebamask_hq": str(tmp_path)},
        updates=[{"steps": 7, "seed": 5}, {"steps": 9}],
        sets=["seed=3"],
    )
    assert (config.steps, config.seed) == (9, 3)
    assert config.data.celebamask_hq == str(tmp_path.resolve())
    assert config.parser_optim.adam_lr == recipe.config("parser").parser_optim.adam_lr
    with pytest.raises(ConfigError, match="recipe world-64 is for preset world-64"):
        stage_config("parser", recipe=recipe, preset_name="tiny")
    with pytest.raises(ConfigError, match="unknown dataset"):
        stage_config("parser", data={"celeba": "x"})
    with pytest.raises(ConfigError, match="--init"):
        stage_config("joint", recipe=recipe)


def test_the_gan_stage_needs_its_parser_and_expression_data(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    no_data = stage_config("gan", preset_name="tiny", updates=[RUN])
    with pytest.raises(ConfigError, match="expression data"):
        train_stage(no_data, None, tmp_path / "a", device="cpu")
    config = stage_config(
        "gan", preset_name="tiny", data={"rafd": str(runs["rafd"])}, updates=[RUN]
    )
    with pytest.raises(ConfigError, match="--parser"):
        train_stage(config, None, tmp_path / "b", device="cpu")
    fitted = stage_config(
        "gan",
        preset_name="tiny",
        init=runs["parser_run"],
        data={"affectnet": str(runs["affectnet"])},
    )
    assert fitted.model.valence_arousal and fitted.model.freeze_parser
