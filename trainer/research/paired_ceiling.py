"""The paired ceiling: the world-64 generator trained with the ground truth, as a measuring stick.

The learning check trains unpaired, as the paper does, and its edits miss the targets. That
leaves two explanations apart: the unpaired signal (critics, cycle) is wrong, or the generator
cannot learn the edit in this many updates whatever the signal. Training the same generator
with the answer itself, the L1 distance to the identity's true rendering of the target
expression (pairs.csv), for the same number of updates, separates them: what this run cannot
reach, no unpaired run of that length will. It is a diagnostic, never a way to train the
shipped model (real datasets have no such pairs).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from faceedit.errors import ConfigError
from faceedit.fileio import atomic_write_text
from faceedit.inference.engine import EditEngine
from faceedit.model.unified import UnifiedModel
from faceedit.vocab.expressions import EXPRESSIONS
from faceedit.weights import checkpoint
from trainer.judges.classifier import load_classifier
from trainer.judges.evaluation import from_uint8_crops
from trainer.judges.learning.report import machine_description
from trainer.judges.world.editors import engine_editor, mean_conditions
from trainer.judges.world.held_out import load_held_out
from trainer.judges.world.renderings import (
    by_identity,
    load_crop,
    read_pairs,
    world_valence_arousal,
)
from trainer.judges.world.scorer import score_edits
from trainer.stages.warm_start import start_attention


@dataclass(frozen=True)
class PairedPlan:
    """Updates, batch and Adam settings: the gan stage's (world-64) unless told otherwise."""

    steps: int
    batch_size: int = 8
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    attention_start: float = 0.9
    seed: int = 0
    # GeneratorConfig.conditioning of every editor; None keeps the parser checkpoint's (its
    # preset's: world-64's FiLM)
    conditioning: str | None = None


@dataclass
class PairedRun:
    """The trained model (parser unchanged, generator trained) and its loss per update."""

    model: UnifiedModel
    losses: list[float]
    seconds: float


def identity_stacks(world: Path, split: str, size: int) -> Tensor:
    """(identities, 8, 3, S, S) in [-1, 1]: each identity of `split` in every expression."""
    table = by_identity(read_pairs(world), split)
    if not table:
        raise ConfigError(
            f"{world}: no identity of split {split!r} has all {len(EXPRESSIONS)} expressions"
        )
    return torch.stack(
        [
            from_uint8_crops([load_crop(renders[e].image, size) for e in range(len(EXPRESSIONS))])
            for renders in table.values()
        ]
    )


def train_paired(
    world: Path,
    parser_file: Path,
    plan: PairedPlan,
    log: Callable[[str], None] = lambda _: None,
) -> PairedRun:
    """Train a fresh generator (the parser checkpoint's model config) on (input, true target).

    Each sample: a train identity, a source and a different target expression drawn
    uniformly; loss: mean absolute difference between the edit and the true rendering. The
    parser stays frozen (it only supplies the region masks, as in the gan stage). The
    condition is the parser checkpoint's (the one-hot target): the valence and arousal a gan
    model also takes are, in the check's evaluation, each expression's mean, so a function of
    the one-hot that adds nothing.
    """
    loaded = checkpoint.load(parser_file)
    if loaded.parser is None:
        raise ConfigError(
            f"{parser_file} holds no parser: give the parser stage's parser.safetensors"
        )
    config = loaded.config
    if plan.conditioning is not None:
        config = config.replace(
            global_generator=replace(config.global_generator, conditioning=plan.conditioning),
            local_generator=replace(config.local_generator, conditioning=plan.conditioning),
        )
    torch.manual_seed(plan.seed)
    model = UnifiedModel(config.replace(freeze_parser=True), loaded.parser)
    start_attention(model.generator, plan.attention_start)
    faces = identity_stacks(world, "train", config.crop_size)  # (N, 8, 3, S, S)
    count, expressions = faces.shape[:2]
    with torch.no_grad():
        masks = torch.stack([model.region_masks(faces[n]).masks for n in range(count)])
    va = world_valence_arousal(world)
    optimizer = torch.optim.Adam(model.generator.parameters(), lr=plan.lr, betas=plan.betas)
    model.generator.train()
    losses: list[float] = []
    start = time.perf_counter()
    for step in range(plan.steps):
        who = torch.randint(count, (plan.batch_size,))
        source = torch.randint(expressions, (plan.batch_size,))
        target = (source + torch.randint(1, expressions, (plan.batch_size,))) % expressions
        wanted = mean_conditions(target, config, va)
        edit = model.generate(faces[who, source], masks[who, source], wanted).image
        loss = (edit - faces[who, target]).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if (step + 1) % max(1, plan.steps // 10) == 0:
            log(f"paired step {step + 1}/{plan.steps}: L1 {loss.item():.5f}")
    return PairedRun(model.eval(), losses, time.perf_counter() - start)


def check_files(check: Path) -> dict[str, Path]:
    """What the ceiling reads from a learning check's folder."""
    return {
        "world": check / "world" / "pairs.csv",
        "parser": check / "runs" / "parser" / "parser.safetensors",
        "judge": check / "judge.safetensors",
    }


def run_paired_ceiling(
    files: dict[str, Path],
    out: Path,
    plan: PairedPlan,
    identities: int,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Train (train_paired), then score as the learning check scores its joint model: the
    first `identities` held-out identities, every source towards every other expression,
    through the app's engine, judged by the check's judge. Writes out/model.safetensors and
    out/report.json; returns the report."""
    world = files["world"].parent
    trained = train_paired(world, files["parser"], plan, log)
    out.mkdir(parents=True, exist_ok=True)
    model_file = checkpoint.save(
        out / "model.safetensors",
        trained.model.config.replace(freeze_parser=False),
        parser=trained.model.parser,
        generator=trained.model.generator,
        metadata={"stage": "paired-ceiling", "step": plan.steps},
    )
    engine = EditEngine(
        checkpoint.load(model_file), device="cpu", precision="float32", optimize_networks=False
    )
    held_out = load_held_out(world, identities)
    judge = load_classifier(files["judge"]).model
    va = world_valence_arousal(world)
    # As the learning check scores: what the app shows, and the generator's own crop.
    edits, _ = score_edits(engine_editor(engine, va), judge, held_out)
    raw, _ = score_edits(engine_editor(engine, va, shown=False), judge, held_out)
    report = {
        "plan": asdict(plan),
        "edits": edits.to_dict(),
        "l1_ratio": edits.l1_ratio,
        "edits_generator_crop": raw.to_dict(),
        "l1_ratio_generator_crop": raw.l1_ratio,
        "losses": trained.losses,
        "train_seconds": trained.seconds,
        "machine": machine_description(),
    }
    atomic_write_text(out / "report.json", json.dumps(report, indent=1))
    return report
