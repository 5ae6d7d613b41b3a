"""Chapter 08 part 3's other neural reasoners, each a recipe on ``ch08-reasoning``'s tagger.

:func:`reasoner_recipe` makes ``ch08-reasoning-<reasoner>``: FiLM, the Relation Network or the
single-stream transformer, trained on the *shipped* tagger of ``ch08-reasoning`` for the same
seed, with its questions, grids, batch, learning rate, schedule and evaluation, so that the
reasoners differ and nothing else. They ship the reasoner alone; the neuro-symbolic model is
``ch08-reasoning``'s to score.
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import nn

from ..data.cache import random_state_kept
from ..reasoning import models as reasoning_models
from ..reasoning import perception
from ..validate import check_choice, check_int
from . import reasoning, store
from .base import Recipe, TrainResult

CONFIG, RECIPE = reasoning.CONFIG, reasoning.RECIPE


def shipped_tagger(seed: int, device: torch.device) -> nn.Module:
    """The scene tagger of the shipped ``ch08-reasoning`` for ``seed``, in eval mode.

    Raises:
        LongRunError: if it is missing or corrupt, naming the command that rebuilds it.
    """
    manifest = store.read_manifest(RECIPE.name, seed)
    with random_state_kept():  # weights the file then replaces: no trace
        bundle = reasoning.build(manifest["config"])
    store.load_long_run(RECIPE.name, seed, bundle, manifest)
    return bundle["tagger"].to(device).eval()


def _grid_shape(config: dict[str, Any]) -> tuple[int, int]:
    """The tagger's grid ``(channels, side)`` at this image size (read off a throwaway one)."""
    with random_state_kept():
        encoder = perception.build_scene_tagger(
            config["image_size"], CONFIG["tagger_width"]
        ).encoder
    return encoder.out_channels, encoder.grid_size


def build_reasoner(config: dict[str, Any]) -> nn.ModuleDict:
    """``reasoner`` alone: the tagger it reads is ``ch08-reasoning``'s."""
    return nn.ModuleDict({"reasoner": reasoning.reasoner_for(config, *_grid_shape(config))})


def _tagger_for(config: dict[str, Any], seed: int, device: torch.device) -> nn.Module:
    """The shipped tagger for ``seed``, if its grids are the ones ``config``'s reasoner reads."""
    tagger = shipped_tagger(seed, device)
    shipped = store.read_manifest(RECIPE.name, seed)["config"]["image_size"]
    if shipped != config["image_size"]:
        raise ValueError(
            f"this recipe reads {config['image_size']}-pixel scenes, the shipped tagger "
            f"{shipped}-pixel ones"
        )
    grid, expected = (tagger.encoder.out_channels, tagger.encoder.grid_size), _grid_shape(config)
    if grid != expected:
        raise ValueError(
            f"this recipe's reasoner reads grids of (channels, side) {expected}, the shipped "
            f"tagger makes {grid}"
        )
    return tagger


def _train_on_shipped_tagger(
    model: nn.ModuleDict, config: dict[str, Any], seed: int, device: torch.device, progress: bool
) -> TrainResult:
    """The reasoner on the shipped tagger's grids, exactly as ``ch08-reasoning`` trains its own."""
    tagger = _tagger_for(config, seed, device)
    return reasoning.run_reasoner(model["reasoner"], tagger, config, seed, device, progress)


def evaluate_on_shipped_tagger(
    model: nn.ModuleDict, config: dict[str, Any], seed: int, device: torch.device
) -> dict[str, float]:
    """The reasoner's accuracy on both test sets (overall and per family), and its fingerprint
    (the neuro-symbolic model is ``ch08-reasoning``'s to score)."""
    model.to(device).eval()
    bundle = {"tagger": _tagger_for(config, seed, device), "reasoner": model["reasoner"]}
    return reasoning.score_bundle(bundle, config, seed, device, symbolic_too=False)


