"""Prompt-driven generation (提示词驱动的生成): a prompt in, images out, from any generator.

:func:`generate` reads a prompt with a prompt encoder (:mod:`cmlib.generation.prompts`) and
draws images from a :class:`~cmlib.generation.cvae.CVAE` or a GAN generator of
:mod:`cmlib.generation.gan`;
:func:`generate_from_condition` does the same from a condition vector. How faithful the
images are is measured by :func:`fidelity_over`, with a judge of :mod:`cmlib.judge`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .. import registry, runtime
from ..data import shapes
from ..data.shapes.prompt_text import EvalPrompt
from ..judge import AttributeJudge, prompt_fidelity
from ..text import Vocab
from ..validate import check_int, check_tensor
from . import gan, gan_losses, gan_training, prompts
from .cvae import CVAE


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
    generator of :mod:`cmlib.generation.gan` (it has ``noise_dim`` and is called as
    ``model(z, c)``), or a token decoder such as
    :class:`~cmlib.generation.autoregressive.TokenImageGenerator` (it has
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


def fidelity_over(
    judge: AttributeJudge,
    model: nn.Module,
    encoder: nn.Module,
    prompts: Sequence[EvalPrompt],
    n: int,
    seed: int = 0,
    temperature: float = 1.0,
) -> dict[str, float]:
    """Mean :func:`prompt_fidelity` over ``prompts``, ``n`` samples each (noise seeds from
    ``seed``).

    Returns:
        ``color``, ``shape`` and ``color+shape``, plus ``size`` and ``position`` when prompted.
    """
    if not prompts:
        raise ValueError("fidelity_over needs at least one prompt")
    scores: dict[str, list[float]] = {}
    for k, (text, color, shape, size, position) in enumerate(prompts):
        images = generate(model, encoder, text, n, seed=seed * 1000 + k, temperature=temperature)
        for key, value in prompt_fidelity(judge, images, color, shape, size, position).items():
            scores.setdefault(key, []).append(value)
    return {key: float(np.mean(values)) for key, values in scores.items()}


#: Chapter 04 part 3's cGAN in the model registry: ``ch04-cgan-<profile>-seed<seed>``. (Part 1's
#: CVAE is the studio's drawer, ``ch04-cvae-…``: see :func:`cmlib.studio.models.load_role`.)
CGAN_STEM = "ch04-cgan"
#: The generator's constructor arguments a cGAN entry must record.
CGAN_ARCHITECTURE = ("cond_dim", "noise_dim", "image_size", "out_channels", "width", "depth")


def cgan_name(seed: int) -> str:
    """The registry entry of part 3's cGAN for this run profile and ``seed``."""
    check_int("seed", seed, minimum=0)
    return f"{CGAN_STEM}-{runtime.profile()}-seed{seed}"


def _cgan_code() -> list:
    return [gan, gan_losses, gan_training, prompts, shapes]


def save_cgan(
    generator: gan.GlyphGenerator,
    text: prompts.BagOfWordsEncoder,
    seed: int,
    recipe: dict,
    metrics: dict[str, float] | None = None,
) -> registry.SavedModel:
    """Put part 3's trained cGAN generator and its prompt encoder in the model registry.

    Args:
        generator: the trained :class:`cmlib.generation.gan.GlyphGenerator` (its EMA weights).
        text: its bag-of-words prompt encoder.
        seed: the run's seed (part of the entry's name).
        recipe: the training settings (steps, learning rate, ...), stored in the config.
        metrics: e.g. its fidelity on seen and held-out prompts.
    """
    if not isinstance(generator, gan.GlyphGenerator):
        raise TypeError(f"generator must be a GlyphGenerator, got {type(generator).__name__}")
    if not isinstance(text, prompts.BagOfWordsEncoder):
        raise TypeError(f"text must be a BagOfWordsEncoder, got {type(text).__name__}")
    if not isinstance(recipe, dict):
        raise TypeError(f"recipe must be a dict, got {type(recipe).__name__}")
    config = {
        "architecture": {k: getattr(generator, k) for k in CGAN_ARCHITECTURE},
        "recipe": recipe,
        "seed": seed,
    }
    both = nn.ModuleDict({"generator": generator, "text": text})
    return registry.save_model(cgan_name(seed), both, config, _cgan_code(), metrics)


def load_cgan(seed: int, vocab: Vocab) -> tuple[gan.GlyphGenerator, prompts.BagOfWordsEncoder]:
    """Part 3's cGAN and its prompt encoder from the registry, in eval mode on the CPU.

    The generator is rebuilt from the sizes its entry records, and loaded only while the code
    that trained it is unchanged.

    Raises:
        FileNotFoundError: if part 3 has not run with this profile and seed on this machine.
        cmlib.registry.StaleModelError: if the cGAN's code changed since it was saved.
        CheckpointError: if the entry is corrupt (run part 3 again to rebuild it).
    """
    name = cgan_name(seed)
    config = registry.describe_model(name).config

    def build(cfg: dict) -> nn.ModuleDict:
        arch = cfg["architecture"]
        return nn.ModuleDict(
            {
                "generator": gan.GlyphGenerator(**arch),
                "text": prompts.BagOfWordsEncoder(vocab, arch["cond_dim"]),
            }
        )

    both, _ = registry.load_model(name, config, build, _cgan_code())
    return both["generator"].eval(), both["text"].eval()
