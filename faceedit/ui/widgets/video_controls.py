"""Play, pause, seek and record for video files; a live badge and record for cameras."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSlider,
    QStyle,
    QStyleOptionSlider,
    QToolButton,
    QWidget,
)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(max(0, int(seconds)), 60)
    return f"{minutes}:{secs:02d}"


class TimelineSlider(QSlider):
    """A seek bar where a click jumps to the frame under the pointer (not one page along)."""

    def mousePressEvent(self, event: QMouseEvent) -> None:
        option = QStyleOptionSlider()
        self.initStyleOption(option)
        handle = self.style().subControlRect(
            QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderHandle, self
        )
        if event.button() == Qt.MouseButton.LeftButton and not handle.contains(
            event.position().toPoint()
        ):
            span = max(1, self.width() - handle.width())
            x = int(event.position().x() - handle.width() / 2)
            self.setValue(QStyle.sliderValueFromPosition(self.minimum(), self.maximum(), x, span))
        super().mousePressEvent(event)  # then the handle, now under the pointer, can be dragged


class VideoControls(QWidget):
    """The transport bar under the picture; hidden for still images."""

    playToggled = Signal(bool)
    seekRequested = Signal(int)
    recordToggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        style = self.style()
        self._play_icon = style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay)
        self._pause_icon = style.standardIcon(QStyle.StandardPixmap.SP_MediaPause)
        self.play_button = QToolButton()
        self.play_button.setIcon(self._play_icon)
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Play / pause (Space)")
        self.seek = TimelineSlider(Qt.Orientation.Horizontal)
        self.seek.setToolTip(
            "Seek: click a point of the timeline to jump there (Left/Right: one frame)"
        )
        self.position_label = QLabel("0:00 / 0:00")
        self.live_badge = QLabel(" LIVE ")
        self.live_badge.setStyleSheet(
            "background: #c0392b; color: white; font-weight: bold; border-radius: 3px;"
        )
        self.record_button = QToolButton()
        self.record_button.setText("● Rec")
        self.record_button.setCheckable(True)
        self.record_button.setToolTip("Record the edited stream to a video file (Ctrl+R)")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addWidget(self.play_button)
        layout.addWidget(self.seek, 1)
        layout.addWidget(self.position_label)
        layout.addWidget(self.live_badge)
        layout.addWidget(self.record_button)
        self._fps = 25.0
        self._count = 0
        self.play_button.toggled.connect(self._on_play)
        self.seek.valueChanged.connect(self._on_seek)
        self.record_button.toggled.connect(self._on_record)
        self.set_source(None, 25.0, False)

    def set_source(self, frame_count: int | None, fps: float, is_live: bool) -> None:
        """Configure for a file (frame_count known), a live camera, or nothing (None, not live)."""
        self._fps = fps if fps and fps > 0 else 25.0
        self._count = frame_count or 0
        seekable = not is_live and self._count > 1
        self.seek.setVisible(seekable)
        self.position_label.setVisible(seekable)
        self.live_badge.setVisible(is_live)
        with QSignalBlocker(self.seek):
            self.seek.setRange(0, max(0, self._count - 1))
            self.seek.setValue(0)
        self._show_position(0)

    def set_position(self, index: int) -> None:
        """Follow playback, unless the user is holding the slider."""
        if self.seek.isSliderDown():
            return
        with QSignalBlocker(self.seek):
            self.seek.setValue(index)
        self._show_position(index)

    def set_playing(self, playing: bool) -> None:
        with QSignalBlocker(self.play_button):
            self.play_button.setChecked(playing)
        self.play_button.setIcon(self._pause_icon if playing else self._play_icon)

    def set_recording(self, recording: bool) -> None:
        with QSignalBlocker(self.record_button):
            self.record_button.setChecked(recording)
        self.record_button.setStyleSheet("color: #e74c3c; font-weight: bold;" if recording else "")

    @property
    def playing(self) -> bool:
        return self.play_button.isChecked()

    def _show_position(self, index: int) -> None:
        total = self._count / self._fps
        self.position_label.setText(f"{_clock(index / self._fps)} / {_clock(total)}")

    def _on_play(self, playing: bool) -> None:
        self.play_button.setIcon(self._pause_icon if playing else self._play_icon)
        self.playToggled.emit(playing)

    def _on_seek(self, index: int) -> None:
        self._show_position(index)
        self.seekRequested.emit(index)

    def _on_record(self, on: bool) -> None:
        self.set_recording(on)
        self.recordToggled.emit(on)
