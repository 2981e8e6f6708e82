"""The procedural world's judge and scorer, shared by the learning check and the comparisons.

Modules: `renderings` (a world's files: pairs.csv, world.json, its landmark lists), `judge`
(the one world judge: an expression classifier trained on train identities' renderings with
shift, colour and noise augmentation), `held_out` (the held-out identities scored and the fixed
pixels of the identity error), `editors` (the engine as the app shows an edit, and the
critic-noise control), `scorer` (edits, the control and locality against the ground truth) and
`scores` (the typed figures it returns).
"""
