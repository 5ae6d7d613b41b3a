"""Chapter 05's exercises for parts 4 and 5, a prompt becomes an image one token at a time.

5.5 classifier-free guidance of a token model's logits (part 4); 5.9 a sampling temperature's
distribution, which part 5 then measures with; 5.8 and 5.12 are predict-then-run questions
(parts 5 and 4). :mod:`cmlib.exercises.ch05` imports this module, so that ``check("5.9", ...)``
finds them.
"""

from __future__ import annotations

import numpy as np
import torch

from ..generation.autoregressive import tempered_probabilities
from . import Exercise, register, register_prediction


# ---------------------------------------------------------------- 5.5 classifier-free guidance
def guided_logits(
    with_prompt: torch.Tensor, without_prompt: torch.Tensor, guidance: float
) -> torch.Tensor:
    """Classifier-free guidance: move the logits ``guidance`` times the prompt's push away from
    the unprompted ones, ``l(∅) + guidance · (l(c) − l(∅))``."""
    return without_prompt + guidance * (with_prompt - without_prompt)


def _logit_pair(rng: np.random.Generator):
    b, k = int(rng.integers(1, 4)), int(rng.integers(4, 9))
    pair = torch.from_numpy(rng.normal(size=(2, b, k))).float()
    return pair[0], pair[1], float(rng.choice([0.5, 2.0, 3.0]))


register(
    Exercise(
        id="5.5",
        title="classifier-free guidance",
        hint="start from the unprompted logits and add guidance times the difference the prompt "
        "makes; guidance 1 gives back the prompted logits",
        reference=guided_logits,
        make_inputs=_logit_pair,
        wrong_answers=(
            lambda c, u, g: c + g * (c - u),  # starts from the prompted logits
            lambda c, u, g: g * c,  # scales the logits: a temperature, not guidance
            lambda c, u, g: (
                torch.softmax(u, -1) + g * (torch.softmax(c, -1) - torch.softmax(u, -1))
            ),
        ),
        trials=10,
    )
)


# ---------------------------------------------------------------- 5.9 sampling temperature
def _tempered_inputs(rng: np.random.Generator):
    # rows != columns, so that a softmax over the wrong dimension shows
    b, k = int(rng.integers(2, 5)), int(rng.integers(5, 10))
    logits = torch.from_numpy(rng.normal(scale=2.0, size=(b, k))).float()
    return logits, float(rng.choice([0.3, 0.5, 0.7, 2.0]))


#: The mistakes exercise 5.9's check must reject, by name (the tests use the names).
TEMPERATURE_MISTAKES = {
    "multiplies by the temperature": lambda logits, t: torch.softmax(logits * t, -1),
    "divides the probabilities": lambda logits, t: torch.softmax(logits, -1) / t,
    "softmax over the batch": lambda logits, t: torch.softmax(logits / t, 0),
    "divides after the softmax, renormalised": lambda logits, t: (
        torch.softmax(logits, -1) / t / (torch.softmax(logits, -1) / t).sum(-1, keepdim=True)
    ),
}

register(
    Exercise(
        id="5.9",
        title="the sampling temperature",
        hint="divide the logits by the temperature, then take the softmax over the last "
        "dimension (the codes); temperature 1 gives back the plain softmax",
        reference=tempered_probabilities,
        make_inputs=_tempered_inputs,
        wrong_answers=tuple(TEMPERATURE_MISTAKES.values()),
        trials=10,
    )
)


register_prediction(
    "5.12",
    "which positions' predictions can move when the token at row 3, column 4 changes",
    {
        "a": "every position",
        "b": "only positions after (3, 4) in raster order",
        "c": "only the eight neighbours of (3, 4)",
    },
    "b",
)


register_prediction(
    "5.8",
    "the token model's seen-prompt fidelity with guidance 3 and temperature 0.7, against plain "
    "sampling",
    {
        "a": "higher than plain sampling",
        "b": "about the same (within 0.02)",
        "c": "lower than plain sampling",
    },
    "a",
)
