"""One consistent look on every platform: Qt's Fusion style with a dark palette (images read
better on dark grey, as in photo editors)."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication


def apply_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    palette = QPalette()
    role, group = QPalette.ColorRole, QPalette.ColorGroup
    colours = {
        role.Window: QColor(45, 47, 51),
        role.WindowText: QColor(222, 224, 228),
        role.Base: QColor(33, 35, 38),
        role.AlternateBase: QColor(52, 54, 58),
        role.ToolTipBase: QColor(250, 250, 235),
        role.ToolTipText: QColor(20, 20, 20),
        role.PlaceholderText: QColor(130, 134, 140),
        role.Text: QColor(222, 224, 228),
        role.Button: QColor(56, 58, 63),
        role.ButtonText: QColor(222, 224, 228),
        role.BrightText: QColor(255, 90, 90),
        role.Light: QColor(80, 82, 88),
        role.Midlight: QColor(66, 68, 73),
        role.Mid: QColor(140, 144, 150),
        role.Dark: QColor(28, 29, 32),
        role.Shadow: QColor(10, 10, 12),
        role.Highlight: QColor(42, 130, 218),
        role.HighlightedText: QColor(255, 255, 255),
        role.Link: QColor(90, 170, 255),
    }
    for r, colour in colours.items():
        palette.setColor(r, colour)
    for r in (role.WindowText, role.Text, role.ButtonText):
        palette.setColor(group.Disabled, r, QColor(118, 121, 127))
    palette.setColor(group.Disabled, role.Highlight, QColor(70, 72, 78))
    app.setPalette(palette)
