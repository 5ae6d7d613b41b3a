"""Chapter 09 exercises (optimisation methods): part 1, the learnable temperature with its clamp,
and a predict-then-run question on a temperature of 1."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..contrastive import learnable_clip_loss
from ..retrieval import clip_loss
from . import Exercise, register, register_prediction
from .ch07 import _pairs


# ---------------------------------------------------------------- 9.1 learnable temperature
def _inputs(rng: np.random.Generator) -> tuple:
    image, text, _ = _pairs(rng)  # chapter 07's InfoNCE inputs, without their fixed scale
    # inside the clamp and past both of its ends
    log_scale = float(rng.choice([rng.uniform(0.5, 4.0), rng.uniform(4.8, 6.0), -0.5]))
    return image, text, torch.tensor(log_scale), float(rng.choice([100.0, 50.0]))


def _case(seed: int, log_scale: float, max_scale: float) -> tuple:
    image, text, _ = _pairs(np.random.default_rng(seed))
    return image, text, torch.tensor(log_scale), max_scale


def _no_clamp(image, text, log_scale, max_scale=100.0):
    return clip_loss(image, text, log_scale.exp())


def _upper_clamp_only(image, text, log_scale, max_scale=100.0):  # τ may grow past 1
    return clip_loss(image, text, log_scale.clamp(max=math.log(max_scale)).exp())


def _log_as_scale(image, text, log_scale, max_scale=100.0):  # forgets the exponential
    return clip_loss(image, text, log_scale.clamp(0.0, math.log(max_scale)))


def _divides_by_scale(image, text, log_scale, max_scale=100.0):  # reads exp(log) as τ itself
    return clip_loss(image, text, 1.0 / log_scale.clamp(0.0, math.log(max_scale)).exp())


def _scale_detached(image, text, log_scale, max_scale=100.0):  # right value; τ never learns
    return clip_loss(image, text, log_scale.clamp(0.0, math.log(max_scale)).exp().detach())


def _clamped_in_place(image, text, log_scale, max_scale=100.0):  # a value, not a clamp
    scale = min(max(math.exp(float(log_scale.detach())), 1.0), max_scale)
    return clip_loss(image, text, scale)


register(
    Exercise(
        id="9.1",
        title="CLIP's loss with a learnable, clamped temperature",
        hint="clamp log_logit_scale to [0, log(max_logit_scale)] with torch's clamp (not min/max "
        "on floats: the gradient must reach it), take exp: that is 1/τ; then CLIP's loss: "
        "logits = scale * image @ text.T, targets arange(N), the mean of the row and column "
        "cross-entropies (chapter 07's exercise 7.1)",
        reference=learnable_clip_loss,
        make_inputs=_inputs,
        cases=(
            _case(1, 2.66, 100.0),
            _case(2, 5.3, 100.0),
            _case(3, -0.4, 100.0),
            _case(4, 4.2, 50.0),
        ),
        wrong_answers=(
            _no_clamp,
            _upper_clamp_only,
            _log_as_scale,
            _divides_by_scale,
            _scale_detached,
            _clamped_in_place,
        ),
        trials=6,
        gradients=True,
    )
)


# ---------------------------------------------------------------- predict, then run
register_prediction(
    "9.2",
    "R@1 after training with a fixed temperature of 1",
    {
        "a": "within 0.10 of the best fixed temperature's: τ only rescales the scores, and a "
        "ranking does not change when every score is divided by the same number",
        "b": "at least 0.10 below the best fixed temperature's",
        "c": "at least 0.10 above it: a softer loss generalises better",
    },
    "b",
)
