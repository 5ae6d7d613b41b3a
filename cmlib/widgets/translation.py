"""A CycleGAN explorer (chapter 06): a test scene, its translations and the ground truth."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from ..validate import check_int
from .base import interactive_view, show_static

PANELS = ("photo", "G(photo)", "F(G(photo))", "true sketch", "F(true sketch)")


@torch.no_grad()
def draw_translation(model, photos: torch.Tensor, sketches: torch.Tensor, index: int) -> Figure:
    """Scene ``index``: its photo, G's sketch, the cycle back, the true sketch and F of it.

    Args:
        model: a trained :class:`cmlib.cyclegan.CycleGAN`.
        photos: ``(N, 3, S, S)`` test photos.
        sketches: the same scenes as sketches (ground truth, never used in training).
        index: which scene.
    """
    check_int("index", index, minimum=0, maximum=len(photos) - 1)
    device = next(model.parameters()).device
    photo, sketch = photos[index : index + 1].to(device), sketches[index : index + 1].to(device)
    fake = model.g(photo)
    images = (photo, fake, model.f(fake), sketch, model.f(sketch))
    fig, axes = plt.subplots(1, len(PANELS), figsize=(1.8 * len(PANELS), 2.2))
    for ax, title, image in zip(axes, PANELS, images):
        ax.imshow(image[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy(), interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"test scene {index}")
    fig.tight_layout()
    return fig


def translation_explorer(model, photos: torch.Tensor, sketches: torch.Tensor, index: int = 0):
    """A static figure for scene ``index``, then a slider over the test scenes."""
    try:
        import ipywidgets as w
    except ImportError:
        show_static(draw_translation(model, photos, sketches, index), {"index": index})
        print("ipywidgets is not installed: showing the static figure only.")
        return None
    slider = w.BoundedIntText(value=index, min=0, max=len(photos) - 1, description="scene")
    return interactive_view(
        lambda index: draw_translation(model, photos, sketches, index), index=slider
    )
