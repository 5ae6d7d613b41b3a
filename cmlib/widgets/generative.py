"""The prompt-to-image widget of chapters 04 and 11: a prompt box, a seed slider, a model switch.

It draws a static grid first (so the notebook shows something without a kernel), then the
controls. A bad prompt — empty, or with no word the model knows — shows a message, never a
traceback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ..generation.generative import generate
from ..viz import show_images
from .base import interactive_view, show_static


def sample_grid(
    model: nn.Module,
    encoder: nn.Module,
    prompts: Sequence[str],
    title: str,
    n: int = 8,
    seed: int = 0,
    temperature: float = 1.0,
):
    """One row of ``n`` samples per prompt, the prompt written above the row's first image."""
    images = torch.cat(
        [generate(model, encoder, p, n, seed=seed, temperature=temperature) for p in prompts]
    )
    captions = [p if i == 0 else "" for p in prompts for i in range(n)]
    return show_images(images, captions=captions, ncols=n, title=title)


def draw_prompt_grid(
    models: Mapping[str, tuple[nn.Module, nn.Module]],
    prompt: str,
    model: str,
    seed: int = 0,
    n: int = 8,
    temperature: float = 1.0,
):
    """Draw ``n`` samples of ``models[model]`` for ``prompt``; return the figure.

    Args:
        models: name → ``(generator or CVAE, prompt encoder)``.
        prompt: the text prompt.
        model: which entry of ``models`` to use.
        seed: the noise seed.
        n: how many samples.
        temperature: a CVAE's sampling temperature (a GAN ignores it).

    Raises:
        ValueError: on an unknown model name, an empty prompt or a prompt the encoder cannot read.
    """
    if model not in models:
        raise ValueError(f"unknown model {model!r}; choose one of {sorted(models)}")
    generator, encoder = models[model]
    images = generate(generator, encoder, prompt, n, seed=seed, temperature=temperature)
    return show_images(images, ncols=n, title=f"{model}: “{prompt}” (seed {seed})")


def prompt_explorer(
    models: Mapping[str, tuple[nn.Module, nn.Module]],
    prompt: str = "a red circle",
    n: int = 8,
    temperature: float = 1.0,
):
    """A static grid for ``prompt`` with the first model, then the interactive controls.

    Args:
        models: name → ``(generator or CVAE, prompt encoder)``.
        prompt: the first prompt shown.
        n: samples per prompt.
        temperature: a CVAE's sampling temperature.

    Returns:
        The widget, or ``None`` without ipywidgets.
    """
    if not models:
        raise ValueError("prompt_explorer needs at least one model")
    names = list(models)

    def draw(prompt: str, seed: int, model: str):
        if not prompt.strip():
            raise ValueError("Type a prompt, e.g. 'a large blue square on the left'.")
        return draw_prompt_grid(models, prompt, model, seed, n, temperature)

    try:
        import ipywidgets as w
    except ImportError:
        show_static(draw(prompt, 0, names[0]), {"prompt": prompt, "model": names[0]})
        print("ipywidgets is not installed: showing the static figure only.")
        return None
    return interactive_view(
        draw,
        prompt=w.Text(value=prompt, description="prompt", continuous_update=False),
        seed=w.IntSlider(value=0, min=0, max=20, description="seed"),
        model=w.ToggleButtons(options=names, description="model"),
    )
