"""The procedural face world: faces whose parts, expressions and edits are known exactly.

`faceedit-train synth` renders it and writes it in the real on-disk formats of CelebAMask-HQ and
AffectNet, plus pixel-aligned expression pairs, so training can be proven to learn (docs/world.md).
Modules: canvas (pixel grids, anti-aliased painting), identity (a face's look), actions (action
units, expression prototypes, valence/arousal), features (where the parts sit under given action
units; the 68 landmarks), render (the rasteriser), layouts (the file formats), world (orchestration).
"""
