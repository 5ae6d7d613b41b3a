"""Caption a scene you compose, or a test image, and see where each word looked (chapter 05)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from ..captioning.decoding import caption_images
from ..captioning.models import Captioner
from ..data.shapes.captioning import STYLE_PROMPTS
from ..data.shapes.render import render
from ..data.shapes.world import COLORS, POSITIONS, RELATIONS, SHAPES, SIZES, make_scene
from ..text import Vocab
from ..validate import check_tensor
from .base import interactive_view, show_static

#: The second-object choices of the explorer: none, or a (colour, shape).
SECOND_OBJECTS = ("none", *(f"{c} {s}" for c in COLORS for s in SHAPES))


def attention_strip(
    image: torch.Tensor, words: list[str], attention: torch.Tensor, title: str = ""
) -> Figure:
    """The image, then one panel per word with that step's attention over it.

    Args:
        image: ``(3, S, S)`` in [0, 1].
        words: the caption's words (``<eos>`` left out).
        attention: ``(len(words), N)`` the attention of each word's step, N a square grid.
    """
    check_tensor("image", image, (3, "S", "S"), floating=True)
    check_tensor("attention", attention, (len(words), "N"), floating=True)
    grid = int(round(attention.shape[1] ** 0.5))
    picture = image.permute(1, 2, 0).numpy()
    fig, axes = plt.subplots(1, len(words) + 1, figsize=(1.3 * (len(words) + 1), 1.9))
    axes = np.atleast_1d(axes)
    axes[0].imshow(picture)
    axes[0].set_title("image", fontsize=8)
    size = image.shape[-1]
    for ax, word, weights in zip(axes[1:], words, attention):
        ax.imshow(picture * 0.45)
        heat = weights.view(grid, grid).numpy()
        ax.imshow(
            heat,
            cmap="magma",
            alpha=0.7,
            extent=(-0.5, size - 0.5, size - 0.5, -0.5),
            vmin=0,
            vmax=max(float(heat.max()), 1e-6),
        )
        ax.set_title(word, fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title or "attention at each word (brighter = more weight)", fontsize=9)
    fig.tight_layout()
    return fig


def draw_captions(
    model: Captioner,
    encoder,
    vocab: Vocab,
    image: torch.Tensor,
    style_prompt: str = "",
    beam_width: int = 3,
) -> Figure:
    """Greedy and beam captions of one image, with the greedy caption's attention strip."""
    greedy = caption_images(model, encoder, image[None], vocab, style_prompt)
    beam = caption_images(
        model, encoder, image[None], vocab, style_prompt, "beam", beam_width=beam_width
    )
    tokens = greedy.tokens[0].tolist()
    length = tokens.index(vocab.eos_id) if vocab.eos_id in tokens else len(tokens)
    words = [vocab.itos[t] for t in tokens[:length]]
    title = f"greedy: “{greedy.texts(vocab)[0]}”\nbeam ({beam_width}): “{beam.texts(vocab)[0]}”"
    if greedy.attention is None:
        fig, ax = plt.subplots(figsize=(3, 3))
        ax.imshow(image.permute(1, 2, 0).numpy())
        ax.set_axis_off()
        ax.set_title(title, fontsize=8)
        return fig
    return attention_strip(image, words, greedy.attention[0, :length], title)


def composed_image(
    color: str, shape: str, size: str, position: str, second: str, relation: str, image_size: int
) -> torch.Tensor:
    """The scene the controls describe, drawn: ``(3, S, S)``."""
    other = None if second == "none" else tuple(second.split(" "))
    scene = make_scene(color, shape, size, position, "photo", second=other, relation=relation)
    return torch.from_numpy(render(scene, image_size)).permute(2, 0, 1).float()


def caption_explorer(
    model: Captioner, encoder, vocab: Vocab, test_images: torch.Tensor, image_size: int = 32
):
    """Compose a scene or pick a test image; see its greedy and beam captions and attention.

    Controls: the source (a composed scene or test image ``index``), the first object's colour,
    shape, size and position, an optional second object and its relation, the style prompt
    (typed) and the beam width. A bad input (an unknown prompt, two identical objects) shows a
    message.

    Returns:
        The widget, or ``None`` without ipywidgets (after the static figure).
    """
    check_tensor("test_images", test_images, ("N", 3, image_size, image_size), nonempty=True)

    def draw(source, index, color, shape, size, position, second, relation, prompt, beam_width):
        if source == "test image":
            image = test_images[index]
        else:
            image = composed_image(color, shape, size, position, second, relation, image_size)
        return draw_captions(model, encoder, vocab, image, prompt, beam_width)

    try:
        import ipywidgets as w
    except ImportError:
        fig = draw("composed scene", 0, "red", "circle", "large", "left", "none", "left of", "", 3)
        show_static(fig, {"source": "composed scene"})
        print("ipywidgets is not installed: showing the static figure only.")
        return None
    return interactive_view(
        draw,
        source=w.ToggleButtons(options=["composed scene", "test image"], description="source"),
        index=w.IntSlider(0, 0, len(test_images) - 1, description="test image"),
        color=w.Dropdown(options=COLORS, value="red", description="colour"),
        shape=w.Dropdown(options=SHAPES, value="circle", description="shape"),
        size=w.Dropdown(options=SIZES, value="large", description="size"),
        position=w.Dropdown(options=POSITIONS, value="left", description="position"),
        second=w.Dropdown(options=SECOND_OBJECTS, value="blue square", description="2nd object"),
        relation=w.Dropdown(options=RELATIONS, value="left of", description="1st is"),
        prompt=w.Combobox(
            options=list(STYLE_PROMPTS),
            value="",
            description="prompt",
            placeholder="'', 'briefly' or 'in detail'",
        ),
        beam_width=w.IntSlider(3, 1, 8, description="beam width"),
    )
