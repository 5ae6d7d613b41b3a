"""Chapter 04 exercises: the pieces of a CVAE and a GAN; part 2: the negative ELBO that the
digit CVAE then trains with (4.4, a build exercise: its gradients are checked too). "Predict,
then run" questions: the colour survey's colour words, the CVAE on held-out pairs and on
grounded paraphrases (4.9, 4.7, 4.8, part 1), β and the KL (4.5, part 2) and the partly
collapsed cGAN's fidelity on seen prompts (4.6, part 3)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..generation.cvae import elbo_loss
from . import Exercise, register, register_prediction


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps, with sigma = exp(logvar / 2)."""
    return mu + torch.exp(0.5 * logvar) * eps


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) for each row: (B, D) -> (B,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def discriminator_bce_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """The discriminator's binary cross-entropy on logits: real -> 1, fake -> 0."""
    return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()


def _gaussian_inputs(rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
    b, d = int(rng.integers(2, 6)), int(rng.integers(2, 9))
    mu = torch.tensor(rng.normal(size=(b, d)), dtype=torch.float32)
    logvar = torch.tensor(rng.normal(scale=0.8, size=(b, d)), dtype=torch.float32)
    return mu, logvar


def _reparam_inputs(rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
    mu, logvar = _gaussian_inputs(rng)
    return mu, logvar, torch.tensor(rng.normal(size=mu.shape), dtype=torch.float32)


def _score_inputs(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    n = int(rng.integers(3, 9))
    return (
        torch.tensor(rng.normal(1.0, 2.0, n), dtype=torch.float32),
        torch.tensor(rng.normal(-1.0, 2.0, n), dtype=torch.float32),
    )


register(
    Exercise(
        id="4.1",
        title="the reparameterisation trick",
        hint="sigma is exp(logvar / 2), not logvar and not exp(logvar); then z = mu + sigma * eps",
        reference=reparameterize,
        make_inputs=_reparam_inputs,
        wrong_answers=(
            lambda mu, logvar, eps: mu + torch.exp(logvar) * eps,  # variance instead of std
            lambda mu, logvar, eps: mu + logvar * eps,  # log-variance used as std
            lambda mu, logvar, eps: mu,  # no sampling at all
        ),
        trials=5,
    )
)

register(
    Exercise(
        id="4.2",
        title="the KL term of a diagonal Gaussian against N(0, I)",
        hint="0.5 * sum over dimensions of (mu^2 + exp(logvar) - 1 - logvar), one number per row",
        reference=kl_to_standard_normal,
        make_inputs=_gaussian_inputs,
        wrong_answers=(
            lambda mu, logvar: (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1),  # no 1/2
            lambda mu, logvar: (
                0.5 * (mu.pow(2) + logvar - 1 - logvar.exp()).sum(1)
            ),  # terms swapped
            lambda mu, logvar: (
                0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean(1)
            ),  # mean, not sum
        ),
        trials=5,
    )
)

register(
    Exercise(
        id="4.3",
        title="the discriminator's loss on real and fake scores",
        hint="binary cross-entropy on logits: real images should score 1, fakes 0; "
        "softplus(-s) = -log sigmoid(s) and softplus(s) = -log(1 - sigmoid(s))",
        reference=discriminator_bce_loss,
        make_inputs=_score_inputs,
        wrong_answers=(
            lambda d_real, d_fake: (
                F.softplus(d_real).mean() + F.softplus(-d_fake).mean()
            ),  # labels swapped
            lambda d_real, d_fake: F.softplus(-d_real).mean(),  # ignores fakes
            lambda d_real, d_fake: (d_fake - d_real).mean(),  # a critic, not BCE
        ),
        trials=5,
    )
)


# ---------------------------------------------------------------- 4.4 the negative ELBO
def negative_elbo(
    x: torch.Tensor,
    x_logits: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, reconstruction, kl)``: the Bernoulli reconstruction summed over pixels and the KL
    to N(0, I) summed over latent dimensions, each averaged over the batch; loss = recon + β·KL.
    """
    return elbo_loss(x, x_logits, mu, logvar, beta)


def _elbo_inputs(rng: np.random.Generator) -> tuple:
    b, c, s, d = (int(rng.integers(lo, hi)) for lo, hi in ((2, 6), (1, 3), (3, 7), (2, 9)))
    x = torch.tensor(rng.uniform(size=(b, c, s, s)), dtype=torch.float32)  # grey, not only 0/1
    x_logits = torch.tensor(rng.normal(scale=2.0, size=(b, c, s, s)), dtype=torch.float32)
    mu = torch.tensor(rng.normal(size=(b, d)), dtype=torch.float32)
    logvar = torch.tensor(rng.normal(scale=0.8, size=(b, d)), dtype=torch.float32)
    # not 1: a missing beta must show
    return x, x_logits, mu, logvar, float(rng.choice([0.25, 0.5, 2.0, 4.0]))


def _bce(x, x_logits):
    return F.binary_cross_entropy_with_logits(x_logits, x, reduction="none").flatten(1).sum(1)


def _kl(mu, logvar):
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)


def _elbo_from(recon, kl, beta):
    recon, kl = recon.mean(), kl.mean()
    return recon + beta * kl, recon, kl


#: The mistakes exercise 4.4's check must reject, by name (the tests use the names).
ELBO_MISTAKES = {
    "log-variance used as the variance": lambda x, xl, mu, lv, beta: _elbo_from(
        _bce(x, xl), 0.5 * (mu.pow(2) + lv - 1 - lv.clamp(min=1e-6).log()).sum(1), beta
    ),
    "pixels averaged, not summed": lambda x, xl, mu, lv, beta: _elbo_from(
        F.binary_cross_entropy_with_logits(xl, x, reduction="none").flatten(1).mean(1),
        _kl(mu, lv),
        beta,
    ),
    "the KL subtracted": lambda x, xl, mu, lv, beta: (
        _bce(x, xl).mean() - beta * _kl(mu, lv).mean(),
        _bce(x, xl).mean(),
        _kl(mu, lv).mean(),
    ),
    "no beta": lambda x, xl, mu, lv, beta: _elbo_from(_bce(x, xl), _kl(mu, lv), 1.0),
    "the KL detached": lambda x, xl, mu, lv, beta: _elbo_from(
        _bce(x, xl), _kl(mu.detach(), lv.detach()), beta
    ),
    "sigmoid applied twice": lambda x, xl, mu, lv, beta: _elbo_from(
        _bce(x, torch.sigmoid(xl)), _kl(mu, lv), beta
    ),
}

register(
    Exercise(
        id="4.4",
        title="the negative ELBO the digit CVAE trains with",
        hint="recon: binary_cross_entropy_with_logits(x_logits, x, reduction='none'), summed over "
        "each image's pixels (flatten(1).sum(1)), then the batch mean; kl: exercise 4.2's "
        "0.5 * (mu^2 + exp(logvar) - 1 - logvar) summed over dimensions, then the batch mean; "
        "loss = recon + beta * kl; return (loss, recon, kl) as tensors, and detach nothing in "
        "the loss",
        reference=negative_elbo,
        make_inputs=_elbo_inputs,
        wrong_answers=tuple(ELBO_MISTAKES.values()),
        trials=6,
        gradients=True,
        gradient_outputs=(0,),  # training backpropagates the loss; recon and kl are for logs
    )
)


# ---------------------------------------------------------------- predict, then run
register_prediction(
    "4.5",
    "which β leaves the least information in z (the smallest KL)?",
    {"a": "β = 0.25", "b": "β = 1", "c": "β = 4"},
    "c",
)

register_prediction(
    "4.6",
    "the partly collapsed cGAN's colour+shape fidelity on seen prompts",
    {
        "a": "near chance (below 0.2)",
        "b": "in between (0.2 to 0.85)",
        "c": "most of the time (0.85 or more)",
    },
    "c",
)

register_prediction(
    "4.7",
    "the CVAE's colour+shape fidelity on the three held-out pairs, at the chapter's temperature",
    {
        "a": "near chance: below 3 × chance (0.167)",
        "b": "at least 3 × chance",
    },
    "b",  # backed by the checkpoint cvae-held-out (>= 3 × chance)
)

register_prediction(
    "4.8",
    "the CVAE's colour+shape fidelity on grounded paraphrases, at the chapter's temperature",
    {"a": "near chance: below 3 × chance (0.167)", "b": "at least 3 × chance"},
    "b",  # backed by the checkpoint cvae-paraphrase-grounded (>= 3 × chance)
)

register_prediction(
    "4.9",
    "how many unseen colour words the colour survey puts on the right ShapesWorld colour",
    {"a": "at most half", "b": "more than half but fewer than 10", "c": "10 or more"},
    "c",  # backed by the checkpoint survey-colour-words (>= 10)
)
