"""Disable a panel and make every tooltip inside it say why (e.g. which model part is missing)."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

_ORIGINAL = "faceedit_original_tooltip"


def set_available(widget: QWidget, reason: str | None) -> None:
    """Enable `widget` (reason None) or disable it with `reason` as the tooltip of it and its children.

    Qt shows tooltips on disabled widgets, so hovering a greyed-out slider explains itself.
    The widgets' own tooltips are kept and restored when the panel becomes available again.
    """
    widget.setEnabled(reason is None)
    for child in (widget, *widget.findChildren(QWidget)):
        original = child.property(_ORIGINAL)
        if original is None:
            original = child.toolTip()
            child.setProperty(_ORIGINAL, original)
        child.setToolTip(original if reason is None else f"Unavailable: {reason}")


def unavailable_reason(widget: QWidget) -> str | None:
    """The reason a panel was disabled with, or None when it is available."""
    if widget.isEnabled():
        return None
    tip = widget.toolTip()
    return tip.removeprefix("Unavailable: ") if tip.startswith("Unavailable: ") else tip


def set_own_tooltip(widget: QWidget, text: str) -> None:
    """Give `widget` a tooltip of its own that `set_available` keeps: shown now unless its
    panel is unavailable, and restored when the panel becomes available again."""
    if widget.property(_ORIGINAL) is not None:
        widget.setProperty(_ORIGINAL, text)
        if widget.toolTip().startswith("Unavailable: "):
            return
    widget.setToolTip(text)
