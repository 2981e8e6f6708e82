"""faceedit.faces.frame_maps: a crop's parse in frame pixels."""

from __future__ import annotations

import cv2
import numpy as np

from faceedit.faces.align import align, warp_to_frame
from faceedit.faces.frame_maps import frame_parse, labels_to_frame, masks_to_frame


def _parse(size: int) -> np.ndarray:
    """(3, S, S) soft probabilities of three classes: background, a disc, a bar across it."""
    yy, xx = np.mgrid[:size, :size] / size
    disc = 1 / (1 + np.exp(-((0.3 - np.hypot(xx - 0.5, yy - 0.5)) * 40)))
    bar = 1 / (1 + np.exp(-((0.06 - np.abs(yy - 0.6)) * 60))) * disc
    logits = np.stack([np.full_like(disc, 2.0), 4 * disc, 6 * bar]).astype(np.float32)
    probabilities = np.exp(logits) / np.exp(logits).sum(0)
    return probabilities.astype(np.float32)


def test_labels_are_the_argmax_of_the_warped_probabilities_and_background_outside() -> None:
    frame = np.zeros((600, 800, 3), np.uint8)
    landmarks = np.array([[370.0, 250], [450, 252], [410, 300], [378, 345], [445, 346]])
    alignment = align(frame, landmarks, 64)
    probabilities = _parse(64)
    labels = labels_to_frame(alignment, probabilities, frame.shape)
    height, width = frame.shape[:2]
    full = np.stack(
        [
            warp_to_frame(p, alignment, slice(0, height), slice(0, width), cv2.INTER_LINEAR)
            for p in probabilities
        ]
    )
    brute = full.argmax(axis=0)
    assert labels.shape == (height, width) and labels.dtype == np.uint8
    assert set(np.unique(labels)) == {0, 1, 2}
    assert np.mean(labels == brute) > 0.999  # the same classes, up to interpolation rounding
    # Smooth boundaries: nearest-neighbour warping gives one-crop-pixel (4 px here) stairs.
    nearest = warp_to_frame(
        probabilities.argmax(0).astype(np.uint8),
        alignment,
        slice(0, height),
        slice(0, width),
        cv2.INTER_NEAREST,
    )
    assert np.mean(nearest != brute) > 5 * np.mean(labels != brute)
    assert labels[0, 0] == 0 and labels[-1, -1] == 0
    masks = masks_to_frame(alignment, probabilities[1:], frame.shape)
    assert masks.shape == (2, height, width) and masks[:, 0, 0].max() == 0
    assert np.allclose(masks, full[1:], atol=1e-3)
    both, soft = frame_parse([(alignment, probabilities, probabilities[1:])], frame.shape, 2)
    assert np.array_equal(both, labels) and np.allclose(soft, masks)
