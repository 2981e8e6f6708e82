"""The app's camera list reads what the system lists, without opening a device."""

from __future__ import annotations

from pathlib import Path

from faceedit.media.cameras import list_cameras


def _node(root: Path, name: str, camera: str, index: str) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "name").write_text(camera + "\n", encoding="utf-8")
    (root / name / "index").write_text(index + "\n", encoding="utf-8")


def test_capture_cameras_are_listed_by_index_with_their_names(tmp_path: Path) -> None:
    _node(tmp_path, "video0", "Integrated Camera", "0")
    _node(tmp_path, "video1", "Integrated Camera", "1")  # its metadata node
    _node(tmp_path, "video2", "USB Webcam", "0")
    assert list_cameras(tmp_path) == [(0, "Integrated Camera"), (2, "USB Webcam")]


def test_no_video4linux_means_no_list(tmp_path: Path) -> None:
    assert list_cameras(tmp_path / "missing") == []
