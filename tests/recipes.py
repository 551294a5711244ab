"""Training recipes over the tiny random backbones (the `backbones` fixture in conftest)."""

from __future__ import annotations

from assistant.models.adapter import LoraPlan
from assistant.models.recipe import Recipe, StagePlan, compose_from


def tiny_recipe(backbones, bridge="mlp2x_gelu", steps=(20, 20)) -> Recipe:
    """A two-stage recipe over the tiny backbones, a few steps each."""
    return Recipe(vision=backbones["clip_vision"], text=backbones["llama"], bridge=bridge,
                  image_grid=0, num_queries=3, lora=LoraPlan(r=4, alpha=8),
                  stages=[StagePlan(1, steps[0], 4, 1e-2, checkpoint_every=5),
                          StagePlan(2, steps[1], 4, 5e-3, checkpoint_every=5)],
                  data={"1": ["synthetic-captions:8"], "2": ["synthetic-instructions:8"]})


def compose_recipe(recipe):
    """(model, processor) of a recipe, freshly composed."""
    return compose_from(recipe, cache_dir=None)
