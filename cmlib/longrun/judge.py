"""Chapter 04's reference judge, trained to read content (``ch04-judge``).

Every generator of chapters 04, 05 and 11 is scored by one referee per seed: an
:class:`~cmlib.judge.AttributeJudge` trained on real photos only. Trained for seconds on clean
photos, such a judge read the true test photos at 0.998 but after a 3×3 blur at 0.57-0.60: a
generator's slightly soft image would have been scored for its sharpness, not for what it
shows. The recipe (:data:`cmlib.judge.REFERENCE_CONFIG`) trains it wider and longer on
perturbed copies of its images (:func:`cmlib.perturb.content_keeping`), about a minute and a
half a seed on two cores, and its manifest records how it reads perturbed true images. It is a
measuring instrument, chosen on true images alone, never on a generator's outputs.
:func:`cmlib.judge.reference_judge` loads it (not :func:`cmlib.longrun.recipes.long_run`: it
trains the recipe into the model registry when the file is missing, and in the gpu profile).
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from torch import nn

from ..judge import (
    REFERENCE_CODE,
    REFERENCE_CONFIG,
    REFERENCE_RECIPE,
    build_reference_judge,
    reference_judge_scores,
    train_reference_judge,
)
from .base import Recipe, TrainResult


def _train(
    model: nn.Module, config: dict[str, Any], seed: int, device: torch.device, progress: bool
) -> TrainResult:
    """Train the judge; the curve is its training loss after each epoch, against its steps."""
    history = train_reference_judge(model, config, seed, device, progress)
    losses = history.train_loss
    per_epoch = len(history.steps["loss"]) // len(losses)
    steps = [per_epoch * (e + 1) for e in range(len(losses))]
    return TrainResult(steps=steps[-1], curve={"step": steps, "loss": losses})


def _evaluate(
    model: nn.Module, config: dict[str, Any], seed: int, device: torch.device
) -> dict[str, float]:
    return reference_judge_scores(model.to(device).eval(), config, seed)


RECIPE = Recipe(
    name=REFERENCE_RECIPE,
    summary="chapter 04's reference judge (a 32-wide attribute judge trained 20 epochs on "
    "perturbed photos, so that it reads content, not sharpness)",
    config=REFERENCE_CONFIG,
    build=build_reference_judge,
    train=_train,
    evaluate=_evaluate,
    code=[*REFERENCE_CODE, sys.modules[__name__]],
    seeds=(0, 1, 2, 3, 4),
    half=True,
)
