"""Compose a ShapesWorld scene and see it drawn in both styles (chapter 00)."""

from __future__ import annotations

import matplotlib.pyplot as plt

from ..data.shapes.render import render
from ..data.shapes.text import canonical_caption
from ..data.shapes.world import COLORS, POSITIONS, SHAPES, SIZES, STYLES, make_scene
from .base import interactive_view, show_static


def draw_scene(color: str, shape: str, size: str, position: str, image_size: int = 64):
    """The scene in the photo and the sketch style side by side, titled with its caption.

    Raises:
        ValueError: for an unknown attribute.
    """
    fig, axes = plt.subplots(1, len(STYLES), figsize=(5.2, 2.9))
    for ax, style in zip(axes, STYLES):
        scene = make_scene(color, shape, size, position, style)
        ax.imshow(render(scene, image_size))
        ax.set(title=f"{style} style", xlabel="x (pixels)", ylabel="y (pixels)")
    fig.suptitle(f"“{canonical_caption(scene)}”")
    fig.tight_layout()
    return fig


def scene_explorer(
    color: str = "red", shape: str = "circle", size: str = "large", position: str = "left"
):
    """Drop-downs for colour, shape, size and position above :func:`draw_scene` (static first).

    Returns:
        The widget, or ``None`` without ipywidgets.
    """
    try:
        import ipywidgets as w
    except ImportError:
        show_static(draw_scene(color, shape, size, position), {"color": color, "shape": shape})
        print("ipywidgets is not installed: showing the static figure only.")
        return None
    return interactive_view(
        draw_scene,
        color=w.Dropdown(options=COLORS, value=color, description="colour"),
        shape=w.Dropdown(options=SHAPES, value=shape, description="shape"),
        size=w.Dropdown(options=SIZES, value=size, description="size"),
        position=w.Dropdown(options=POSITIONS, value=position, description="position"),
    )
