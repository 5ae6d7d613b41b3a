"""Chapter 06 part 1's CycleGAN, trained longer (``ch06-cyclegan``).

Part 1's data, models and loop (:func:`cmlib.cyclegan.train_cyclegan`), with more images, more
steps and the sizes in :data:`CYCLEGAN_CONFIG`, scored every ``eval_every`` steps on the 500
test pairs by the shipped referees (:mod:`cmlib.longrun.referees`, ``ch06-referees``): its
metrics, and so its drift test, depend on them too. What each configuration reached is in
``chapters/notes/models.md``.

Its ablations (:data:`NO_CYCLE`, ``ch06-cyclegan-no-cycle``) are the same recipe with one
change (and what it forces: without cycles there is no cycle noise), for the same seeds:
the same data, the same initial weights and the same batches, so that a difference between
the two is the change's alone. They ship the two generators only
(:func:`build_translators`), in float16; the discriminators they were trained against are
rebuilt from the seed for training and then dropped.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from .. import cyclegan as cyclegan_package
from .. import runtime, vision
from .. import train as train_module
from ..cyclegan import evaluation, losses, models, referees, training
from ..cyclegan.evaluation import (
    DIRECTIONS,
    StyleClassifier,
    photo_sketch_pairs,
    score_both_directions,
)
from ..cyclegan.training import CycleGAN, CycleGANConfig, train_cyclegan
from ..data.cache import random_state_kept
from ..data.shapes import render, tasks, world
from ..judge import AttributeJudge
from .base import Recipe, TrainResult, curve_from_history
from .referees import IMAGE_SIZE, NUM_TEST

# ---------------------------------------------------------------------------------- CycleGAN
CYCLEGAN_CONFIG: dict[str, Any] = {
    **dataclasses.asdict(CycleGANConfig()),  # the reference recipe scaled down, then:
    # the gpu profile's sizes; 10,000 steps of 32 with 6 residual blocks was no better
    # (chapters/notes/models.md)
    "num_steps": 6000,
    # the cycle's error averaged over each object too, at twice the cycle's weight: without
    # it, small squares came back as circles (run 1: 0.886 and 0.842 kept; runs 4 and 7)
    "object_weight": 2.0,
    # the identity error averaged over each object too: without it, seed 2's cycle closed
    # through a colour swap and kept nothing (runs 5 and 6)
    "object_identity": 3.0,
    # the generators' bodies at full resolution: at half resolution a 3-pixel object is 1.5
    # pixels across, and even trained paired G drew one small object in ten with the wrong
    # shape (0.893 kept, against 0.988 at full resolution, for the same arithmetic)
    "downsample": False,
    # noise on G's sketches before F reads them back: F must read what the sketch shows, not a
    # faint code hidden in it, so G must draw the shape (run 18; run 17 without it: G 0.890)
    "cycle_noise": 0.1,
    "noisy_cycles": ("forward",),
    "batch_size": 64,
    "lr": 5e-4,
    "num_per_domain": 8000,
    "image_size": IMAGE_SIZE,
    "referee_seed": 0,
    "eval_every": 500,
}
#: Recipe keys that are not :class:`CycleGANConfig` fields (``ema_decay``, if present, goes to
#: :func:`train_cyclegan` itself: a recipe without it trains without an average).
_NOT_CONFIG = ("num_per_domain", "image_size", "referee_seed", "eval_every", "ema_decay")


def cyclegan_config(config: dict[str, Any]) -> CycleGANConfig:
    """The :class:`CycleGANConfig` inside a recipe config (JSON lists back to tuples)."""
    fields = {k: v for k, v in config.items() if k not in _NOT_CONFIG}
    for name in ("betas", "cycles", "noisy_cycles"):
        if name in fields:
            fields[name] = tuple(fields[name])
    return CycleGANConfig(**fields)


def build_cyclegan(config: dict[str, Any]) -> CycleGAN:
    """The four networks (the discriminators ship too: a reader can train on from them)."""
    return CycleGAN.from_config(cyclegan_config(config))


def cyclegan_scores(
    model: nn.Module,
    judges: dict[str, AttributeJudge],
    style: StyleClassifier,
    device: torch.device,
    identity: bool = True,
) -> dict[str, float]:
    """Part 1's panel on the 500 test pairs, flattened to ``G_preserved``, ``F_mae``, … and,
    with ``identity``, the identity map's ``identity_G_mae``, … ``model`` is a
    :class:`CycleGAN`, or any module with the two generators ``g`` and ``f`` (an ablation's)."""
    photos, sketches, attrs = photo_sketch_pairs("test", NUM_TEST, IMAGE_SIZE)
    out = {}
    runs = (("", model.g, model.f), ("identity_", None, None))
    for prefix, g, f in runs if identity else runs[:1]:
        panel = score_both_directions(g, f, photos, sketches, attrs, judges, style, device)
        for direction, scores in zip(DIRECTIONS, panel.values()):
            for key, value in scores.items():
                out[f"{prefix}{direction[0]}_{key}"] = float(value)
    return out


def _train_cyclegan(
    model: CycleGAN, config: dict[str, Any], seed: int, device: torch.device, progress: bool
) -> TrainResult:
    """Part 1's data and loop at the recipe's sizes, scored every ``eval_every`` steps."""
    n = config["num_per_domain"]
    photos_all, sketches_all, _ = photo_sketch_pairs(
        "train", 2 * n, config["image_size"], seed=seed
    )
    # loaded now, so that missing referees stop the run before half an hour of training
    judges, style, _ = referees.shipped_referees(device, config["referee_seed"])

    def evaluate(step: int) -> dict[str, float]:
        kept = cyclegan_scores(model, judges, style, device, identity=False)
        if progress:  # make models' short log, between the bar's redraws
            tqdm.write(
                f"step {step}: "
                + ", ".join(f"{k} {kept[k]:.3f}" for k in sorted(kept) if "ssim" not in k)
            )
        return kept

    history = train_cyclegan(
        model,
        photos_all[:n],  # domain A: scenes 0..n-1
        sketches_all[n:],  # domain B: scenes n..2n-1, so no scene is seen in both
        cyclegan_config(config),
        device,
        seed=seed,
        progress=progress,
        evaluate=evaluate,
        eval_every=config["eval_every"],
        ema_decay=config.get("ema_decay"),
    )
    curve = curve_from_history(history)
    return TrainResult(steps=config["num_steps"], curve=curve)


def evaluate_cyclegan(
    model: nn.Module, config: dict[str, Any], seed: int, device: torch.device
) -> dict[str, float]:
    """The shipped CycleGAN (or an ablation's G and F) scored by the shipped referees (the
    drift test repeats this)."""
    model.to(device).eval()
    judges, style, _ = referees.shipped_referees(device, config["referee_seed"])
    return cyclegan_scores(model, judges, style, device)


CYCLEGAN = Recipe(
    name="ch06-cyclegan",
    summary="chapter 06 part 1's CycleGAN with more data and steps (scored by ch06-referees)",
    config=CYCLEGAN_CONFIG,
    build=build_cyclegan,
    train=_train_cyclegan,
    evaluate=evaluate_cyclegan,
    code=[
        models,
        losses,
        training,
        evaluation,
        cyclegan_package,
        train_module,
        vision,
        runtime,
        world,
        render,
        tasks,
        sys.modules[__name__],
    ],
    seeds=(0, 1, 2),  # each keeps colour and shape in >= 0.90 of test scenes both ways (run 18)
    scored_by=(referees.RECIPE_NAME,),
)


# ---------------------------------------------------------------------------------- ablations


def build_translators(config: dict[str, Any]) -> nn.ModuleDict:
    """G and F alone (``model.g``, ``model.f``), as :func:`build_cyclegan` initialises them.

    The four networks are built, in the full recipe's order, so that under one seed G and F
    start from the weights the full recipe's G and F start from; the discriminators are
    dropped here and rebuilt by :func:`_train_translators`."""
    full = build_cyclegan(config)
    return nn.ModuleDict({"g": full.g, "f": full.f})


def _train_translators(
    model: nn.ModuleDict, config: dict[str, Any], seed: int, device: torch.device, progress: bool
) -> TrainResult:
    """Train G and F against the discriminators the full recipe would start from."""
    # the same seed builds the same four networks: keep their discriminators. The random state
    # is kept, so the run goes on from where the recipe's build left it
    with random_state_kept():
        torch.manual_seed(seed)
        full = build_cyclegan(config)
    full.g, full.f = model["g"], model["f"]
    return _train_cyclegan(full.to(device), config, seed, device, progress)


#: Fields an ablation may not change: they change the networks, and so their initial weights.
_NETWORK_FIELDS = ("width", "num_blocks", "skip", "downsample")


def ablation(
    name: str, summary: str, seeds: tuple[int, ...] | None = None, **changes: Any
) -> Recipe:
    """``ch06-cyclegan`` with ``changes`` to its loss or schedule, shipping G and F only.

    Args:
        name: the ablation's recipe name, e.g. ``"ch06-cyclegan-no-cycle"``.
        summary: one line for ``make models``.
        seeds: the seeds it ships (``None``: the full recipe's).
        changes: :class:`CycleGANConfig` fields, e.g. ``cycles=()``. A change to ``num_steps``
            or ``batch_size`` changes the batches too, so it is the change's effect *and* more
            or other data.

    Returns:
        The :class:`Recipe`, whose G and F start from the full recipe's weights for each seed.

    Raises:
        TypeError: for a name or summary that is not a string.
        ValueError: without changes, for a field that is not a config field or changes the
            networks (``width``, ``num_blocks``, ``skip``, ``downsample``), or for a value the
            config refuses.
    """
    for what, value in (("name", name), ("summary", summary)):
        if not isinstance(value, str) or not value:
            raise TypeError(f"{what} must be a non-empty string, got {value!r}")
    fields = {f.name for f in dataclasses.fields(CycleGANConfig)} - set(_NETWORK_FIELDS)
    if not changes or set(changes) - fields:
        raise ValueError(
            f"an ablation changes some of the CycleGANConfig fields {sorted(fields)}, "
            f"got {sorted(changes)}"
        )
    cyclegan_config({**CYCLEGAN_CONFIG, **changes})  # the config's own checks, now
    return dataclasses.replace(
        CYCLEGAN,
        name=name,
        summary=summary,
        config={**CYCLEGAN_CONFIG, **changes},
        build=build_translators,
        train=_train_translators,
        seeds=CYCLEGAN.seeds if seeds is None else seeds,
        half=True,  # float16, G and F only: about 0.07 MB a seed at full resolution
    )


#: Chapter 06 part 3's ablation at the long run's size: no cycle loss (the GAN and identity
#: losses alone, and so no cycle noise).
NO_CYCLE = ablation(
    "ch06-cyclegan-no-cycle",
    "ch06-cyclegan without its cycle losses (chapter 06 part 3's ablation, trained as long)",
    seeds=(0, 1, 2),  # the full recipe's shipped seeds
    cycles=(),
    cycle_noise=0.0,  # the noise acts on the way back, and without cycles there is none
)
