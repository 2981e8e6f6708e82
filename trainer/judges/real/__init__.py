"""The real-face scorer: an editor (a checkpoint) measured on held-out real photos.

Edits go through the product's own path (faceedit.inference.pipeline.FramePipeline: detect,
align, parse, generate, paste back) on the original photos of the facial_expressions test
identities, so background, identity and colour are measured at the photo's resolution. The
judges are the scorer's own: an expression classifier trained on the train split only, with
shift, colour and noise augmentation (`judge`), and dlib's face descriptor (`identity`).
Every report carries controls (`editors`): editors that must score low.

Modules: `measures` (pure numpy metrics), `identity` (dlib's descriptor), `editors` (the
product and the controls), `judge` (training the judge), `scorer` (the scores), `report`
(report.json, report.md, the grid).
"""
