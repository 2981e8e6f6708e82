"""faceedit.media.sources: reading images (good and bad files), videos, cameras, and writing videos."""

from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from faceedit.errors import InputError, OutputError
from faceedit.media.bundled import astronaut_image_path
from faceedit.media.sources import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    CameraSource,
    ImageSource,
    VideoSource,
    VideoWriter,
    open_source,
    read_image,
)

# ---------------------------------------------------------------- images


def gradient(height: int = 48, width: int = 64) -> np.ndarray:
    """An RGB image with a different colour in each corner, so rotations are detectable."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack(
        [xs * 255 // (width - 1), ys * 255 // (height - 1), np.full_like(xs, 60)], axis=-1
    ).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tiff", ".webp"])
def test_lossless_formats_round_trip_exactly(tmp_path: Path, suffix: str) -> None:
    image = gradient()
    path = tmp_path / f"picture{suffix}"
    Image.fromarray(image).save(path, **({"lossless": True} if suffix == ".webp" else {}))
    assert np.array_equal(read_image(path), image)


def test_the_sample_image_reads_as_rgb() -> None:
    image = read_image(astronaut_image_path())
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    # Red and blue must not be swapped: skin, hair and the flag make the sample redder than blue.
    assert image[..., 0].mean() > image[..., 2].mean()


def test_jpeg_exif_orientation_is_honoured(tmp_path: Path) -> None:
    image = gradient(48, 64)  # landscape as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    Image.fromarray(image).save(path, quality=95, exif=exif)
    upright = read_image(path)
    assert upright.shape == (64, 48, 3)  # portrait once turned upright
    expected = np.rot90(image, k=-1)  # clockwise
    assert np.abs(upright.astype(int) - expected).mean() < 4


def test_gray_palette_and_transparent_images_become_rgb(tmp_path: Path) -> None:
    gray = np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) % 256
    Image.fromarray(gray.astype(np.uint8)).save(tmp_path / "gray.png")
    out = read_image(tmp_path / "gray.png")
    assert out.shape == (32, 32, 3) and np.array_equal(out[..., 2], gray)

    Image.fromarray(gradient()).convert("P").save(tmp_path / "palette.png")
    assert read_image(tmp_path / "palette.png").shape == (48, 64, 3)

    rgba = np.zeros((32, 32, 4), dtype=np.uint8)
    rgba[..., 1] = 255
    rgba[:16, :, 3] = 255
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    out = read_image(tmp_path / "alpha.png")
    assert out[0, 0].tolist() == [0, 255, 0] and out[-1, -1].tolist() == [255, 255, 255]


def test_16_bit_png_is_converted_not_refused(tmp_path: Path) -> None:
    deep = np.zeros((20, 24), dtype=np.uint16)
    deep[:, :8] = 257 * 10
    deep[:, 8:16] = 257 * 200 + 100  # rounds to 200
    deep[:, 16:] = 65535
    path = tmp_path / "deep.png"
    assert cv2.imwrite(str(path), deep)
    with Image.open(path) as check:
        assert check.mode.startswith("I")  # really stored as 16-bit
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (20, 24, 3)
    assert out[0, 0].tolist() == [10, 10, 10]
    assert out[0, 10].tolist() == [200, 200, 200]
    assert out[0, 20].tolist() == [255, 255, 255]


def _truncated_jpeg(path: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path, quality=90)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (_truncated_jpeg, ["truncated", "re-download"]),
        (lambda p: p.write_bytes(b""), ["empty", "0 bytes"]),
        (lambda p: p.write_text("hello, I am text\n"), ["not an image", "re-export"]),
        (lambda p: Image.new("RGB", (1, 1)).save(p, format="PNG"), ["1x1", "16 pixels"]),
        (lambda p: Image.new("RGB", (32, 32)).save(p, format="GIF"), ["GIF", "convert"]),
        (lambda p: None, ["no such file", "check the path"]),
        (lambda p: p.mkdir(), ["folder", "faceedit edit"]),
    ],
    ids=["truncated", "zero-bytes", "text", "1x1", "gif", "missing", "folder"],
)
def test_bad_image_files_raise_helpful_errors(tmp_path: Path, make, words: list[str]) -> None:
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(InputError) as raised:
        read_image(path)
    message = str(raised.value)
    assert "bad.png" in message
    for word in words:
        assert word in message


# ---------------------------------------------------------------- video

FRAMES = 12


def frame_value(i: int) -> int:
    return 10 + 20 * i


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """12 frames of 64x48, each a flat colour that encodes its index (MJPG survives that)."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    assert writer.isOpened()
    for i in range(FRAMES):
        bgr = np.zeros((48, 64, 3), dtype=np.uint8)
        bgr[..., 2] = frame_value(i)  # red in BGR order
        bgr[..., 0] = 255 - frame_value(i)
        writer.write(bgr)
    writer.release()
    return path


