"""Prompt-driven generation (提示词驱动的生成): a prompt in, images out, from any generator.

:func:`generate` reads a prompt with a prompt encoder (:mod:`cmlib.prompts`) and draws images
from a :class:`cmlib.cvae.CVAE` or a GAN generator of :mod:`cmlib.gan`;
:func:`generate_from_condition` does the same from a condition vector. How faithful the
images are is measured by :mod:`cmlib.judge`.
"""

from __future__ import annotations

import torch
from torch import nn

from .cvae import CVAE
from .validate import check_int, check_tensor


def _check_num_samples(n: int) -> None:
    check_int("the number of samples n", n)


@torch.no_grad()
def generate_from_condition(
    model: nn.Module,
    condition: torch.Tensor,
    n: int,
    seed: int | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """``n`` images in [0, 1] on the CPU for one condition vector ``(cond_dim,)`` or ``(1,
    cond_dim)``.

    ``model`` is a :class:`CVAE` (it has ``latent_dim`` and ``sample(c, z, temperature)``) or a GAN
    generator of :mod:`cmlib.gan` (it has ``noise_dim`` and is called as ``model(z, c)``).
    ``temperature`` scales a CVAE's prior noise (see :meth:`CVAE.sample`); a GAN ignores it.

    Raises:
        ValueError: if ``n`` is not positive or the condition has the wrong size.
    """
    _check_num_samples(n)
    check_tensor("condition", condition)
    c = condition.reshape(1, -1) if condition.ndim == 1 else condition
    if c.ndim != 2 or c.shape != (1, model.cond_dim):
        raise ValueError(
            f"expected one condition of size {model.cond_dim}, got shape {tuple(condition.shape)}"
        )
    device = next(model.parameters()).device
    c = c.to(device).expand(n, -1)
    is_vae = isinstance(model, CVAE)
    noise_dim = model.latent_dim if is_vae else model.noise_dim
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    z = torch.randn(n, noise_dim, generator=gen).to(device)
    model.eval()
    out = model.sample(c, z, temperature) if is_vae else model(z, c)
    return out.cpu()


@torch.no_grad()
def generate(
    model: nn.Module,
    text_encoder: nn.Module,
    prompt: str,
    n: int,
    seed: int | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Draw ``n`` images ``(n, C, S, S)`` in [0, 1] for a text ``prompt`` (``temperature``: CVAE
    only).

    Raises:
        ValueError: on an empty prompt, a prompt with no known word (bag-of-words
            encoder), a non-positive ``n``, or an encoder whose condition size does not fit the
            model.
    """
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
    _check_num_samples(n)
    text_encoder.eval()
    return generate_from_condition(model, text_encoder([prompt]), n, seed, temperature)
