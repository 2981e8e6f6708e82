"""Region lock: which expression regions the edit may change; the rest stays exactly the input."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import pairwise

from PySide6.QtCore import QSignalBlocker, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from faceedit.vocab.labels import REGION_NAMES

LOCK_HELP = (
    "Checked regions may change. An unchecked region is locked: its local generator is off and "
    "the global edit is masked out there, so those pixels stay exactly as in the input."
)


class RegionPanel(QWidget):
    """A checkbox per region; `editable_regions()` is None when every region may change."""

    changed = Signal()

    def __init__(
        self, regions: Sequence[str] = REGION_NAMES, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(4, 4, 4, 4)
        intro = QLabel("Regions the edit may change:")
        intro.setToolTip(LOCK_HELP)
        self._layout.addWidget(intro)
        self._row = QHBoxLayout()
        self._layout.addLayout(self._row)
        buttons = QHBoxLayout()
        self.all_button = QPushButton("All")
        self.none_button = QPushButton("None")
        self.all_button.setToolTip("Let the edit change every region")
        self.none_button.setToolTip("Lock every region (only the global edit outside them remains)")
        for button in (self.all_button, self.none_button):
            button.setAutoDefault(False)
            buttons.addWidget(button)
        buttons.addStretch(1)
        self._layout.addLayout(buttons)
        self.all_button.clicked.connect(lambda: self.set_editable(self._regions))
        self.none_button.clicked.connect(lambda: self.set_editable(()))
        self.boxes: dict[str, QCheckBox] = {}
        self._regions: tuple[str, ...] = ()
        self._tab_after: QWidget = self
        self.set_regions(regions)

    def tab_after(self, widget: QWidget) -> None:
        """Tab from `widget` (the control above this panel) to the checkboxes, All, None."""
        self._tab_after = widget
        self._order_tabs()

    def _order_tabs(self) -> None:
        # The checkboxes are rebuilt for every model, after every other control: put them back.
        chain = [self._tab_after, *self.boxes.values(), self.all_button, self.none_button]
        for first, second in pairwise(chain):
            QWidget.setTabOrder(first, second)

    def set_regions(self, regions: Sequence[str]) -> None:
        """Rebuild the checkboxes for the loaded model's regions, keeping the previous choices."""
        previous = {r: b.isChecked() for r, b in self.boxes.items()}
        while self._row.count():
            item = self._row.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:  # out of the focus chain now, not when Qt deletes it
                widget.setParent(None)
                widget.deleteLater()
        self.boxes = {}
        self._regions = tuple(regions)
        for region in self._regions:
            box = QCheckBox(region.capitalize())
            box.setChecked(previous.get(region, True))
            box.setToolTip(
                f"{region}: may change when checked, locked to the input when not.\n\n{LOCK_HELP}"
            )
            box.toggled.connect(self.changed)
            self._row.addWidget(box)
            self.boxes[region] = box
        self._row.addStretch(1)
        self._order_tabs()

    def editable_regions(self) -> tuple[str, ...] | None:
        chosen = tuple(r for r, box in self.boxes.items() if box.isChecked())
        return None if len(chosen) == len(self._regions) else chosen

    def set_editable(self, regions: Iterable[str] | None, emit: bool = True) -> None:
        """Check exactly `regions` (None: all); emits one change unless `emit` is False."""
        wanted = set(self._regions if regions is None else regions)
        unknown = wanted - set(self._regions)
        if unknown:
            raise ValueError(
                f"unknown region(s) {sorted(unknown)}; this model edits {list(self._regions)}"
            )
        for region, box in self.boxes.items():
            with QSignalBlocker(box):
                box.setChecked(region in wanted)
        if emit:
            self.changed.emit()
