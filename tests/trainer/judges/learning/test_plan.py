"""The learning check's plan: from its recipe, with generator updates after the warm-up, and
scaled where a GPU affords longer runs."""

from __future__ import annotations

from dataclasses import replace

from tests.trainer.judges.learning.reports import full_plan
from trainer.judges.learning.plan import CheckPlan, run_settings


def test_every_plan_leaves_generator_updates_after_the_critic_warm_up() -> None:
    """A gan budget no larger than the warm-up trains critics only: the check would then
    score an untrained editor. The full plan gives the generator 3500 updates (docs/learning.md:
    500 left the edits at 0.22 judged as target, 2500 at 0.75-0.85, 3500 0.84 on the seed
    that was weakest at 2500)."""
    from trainer.recipes import load_recipe

    warm_up = load_recipe("world-64").config("gan").gan_optim.critic_warmup
    assert full_plan().gan_steps - warm_up >= 3500
    quick = CheckPlan.for_mode(0, quick=True)
    assert quick.gan_steps > load_recipe(quick.recipe).config("gan").gan_optim.critic_warmup


def test_a_scaled_plan_trains_longer_where_it_is_told() -> None:
    base = full_plan()
    longer = replace(base.scaled(4), device="cuda")
    assert (longer.parser_steps, longer.gan_steps, longer.joint_steps, longer.judge_steps) == (
        4 * base.parser_steps,
        4 * base.gan_steps,
        4 * base.joint_steps,
        4 * base.judge_steps,
    )
    assert longer.identities == base.identities and longer.seed == base.seed
    on_gpu = run_settings(longer, longer.gan_steps, longer.gan_batch_size)
    assert on_gpu["num_workers"] == -1 and on_gpu["steps"] == 4 * base.gan_steps
    assert run_settings(base, base.gan_steps, base.gan_batch_size)["num_workers"] == 0
