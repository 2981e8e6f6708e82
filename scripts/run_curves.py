"""Draw a training run's loss curves (its TensorBoard scalars) into one PNG, for the docs.

    .venv/bin/python scripts/run_curves.py RUN_FOLDER OUT.png [--title TEXT] [--skip lr/,speed/]

RUN_FOLDER is a `faceedit-train` stage's --out (it holds tensorboard/). The learning check
draws its own curves the same way (trainer/judges/learning/figures.py).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from trainer.judges import plots
from trainer.judges.learning.figures import read_scalars


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--title", default="")
    parser.add_argument("--skip", default="lr/,speed/", help="tag prefixes left out")
    args = parser.parse_args()
    folder = args.run / "tensorboard"
    if not folder.is_dir():
        parser.error(f"{folder} does not exist: give a faceedit-train run folder")
    skip = tuple(p for p in args.skip.split(",") if p)
    series = {k: v for k, v in read_scalars(folder).items() if v and not k.startswith(skip)}
    if not series:
        parser.error(f"{folder} holds no scalars")
    title = args.title or args.run.name
    print(plots.save_png(args.out, plots.curves_figure(title, series)))


if __name__ == "__main__":
    main()
