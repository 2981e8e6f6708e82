"""A GanStage on small in-memory datasets, for tests that run single iterations."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from trainer.config import TrainConfig
from trainer.stages.distributed import DistInfo
from trainer.stages.gan import GanStage, InitialWeights

CPU = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
# Settings for a stage on these tensors: no loader processes, no class balancing, dataset
# paths that are never opened.
IN_MEMORY_SETTINGS: dict[str, object] = {
    "batch_size": 4,
    "num_workers": 0,
    "data.class_balanced": False,
    "data.rafd": "unused",
    "data.celebamask_hq": "unused",
}


def stage_on_tensors(config: TrainConfig, init: InitialWeights | None = None) -> GanStage:
    """The gan or joint stage of `config` on 8 random expression crops and 8 random parsing
    pairs (seed 0), on the CPU in one process."""
    torch.manual_seed(0)
    size, parser_size = config.model.crop_size, config.model.parser.resolution
    expressions = TensorDataset(
        torch.rand(8, 3, size, size) * 2 - 1,
        torch.arange(8) % config.model.num_expressions,
        torch.zeros(8, 2),
    )
    parsing = TensorDataset(
        torch.rand(8, 3, parser_size, parser_size) * 2 - 1,
        torch.randint(0, 19, (8, parser_size, parser_size)),
    )
    return GanStage(config, CPU, expressions, parsing, init or InitialWeights())
