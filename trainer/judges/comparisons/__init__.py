"""The paper's comparisons (`faceedit-train compare`): variants trained with seeds, every final
checkpoint scored by the same judges, tables of mean +- std over seeds.

Modules: `experiments` (the variants, the experiments, training and resuming), `tables`
(mean +- std tables in Markdown and LaTeX), and what scores the variants: `world_scorer` on the
procedural world (trainer/judges/world), `dataset_scorer` on real datasets
(trainer/judges/evaluation.py).
"""
