"""Chapter 06 exercises, numbered in reading order: 6.1 the cycle-consistency loss and 6.2 the
LSGAN discriminator loss (part 1, ``06_cyclegan``); 6.10 orthogonal Procrustes (part 6,
``06_alignment_spaces``; a build exercise: the part solves its seed-pair rotations with it, and
its gradients are checked).

The others are predict-then-run questions: 6.3 in part 2 (``06_alignment``: how far apart the
five long runs' source-only models end on sketches), 6.4 and 6.5 in part 3
(``06_cyclegan_ablations``: the style without the cycle loss, the paired bound's pixel error),
6.6 and 6.7 in part 4 (``06_cyclegan_identity``: colours without the identity loss, whether the
cycle still closes), 6.8 and 6.9 in part 5 (``06_cyclegan_one_direction``: F's style and its
error on real sketches with the forward cycle only), and 6.11 in part 6 (rotated GloVe
recovered with no pairs). Each answer is backed by a learning checkpoint asserted in its
notebook. (Until stop 47 Procrustes was 6.3, the GloVe question 6.10 and the sketches
question 6.11.)
"""

from __future__ import annotations

import numpy as np
import torch

from ..alignment import procrustes
from ..cyclegan import cycle_loss, lsgan_discriminator_loss
from . import Exercise, register, register_prediction


# ---------------------------------------------------------------- 6.1 cycle consistency
def cycle_consistency(real_a, reconstructed_a, real_b, reconstructed_b, lambda_cycle):
    """λ · (‖F(G(a)) − a‖₁ + ‖G(F(b)) − b‖₁), each a mean over pixels."""
    return lambda_cycle * (
        cycle_loss(reconstructed_a, real_a) + cycle_loss(reconstructed_b, real_b)
    )


def _cycle_inputs(rng: np.random.Generator):
    shape = (int(rng.integers(1, 4)), 3, 4, 4)
    a, b = (torch.from_numpy(rng.random(shape)).float() for _ in range(2))
    rec_a = a + 0.3 * torch.from_numpy(rng.normal(size=shape)).float()
    rec_b = b + 0.1 * torch.from_numpy(rng.normal(size=shape)).float()
    return a, rec_a, b, rec_b, float(rng.uniform(1.0, 20.0))


def _squared(a, rec_a, b, rec_b, lam):  # L2 instead of L1
    return lam * (((rec_a - a) ** 2).mean() + ((rec_b - b) ** 2).mean())


def _one_cycle(a, rec_a, b, rec_b, lam):  # forgets the backward cycle
    return lam * (rec_a - a).abs().mean()


def _summed(a, rec_a, b, rec_b, lam):  # a sum over pixels, not a mean
    return lam * ((rec_a - a).abs().sum() + (rec_b - b).abs().sum())


register(
    Exercise(
        id="6.1",
        title="the cycle-consistency loss",
        hint="mean absolute error of each reconstruction against its original, both cycles "
        "added, times lambda_cycle",
        reference=cycle_consistency,
        make_inputs=_cycle_inputs,
        wrong_answers=(_squared, _one_cycle, _summed),
    )
)


# ---------------------------------------------------------------- 6.2 LSGAN discriminator loss
def lsgan_d_loss(d_real, d_fake):
    """½ · [mean (D(real) − 1)² + mean D(fake)²]."""
    return lsgan_discriminator_loss(d_real, d_fake)


def _scores(rng: np.random.Generator):
    shape = (int(rng.integers(1, 5)), 1, 3, 3)
    return (
        torch.from_numpy(rng.normal(0.7, 0.4, size=shape)).float(),
        torch.from_numpy(rng.normal(0.2, 0.4, size=shape)).float(),
    )


def _swapped(d_real, d_fake):  # real aimed at 0, fake at 1
    return 0.5 * ((d_real**2).mean() + ((d_fake - 1) ** 2).mean())


def _not_halved(d_real, d_fake):
    return ((d_real - 1) ** 2).mean() + (d_fake**2).mean()


def _bce(d_real, d_fake):  # the saturating cross-entropy loss
    f = torch.nn.functional.binary_cross_entropy_with_logits
    return 0.5 * (f(d_real, torch.ones_like(d_real)) + f(d_fake, torch.zeros_like(d_fake)))


register(
    Exercise(
        id="6.2",
        title="the least-squares (LSGAN) discriminator loss",
        hint="real patches are pushed towards 1 and fake ones towards 0 with a squared error; "
        "average each over the patches and halve their sum",
        reference=lsgan_d_loss,
        make_inputs=_scores,
        wrong_answers=(_swapped, _not_halved, _bce),
    )
)


