from __future__ import annotations

import argparse
import io
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceedit.commands import edit as batch_edit
from faceedit.commands.cli import main
from faceedit.commands.edit_model import choose_checkpoint
from faceedit.errors import InputError
from faceedit.media.bundled import astronaut_image_path, is_installed
from faceedit.media.images import save_image
from faceedit.media.masks import mask_paths, read_labels
from faceedit.media.sources import VideoWriter, open_source, read_image
from faceedit.progress import ProgressBar
from faceedit.vocab.labels import CLASS_INDEX, REGION_NAMES, palette
from tests.factories import use_bundled, world_photo


@pytest.fixture(scope="module")
def model(tiny_model: Path) -> Path:
    return tiny_model


@pytest.fixture
def face_png(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "face.png"
    path.parent.mkdir()
    shutil.copy(astronaut_image_path(), path)
    return path


def edit(*args: str | Path) -> int:
    return main(["edit", *map(str, args), "--no-progress"])


def test_single_image_is_edited_around_the_face_only(
    model: Path, face_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out" / "smile.png"
    code = edit(face_png, out, "--checkpoint", model, "--expression", "happy=0.8,surprised=0.2")
    assert code == 0, capsys.readouterr().err
    before, after = read_image(face_png), read_image(out)
    assert after.shape == before.shape
    assert not np.array_equal(after, before), "the face must change"
    # The sample face is centred; its corners are far outside the pasted crop.
    assert np.array_equal(after[:40, :40], before[:40, :40])
    assert not list(out.parent.glob(".*.tmp")), "no temporary file may be left behind"
    assert "wrote" in capsys.readouterr().err


def test_output_folder_for_a_single_image_keeps_its_name(
    model: Path, face_png: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "results"
    folder.mkdir()
    assert edit(face_png, folder, "--checkpoint", model, "--expression", "sad") == 0
    assert (folder / "face.png").is_file()


def test_folder_skips_corrupt_and_faceless_files_and_reports_them(
    model: Path, face_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = face_png.parent
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    cv2.imwrite(str(folder / "wall.png"), np.full((96, 128, 3), 120, np.uint8))
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "edited"
    code = edit(folder, out, "--checkpoint", model, "--expression", "happy")
    err = capsys.readouterr().err
    assert code == 1
    assert (out / "face.png").is_file()
    assert not (out / "broken.jpg").exists() and not (out / "wall.png").exists()
    assert "edited 1 of 3 image(s)" in err and "2 image(s) failed" in err
    assert "broken.jpg:" in err and "wall.png:" in err and "no face" in err
    assert "ignored 1 file(s)" in err


def test_video_keeps_frame_count_and_rate(model: Path, tmp_path: Path) -> None:
    face = cv2.resize(read_image(astronaut_image_path()), (200, 200), interpolation=cv2.INTER_AREA)
    source = tmp_path / "clip.avi"
    with VideoWriter(source, 12.0, (240, 220)) as writer:
        for shift in range(0, 16, 4):
            frame = np.full((220, 240, 3), 60, np.uint8)
            frame[10:210, 10 + shift : 210 + shift] = face
            writer.write(frame)
    out = tmp_path / "edited.avi"
    assert (
        edit(source, out, "--checkpoint", model, "--expression", "happy", "--detect-every", "2")
        == 0
    )
    with open_source(out) as edited, open_source(source) as original:
        assert edited.frame_count == original.frame_count == 4
        assert edited.fps == pytest.approx(12.0)
        assert edited.size == (240, 220)
    # The fast video settings: parse only on detection frames, skip small faces, auto precision.
    fast = tmp_path / "fast.avi"
    args = ["--detect-every", "2", "--reparse", "on-detection", "--min-face", "60"]
    assert (
        edit(
            source,
            fast,
            "--checkpoint",
            model,
            "--expression",
            "happy",
            *args,
            "--precision",
            "auto",
        )
        == 0
    )
    with open_source(fast) as edited, open_source(out) as exact:
        assert edited.frame_count == 4
        first_fast, first_exact = edited.read(), exact.read()
        # Same detection and parse on the first frame; bfloat16 (where used) moves a few levels.
        assert np.abs(first_fast.astype(int) - first_exact.astype(int)).mean() < 2.0


def test_video_pipeline_options_reach_the_pipeline(model: Path) -> None:
    args = batch_edit_parser().parse_args(
        [
            "in.avi",
            "out.avi",
            "--checkpoint",
            str(model),
            "--reparse",
            "on_detection",
            "--min-face",
            "40",
        ]
    )
    pipeline = batch_edit._pipeline(args, model)
    assert pipeline.reparse == "on_detection" and pipeline.detector.min_face_size == 40
    assert pipeline.engine.precision == "float32", "exports default to exact float32"


def batch_edit_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    batch_edit.add_arguments(parser)
    return parser


def test_refuses_to_write_onto_its_input(
    model: Path, face_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = face_png.read_bytes()
    assert edit(face_png, face_png, "--checkpoint", model, "--expression", "happy") == 2
    assert "never overwrites its input" in capsys.readouterr().err
    # The same file reached through a symlink, a '..' detour and a hard link.
    link = tmp_path / "link.png"
    link.symlink_to(face_png)
    detour = face_png.parent / ".." / face_png.parent.name / face_png.name
    hard = tmp_path / "hard.png"
    os.link(face_png, hard)
    for target in (link, detour, hard):
        assert edit(face_png, target, "--checkpoint", model, "--expression", "happy") == 2
        assert "input" in capsys.readouterr().err
    # An output folder inside the input folder, and the input folder itself.
    for target in (face_png.parent / "out", face_png.parent):
        assert edit(face_png.parent, target, "--checkpoint", model, "--expression", "happy") == 2
        assert "input" in capsys.readouterr().err
    assert face_png.read_bytes() == original
    assert sorted(p.name for p in face_png.parent.iterdir()) == ["face.png"]


def test_save_masks_writes_class_indices_colours_and_region_masks(
    model: Path, face_png: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jpg"
    code = edit(face_png, out, "--checkpoint", model, "--expression", "happy", "--save-masks")
    assert code == 0
    paths = mask_paths(out, REGION_NAMES)
    assert paths["labels"].name == "out_labels.png"
    assert paths["labels_color"].name == "out_labels_color.png"
    labels = read_labels(paths["labels"])
    assert labels.shape == read_image(face_png).shape[:2]
    assert (labels > 0).mean() > 0.05, "the face area is labelled"
    assert (labels[:20, :20] == 0).all(), "outside the face there is no label"
    colours = read_image(paths["labels_color"])
    np.testing.assert_array_equal(colours, palette()[labels])
    for region in REGION_NAMES:
        mask = cv2.imread(str(paths[region]), cv2.IMREAD_UNCHANGED)
        assert mask.ndim == 2 and mask.dtype == np.uint8 and mask.shape == labels.shape
        assert (mask[:20, :20] == 0).all(), "outside the face no region is masked"


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--region", "mouth=happy", "REGION:EXPRESSIONS"),
        ("--region", "chin:happy=1", "unknown region 'chin'"),
        ("--region", "mouth:gleeful=1", "unknown expression 'gleeful'"),
        ("--region", "eyes:happy=-1", "must lie in [0, 2]"),
        ("--editable", "mouth,ears", "unknown region(s) 'ears'"),
        ("--editable", ",", "at least one region"),
        ("--expression", "happy=lots", "is not a number"),
        ("--detect-every", "0", "at least 1"),
        ("--reparse", "sometimes", "every-frame or on-detection"),
        ("--min-face", "8", "at least 12 pixels"),
        ("--precision", "float8", "invalid choice"),
    ],
)
def test_argument_errors_are_clear(
    flag: str, value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["edit", "a.png", "b.png", "--checkpoint", "m.safetensors", f"{flag}={value}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and message in err


def test_region_given_twice_or_nothing_to_do_is_refused(
    model: Path, face_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o.png"
    twice = ["--region", "mouth:happy=1", "--region", "mouth:sad=1"]
    assert edit(face_png, out, "--checkpoint", model, *twice) == 2
    assert "given twice" in capsys.readouterr().err
    assert edit(face_png, out, "--checkpoint", model, "--expression", "happy=0") == 2
    assert "nothing to edit" in capsys.readouterr().err
    assert not out.exists()


def test_several_region_flags_change_the_result(
    model: Path, face_png: Path, tmp_path: Path
) -> None:
    plain, mixed = tmp_path / "plain.png", tmp_path / "mixed.png"
    assert edit(face_png, plain, "--checkpoint", model, "--expression", "happy") == 0
    regions = ["--region", "mouth:sad=1", "--region", "eyes:surprised=1"]
    assert edit(face_png, mixed, "--checkpoint", model, "--expression", "happy", *regions) == 0
    assert not np.array_equal(read_image(plain), read_image(mixed))


def test_no_face_in_a_single_image_fails_clearly(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((120, 160, 3), 200, np.uint8))
    out = tmp_path / "out.png"
    assert edit(wall, out, "--checkpoint", model, "--expression", "happy") == 2
    err = capsys.readouterr().err
    assert "wall.png" in err and "no face was found" in err
    assert not out.exists()


def test_checkpoint_without_generator_says_what_is_missing(
    face_png: Path, tmp_path: Path, tiny_parser: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser_only = tiny_parser
    code = edit(face_png, tmp_path / "o.png", "--checkpoint", parser_only, "--expression", "happy")
    assert code == 2
    err = capsys.readouterr().err
    assert "no expression generator" in err and "faceedit-train gan" in err


def test_plan_needs_matching_output_kinds(face_png: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="image output"):
        batch_edit.plan(face_png, tmp_path / "out.mp4")
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    with pytest.raises(InputError, match="video output"):
        batch_edit.plan(video, tmp_path / "out.png")
    with pytest.raises(InputError, match="no such file"):
        batch_edit.plan(tmp_path / "missing.png", tmp_path / "o.png")
    job = batch_edit.plan(face_png.parent, tmp_path / "out")
    assert job.kind == "folder" and job.pairs == ((face_png, tmp_path / "out" / "face.png"),)


def test_progress_bar_shows_count_rate_and_eta() -> None:
    stream = io.StringIO()
    progress = ProgressBar(4, "editing", stream=stream)
    for _ in range(4):
        progress.update()
    progress.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("editing [") and "1/4" in lines[0] and "ETA" in lines[0]
    assert "4/4" in lines[-1] and "100%" in lines[-1]


def _aligned_sample(path: Path, size: int = 64) -> Path:
    """A procedural aligned face crop, like the bundled samples the demo model was made for."""
    from tests.factories import synthetic_faces

    face = ((synthetic_faces(1, size, seed=5)[0].permute(1, 2, 0).numpy() + 1) * 127.5).round()
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(face.astype(np.uint8), cv2.COLOR_RGB2BGR))
    return path


def _no_detector(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("--aligned must not start or run the face detector")


def test_aligned_demo_edits_a_64_pixel_crop_without_the_detector(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faceedit.faces.detect import FaceDetector

    use_bundled(monkeypatch, demo=model)
    monkeypatch.setattr(FaceDetector, "__init__", _no_detector)
    monkeypatch.setattr(FaceDetector, "detect", _no_detector)
    sample = _aligned_sample(tmp_path / "in" / "sample.png")
    out = tmp_path / "out" / "sample.png"
    code = edit(sample, out, "--checkpoint", "demo", "--aligned", "--expression", "happy=1")
    assert code == 0
    before, after = read_image(sample), read_image(out)
    assert after.shape == before.shape == (64, 64, 3)
    assert not np.array_equal(after[16:48, 16:48], before[16:48, 16:48]), "the face must change"
    # The paste-back feather is exactly 0 at the crop's border: the corners stay bit-exact.
    for rows, cols in ((0, 0), (0, -1), (-1, 0), (-1, -1)):
        assert np.array_equal(after[rows, cols], before[rows, cols])


@pytest.fixture(scope="module")
def real_model(tmp_path_factory: pytest.TempPathFactory, model: Path) -> Path:
    """The tiny model again, as a stand-in real-face model whose table says fearful was not
    trained (which only this file's note can tell)."""
    from faceedit.weights import checkpoint

    loaded = checkpoint.load(model)
    table = {"fearful": {"trained": False, "read_as_target": None, "photos": 19}}
    return checkpoint.save(
        tmp_path_factory.mktemp("real") / "real.safetensors",
        loaded.config,
        parser=loaded.parser,
        generator=loaded.generator,
        metadata={"domain": "photos", "expressions": table},
    )


def test_without_a_checkpoint_the_bundled_real_model_edits_a_photo(
    real_model: Path,
    model: Path,
    face_png: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_bundled(monkeypatch, real=real_model, demo=model)
    out = tmp_path / "out" / "smile.png"
    assert edit(face_png, out, "--expression", "happy=1,fearful=0.5") == 0
    err = capsys.readouterr().err
    assert "using --checkpoint real, the bundled real-face model" in err
    assert "not trained on fearful" in err, "the stand-in real model's own table: it ran"
    assert "procedural" not in err
    assert not np.array_equal(read_image(out), read_image(face_png))


def test_the_default_model_follows_the_inputs_and_is_said_when_missing(
    real_model: Path, model: Path, face_png: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from faceedit.media import bundled

    use_bundled(monkeypatch, real=real_model, demo=model)
    photo = [face_png]
    sample = _aligned_sample(tmp_path / "samples" / "face.png")
    monkeypatch.setattr(bundled, "procedural_samples", lambda: [sample])
    samples = [sample]
    assert choose_checkpoint(None, photo) == real_model
    assert choose_checkpoint(None, samples) == model, "the demo's own samples"
    assert choose_checkpoint(Path("demo"), photo) == model
    mine = tmp_path / "mine.safetensors"
    assert choose_checkpoint(mine, samples) == mine
    use_bundled(monkeypatch, demo=model)
    assert choose_checkpoint(None, photo) == model, "no real model: the demo"
    use_bundled(monkeypatch)
    with pytest.raises(InputError, match=r"no bundled model is installed; pass .* --checkpoint"):
        choose_checkpoint(None, photo)
    helped = " ".join(batch_edit_parser().format_help().split())
    assert "Default: `real`" in helped and "Without --checkpoint the bundled real-face" in helped


def test_demo_word_names_the_missing_demo_model(
    face_png: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from faceedit.media import bundled

    monkeypatch.setattr(bundled, "ASSETS_DIR", tmp_path / "assets")
    code = edit(face_png, tmp_path / "o.png", "--checkpoint", "demo", "--expression", "happy")
    assert code == 2
    err = capsys.readouterr().err
    assert "demo model is missing" in err and str(tmp_path / "assets" / "demo.safetensors") in err


@pytest.mark.skipif(not is_installed("demo"), reason="the bundled demo model is missing")
def test_mouth_locked_edit_of_a_1024_photo_changes_only_the_saved_mouth_mask(
    tmp_path: Path,
) -> None:
    image, _ = world_photo(1024)  # an aligned face, as the demo model's own samples are
    source = tmp_path / "in" / "face.png"
    save_image(source, image)
    out = tmp_path / "out" / "face.png"
    code = edit(
        source, out, "--checkpoint", "demo", "--aligned", "--expression", "happy=1",
        "--editable", "mouth", "--save-masks",
    )  # fmt: skip
    assert code == 0
    after = read_image(out)
    paths = mask_paths(out, REGION_NAMES)
    # The masks are in the image's coordinates, at its size (not the 64 px crop's).
    labels = read_labels(paths["labels"])
    mouth = cv2.imread(str(paths["mouth"]), cv2.IMREAD_UNCHANGED)
    assert labels.shape == mouth.shape == image.shape[:2]
    lips = {CLASS_INDEX[name] for name in ("mouth", "u_lip", "l_lip")}
    assert lips & set(np.unique(labels)) and labels[0, 0] == CLASS_INDEX["background"]
    # Nothing outside the saved mouth mask's footprint (>= 50 %, dilated by 2 px) changes.
    footprint = cv2.dilate((mouth >= 128).astype(np.uint8), np.ones((5, 5), np.uint8))
    changed = (after != image).any(axis=2)
    assert changed.sum() > 100 and not (changed & (footprint == 0)).any()


def _noisy_face_clip(path: Path, frames: int) -> Path:
    """A clip of the sample face on a noise background, which compresses poorly."""
    face = cv2.resize(read_image(astronaut_image_path()), (200, 200), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)
    with VideoWriter(path, 12.0, (240, 220)) as writer:
        for _ in range(frames):
            frame = rng.integers(0, 256, (220, 240, 3), dtype=np.uint8)
            frame[10:210, 20:220] = face
            writer.write(frame)
    return path


def test_a_video_edit_onto_a_full_disk_fails_plainly_and_keeps_the_old_video(
    model: Path, tmp_path: Path, small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _noisy_face_clip(tmp_path / "clip.mp4", 12)
    out = small_disk / "out.mp4"
    shutil.copy(source, out)
    good = out.read_bytes()
    (small_disk / "filler.bin").write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 100_000))
    capsys.readouterr()
    assert edit(source, out, "--checkpoint", model, "--expression", "happy") == 2
    err = capsys.readouterr().err
    assert "was not written completely" in err and "wrote" not in err, err
    assert out.read_bytes() == good
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler.bin", "out.mp4"]


def test_a_damaged_video_prints_one_error_and_no_ffmpeg_noise(
    model: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    whole = _noisy_face_clip(tmp_path / "whole.mp4", 4).read_bytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(whole[: len(whole) // 2])  # the index (moov atom) is cut off
    assert edit(damaged, tmp_path / "out.mp4", "--checkpoint", model, "--expression", "happy") == 2
    err = capfd.readouterr().err
    assert "faceedit: error: " in err and "damaged.mp4" in err
    assert "moov" not in err and "WARN" not in err, err


@pytest.mark.skipif(not is_installed("demo"), reason="the demo model is not bundled")
def test_a_model_of_procedural_faces_says_once_that_photos_are_not_its_faces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from faceedit.media.bundled import procedural_samples

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.png", "b.png"):
        shutil.copy(astronaut_image_path(), photos / name)
    code = edit(photos, tmp_path / "out", "--checkpoint", "demo", "--expression", "happy=1")
    err = capsys.readouterr().err
    assert code == 0, err
    assert err.count("trained on procedural faces") == 1, err
    assert "2 of these 2 images" in err
    # Its own kind of face: nothing to say.
    sample = procedural_samples()[0]
    code = edit(sample, tmp_path / "sample.png", "--checkpoint", "demo", "--aligned",
                "--expression", "happy=1")  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert "procedural faces" not in err


def test_the_checkpoint_says_its_domain_and_the_demo_is_procedural() -> None:
    from faceedit.media.bundled import training_domain

    assert training_domain("x.safetensors", {"domain": "photos"}) == "photos"
    assert training_domain("x.safetensors", {"dataset": "affectnet"}) is None
    if is_installed("demo"):
        from faceedit.media.bundled import bundled_path

        assert training_domain(bundled_path("demo"), {"dataset": "affectnet"}) == "procedural"
