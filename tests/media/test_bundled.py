"""The bundled files: the models' table, which one is the default, the words that name them
wherever a checkpoint path is taken, the sample photo, and that all of it is package data."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest

from faceedit.errors import InputError
from faceedit.media import bundled

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty assets folder in place of the package's: nothing is installed."""
    monkeypatch.setattr(bundled, "ASSETS_DIR", tmp_path)
    monkeypatch.setattr(bundled, "SAMPLES_DIR", tmp_path / "samples")
    return tmp_path


def install(assets: Path, *words: str) -> dict[str, Path]:
    files = {w: assets / bundled.BUNDLED_MODELS[w].file_name for w in words}
    for path in files.values():
        path.write_bytes(b"stand-in")
    return files


def test_the_table_names_each_bundled_model_its_file_and_domain() -> None:
    real, demo = bundled.BUNDLED_MODELS["real"], bundled.BUNDLED_MODELS["demo"]
    assert list(bundled.BUNDLED_MODELS) == ["real", "demo"], "real first: it is the default"
    assert (real.file_name, real.domain) == ("real.safetensors", "photos")
    assert (demo.file_name, demo.domain) == ("demo.safetensors", "procedural")
    assert "real photographs" in real.note and "128 px" in real.note
    assert "procedural faces only" in demo.note
    assert demo.badge == "Demo model: procedural faces only"
    assert real.badge == "Real-face model: real photos, 128 px"
    for model in (real, demo):
        assert "\n" not in model.note


def test_missing_models_are_named_with_their_path(assets: Path) -> None:
    for word in ("demo", "real"):
        with pytest.raises(InputError, match=f"{word}.* model is missing") as error:
            bundled.bundled_path(word)
        assert str(assets / f"{word}.safetensors") in str(error.value)
        assert not bundled.is_installed(word)
    assert bundled.default_checkpoint() is None and bundled.bundled_for([]) is None
    assert not bundled.is_demo_checkpoint(assets / "demo.safetensors")
    assert bundled.bundled_word(assets / "real.safetensors") is None


def test_the_default_is_real_when_installed_else_demo(assets: Path) -> None:
    files = install(assets, "demo")
    assert bundled.default_checkpoint() == "demo"
    files |= install(assets, "real")
    assert bundled.default_checkpoint() == "real"
    (assets / "demo.safetensors").unlink()
    assert bundled.default_checkpoint() == "real"
    assert bundled.bundled_word(files["real"]) == "real"


def test_words_resolve_through_the_one_locator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_ins = {"demo": tmp_path / "d.safetensors", "real": tmp_path / "r.safetensors"}
    for path in stand_ins.values():
        path.write_bytes(b"x")
    monkeypatch.setattr(bundled, "bundled_path", lambda word: stand_ins[word.strip().lower()])
    assert bundled.resolve_checkpoint("real") == stand_ins["real"]
    assert bundled.resolve_checkpoint(" Real ") == stand_ins["real"]
    assert bundled.resolve_checkpoint(Path("demo")) == stand_ins["demo"]
    other = tmp_path / "mine.safetensors"
    assert bundled.resolve_checkpoint(other) == other
    assert bundled.resolve_checkpoint("nope") == Path("nope"), "any other word is a file path"
    assert bundled.bundled_word(str(stand_ins["demo"])) == "demo"
    assert bundled.is_demo_checkpoint(stand_ins["demo"]) and not bundled.is_demo_checkpoint(other)
    assert not bundled.is_demo_checkpoint(stand_ins["real"]) and bundled.bundled_word(None) is None
    with pytest.raises(InputError, match="real, demo"):
        bundled.bundled_model("nope")


def test_procedural_samples_get_the_demo_and_everything_else_the_default(assets: Path) -> None:
    (assets / "samples").mkdir()
    sample = assets / "samples" / "face.png"
    sample.write_bytes(b"")
    photo = assets / "photo.jpg"
    install(assets, "demo", "real")
    assert bundled.bundled_for([sample]) == "demo"
    assert bundled.bundled_for([sample, photo]) == "real", "a mixed folder is photos"
    assert bundled.bundled_for([photo]) == bundled.bundled_for([]) == "real"
    (assets / "demo.safetensors").unlink()
    assert bundled.bundled_for([sample]) == "real", "without the demo, the default"


def test_the_training_domain_comes_from_the_checkpoint_else_the_table(assets: Path) -> None:
    files = install(assets, "demo", "real")
    assert bundled.training_domain(files["demo"], {"domain": "photos"}) == "photos"
    assert bundled.training_domain(files["demo"], {}) == "procedural"
    assert bundled.training_domain(files["real"], {}) == "photos"
    assert bundled.training_domain(assets / "other.safetensors", {"dataset": "x"}) is None


def test_procedural_samples_are_the_pngs_sorted(assets: Path) -> None:
    assert bundled.procedural_samples() == []
    (assets / "samples").mkdir()
    for name in ("b.png", "a.png", "notes.txt"):
        (assets / "samples" / name).write_bytes(b"")
    assert [p.name for p in bundled.procedural_samples()] == ["a.png", "b.png"]


def test_the_sample_photo_is_a_real_face_the_detector_finds() -> None:
    from faceedit.faces.detect import FaceDetector
    from faceedit.media.sources import read_image

    sample = bundled.sample_image_path()
    assert sample.name == "real_face.jpg" and sample != bundled.astronaut_image_path()
    assert len(FaceDetector("cpu").detect(read_image(sample))) == 1
    readme = (bundled.ASSETS_DIR / "README.md").read_text(encoding="utf-8")
    assert "`real_face.jpg`" in readme and "Ana_Isabel_Sanchez_0001.jpg" in readme


def test_every_asset_is_package_data() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = project["tool"]["setuptools"]["package-data"]["faceedit"]
    package = ROOT / "faceedit"
    files = [
        p.relative_to(package).as_posix() for p in (package / "assets").rglob("*") if p.is_file()
    ]
    assert "assets/real_face.jpg" in files
    assert [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)] == []
