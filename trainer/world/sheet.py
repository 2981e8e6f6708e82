"""A contact sheet of the world: rows are identities, columns the eight expressions at intensity 1.

`python -m trainer.world.sheet --out docs/world-sample.png [--rows 8] [--size 64] [--seed 0]`
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from faceedit.fileio import atomic_write_bytes
from trainer.world.layouts import encode_png_rgb
from trainer.world.world import WorldConfig, render_identity

GAP = 2


def contact_sheet(rows: int = 8, size: int = 64, seed: int = 0, labels: bool = False) -> np.ndarray:
    """(H, W, 3) uint8 RGB grid of identities 0..rows-1 in all 8 expressions; with `labels`, a
    ninth column shows the happy face's label map in the faceedit palette."""
    from faceedit.vocab.labels import palette

    config = WorldConfig(count=max(rows, 3), size=size, seed=seed)
    columns = 8 + int(labels)
    sheet = np.full(
        (rows * (size + GAP) + GAP, columns * (size + GAP) + GAP, 3), 255, dtype=np.uint8
    )
    for row in range(rows):
        item = render_identity(config, row)
        tiles = [r.image for r in item.expressions]
        if labels:
            tiles.append(palette()[item.expressions[1].labels])
        for column, tile in enumerate(tiles):
            y, x = GAP + row * (size + GAP), GAP + column * (size + GAP)
            sheet[y : y + size, x : x + size] = tile
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels", action="store_true", help="add a label-map column")
    args = parser.parse_args()
    sheet = contact_sheet(args.rows, args.size, args.seed, args.labels)
    atomic_write_bytes(args.out, encode_png_rgb(sheet))


if __name__ == "__main__":
    main()
