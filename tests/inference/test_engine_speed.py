"""The engine's speed options: optimised networks, reduced precision, background compilation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from torch import nn

from faceedit.errors import InputError
from faceedit.inference import optimize
from faceedit.inference.engine import EditEngine
from tests.inference.test_engine import crop_of


@pytest.fixture(scope="module")
def checkpoint_path(tiny_model: Path) -> Path:
    return tiny_model


def grey_level_difference(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def test_optimised_float32_edits_like_the_network_as_loaded(checkpoint_path: Path) -> None:
    from faceedit.weights import checkpoint

    loaded = checkpoint.load(checkpoint_path)
    as_loaded = EditEngine(loaded, "cpu", optimize_networks=False)
    fast = EditEngine(loaded, "cpu")
    crop = crop_of(32, seed=7)
    assert fast.precision == "float32"
    # BatchNorm folding and the group-norm instance norm only reorder float32 arithmetic.
    assert (
        grey_level_difference(
            as_loaded.edit(crop, {"happy": 1}).crop, fast.edit(crop, {"happy": 1}).crop
        )
        <= 1
    )
    np.testing.assert_allclose(
        as_loaded.parse(crop).probabilities, fast.parse(crop).probabilities, atol=1e-4
    )


def test_bfloat16_stays_within_a_few_grey_levels(checkpoint_path: Path) -> None:
    exact = EditEngine.load(checkpoint_path, "cpu")
    reduced = EditEngine.load(checkpoint_path, "cpu", precision="bfloat16")
    assert reduced.precision == "bfloat16"
    crop = crop_of(32, seed=8)
    a, b = exact.edit(crop, {"surprised": 1}), reduced.edit(crop, {"surprised": 1})
    assert b.crop.dtype == np.uint8 and b.region_masks.dtype == np.float32
    assert grey_level_difference(a.crop, b.crop) <= 8
    assert np.abs(a.region_masks - b.region_masks).max() < 0.05


def test_auto_precision_follows_the_hardware(
    checkpoint_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(optimize, "bf16_is_fast", lambda device: False)
    assert EditEngine.load(checkpoint_path, "cpu", precision="auto").precision == "float32"
    monkeypatch.setattr(optimize, "bf16_is_fast", lambda device: True)
    assert EditEngine.load(checkpoint_path, "cpu", precision="auto").precision == "bfloat16"
    with pytest.raises(ValueError, match="precision must be one of"):
        optimize.resolve_precision("half", "cpu")


def test_reduced_precision_needs_the_optimised_networks(checkpoint_path: Path) -> None:
    from faceedit.weights import checkpoint

    with pytest.raises(ValueError, match="optimize_networks"):
        EditEngine(checkpoint.load(checkpoint_path), "cpu", "bfloat16", optimize_networks=False)


def test_masks_from_an_earlier_parse_skip_the_parse(checkpoint_path: Path) -> None:
    engine = EditEngine.load(checkpoint_path, "cpu")
    crop = crop_of(32, seed=9)
    parsing = engine.parse(crop)
    engine.clear_cache()
    reused = engine.edit(crop, {"happy": 1}, region_masks=parsing.region_masks)
    assert reused.timings["parse"] == 0.0
    engine.clear_cache()
    fresh = engine.edit(crop, {"happy": 1})
    assert fresh.timings["parse"] > 0
    np.testing.assert_array_equal(reused.crop, fresh.crop)
    with pytest.raises(InputError, match=r"region masks must be a \(4, H, W\) array"):
        engine.edit(crop, {"happy": 1}, region_masks=parsing.region_masks[:2])


class RecordingCompile:
    """A stand-in for torch.compile: returns the module itself and counts what it was asked."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.compiled: list[nn.Module] = []

    def __call__(self, module: nn.Module) -> Callable[..., Any]:
        if self.fail:
            raise RuntimeError("no C++ compiler found")
        self.compiled.append(module)
        return module


def test_background_compile_serves_plain_slider_edits_only(checkpoint_path: Path) -> None:
    engine = EditEngine.load(checkpoint_path, "cpu")
    crop = crop_of(32, seed=10)
    before = engine.edit(crop, {"happy": 1}).crop
    assert engine.compile_status.state == "off"
    fake = RecordingCompile()
    assert engine.start_background_compile(compile_fn=fake)
    assert not engine.start_background_compile(compile_fn=fake), "it starts once"
    generator, parser = engine._compiling
    assert parser.compiler.wait(30) and generator.compiler.ready
    assert engine.compile_status.state == "ready" and "Compiled" in engine.compile_status.message
    assert len(fake.compiled) == 2  # the generator, then the parser
    engine.clear_cache()
    after = engine.edit(crop, {"happy": 1})
    np.testing.assert_array_equal(after.crop, before)
    assert generator.compiled_calls >= 1 and parser.compiled_calls >= 1
    calls = generator.compiled_calls
    engine.edit(crop, {"happy": 1}, region_conditions={"mouth": {"sad": 1}})
    engine.edit(crop, {"happy": 1}, editable_regions=["mouth"])
    assert generator.compiled_calls == calls, "other call shapes would recompile: they stay eager"


def test_a_failed_compile_keeps_the_engine_working(checkpoint_path: Path) -> None:
    engine = EditEngine.load(checkpoint_path, "cpu")
    engine.start_background_compile(compile_fn=RecordingCompile(fail=True))
    for wrapper in engine._compiling:
        wrapper.compiler.wait(30)
    status = engine.compile_status
    assert status.state == "failed" and "no C++ compiler" in status.message
    assert engine.edit(crop_of(32), {"sad": 1}).crop.shape == (32, 32, 3)


def test_nothing_to_compile_without_a_generator(tiny_parser: Path) -> None:
    engine = EditEngine.load(tiny_parser, "cpu")
    assert not engine.start_background_compile(compile_fn=RecordingCompile())
    assert engine.compile_status.state == "off"
