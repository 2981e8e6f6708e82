"""The figures every report draws: loss curves and image grids."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.judges import plots


def test_curve_figure_and_image_grid() -> None:
    figure = plots.curves_figure(
        "run", {"a": [(1, 2.0), (2, 1.0)], "b": [], "c": [(5, float("nan"))]}
    )
    assert figure.dtype == np.uint8 and figure.shape[2] == 3
    assert figure.shape[1] == plots.COLUMNS * plots.PANEL_SIZE[0]
    assert (figure < 255).any()  # something was drawn
    tile = np.zeros((8, 8, 3), np.uint8)
    grid = plots.image_grid([[tile, tile], [tile]], ["x", "y"], scale=2, gap=1)
    assert grid.shape == (16 + 2 * 17, 2 * 17, 3)
    with pytest.raises(ValueError):
        plots.image_grid([])
