"""Nearest words in several embeddings, side by side (chapter 02)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt

from ..embeddings import WordVectors
from .base import interactive_view, show_static


def plot_neighbours(tables: Mapping[str, WordVectors], word: str, k: int = 6):
    """One panel per embedding: the ``k`` nearest words to ``word`` and their cosines.

    An embedding that does not know the word says so in its panel.

    Raises:
        ValueError: for an empty word or no embedding at all.
    """
    if not tables:
        raise ValueError("plot_neighbours needs at least one embedding")
    word = word.strip().lower()
    if not word:
        raise ValueError("Type a word, e.g. 'music'.")
    fig, axes = plt.subplots(1, len(tables), figsize=(3.6 * len(tables), 2.8), squeeze=False)
    for ax, (name, table) in zip(axes[0], tables.items()):
        ax.set_title(name, fontsize=9)
        if word not in table:
            ax.text(0.5, 0.5, f"'{word}' is not in\nits vocabulary", ha="center", va="center")
            ax.set_axis_off()
            continue
        words, scores = zip(*table.neighbours(word, k))
        ax.barh(range(len(words))[::-1], scores, color="tab:blue", label="cosine")
        ax.set_yticks(range(len(words))[::-1], words, fontsize=8)
        ax.set(xlabel="cosine similarity", xlim=(0, 1))
        ax.legend(loc="lower right", fontsize=7)
    fig.suptitle(f"nearest words to '{word}'")
    fig.tight_layout()
    return fig


def neighbour_explorer(tables: Mapping[str, WordVectors], word: str = "music", k: int = 6):
    """Type a word, see its neighbours in every embedding (a static figure first).

    Returns:
        The widget, or ``None`` without ipywidgets.
    """
    try:
        import ipywidgets as w
    except ImportError:
        show_static(plot_neighbours(tables, word, k), {"word": word})
        print("ipywidgets is not installed: showing the static figure only.")
        return None
    return interactive_view(
        lambda word: plot_neighbours(tables, word, k),
        word=w.Text(value=word, description="word", continuous_update=False),
    )
