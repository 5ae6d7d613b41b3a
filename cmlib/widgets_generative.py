"""The prompt-to-image widget of chapter 04: a prompt box, a seed slider and a model switch.

It first draws a static grid (so the notebook shows something without a
kernel), then adds the controls when ipywidgets is there. A bad prompt (empty,
or with no word the model knows) prints a message, never a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from torch import nn

from .generative import generate
from .viz import show_images
from .widgets import safe_interact


def sample_grid(model: nn.Module, encoder: nn.Module, prompts: Sequence[str], title: str, n: int = 8,
                seed: int = 0, temperature: float = 1.0):
    """One row of ``n`` samples per prompt, the prompt written under the row's first image."""
    images = torch.cat([generate(model, encoder, p, n, seed=seed, temperature=temperature)
                        for p in prompts])
    captions = [p if i == 0 else "" for p in prompts for i in range(n)]
    return show_images(images, captions=captions, ncols=n, title=title)


def draw_prompt_grid(models: Mapping[str, tuple[nn.Module, nn.Module]], prompt: str, model: str,
                     seed: int = 0, n: int = 8, temperature: float = 1.0):
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
    fig = show_images(images, ncols=n, title=f"{model}: “{prompt}” (seed {seed})")
    plt.show()
    return fig


def prompt_explorer(models: Mapping[str, tuple[nn.Module, nn.Module]],
                    prompt: str = "a red circle", n: int = 8, temperature: float = 1.0):
    """A static grid for ``prompt`` with the first model, then the interactive controls.

    Returns the ipywidgets object, or ``None`` without ipywidgets.
    """
    if not models:
        raise ValueError("prompt_explorer needs at least one model")
    names = list(models)
    draw_prompt_grid(models, prompt, names[0], 0, n, temperature)  # the static figure

    def show(prompt: str, seed: int, model: str) -> None:
        if not prompt.strip():
            print("Type a prompt, e.g. 'a large blue square on the left'.")
            return
        try:
            draw_prompt_grid(models, prompt, model, seed, n, temperature)
        except ValueError as err:  # an unreadable prompt: say why, no traceback
            print(f"⚠ {err}")

    try:
        import ipywidgets as w
    except ImportError:
        print("ipywidgets is not installed: showing the static figure only.")
        return None
    return safe_interact(
        show,
        prompt=w.Text(value=prompt, description="prompt", continuous_update=False),
        seed=w.IntSlider(value=0, min=0, max=20, description="seed"),
        model=w.ToggleButtons(options=names, description="model"),
    )
