"""The bundled files: the demo model and procedural samples are found, named when missing,
and the word `demo` resolves to the demo model wherever a checkpoint path is taken."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceedit.errors import InputError
from faceedit.media import bundled


def test_missing_demo_model_is_named_with_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundled, "ASSETS_DIR", tmp_path)
    with pytest.raises(InputError, match="demo model is missing") as error:
        bundled.demo_checkpoint_path()
    assert str(tmp_path / "demo.safetensors") in str(error.value)
    assert not bundled.demo_available()
    assert not bundled.is_demo_checkpoint(tmp_path / "demo.safetensors")


def test_demo_word_resolves_through_the_one_locator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in = tmp_path / "stand-in.safetensors"
    stand_in.write_bytes(b"x")
    monkeypatch.setattr(bundled, "demo_checkpoint_path", lambda: stand_in)
    assert bundled.resolve_checkpoint("demo") == stand_in
    assert bundled.resolve_checkpoint(" Demo ") == stand_in
    assert bundled.resolve_checkpoint(Path("demo")) == stand_in
    other = tmp_path / "mine.safetensors"
    assert bundled.resolve_checkpoint(other) == other
    assert bundled.is_demo_checkpoint(str(stand_in)) and not bundled.is_demo_checkpoint(other)
    assert not bundled.is_demo_checkpoint(None)


def test_procedural_samples_are_the_pngs_sorted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundled, "SAMPLES_DIR", tmp_path / "samples")
    assert bundled.procedural_samples() == []
    (tmp_path / "samples").mkdir()
    for name in ("b.png", "a.png", "notes.txt"):
        (tmp_path / "samples" / name).write_bytes(b"")
    assert [p.name for p in bundled.procedural_samples()] == ["a.png", "b.png"]
