"""A search box over a picture gallery (chapter 07): type a query, see the top-k images.

:func:`plot_text_search` and :func:`plot_image_search` draw static figures (they work without a
kernel, e.g. in the book); :func:`search_widget` puts a query box and a ``k`` slider above them.
An empty query shows a message, never a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch

from ..retrieval import CrossModalSearch
from ..viz import to_hwc
from .base import interactive_view, message_figure, show_static


def plot_text_search(
    search: CrossModalSearch, query: str, images, k: int = 5, captions: Sequence[str] | None = None
):
    """Text → image: a row of the ``k`` best gallery images, titled with their cosine scores.

    Args:
        search: the search engine.
        query: the text typed by the reader.
        images: the gallery pictures, ``(N, H, W, 3)`` uint8/float or ``(N, 3, H, W)`` tensor.
        k: how many results (clamped to the gallery size).
        captions: optional true captions, printed under each result.

    Returns:
        The figure (a message figure for an empty query).
    """
    try:
        hits = search.text_to_image(query, k)
    except ValueError as err:
        return message_figure(f"search: {query!r}", f"⚠ {err}")
    fig, axes = plt.subplots(1, len(hits), figsize=(2.0 * len(hits), 2.6), squeeze=False)
    for ax, (index, score) in zip(axes[0], hits):
        ax.imshow(to_hwc(images[index]))
        ax.set_title(f"#{index}  cos {score:.2f}", fontsize=9)
        if captions is not None:
            ax.set_xlabel(captions[index][:28], fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"text → image: top-{len(hits)} for {query.strip()!r}")
    fig.tight_layout()
    return fig


def plot_image_search(search: CrossModalSearch, image_embedding: torch.Tensor, image, k: int = 5):
    """Image → text: the picture beside a bar chart of its ``k`` best gallery texts."""
    hits = search.image_to_text(image_embedding, k)
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 2.6), width_ratios=(1, 2.5))
    left.imshow(to_hwc(image))
    left.set_axis_off()
    left.set_title("query image")
    texts, scores = zip(*hits)
    right.barh(range(len(hits))[::-1], scores, color="tab:blue", label="cosine")
    right.set_yticks(range(len(hits))[::-1], [t[:40] for t in texts], fontsize=8)
    right.set_xlabel("cosine similarity")
    right.set_title(f"image → text: top-{len(hits)}")
    right.legend(loc="lower right")
    fig.tight_layout()
    return fig


def search_widget(
    search: CrossModalSearch,
    images,
    k: int = 5,
    captions: Sequence[str] | None = None,
    initial_query: str = "a red heart",
):
    """A query box and a ``k`` slider above :func:`plot_text_search` (static figure first).

    Returns:
        The widget, or ``None`` without ipywidgets.
    """

    def draw(query: str, k: int):
        if not query.strip():
            raise ValueError("Type a query (for example 'a red heart') and press Enter.")
        return plot_text_search(search, query, images, k, captions)

    try:
        import ipywidgets as w
    except ImportError:
        show_static(draw(initial_query, k), {"query": initial_query})
        print("ipywidgets is not installed: showing the static figure only.")
        return None
    return interactive_view(
        draw,
        query=w.Text(
            value=initial_query,
            description="query",
            continuous_update=False,
            placeholder="type a description and press Enter",
        ),
        k=w.IntSlider(value=k, min=1, max=min(12, len(search.images)), description="k"),
    )
