"""Which model `faceedit edit` runs, and what it says about it on stderr: the bundled model
made for the inputs when no --checkpoint is given, a model of procedural faces given photos,
and expressions the model was not trained on."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from faceedit.errors import InputError
from faceedit.inference.engine import EditEngine
from faceedit.inference.request import EditRequest
from faceedit.media import bundled
from faceedit.media.bundled import is_procedural_sample, resolve_checkpoint, training_domain
from faceedit.weights.expression_facts import read_facts


def choose_checkpoint(given: Path | None, sources: Sequence[Path]) -> Path:
    """--checkpoint, else the bundled model made for the inputs (bundled.bundled_for: the
    real-face model, or the demo model for its own procedural samples), said on stderr."""
    if given is not None:
        return resolve_checkpoint(given)
    word = bundled.bundled_for(sources)
    if word is None:
        raise InputError(
            "no --checkpoint was given and no bundled model is installed; pass a faceedit "
            ".safetensors model with --checkpoint (docs/training.md says how to train one)"
        )
    model = bundled.BUNDLED_MODELS[word]
    print(f"faceedit: using --checkpoint {word}, the bundled {model.note}", file=sys.stderr)
    return bundled.bundled_path(word)


def untrained_note(engine: EditEngine, request: EditRequest) -> str | None:
    """One sentence when the request asks for an expression the model was not trained on (its
    checkpoint's `expressions` table), else None."""
    loaded = engine.checkpoint
    facts = read_facts(loaded.metadata) if loaded is not None else None
    targets = (request.condition, *request.region_conditions.values())
    asked = {n for weights in targets for n, w in weights.items() if w > 0}
    skipped = [n for n, row in (facts or {}).items() if not row.trained and n in asked]
    if not skipped:
        return None
    return (
        f"this model was not trained on {', '.join(skipped)} (too few training photos), so "
        "that part of the edit is not meaningful"
    )


def domain_note(engine: EditEngine, kind: str, sources: Sequence[Path]) -> str | None:
    """One plain sentence when the model was made for other faces than the inputs', else None.

    The checkpoint says what it was trained on (faceedit.media.bundled.training_domain); a
    model of the procedural world smears real photos, and says nothing about it otherwise.
    `kind`: the job's ("image", "folder", "video").
    """
    loaded = engine.checkpoint
    if loaded is None:
        return None
    domain = training_domain(loaded.path, loaded.metadata)
    if domain != "procedural":
        return None
    foreign = [source for source in sources if not is_procedural_sample(source)]
    if not foreign:
        return None
    if kind == "video":
        what = "this video"
    elif len(sources) == 1:
        what = "this image"
    else:
        what = f"{len(foreign)} of these {len(sources)} images"
    return (
        f"this model was trained on procedural faces (faceedit-train synth), not on photos, so "
        f"its edits of {what} will look smeared; for photos use the bundled real-face model "
        "(--checkpoint real, the default) or another trained on real faces (faceedit-train; "
        "docs/training.md in faceedit's source says how)"
    )