def fingerprint_on_shipped_tagger(
    model: nn.ModuleDict, config: dict[str, Any], seed: int, device: torch.device
) -> dict[str, float]:
    """The reasoner's overall accuracy on the first
    :data:`~cmlib.longrun.reasoning.FINGERPRINT_ITEMS` items of each test set."""
    model.to(device).eval()
    bundle = {"tagger": _tagger_for(config, seed, device), "reasoner": model["reasoner"]}
    first = reasoning.test_sets(config, seed, reasoning.FINGERPRINT_ITEMS)
    return reasoning.fingerprint_bundle(bundle, first, device, symbolic_too=False)


#: CONFIG's keys that belong to the tagger, which the other reasoners do not train.
_TAGGER_KEYS = ("tagger_width", "tagger_images", "tagger_epochs")


def reasoner_recipe(
    reasoner: str,
    num_steps: int,
    patch_size: int = 1,
    pool: int | None = None,
    seeds: tuple[int, ...] = (),
) -> Recipe:
    """``ch08-reasoning-<reasoner>``: another neural reasoner on ``ch08-reasoning``'s tagger,
    with its questions, batch, learning rate and evaluation.

    Args:
        reasoner: a name of :data:`cmlib.reasoning.models.REASONERS` other than the long run's.
        num_steps: its updates.
        patch_size: its patches, for a transformer (1 for the others).
        pool: the Relation Network's max-pool factor (``None`` for the others).
        seeds: the seeds it ships.

    Raises:
        ValueError: for an unknown reasoner, the long run's own, or bad sizes.
    """
    check_choice("reasoner", reasoner, reasoning_models.REASONERS)
    check_int("num_steps", num_steps)
    if not isinstance(seeds, tuple) or not all(isinstance(x, int) and x >= 0 for x in seeds):
        raise TypeError(f"seeds must be a tuple of non-negative ints, got {seeds!r}")
    if reasoner == CONFIG["reasoner"]:
        raise ValueError(f"{reasoner!r} is ch08-reasoning's own reasoner")
    config = {k: v for k, v in CONFIG.items() if k not in _TAGGER_KEYS}
    config.update(reasoner=reasoner, num_steps=num_steps, patch_size=patch_size, pool=pool)
    config["tagger"] = RECIPE.name
    build_reasoner(config)  # the sizes' own checks, now
    return Recipe(
        name=f"{RECIPE.name}-{reasoner.replace('_', '-')}",
        summary=f"chapter 08's {reasoner.replace('_', ' ')} reasoner on ch08-reasoning's tagger",
        config=config,
        build=build_reasoner,
        train=_train_on_shipped_tagger,
        evaluate=evaluate_on_shipped_tagger,
        code=[*RECIPE.code, sys.modules[__name__]],
        seeds=seeds,
        scored_by=(RECIPE.name,),
        fingerprint=fingerprint_on_shipped_tagger,
        half=True,  # FiLM is 5.3 MB in float32; models/ holds 25 MB for the whole course
    )


#: Part 3's reasoners beside the long run's cross-attention transformer, each for as many steps
#: as it. Measured on two threads at batch 64 (stop 46): FiLM 21 steps a second (24,000 steps:
#: 19 minutes), the single-stream transformer with 2 × 2 patches 26 (16 minutes), the Relation
#: Network 3.3 at its default pool of 2 (two hours) and 21 at a pool of 3 (19 minutes); the
#: grids of the 150,000 training questions take about 3.5 minutes more. Each ships seed 0, in
#: float16 (``chapters/notes/models.md`` has the runs).
OTHER_REASONERS = (
    reasoner_recipe("film", CONFIG["num_steps"], seeds=(0,)),
    reasoner_recipe("relation_network", CONFIG["num_steps"], pool=3, seeds=(0,)),
    reasoner_recipe(
        "single_stream", CONFIG["num_steps"], patch_size=CONFIG["patch_size"], seeds=(0,)
    ),
)
