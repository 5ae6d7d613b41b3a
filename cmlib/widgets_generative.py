"""The prompt-to-image widget of chapter 04: a prompt box, a seed slider and a model switch.

It first draws a static grid (so the notebook shows something without a
kernel), then adds the controls when ipywidgets is there. A bad prompt (empty,
or with no word the model knows) prints a message, never a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
from torch import nn

from .generative import generate
from .viz import show_images
from .widgets import safe_interact


def draw_prompt_grid(models: Mapping[str, tuple[nn.Module, nn.Module]], prompt: str, model: str,
                     seed: int = 0, n: int = 8):
    """Draw ``n`` samples of ``models[model]`` for ``prompt``; return the figure.

    Args:
        models: name → ``(generator or CVAE, prompt encoder)``.
        prompt: the text prompt.
        model: which entry of ``models`` to use.
        seed: the noise seed.
        n: how many samples.

    Raises:
        ValueError: on an unknown model name, an empty prompt or a prompt the encoder cannot read.
    """
    if model not in models:
        raise ValueError(f"unknown model {model!r}; choose one of {sorted(models)}")
    generator, encoder = models[model]
    images = generate(generator, encoder, prompt, n, seed=seed)
    fig = show_images(images, ncols=n, title=f"{model}: “{prompt}” (seed {seed})")
    plt.show()
    return fig


def prompt_explorer(models: Mapping[str, tuple[nn.Module, nn.Module]],
                    prompt: str = "a red circle", n: int = 8):
    """A static grid for ``prompt`` with the first model, then the interactive controls.

    Returns the ipywidgets object, or ``None`` without ipywidgets.
    """
    if not models:
        raise ValueError("prompt_explorer needs at least one model")
    names = list(models)
    draw_prompt_grid(models, prompt, names[0], 0, n)  # the static figure

    def show(prompt: str, seed: int, model: str) -> None:
        if not prompt.strip():
            print("Type a prompt, e.g. 'a large blue square on the left'.")
            return
        try:
            draw_prompt_grid(models, prompt, model, seed, n)
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
