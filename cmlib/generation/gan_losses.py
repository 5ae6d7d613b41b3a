"""The conditional GAN's losses (article §3.2.1.1 GANs在跨模态学习中的应用).

:func:`cmlib.generation.gan_training.train_cgan` adds them up: the hinge losses of the two
players, and, when asked, the R1 penalty in D's step and the mode-seeking term in G's. Each
takes scores or images and returns a scalar; none knows about the models, except
:func:`r1_penalty_of`, which takes the discriminator itself (chapter 09's exercise 9.8 writes it).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..validate import check_tensor


def discriminator_hinge_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Hinge loss for D: mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))."""
    return F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()


def generator_hinge_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Hinge loss for G: -mean(D(fake))."""
    return -d_fake.mean()


def r1_penalty(scores: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al., 2018): the mean squared norm of D's gradient at the real images.

    ``real`` must have been made to require grad before ``scores = D(real, c)``. Penalising the
    slope on the data keeps D from sharpening its scores around the real images, the oscillation
    a GAN's game falls into near equilibrium.
    """
    check_tensor("real", real, floating=True, nonempty=True)
    check_tensor("scores", scores, (len(real),))
    if not real.requires_grad or not scores.requires_grad:
        raise ValueError(
            "r1_penalty needs the real images to require grad before D scores them "
            f"(real.requires_grad={real.requires_grad}, "
            f"scores.requires_grad={scores.requires_grad})"
        )
    (grad,) = torch.autograd.grad(scores.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def r1_penalty_of(
    discriminator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    cond: torch.Tensor,
) -> torch.Tensor:
    """The R1 penalty of ``discriminator`` at ``real`` images with prompts ``cond``.

    The images are taken as a leaf of their own (detached), so the penalty reaches D's weights
    and the prompts' embedding, never the data.

    Args:
        discriminator: ``D(x, c) -> (B,)`` scores.
        real: real images ``(B, C, H, W)``.
        cond: their prompts' embeddings ``(B, D)``.

    Returns:
        a scalar that D can be trained on (its graph is kept).
    """
    if not callable(discriminator):
        raise TypeError(f"discriminator must be callable, got {type(discriminator).__name__}")
    check_tensor("real", real, ("B", "C", "H", "W"), floating=True, nonempty=True)
    check_tensor("cond", cond, (len(real), "D"), floating=True)
    x = real.detach().requires_grad_(True)
    return r1_penalty(discriminator(x, cond), x)


def mode_seeking_loss(
    fake_a: torch.Tensor, fake_b: torch.Tensor, z_a: torch.Tensor, z_b: torch.Tensor
) -> torch.Tensor:
    """Mode seeking (MSGAN, Mao et al., 2019): 1 / (image distance over noise distance).

    Two noises for the same prompt should give images as far apart as the noises are; a
    collapsed G maps both to one image and pays a large loss.
    """
    check_tensor("fake_a", fake_a, floating=True, nonempty=True)
    check_tensor("fake_b", fake_b, tuple(fake_a.shape), floating=True)
    check_tensor("z_a", z_a, (len(fake_a), "D"), floating=True)
    check_tensor("z_b", z_b, tuple(z_a.shape), floating=True)
    image = (fake_a - fake_b).abs().flatten(1).mean(1)
    noise = (z_a - z_b).abs().mean(1).clamp_min(1e-8)  # equal noises: no ratio to keep
    return 1.0 / (image / noise + 1e-5).mean()