# ---------------------------------------------------------------- 6.10 orthogonal Procrustes
def procrustes_map(source, target):
    """The orthogonal W minimising ‖source · W − target‖: U Vᵀ from the SVD of sourceᵀ · target."""
    return procrustes(source, target)


def _seed_pairs(rng: np.random.Generator):
    n, d = int(rng.integers(8, 20)), int(rng.integers(3, 7))
    x = torch.from_numpy(rng.normal(size=(n, d))).double()
    q, _ = torch.linalg.qr(torch.from_numpy(rng.normal(size=(d, d))).double())
    return x, x @ q + 0.05 * torch.from_numpy(rng.normal(size=(n, d))).double()


def _target_first(source, target):  # SVD of targetᵀ · source: the inverse map
    u, _, vh = torch.linalg.svd(target.T @ source)
    return u @ vh


def _least_squares(source, target):  # the best linear map, not an orthogonal one
    return torch.linalg.lstsq(source, target).solution


def _with_scale(source, target):  # keeps the singular values
    u, s, vh = torch.linalg.svd(source.T @ target)
    return u @ torch.diag(s) @ vh


def _through_numpy(source, target):  # the right matrix, with no gradient to flow back
    u, _, vh = np.linalg.svd((source.T @ target).detach().numpy())
    return torch.from_numpy(u @ vh).to(source.dtype)


register(
    Exercise(
        id="6.10",
        title="the orthogonal Procrustes map",
        hint="take the SVD U S Vᵀ of sourceᵀ @ target and return U @ Vᵀ (torch.linalg.svd "
        "returns U, S and Vᵀ)",
        reference=procrustes_map,
        make_inputs=_seed_pairs,
        wrong_answers=(_target_first, _least_squares, _with_scale, _through_numpy),
        atol=1e-6,
        gradients=True,  # the SVD's gradient: defined where the singular values differ
    )
)


# ---------------------------------------------------------------- 6.4–6.9, 6.11 predict, then run
register_prediction(
    "6.4",
    "the fraction of test scenes in the target style, G and F trained without the cycle loss",
    {
        "a": "at least 0.9 in both directions",
        "b": "about half, a coin's verdict",
        "c": "below 0.1",
    },
    "a",
)

register_prediction(
    "6.5",
    "the paired generator's pixel error (MAE) on test scenes, against the unpaired full model's",
    {
        "a": "lower, by more than 0.005 in both directions",
        "b": "about the same (within 0.005)",
        "c": "higher",
    },
    "a",
)

register_prediction(
    "6.6",
    "the fraction of test scenes whose colour G's sketch shows, trained without the identity loss",
    {
        "a": "at least 0.9",
        "b": "between 0.5 and 0.9",
        "c": "at most 0.5",
    },
    "c",
)

register_prediction(
    "6.7",
    "the round trip's pixel error (cycle MAE) without the identity loss, against the full model's",
    {
        "a": "more than 0.02 higher: the cycle breaks",
        "b": "at most 0.02 higher, or lower: the cycle still closes",
    },
    "b",
)

register_prediction(
    "6.8",
    "the fraction of real sketches that F turns into photos (target style), forward cycle only",
    {
        "a": "at least 0.9",
        "b": "about half",
        "c": "below 0.1",
    },
    "a",
)

register_prediction(
    "6.9",
    "F's pixel error on real sketches over its error on G's sketches, forward cycle only",
    {
        "a": "below 0.9: real sketches are easier",
        "b": "about 1 (between 0.9 and 1.1)",
        "c": "at least 1.1: F does better on G's sketches",
    },
    "c",
)

register_prediction(
    "6.11",
    "the P@1 of a rotated GloVe aligned with no pairs, from the distances inside each space",
    {
        "a": "below 0.05, near chance",
        "b": "between 0.05 and 0.95",
        "c": "at least 0.95, as with 20 seed pairs",
    },
    "c",
)


# ---------------------------------------------------------------- 6.3 predict, then run
register_prediction(
    "6.3",
    "how far apart the five long runs' source-only models end on sketches",
    {
        "a": "within 0.05 of each other: all five learn the photos almost perfectly",
        "b": "more than 0.25 apart between the best and the worst seed",
        "c": "all near chance (1/18): a model trained on photos cannot read sketches",
    },
    "b",  # backed by the checkpoint source-only-sketch-luck (>= 0.25 over the shipped seeds)
)