def frame_index(frame: np.ndarray) -> int:
    """Which test frame this is, from its red channel; also checks that it is RGB."""
    red, blue = float(frame[..., 0].mean()), float(frame[..., 2].mean())
    index = round((red - 10) / 20)
    assert abs(blue - (255 - frame_value(index))) < 4, "blue and red swapped?"
    return index


def test_video_reads_every_frame_in_order(video: Path) -> None:
    with open_source(video) as source:
        assert isinstance(source, VideoSource)
        assert source.frame_count == FRAMES and source.fps == pytest.approx(10.0)
        assert source.size == (64, 48) and not source.is_live and source.name == "clip.avi"
        frames = list(source)
        assert [frame_index(f) for f in frames] == list(range(FRAMES))
        assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in frames)
        assert source.index == FRAMES


def test_video_seek_and_end(video: Path) -> None:
    with open_source(video) as source:
        source.seek(7)
        assert frame_index(source.read()) == 7 and source.index == 8
        source.seek(FRAMES - 1)
        assert frame_index(source.read()) == FRAMES - 1
        with pytest.raises(InputError, match="end of video"):
            source.read()
        with pytest.raises(StopIteration):
            next(source)
        source.seek(0)
        assert frame_index(source.read()) == 0
        with pytest.raises(InputError, match=r"frames 0\.\.11"):
            source.seek(FRAMES)
    with pytest.raises(InputError, match="closed"):
        source.read()


def test_broken_videos_are_refused(tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video at all\n" * 50)
    with pytest.raises(InputError, match=r"fake\.mp4"):
        open_source(fake)
    with pytest.raises(InputError, match="0 bytes"):
        (tmp_path / "empty.avi").write_bytes(b"")
        open_source(tmp_path / "empty.avi")


def test_image_files_are_one_frame_sources(tmp_path: Path) -> None:
    path = tmp_path / "still.png"
    Image.fromarray(gradient()).save(path)
    with open_source(path) as source:
        assert isinstance(source, ImageSource)
        assert source.frame_count == 1 and source.size == (64, 48) and source.fps == 0.0
        assert [f.shape for f in source] == [(48, 64, 3)]
        with pytest.raises(InputError, match="end of image"):
            source.read()
        source.seek(0)
        assert np.array_equal(source.read(), gradient())


def test_open_source_refuses_folders_and_unknown_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="faceedit edit"):
        open_source(tmp_path)
    odd = tmp_path / "notes.xyz"
    odd.write_text("just words")
    with pytest.raises(InputError, match="neither an image nor a video"):
        open_source(odd)
    assert ".png" in IMAGE_EXTENSIONS and ".mp4" in VIDEO_EXTENSIONS
    assert not IMAGE_EXTENSIONS & VIDEO_EXTENSIONS


def test_absent_camera_fails_fast_with_advice() -> None:
    with pytest.raises(InputError) as raised:
        open_source(99)
    message = str(raised.value)
    # The reader thread's refusal, not the open timeout's "opened but sent no frame": it
    # wakes the caller at once instead of letting it wait out the timeout.
    assert "no camera at index 99" in message and "sent no frame" not in message
    assert "try index 0" in message and "permission" in message
    with pytest.raises(InputError, match="99"):
        open_source("99")  # digits that are not a file mean a camera index


