"""faceedit-train: dataset loaders, the three training stages, evaluation and comparisons."""
