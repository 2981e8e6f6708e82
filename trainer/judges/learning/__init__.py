"""The learning check: does faceedit's training actually learn? (`faceedit-train learning-check`)

It makes a procedural world (trainer/world), trains parser, gan and joint at 64 px through the
trainer's own stage API (trainer.stages.api: `stage_config`, `train_stage`, as `faceedit-train
parser|gan|joint` do) with the settings of a recipe (trainer/recipes/world-64.yaml, whose
`check` section also sizes the world and the judge; its `quick` variant is `--quick`), trains
the world judge on the world's renderings of train identities, with shift, colour and noise
augmentation, and scores the final model on held-out identities against the world's ground
truth: parser mIoU, the judge's verdict on edits beside a control the judge must not be fooled
by (noise aimed at the model's own critics), the L1 distance of edits to the true rendering of
their target, and locality (the region lock is exact; outside the face barely changes).
Everything is written to one folder: report.md, report.json, an edit grid and loss curves.

Modules: `plan` (what a check trains), `check` (training, scoring, `--rescore`), `report` (the
typed report, its targets, report.md) and `figures` (the edit grid and the curves).
"""
