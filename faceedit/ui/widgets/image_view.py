"""An image canvas with pan, zoom-to-fit, face boxes and an optional before/after split line.

Images arrive as numpy arrays. Scaled pixmaps are cached at the screen's device pixel ratio, so
the picture is sharp on HiDPI screens and panning only blits a cached pixmap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

MIN_SCALE: Final[float] = 0.05
MAX_SCALE: Final[float] = 64.0
SPLIT_GRAB_PX: Final[float] = 8.0
# Past this magnification pixels are drawn as squares: researchers want to see the real pixels.
NEAREST_ABOVE: Final[float] = 3.0
BOX_COLOUR: Final[QColor] = QColor(255, 255, 255, 170)
CHOSEN_COLOUR: Final[QColor] = QColor(64, 200, 255)


def to_qimage(array: np.ndarray) -> QImage:
    """(H, W, 3) uint8 RGB or (H, W) uint8 grey -> a QImage that owns its own copy of the pixels."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"images to show must be uint8, got {array.dtype}")
    if array.ndim == 2:
        h, w = array.shape
        return QImage(array.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    if array.ndim == 3 and array.shape[2] == 3:
        h, w, _ = array.shape
        return QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    raise ValueError(f"images to show are (H, W, 3) or (H, W), got {array.shape}")


def qimage_to_array(image: QImage) -> np.ndarray:
    """A QImage -> (H, W, 3) uint8 RGB copy (for saving and for tests of what is displayed)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = rgb.height(), rgb.width(), rgb.bytesPerLine()
    buffer = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=h * stride)
    return buffer.reshape(h, stride)[:, : 3 * w].reshape(h, w, 3).copy()


class _ScaledCache:
    """One source pixmap and its last scaled copy at the current zoom and device pixel ratio."""

    def __init__(self, image: QImage) -> None:
        self.pixmap = QPixmap.fromImage(image)
        self._key: tuple[int, int, float, bool] | None = None
        self._scaled: QPixmap | None = None

    def scaled(self, size: QSize, dpr: float, smooth: bool) -> QPixmap:
        key = (size.width(), size.height(), dpr, smooth)
        if key != self._key or self._scaled is None:
            mode = (
                Qt.TransformationMode.SmoothTransformation
                if smooth
                else Qt.TransformationMode.FastTransformation
            )
            device = QSize(max(1, round(size.width() * dpr)), max(1, round(size.height() * dpr)))
            self._scaled = self.pixmap.scaled(device, Qt.AspectRatioMode.IgnoreAspectRatio, mode)
            self._scaled.setDevicePixelRatio(dpr)
            self._key = key
        return self._scaled


class ImageView(QWidget):
    """Shows one image (or before|after split by a draggable line) with pan, zoom and face boxes."""

    faceClicked = Signal(int)
    viewChanged = Signal(float, QPointF)  # scale, image point at the widget's centre
    splitMoved = Signal(float)

    def __init__(self, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(120, 120)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.placeholder = placeholder
        self._after: np.ndarray | None = None
        self._before: np.ndarray | None = None
        self._after_cache: _ScaledCache | None = None
        self._before_cache: _ScaledCache | None = None
        self._split_enabled = False
        self._split = 0.5
        self._boxes: list[np.ndarray] = []
        self._chosen: set[int] = set()
        self._caption = ("", "")
        self._scale = 1.0
        self._center = QPointF(0.0, 0.0)  # image coordinates shown at the widget's centre
        self._fit = True
        self._drag: str | None = None
        self._drag_origin = QPointF()
        self._drag_center = QPointF()
        self._pressed_at = QPointF()

    # ---- content ----------------------------------------------------------------------------

    def set_image(self, after: np.ndarray | None, before: np.ndarray | None = None) -> None:
        """Show `after`; in split mode `before` is shown left of the line (same size expected)."""
        old_shape = None if self._after is None else self._after.shape[:2]
        self._after = after
        self._before = before
        self._after_cache = None if after is None else _ScaledCache(to_qimage(after))
        self._before_cache = None if before is None else _ScaledCache(to_qimage(before))
        if after is not None and (self._fit or old_shape != after.shape[:2]):
            self.zoom_to_fit()
        self.update()

    def set_faces(self, boxes: Sequence[np.ndarray], chosen: set[int] | Sequence[int] = ()) -> None:
        """Face boxes (x0, y0, x1, y1) in image pixels; the chosen ones are highlighted."""
        self._boxes = [np.asarray(b, dtype=np.float32).reshape(4) for b in boxes]
        self._chosen = set(chosen)
        self.update()

    def set_captions(self, left: str, right: str) -> None:
        self._caption = (left, right)
        self.update()

    @property
    def face_boxes(self) -> list[np.ndarray]:
        return list(self._boxes)

    def has_image(self) -> bool:
        return self._after is not None

    def image(self) -> np.ndarray | None:
        return self._after

    def composite(self) -> np.ndarray | None:
        """The displayed picture in image pixels: before left of the split line, after right of it."""
        if self._after is None:
            return None
        if not self._split_enabled or self._before is None:
            return self._after.copy()
        out = self._after.copy()
        cut = round(self._split * out.shape[1])
        out[:, :cut] = self._before[:, :cut]
        return out

    # ---- split line -------------------------------------------------------------------------

    def set_split_enabled(self, enabled: bool) -> None:
        self._split_enabled = enabled
        self.update()

    @property
    def split_position(self) -> float:
        return self._split

    def set_split_position(self, fraction: float) -> None:
        self._split = float(min(max(fraction, 0.0), 1.0))
        self.update()

    # ---- geometry -----------------------------------------------------------------------------

    @property
    def scale(self) -> float:
        return self._scale

    def image_size(self) -> QSize:
        if self._after is None:
            return QSize(0, 0)
        return QSize(self._after.shape[1], self._after.shape[0])

    def zoom_to_fit(self) -> None:
        size = self.image_size()
        if size.isEmpty():
            return
        margin = 8
        sx = max(1, self.width() - 2 * margin) / size.width()
        sy = max(1, self.height() - 2 * margin) / size.height()
        self._fit = True
        self._set_view(min(sx, sy), QPointF(size.width() / 2, size.height() / 2), emit=True)

    def zoom_actual(self) -> None:
        """One image pixel per screen pixel (device pixels, so HiDPI shows true detail)."""
        self._fit = False
        self._set_view(1.0 / self.devicePixelRatioF(), self._center, emit=True)

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom keeping the image point under `anchor` (widget coordinates) in place."""
        if self._after is None:
            return
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        before = self.to_image(anchor)
        scale = min(max(self._scale * factor, MIN_SCALE), MAX_SCALE)
        centre_offset = QPointF(anchor.x() - self.width() / 2, anchor.y() - self.height() / 2)
        centre = QPointF(
            before.x() - centre_offset.x() / scale, before.y() - centre_offset.y() / scale
        )
        self._fit = False
        self._set_view(scale, centre, emit=True)

    def set_view(self, scale: float, center: QPointF) -> None:
        """Follow another view (side-by-side comparison keeps both in step)."""
        self._fit = False
        self._set_view(scale, center, emit=False)

    def _set_view(self, scale: float, center: QPointF, emit: bool) -> None:
        self._scale, self._center = scale, QPointF(center)
        self.update()
        if emit:
            self.viewChanged.emit(self._scale, QPointF(self._center))

    def image_rect(self) -> QRectF:
        """Where the whole image lies, in widget coordinates."""
        size = self.image_size()
        top_left = QPointF(
            self.width() / 2 - self._center.x() * self._scale,
            self.height() / 2 - self._center.y() * self._scale,
        )
        return QRectF(
            top_left.x(), top_left.y(), size.width() * self._scale, size.height() * self._scale
        )

    def to_image(self, point: QPointF) -> QPointF:
        rect = self.image_rect()
        return QPointF((point.x() - rect.x()) / self._scale, (point.y() - rect.y()) / self._scale)

    def _split_x(self) -> float:
        rect = self.image_rect()
        return rect.x() + self._split * rect.width()

    # ---- painting -----------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().color(self.backgroundRole()).darker(115))
        if self._after_cache is None:
            self._paint_placeholder(painter)
            return
        rect = self.image_rect()
        self._paint_pixmap(painter, self._after_cache, rect)
        if self._split_enabled and self._before_cache is not None:
            cut = self._split_x()
            painter.save()
            painter.setClipRect(QRectF(rect.x(), rect.y(), cut - rect.x(), rect.height()))
            self._paint_pixmap(painter, self._before_cache, rect)
            painter.restore()
            self._paint_split_line(painter, cut, rect)
        self._paint_boxes(painter, rect)

    def _paint_pixmap(self, painter: QPainter, cache: _ScaledCache, rect: QRectF) -> None:
        """Shrinking uses a cached area-averaged copy at device resolution (sharp, no aliasing);
        enlarging lets the painter sample the source directly, so deep zoom costs no memory."""
        dpr = self.devicePixelRatioF()
        if self._scale * dpr <= 1.0:
            target = rect.toAlignedRect()
            painter.drawPixmap(target.topLeft(), cache.scaled(target.size(), dpr, smooth=True))
            return
        painter.save()
        painter.setRenderHint(
            QPainter.RenderHint.SmoothPixmapTransform, self._scale * dpr < NEAREST_ABOVE
        )
        source = QRectF(0, 0, cache.pixmap.width(), cache.pixmap.height())
        painter.drawPixmap(rect, cache.pixmap, source)
        painter.restore()

    def _paint_placeholder(self, painter: QPainter) -> None:
        if not self.placeholder:
            return
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(
            self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder
        )

    def _paint_split_line(self, painter: QPainter, x: float, rect: QRectF) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        top, bottom = max(rect.top(), 0.0), min(rect.bottom(), float(self.height()))
        painter.setPen(QPen(QColor(0, 0, 0, 120), 3))
        painter.drawLine(QPointF(x, top), QPointF(x, bottom))
        painter.setPen(QPen(QColor(255, 255, 255), 1.5))
        painter.drawLine(QPointF(x, top), QPointF(x, bottom))
        handle_y = (top + bottom) / 2
        painter.setBrush(QColor(255, 255, 255))
        painter.setPen(QPen(QColor(0, 0, 0, 160), 1))
        painter.drawEllipse(QPointF(x, handle_y), 9, 9)
        painter.setPen(QPen(QColor(40, 40, 40), 1.5))
        for dx in (-3.5, 3.5):
            sign = -1 if dx < 0 else 1
            painter.drawLine(QPointF(x + dx, handle_y - 3), QPointF(x + dx + sign * 2.5, handle_y))
            painter.drawLine(QPointF(x + dx + sign * 2.5, handle_y), QPointF(x + dx, handle_y + 3))
        left, right = self._caption
        font = QFont(painter.font())
        font.setBold(True)
        painter.setFont(font)
        for text, anchor_x, align in (
            (left, x - 8, Qt.AlignmentFlag.AlignRight),
            (right, x + 8, Qt.AlignmentFlag.AlignLeft),
        ):
            if not text:
                continue
            box = QRectF(
                anchor_x - 160 if align == Qt.AlignmentFlag.AlignRight else anchor_x,
                top + 6,
                160,
                20,
            )
            painter.setPen(QColor(0, 0, 0, 180))
            painter.drawText(box.translated(1, 1), align, text)
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(box, align, text)

    def _paint_boxes(self, painter: QPainter, rect: QRectF) -> None:
        if not self._boxes:
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for index, box in enumerate(self._boxes):
            x0, y0, x1, y1 = (float(v) for v in box)
            widget_box = QRectF(
                rect.x() + x0 * self._scale,
                rect.y() + y0 * self._scale,
                (x1 - x0) * self._scale,
                (y1 - y0) * self._scale,
            )
            chosen = index in self._chosen
            painter.setPen(QPen(QColor(0, 0, 0, 140), 3.5 if chosen else 2.5))
            painter.drawRoundedRect(widget_box, 4, 4)
            painter.setPen(QPen(CHOSEN_COLOUR if chosen else BOX_COLOUR, 2 if chosen else 1.2))
            painter.drawRoundedRect(widget_box, 4, 4)
            if len(self._boxes) > 1:
                painter.drawText(widget_box.topLeft() + QPointF(4, -4), f"{index + 1}")

    # ---- interaction ----------------------------------------------------------------------------

    def face_at(self, point: QPointF) -> int | None:
        """Index of the smallest face box containing a widget point (nested boxes pick the inner)."""
        p = self.to_image(point)
        hits = [
            (float((b[2] - b[0]) * (b[3] - b[1])), i)
            for i, b in enumerate(self._boxes)
            if b[0] <= p.x() <= b[2] and b[1] <= p.y() <= b[3]
        ]
        return min(hits)[1] if hits else None

    def _near_split(self, point: QPointF) -> bool:
        return (
            self._split_enabled
            and self._before is not None
            and abs(point.x() - self._split_x()) <= SPLIT_GRAB_PX
        )

    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        self._pressed_at = QPointF(pos)
        if event.button() == Qt.MouseButton.LeftButton and self._near_split(pos):
            self._drag = "split"
        elif event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton):
            self._drag = "pan"
            self._drag_origin = QPointF(pos)
            self._drag_center = QPointF(self._center)
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._drag == "split":
            rect = self.image_rect()
            if rect.width() > 0:
                self.set_split_position((pos.x() - rect.x()) / rect.width())
                self.splitMoved.emit(self._split)
        elif self._drag == "pan":
            delta = pos - self._drag_origin
            self._fit = False
            self._set_view(
                self._scale,
                QPointF(
                    self._drag_center.x() - delta.x() / self._scale,
                    self._drag_center.y() - delta.y() / self._scale,
                ),
                emit=True,
            )
        elif self._near_split(pos):
            self.setCursor(Qt.CursorShape.SplitHCursor)
        elif self.face_at(pos) is not None and len(self._boxes) > 1:
            self.setCursor(Qt.CursorShape.PointingHandCursor)
        else:
            self.setCursor(
                Qt.CursorShape.OpenHandCursor if self.has_image() else Qt.CursorShape.ArrowCursor
            )

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        was_click = (pos - self._pressed_at).manhattanLength() < 4
        if self._drag == "pan" and was_click and event.button() == Qt.MouseButton.LeftButton:
            face = self.face_at(pos)
            if face is not None:
                self.faceClicked.emit(face)
        self._drag = None
        self.unsetCursor()
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.zoom_to_fit()
        event.accept()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.2**steps, event.position())
        event.accept()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit:
            self.zoom_to_fit()

    def sizeHint(self) -> QSize:
        return QSize(480, 400)
