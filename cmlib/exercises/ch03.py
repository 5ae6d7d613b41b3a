"""Chapter 03 exercises: multiplicative fusion, a gate, attention weights, and the low-rank
bilinear fusion (3.8, a build exercise: part 1 trains a VQA model with it); part 2: late fusion
(3.4, a build exercise: the ensemble combines its members with it) and gradient reversal (3.5,
a build exercise: the adversarial aligner trains with it). The build exercises' gradients are
checked too."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..alignment.adversarial import grad_reverse
from ..fusion import low_rank_bilinear
from . import Exercise, register, register_prediction


def _features(rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
    """A batch of vision and language features and the two projection matrices."""
    b, dv, dl, d = int(rng.integers(2, 6)), int(rng.integers(3, 8)), int(rng.integers(3, 8)), 4
    t = lambda *s: torch.from_numpy(rng.normal(size=s).astype(np.float32))  # noqa: E731
    return t(b, dv), t(b, dl), t(dv, d), t(dl, d)


def multiplicative_fusion(
    vision: torch.Tensor, language: torch.Tensor, w_vision: torch.Tensor, w_language: torch.Tensor
) -> torch.Tensor:
    """``tanh(vision @ w_vision) * tanh(language @ w_language)``: ``(B, D)``."""
    return torch.tanh(vision @ w_vision) * torch.tanh(language @ w_language)


register(
    Exercise(
        id="3.1",
        title="multiplicative fusion",
        hint="project each modality with its matrix (@), squash with torch.tanh, then multiply "
        "element-wise with * (not @, not +, not torch.cat)",
        reference=multiplicative_fusion,
        make_inputs=_features,
        wrong_answers=(
            lambda v, t, wv, wt: torch.tanh(v @ wv) + torch.tanh(t @ wt),  # additive
            lambda v, t, wv, wt: (v @ wv) * (t @ wt),  # no tanh
            lambda v, t, wv, wt: torch.cat([torch.tanh(v @ wv), torch.tanh(t @ wt)], 1),  # concat
        ),
    )
)


def _gate_inputs(rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
    b, d = int(rng.integers(2, 6)), int(rng.integers(3, 8))
    t = lambda *s: torch.from_numpy(rng.normal(size=s).astype(np.float32))  # noqa: E731
    return t(b, d), t(b, d), t(2 * d, d), t(d)


def gated_fusion(
    h_vision: torch.Tensor, h_language: torch.Tensor, w_gate: torch.Tensor, b_gate: torch.Tensor
) -> torch.Tensor:
    """``g = σ([h_v; h_l] @ w_gate + b_gate)``; ``g * h_v + (1 - g) * h_l``."""
    g = torch.sigmoid(torch.cat([h_vision, h_language], dim=1) @ w_gate + b_gate)
    return g * h_vision + (1 - g) * h_language


register(
    Exercise(
        id="3.2",
        title="a gate that mixes two modalities",
        hint="g = torch.sigmoid(torch.cat([h_vision, h_language], dim=1) @ w_gate + b_gate); "
        "then g * h_vision + (1 - g) * h_language",
        reference=gated_fusion,
        make_inputs=_gate_inputs,
        wrong_answers=(
            lambda hv, hl, w, b: (lambda g: g * hv + (1 - g) * hl)(
                torch.cat([hv, hl], 1) @ w + b
            ),  # no σ
            lambda hv, hl, w, b: (lambda g: g * hl + (1 - g) * hv)(
                torch.sigmoid(torch.cat([hv, hl], 1) @ w + b)
            ),  # swapped
            lambda hv, hl, w, b: 0.5 * hv + 0.5 * hl,  # no gate
        ),
    )
)


def _attention_inputs(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    b, n, d = int(rng.integers(2, 5)), int(rng.integers(4, 17)), int(rng.integers(4, 17))
    t = lambda *s: torch.from_numpy(rng.normal(size=s).astype(np.float32))  # noqa: E731
    return t(b, d), t(b, n, d)


def attention_weights(query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Scaled dot-product attention weights: ``softmax_n(keys[b, n] · query[b] / sqrt(D))``."""
    scores = (keys @ query.unsqueeze(2)).squeeze(2) / math.sqrt(query.shape[1])
    return torch.softmax(scores, dim=1)


