"""trainer.stages.throughput: the bench's training section, and the entry point that plugs it in."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import torch

from faceedit.commands.bench import PLUGIN_GROUP
from faceedit.commands.bench.sections import PLUGIN_SECTIONS
from faceedit.model.config import preset
from trainer.stages import throughput

PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"


def test_training_steps_of_every_phase_run_with_the_trainer() -> None:
    timings = throughput.measure_training(
        preset("tiny"), torch.device("cpu"), 2, repeats=1, warmup=0
    )
    assert list(timings) == [
        "parser",
        "discriminator",
        "generator (parser frozen)",
        throughput.GAN_ITERATION,
        "joint generator + parser",
    ]
    assert all(t.p50 > 0 and t.n == 1 for t in timings.values())


def test_every_gan_iteration_variant_runs_and_grouping_dispatches_fewer_operators() -> None:
    variants = throughput.gan_iteration_variants(
        preset("tiny"), torch.device("cpu"), 2, repeats=1, warmup=0
    )
    assert list(variants) == list(throughput.STEP_VARIANTS)
    assert all(timing.p50 > 0 and ops > 0 for timing, ops in variants.values())
    before = variants["before: separate locals, whole crop, host check"][1]
    assert variants["grouped locals"][1] < before


def test_pyproject_declares_every_plugin_section_as_an_importable_callable() -> None:
    """Checks the declaration itself, so it holds before the package is reinstalled."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    declared = project["entry-points"][PLUGIN_GROUP]
    assert set(PLUGIN_SECTIONS) <= set(declared), "a section no plug-in provides"
    assert declared["training"] == "trainer.stages.throughput:section_training"
    for name, target in declared.items():
        module_name, _, attribute = target.partition(":")
        function = getattr(importlib.import_module(module_name), attribute)
        assert callable(function), f"{name}: {target} is not callable"
