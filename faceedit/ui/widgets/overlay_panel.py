"""The segmentation legend: each class's colour with a checkbox, region groups, opacity, mode."""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from faceedit.ui.overlay import OverlayMode, OverlaySettings, group_classes, legend_entries
from faceedit.vocab.labels import NUM_CLASSES

# Readable names for the legend; the label table keeps the dataset's short names.
DISPLAY_NAMES: Final[dict[str, str]] = {
    "background": "background",
    "skin": "skin",
    "l_brow": "left brow",
    "r_brow": "right brow",
    "l_eye": "left eye",
    "r_eye": "right eye",
    "eye_g": "glasses",
    "l_ear": "left ear",
    "r_ear": "right ear",
    "ear_r": "earring",
    "nose": "nose",
    "mouth": "inner mouth",
    "u_lip": "upper lip",
    "l_lip": "lower lip",
    "neck": "neck",
    "neck_l": "necklace",
    "cloth": "clothes",
    "hair": "hair",
    "hat": "hat",
}


GROUP_COLUMNS: Final[int] = 3  # region-group checkboxes per row


def swatch(rgb: tuple[int, int, int], size: int = 14) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(*rgb))
    return QIcon(pixmap)


class OverlayPanel(QWidget):
    """Controls for the overlay; emits the whole OverlaySettings whenever anything changes."""

    changed = Signal(object)  # OverlaySettings

    def __init__(
        self, settings: OverlaySettings | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._settings = settings or OverlaySettings()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)

        # Laid out for a side panel about 220-360 px wide: no row wider than that (issue 30).
        self.enabled_box = QCheckBox("Show overlay")
        self.enabled_box.setToolTip("Draw the parser's classes over the aligned face crop (O).")
        layout.addWidget(self.enabled_box)

        style = QHBoxLayout()
        self.filled = QRadioButton("Filled")
        self.outline = QRadioButton("Outline")
        self._mode_group = QButtonGroup(self)
        self._mode_group.addButton(self.filled)
        self._mode_group.addButton(self.outline)
        style.addWidget(self.filled)
        style.addWidget(self.outline)
        style.addStretch(1)
        layout.addLayout(style)
        opacity_row = QHBoxLayout()
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setToolTip("Overlay opacity")
        self.opacity_label = QLabel()
        self.opacity_label.setMinimumWidth(36)
        opacity_row.addWidget(QLabel("Opacity"))
        opacity_row.addWidget(self.opacity, 1)
        opacity_row.addWidget(self.opacity_label)
        layout.addLayout(opacity_row)

        layout.addWidget(self._build_groups())
        self._build_classes(layout)

        self.enabled_box.toggled.connect(self._on_enabled)
        self.show_all.clicked.connect(lambda: self._set_all(True))
        self.hide_all.clicked.connect(lambda: self._set_all(False))
        self.filled.toggled.connect(lambda on: self._on_mode("filled") if on else None)
        self.outline.toggled.connect(lambda on: self._on_mode("outline") if on else None)
        self.opacity.valueChanged.connect(self._on_opacity)
        self.set_settings(self._settings)

    def _build_groups(self) -> QGroupBox:
        """One tristate checkbox per region group, in rows of GROUP_COLUMNS."""
        groups_box = QGroupBox("Region groups")
        groups_layout = QGridLayout(groups_box)
        groups_layout.setVerticalSpacing(2)
        self.group_boxes: dict[str, QCheckBox] = {}
        self._groups = group_classes()
        for n, name in enumerate(self._groups):
            box = QCheckBox(name)
            box.setTristate(True)
            box.setToolTip(f"Show or hide every class of the {name} group")
            box.clicked.connect(lambda _=False, n=name: self._on_group(n))
            groups_layout.addWidget(box, n // GROUP_COLUMNS, n % GROUP_COLUMNS)
            self.group_boxes[name] = box
        return groups_box

    def _build_classes(self, layout: QVBoxLayout) -> None:
        """The Classes button with Show all and Hide all, and the folded list of classes."""
        classes_row = QHBoxLayout()
        self.classes_button = QToolButton()
        self.classes_button.setText("Classes")
        self.classes_button.setCheckable(True)
        self.classes_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.classes_button.setArrowType(Qt.ArrowType.RightArrow)
        self.classes_button.setToolTip("Show or hide the list of the parser's 19 classes")
        self.classes_button.setAutoRaise(True)
        self.show_all = QPushButton("Show all")
        self.hide_all = QPushButton("Hide all")
        self.show_all.setToolTip("Show every class except the background")
        self.hide_all.setToolTip("Hide every class")
        classes_row.addWidget(self.classes_button)
        classes_row.addStretch(1)
        for button in (self.show_all, self.hide_all):
            button.setAutoDefault(False)
            classes_row.addWidget(button)
        layout.addLayout(classes_row)
        # The 19 classes fold away: shown, they need ~230 px of height a laptop screen lacks.
        self.classes_box = QWidget()
        grid = QGridLayout(self.classes_box)
        grid.setContentsMargins(4, 0, 4, 0)
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(2)
        self.class_boxes: list[QCheckBox] = []
        for index, name, rgb in legend_entries():
            box = QCheckBox(DISPLAY_NAMES.get(name, name))
            box.setIcon(swatch(rgb))
            box.setToolTip(f"class {index} '{name}', colour rgb{rgb}")
            box.toggled.connect(lambda shown, i=index: self._on_class(i, shown))
            grid.addWidget(box, index // 2, index % 2)
            self.class_boxes.append(box)
        self.classes_box.setVisible(False)
        layout.addWidget(self.classes_box)
        self.classes_button.toggled.connect(self._show_classes)

    # ---- state ---------------------------------------------------------------------------------

    def settings(self) -> OverlaySettings:
        return self._settings

    def set_settings(self, settings: OverlaySettings) -> None:
        """Show `settings` in the controls without emitting a change for each one."""
        self._settings = settings
        blockers = [
            QSignalBlocker(w)
            for w in (self.enabled_box, self.filled, self.outline, self.opacity, *self.class_boxes)
        ]
        self.enabled_box.setChecked(settings.enabled)
        (self.filled if settings.mode == "filled" else self.outline).setChecked(True)
        self.opacity.setValue(round(settings.opacity * 100))
        for box, shown in zip(self.class_boxes, settings.visible, strict=True):
            box.setChecked(shown)
        del blockers
        self.opacity_label.setText(f"{self.opacity.value()} %")
        self._sync_groups()

    def _show_classes(self, shown: bool) -> None:
        self.classes_box.setVisible(shown)
        self.classes_button.setArrowType(
            Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow
        )

    def _emit(self, settings: OverlaySettings) -> None:
        self._settings = settings
        self._sync_groups()
        self.changed.emit(settings)

    def _sync_groups(self) -> None:
        for name, box in self.group_boxes.items():
            shown = [self._settings.visible[c] for c in self._groups[name]]
            state = (
                Qt.CheckState.Checked
                if all(shown)
                else Qt.CheckState.Unchecked
                if not any(shown)
                else Qt.CheckState.PartiallyChecked
            )
            with QSignalBlocker(box):
                box.setCheckState(state)

    # ---- reactions ------------------------------------------------------------------------------

    def _replace(self, **changes: object) -> OverlaySettings:
        s = self._settings
        values = {"visible": s.visible, "opacity": s.opacity, "mode": s.mode, "enabled": s.enabled}
        values.update(changes)
        return OverlaySettings(**values)  # type: ignore[arg-type]  # the fields' own values, mixed in one dict

    def _on_enabled(self, on: bool) -> None:
        self._emit(self._replace(enabled=on))

    def _on_mode(self, mode: OverlayMode) -> None:
        if mode != self._settings.mode:
            self._emit(self._replace(mode=mode))

    def _on_opacity(self, value: int) -> None:
        self.opacity_label.setText(f"{value} %")
        self._emit(self._replace(opacity=value / 100.0))

    def _on_class(self, index: int, shown: bool) -> None:
        if self._settings.visible[index] != shown:
            self._emit(self._settings.with_classes((index,), shown))

    def _on_group(self, name: str) -> None:
        classes = self._groups[name]
        # A click on a partly shown group shows all of it; on a fully shown group hides it.
        shown = not all(self._settings.visible[c] for c in classes)
        self.set_group_visible(name, shown)

    def set_group_visible(self, name: str, shown: bool) -> None:
        settings = self._settings.with_classes(self._groups[name], shown)
        self.set_settings(settings)
        self._emit(settings)

    def _set_all(self, shown: bool) -> None:
        settings = self._settings.with_classes(range(NUM_CLASSES), shown)
        if shown:  # background would paint the whole crop black; keep it out of "all"
            settings = settings.with_classes((0,), False)
        self.set_settings(settings)
        self._emit(settings)