register(
    Exercise(
        id="3.3",
        title="attention weights of a question over image regions",
        hint="scores[b, n] = keys[b, n] · query[b] (use keys @ query.unsqueeze(2)), divide by "
        "sqrt(D), then softmax over the regions (dim=1), so each row sums to 1",
        reference=attention_weights,
        make_inputs=_attention_inputs,
        wrong_answers=(
            lambda q, k: torch.softmax((k @ q.unsqueeze(2)).squeeze(2), dim=1),  # no scaling
            lambda q, k: torch.softmax((k @ q.unsqueeze(2)).squeeze(2) / math.sqrt(q.shape[1]), 0),
            lambda q, k: (k @ q.unsqueeze(2)).squeeze(2) / math.sqrt(q.shape[1]),  # no softmax
        ),
    )
)


def _ensemble_inputs(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    b, c = int(rng.integers(2, 6)), int(rng.integers(3, 8))
    t = lambda *s: torch.from_numpy(rng.normal(size=s).astype(np.float32))  # noqa: E731
    prior = torch.from_numpy(rng.dirichlet(np.ones(c)).astype(np.float32))
    return t(b, c), t(b, c), prior.log()


def product_of_experts(
    logits_image: torch.Tensor, logits_text: torch.Tensor, log_prior: torch.Tensor
) -> torch.Tensor:
    """``log p_img + log p_txt − log prior`` (log-softmax of each member first)."""
    return torch.log_softmax(logits_image, 1) + torch.log_softmax(logits_text, 1) - log_prior


register(
    Exercise(
        id="3.4",
        title="late fusion of two experts",
        hint="turn each member's logits into log-probabilities with torch.log_softmax(..., dim=1), "
        "add them, and subtract the log prior once (it was counted twice)",
        reference=product_of_experts,
        make_inputs=_ensemble_inputs,
        wrong_answers=(
            lambda a, b, p: torch.log_softmax(a, 1) + torch.log_softmax(b, 1),  # prior twice
            lambda a, b, p: a + b - p,  # raw logits
            lambda a, b, p: torch.softmax(a, 1) + torch.softmax(b, 1) - p,  # probabilities
            # the right value, but a jointly fine-tuned ensemble would never train the text member
            lambda a, b, p: torch.log_softmax(a, 1) + torch.log_softmax(b, 1).detach() - p,
        ),
        gradients=True,  # a build exercise: the chapter's ensemble combines its members with it
    )
)


# ---------------------------------------------------------------- 3.5 gradient reversal
def reverse_gradient(x: torch.Tensor, strength: float) -> torch.Tensor:
    """The identity going forward, ``−strength ×`` the gradient going back."""
    return grad_reverse(x, strength)


def _reversal_inputs(rng: np.random.Generator) -> tuple[torch.Tensor, float]:
    b, d = int(rng.integers(2, 7)), int(rng.integers(2, 9))
    # not 1: a reversal that forgets the strength must show
    return torch.from_numpy(rng.normal(size=(b, d)).astype(np.float32)), float(
        rng.choice([0.1, 0.5, 2.0, 3.0])
    )


def _function(forward, backward):
    """An autograd Function from a forward ``(x, strength) -> y`` and a backward
    ``(grad, strength) -> grad_x``, applied as ``answer(x, strength)``."""

    class Mistake(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, strength):
            ctx.strength = strength
            return forward(x, strength)

        @staticmethod
        def backward(ctx, grad):
            return backward(grad, ctx.strength), None

    return Mistake.apply


#: The mistakes exercise 3.5's check must reject, by name (the tests use the names).
REVERSAL_MISTAKES = {
    "the identity both ways": _function(lambda x, s: x.view_as(x), lambda g, s: g),
    "the strength forgotten": _function(lambda x, s: x.view_as(x), lambda g, s: -g),
    "the forward pass negated too": _function(lambda x, s: -x, lambda g, s: -s * g),
    "the strength applied going forward": _function(lambda x, s: s * x, lambda g, s: -s * g),
    "a detached copy": lambda x, strength: x.detach(),
}

register(
    Exercise(
        id="3.5",
        title="gradient reversal",
        hint="forward: store the strength on ctx (ctx.strength = strength) and return x unchanged "
        "(x.view_as(x)); backward: return -ctx.strength * grad_output for x, and None for the "
        "strength (it gets no gradient)",
        reference=reverse_gradient,
        make_inputs=_reversal_inputs,
        wrong_answers=tuple(REVERSAL_MISTAKES.values()),
        trials=5,
        gradients=True,
    )
)


# ---------------------------------------------------------------- predict, then run
register_prediction(
    "3.6",
    "the late-fusion ensemble against its better member",
    {
        "a": "below its better member",
        "b": "about the same: within 0.05",
        "c": "above it by more than 0.05",
    },
    "c",
)
register_prediction(
    "3.7",
    "the task accuracy after the adversarial epochs",
    {
        "a": "below 0.5: the task traded for the game",
        "b": "within 0.05 of where it was after the warm-up",
        "c": "higher than after the warm-up by more than 0.05",
    },
    "b",
)


# ---------------------------------------------------------------- 3.8 low-rank bilinear fusion
def bilinear_fusion(vision, language, vision_factor, language_factor, out):
    """``ReLU(P(tanh(U v) ⊙ tanh(V l)))`` with the layers ``U``, ``V`` and ``P`` given."""
    return low_rank_bilinear(vision, language, vision_factor, language_factor, out)


def _bilinear_inputs(rng: np.random.Generator) -> tuple:
    """A batch (of 1 now and then: the edge case) and three linear layers with random weights."""
    b = int(rng.choice([1, 2, 5]))
    dv, dl, rank, d = (int(rng.integers(2, 7)) for _ in range(4))
    # the layers' initialisation draws from torch's global random state: fork it, so that a
    # check never changes what the chapter trains next
    with torch.random.fork_rng():
        torch.manual_seed(int(rng.integers(2**31)))
        layers = torch.nn.Linear(dv, rank), torch.nn.Linear(dl, rank), torch.nn.Linear(rank, d)
    t = lambda *s: torch.from_numpy(rng.normal(size=s).astype(np.float32))  # noqa: E731
    return (t(b, dv), t(b, dl), *layers)


#: The mistakes exercise 3.8's check must reject, by name (the tests use the names).
BILINEAR_MISTAKES = {
    "no tanh on the factors": lambda v, t, u, w, p: torch.relu(p(u(v) * w(t))),
    "the factors added, not multiplied": lambda v, t, u, w, p: torch.relu(
        p(torch.tanh(u(v)) + torch.tanh(w(t)))
    ),
    "no ReLU on the output": lambda v, t, u, w, p: p(torch.tanh(u(v)) * torch.tanh(w(t))),
    "a detached language factor": lambda v, t, u, w, p: torch.relu(
        p(torch.tanh(u(v)) * torch.tanh(w(t)).detach())
    ),
}

register(
    Exercise(
        id="3.8",
        title="the low-rank bilinear fusion",
        hint="project vision with vision_factor and language with language_factor, squash each "
        "with torch.tanh, multiply them element-wise (*), then apply out and a ReLU",
        reference=bilinear_fusion,
        make_inputs=_bilinear_inputs,
        wrong_answers=tuple(BILINEAR_MISTAKES.values()),
        gradients=True,
    )
)


# ---------------------------------------------------------------- 3.9 predict, then run
register_prediction(
    "3.9",
    "the relation accuracy of the VQA model with your bilinear fusion",
    {
        "a": "near the other vector fusions' and the answer prior's, at most 0.65",
        "b": "between 0.65 and 0.85",
        "c": "near FiLM's and attention's, above 0.85",
    },
    "a",  # backed by the checkpoint your-bilinear-relation (<= 0.65)
)

register_prediction(
    "3.10",
    "a fresh linear probe's image-or-text accuracy after the adversarial epochs",
    {"a": "still 0.9 or more", "b": "near chance: at most 0.65"},
    "b",  # backed by the checkpoint probe-after (<= 0.65)
)
register_prediction(
    "3.11",
    "the game's discriminator's image-or-text accuracy after the adversarial epochs",
    {"a": "still 0.9 or more", "b": "near chance: at most 0.65"},
    "b",  # backed by the checkpoint disc-after (<= 0.65)
)
