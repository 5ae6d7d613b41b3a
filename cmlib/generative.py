"""Prompt-driven generation (提示词驱动的生成): a prompt in, images out, from any generator.

:func:`generate` reads a prompt with a prompt encoder (:mod:`cmlib.prompts`) and draws images
from a :class:`cmlib.cvae.CVAE` or a GAN generator of :mod:`cmlib.gan`;
:func:`generate_from_condition` does the same from a condition vector. How faithful the
images are is measured by :mod:`cmlib.judge`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from . import gan, prompts
from .checkpoint import load_checkpoint
from .cvae import CVAE
from .text import Vocab
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
    generator of :mod:`cmlib.gan` (it has ``noise_dim`` and is called as ``model(z, c)``), or a
    token decoder such as :class:`~cmlib.autoregressive.TokenImageGenerator` (it has
    ``sample_images(c, temperature, generator)``). ``temperature`` scales a CVAE's prior noise
    (see :meth:`CVAE.sample`) or a token decoder's logits; a GAN ignores it.

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
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    if hasattr(model, "sample_images"):  # a token decoder draws its own randomness
        return model.sample_images(c, temperature, gen).cpu()
    is_vae = isinstance(model, CVAE)
    noise_dim = model.latent_dim if is_vae else model.noise_dim
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


#: What chapter 04 saves to the data cache, by file name: (the checkpoint's ``what``, the key
#: of the generator inside the saved ``ModuleDict``).
SAVED_GENERATORS = {
    "ch04_cvae.pt": ("chapter 04 CVAE", "cvae"),
    "ch04_cgan.pt": ("chapter 04 cGAN", "generator"),
}


def load_saved_generator(path: str | Path, vocab: Vocab) -> tuple[nn.Module, nn.Module]:
    """Rebuild a generator that chapter 04 saved, with its bag-of-words prompt encoder.

    Args:
        path: ``ch04_cvae.pt`` or ``ch04_cgan.pt`` in the data cache.
        vocab: the prompt vocabulary the encoder was trained with.

    Returns:
        ``(generator, text_encoder)``, both in eval mode on the CPU.

    Raises:
        ValueError: for a file name that is not one of :data:`SAVED_GENERATORS`.
        FileNotFoundError: if the chapter has not saved it on this machine.
        CheckpointError: if the file is corrupt or does not fit the model.
    """
    path = Path(path)
    if path.name not in SAVED_GENERATORS:
        raise ValueError(f"expected one of {sorted(SAVED_GENERATORS)}, got {path.name!r}")
    what, key = SAVED_GENERATORS[path.name]
    saved = load_checkpoint(path, what=what)
    config = dict(saved["config"])
    cond_dim = config["cond_dim"]
    model = CVAE(**config) if key == "cvae" else gan.GlyphGenerator(**config)
    both = nn.ModuleDict({key: model, "text": prompts.BagOfWordsEncoder(vocab, cond_dim)})
    load_checkpoint(path, both, what=what)
    return both[key].eval(), both["text"].eval()
