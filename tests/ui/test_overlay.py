"""overlay.py: the pixels of the segmentation overlay (pure numpy; mask files: tests/media)."""

from __future__ import annotations

import numpy as np
import pytest

from faceedit.ui.overlay import (
    OverlaySettings,
    attention_image,
    boundaries,
    group_classes,
    render_overlay,
    resize_nearest,
)
from faceedit.vocab.labels import CLASS_COLORS, NUM_CLASSES


def _labels() -> np.ndarray:
    labels = np.ones((8, 8), dtype=np.uint8)  # skin
    labels[2:4, 1:3] = 4  # l_eye
    labels[5:7, 3:6] = 12  # u_lip
    return labels


def test_filled_overlay_blends_only_visible_classes() -> None:
    image = np.full((8, 8, 3), 100, dtype=np.uint8)
    out = render_overlay(image, _labels(), OverlaySettings(opacity=1.0))
    assert tuple(out[2, 1]) == CLASS_COLORS[4]
    assert tuple(out[5, 3]) == CLASS_COLORS[12]
    assert tuple(out[0, 0]) == (100, 100, 100)  # skin is hidden by default


def test_opacity_scales_the_blend_and_zero_is_the_input() -> None:
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    half = render_overlay(image, _labels(), OverlaySettings(opacity=0.5))
    assert tuple(half[2, 1]) == tuple(round(c / 2) for c in CLASS_COLORS[4])
    none = render_overlay(image, _labels(), OverlaySettings(opacity=0.0))
    np.testing.assert_array_equal(none, image)


def test_hidden_class_and_disabled_overlay_leave_pixels_alone() -> None:
    image = np.full((8, 8, 3), 50, dtype=np.uint8)
    hidden = OverlaySettings(opacity=1.0).with_classes((4,), False)
    out = render_overlay(image, _labels(), hidden)
    assert tuple(out[2, 1]) == (50, 50, 50)
    assert tuple(out[5, 3]) == CLASS_COLORS[12]
    off = OverlaySettings(opacity=1.0, enabled=False)
    np.testing.assert_array_equal(render_overlay(image, _labels(), off), image)


def test_outline_mode_colours_only_class_borders() -> None:
    labels = np.ones((10, 10), dtype=np.uint8)
    labels[2:8, 2:8] = 10  # a nose square
    image = np.zeros((10, 10, 3), dtype=np.uint8)
    out = render_overlay(image, labels, OverlaySettings(opacity=1.0, mode="outline"))
    assert tuple(out[2, 4]) == CLASS_COLORS[10]  # on the border
    assert tuple(out[5, 5]) == (0, 0, 0)  # inside
    # the square's own border (20 pixels) and the skin pixels that touch its sides (24)
    assert boundaries(labels).sum() == 20 + 24


def test_labels_are_resized_to_the_image_by_nearest_neighbour() -> None:
    labels = _labels()
    big = resize_nearest(labels, (32, 32))
    assert big.shape == (32, 32)
    assert set(np.unique(big)) == set(np.unique(labels))
    out = render_overlay(np.zeros((32, 32, 3), np.uint8), labels, OverlaySettings(opacity=1.0))
    assert tuple(out[9, 5]) == CLASS_COLORS[4]


def test_attention_is_bright_where_the_generator_edits() -> None:
    attention = np.array([[1.0, 0.0]], dtype=np.float32)  # keep, replace
    image = attention_image(attention)
    assert image.shape == (1, 2, 3)
    assert image[0, 0, 0] == 0 and image[0, 1, 0] == 255


def test_settings_are_validated_and_groups_cover_all_face_classes() -> None:
    with pytest.raises(ValueError, match="opacity"):
        OverlaySettings(opacity=1.5)
    with pytest.raises(ValueError, match="flags"):
        OverlaySettings(visible=(True,))
    covered = sorted(c for classes in group_classes().values() for c in classes)
    assert covered == list(range(1, NUM_CLASSES))