def test_a_camera_that_stops_delivering_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in capture: two frames, then the device goes silent (read blocks)."""
    import faceedit.media.sources as sources

    class SilentAfterTwo:
        def __init__(self, index: int) -> None:
            self.reads = 0

        def isOpened(self) -> bool:
            return True

        def get(self, prop: int) -> float:
            return 25.0

        def read(self) -> tuple[bool, np.ndarray | None]:
            self.reads += 1
            if self.reads > 2:
                time.sleep(1.0)
                return False, None
            return True, np.full((32, 40, 3), self.reads, dtype=np.uint8)

        def release(self) -> None:
            pass

    monkeypatch.setattr(sources.cv2, "VideoCapture", SilentAfterTwo)
    camera = CameraSource(0, read_timeout=0.3)
    assert camera.size == (40, 32) and camera.fps == 25.0 and camera.frame_count is None
    assert camera.is_live
    with pytest.raises(InputError, match="camera 0"):
        for _ in range(5):
            camera.read()
    camera.close()


# ---------------------------------------------------------------- writing video


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_video_writer_round_trip_is_atomic(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"out{suffix}"
    frames = [
        np.full((48, 64, 3), (frame_value(i), 0, 255 - frame_value(i)), np.uint8) for i in range(5)
    ]
    with VideoWriter(path, 10.0, (64, 48)) as writer:
        for frame in frames:
            writer.write(frame)
        assert not path.exists()  # only the temporary file exists while writing
    assert path.exists()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    with open_source(path) as source:
        assert [frame_index(f) for f in source] == list(range(5))


def test_video_writer_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"\.gif"):
        VideoWriter(tmp_path / "out.gif", 10.0, (64, 48))
    with pytest.raises(InputError, match="does not exist"):
        VideoWriter(tmp_path / "missing" / "out.avi", 10.0, (64, 48))
    path = tmp_path / "fail.avi"
    with pytest.raises(RuntimeError), VideoWriter(path, 10.0, (64, 48)) as writer:
        writer.write(np.zeros((48, 64, 3), np.uint8))
        raise RuntimeError("export interrupted")
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left
    writer = VideoWriter(path, 10.0, (64, 48))
    with pytest.raises(InputError, match="32x32"):
        writer.write(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(InputError, match="no frame"):
        writer.close()
    assert list(tmp_path.iterdir()) == []


def test_videos_get_the_usual_permissions_like_images(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    path = tmp_path / "clip.avi"
    with VideoWriter(path, 10.0, (64, 48)) as writer:
        writer.write(np.zeros((48, 64, 3), np.uint8))
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_video_outputs_that_cannot_be_written_are_refused_before_any_frame(
    tmp_path: Path,
) -> None:
    (tmp_path / "taken.avi").mkdir()
    with pytest.raises(OutputError, match=r"taken\.avi: is an existing folder"):
        VideoWriter(tmp_path / "taken.avi", 10.0, (64, 48))
    with pytest.raises(InputError, match="invalid video size"):
        VideoWriter(tmp_path / "nan.avi", float("nan"), (64, 48))
    assert [p.name for p in tmp_path.iterdir()] == ["taken.avi"]


@pytest.mark.parametrize("index", [-1, 1000, -(2**40)])
def test_impossible_camera_indices_are_refused_before_opencv_sees_them(index: int) -> None:
    with pytest.raises(InputError, match="a camera index is a whole number from 0"):
        open_source(index)


def _noise_frames(count: int, size: tuple[int, int] = (160, 120)) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8) for _ in range(count)]


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_a_video_cut_short_by_a_full_disk_replaces_nothing(small_disk: Path, suffix: str) -> None:
    # OpenCV's writer reports no write error: the file is read back before it replaces anything.
    path = small_disk / f"clip{suffix}"
    with VideoWriter(path, 10.0, (160, 120)) as writer:
        writer.write(_noise_frames(1)[0])
    good = path.read_bytes()
    filler = small_disk / "filler.bin"  # about 100 KB left, as in the report
    filler.write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 100_000))
    with (
        pytest.raises(OutputError, match=r"was not written completely .*\(is the disk full\?\)"),
        VideoWriter(path, 10.0, (160, 120)) as writer,
    ):
        for frame in _noise_frames(60):
            writer.write(frame)
    assert path.read_bytes() == good, "the existing video must be left as it was"
    assert sorted(p.name for p in small_disk.iterdir()) == sorted([path.name, filler.name])


CHILD_WRITER = """
import resource, signal, sys
import numpy as np
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail, as on a full disk
from faceedit.errors import OutputError
from faceedit.media.sources import VideoWriter
frames = np.random.default_rng(0).integers(0, 256, (40, 120, 160, 3), dtype=np.uint8)
try:
    with VideoWriter(sys.argv[1], 10.0, (160, 120)) as writer:
        for frame in frames:
            writer.write(frame)
except OutputError as error:
    print("refused:", error)
"""


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_a_video_whose_writes_fail_is_refused_without_root(tmp_path: Path, suffix: str) -> None:
    import subprocess
    import sys

    path = tmp_path / f"clip{suffix}"
    child = subprocess.run(
        [sys.executable, "-c", CHILD_WRITER, str(path)], capture_output=True, text=True, timeout=60
    )
    assert child.returncode == 0, child.stderr
    assert "refused:" in child.stdout and "was not written completely" in child.stdout
    assert list(tmp_path.iterdir()) == []
