"""Plots the chapters share: image grids, training curves, 2-D embeddings, and :func:`show`.

Every plotting function returns the matplotlib ``Figure`` so a notebook can show it or a test can
inspect it, and every plot has a title, axis labels and, where there is more than one series, a
legend. A chapter shows each figure with :func:`show`, which gives it **alt text**: one sentence
saying what the figure shows, for a reader who cannot see it (a screen reader reads it aloud).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .train import History
from .validate import describe

#: the resolution of a shown figure (matplotlib-inline's default)
SHOW_DPI = 100


def figure_bundle(fig, alt: str) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """A figure as a display bundle that carries its alt text, and the bundle's metadata.

    The bundle holds the PNG twice: as ``image/png`` and inside an HTML ``<img alt="…">``.
    JupyterLab and the book (myst-nb) both prefer the HTML, so both show the alt text to
    assistive technology; ``text/plain`` is the alt text itself, for a console.

    Raises:
        TypeError: if ``fig`` is not a matplotlib Figure or ``alt`` not a string.
        ValueError: if ``alt`` is empty or longer than one line.
    """
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {describe(fig)}")
    if not isinstance(alt, str):
        raise TypeError(f"alt must be a string (one sentence), got {describe(alt)}")
    alt = alt.strip()
    if not alt or "\n" in alt:
        raise ValueError(f"alt must be one non-empty line describing the figure, got {alt!r}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=SHOW_DPI, bbox_inches="tight")
    png = base64.b64encode(buffer.getvalue()).decode("ascii")
    tag = f'<img src="data:image/png;base64,{png}" alt="{html.escape(alt, quote=True)}">'
    bundle = {"text/html": tag, "image/png": png, "text/plain": alt}
    return bundle, {"image/png": {"alt": alt}}


def show(fig, alt: str) -> None:
    """Show ``fig`` in the notebook with its alt text, then close it.

    Args:
        fig: a matplotlib ``Figure``.
        alt: one sentence describing what the figure shows (what is plotted against what, and
            for which runs), not the conclusion the text draws from it.

    Raises:
        TypeError: if ``fig`` is not a Figure or ``alt`` not a string.
        ValueError: if ``alt`` is empty or longer than one line.
    """
    from IPython.display import display

    bundle, metadata = figure_bundle(fig, alt)
    plt.close(fig)  # or the inline backend shows it a second time, without its alt text
    display(bundle, metadata=metadata, raw=True)


def to_hwc(image) -> np.ndarray:
    """A CHW/HWC tensor or array (or a PIL image) as an HWC float array in [0, 1]."""
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = array.transpose(1, 2, 0)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.dtype == np.uint8:
        array = array / 255.0
    return np.clip(array, 0.0, 1.0)


def show_images(
    images,
    captions: Sequence[str] | None = None,
    ncols: int = 8,
    title: str | None = None,
    cell_size: float = 1.6,
    wrap: int = 22,
):
    """A grid of images, each with an optional caption above it.

    Args:
        images: a tensor ``(N, C, H, W)`` or a sequence of images (CHW, HWC or PIL).
        captions: N strings, wrapped to ``wrap`` characters.
        ncols: images per row.
        title: the figure title.
        cell_size: inches per image.
    """
    import textwrap

    n = len(images)
    if n == 0:
        raise ValueError("show_images needs at least one image")
    if captions is not None and len(captions) != n:
        raise ValueError(f"got {n} images but {len(captions)} captions")
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    extra = 0.45 if captions is not None else 0.0
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(cell_size * ncols, (cell_size + extra) * nrows), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        ax = axes.flat[i]
        array = to_hwc(images[i])
        ax.imshow(array, cmap="gray" if array.ndim == 2 else None, vmin=0, vmax=1)
        if captions is not None:
            ax.set_title(textwrap.fill(str(captions[i]), wrap), fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_history(
    history: History | Mapping[str, Sequence[float]],
    title: str = "Training",
    xlabel: str = "epoch",
    ylabel: str = "value",
):
    """Training curves: the loss and every metric of a :class:`History`, or named series.

    Args:
        history: a History, or a mapping from series name to values per step/epoch.
        title: the plot title.
    """
    # each series as (epochs, values): a metric recorded only at some epochs is drawn at those
    if isinstance(history, History):
        series = {"train loss": (range(1, len(history.train_loss) + 1), history.train_loss)}
        for name in sorted({k for m in history.metrics for k in m}):
            at = [i + 1 for i, m in enumerate(history.metrics) if name in m]
            series[name] = (at, history.metric(name))
        ylabel = "loss / metric" if ylabel == "value" else ylabel
    else:
        series = {name: (range(1, len(v) + 1), list(v)) for name, v in dict(history).items()}
    if not series or all(len(v) == 0 for _, v in series.values()):
        raise ValueError("plot_history needs at least one non-empty series")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, (epochs, values) in series.items():
        values = list(values)
        ax.plot(list(epochs), values, marker="o" if len(values) < 30 else None, label=name)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def project_2d(embeddings, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Project ``(N, D)`` embeddings to ``(N, 2)`` with PCA or t-SNE."""
    x = (
        embeddings.detach().cpu().numpy()
        if isinstance(embeddings, torch.Tensor)
        else np.asarray(embeddings)
    )
    if x.ndim != 2 or x.shape[0] < 3:
        raise ValueError(f"expected embeddings of shape (N >= 3, D), got {x.shape}")
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(x)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = min(30.0, (x.shape[0] - 1) / 3)
        return TSNE(
            n_components=2, init="pca", perplexity=perplexity, random_state=seed
        ).fit_transform(x)
    raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")


def plot_embedding_2d(
    embeddings,
    labels,
    label_names: Sequence[str] | None = None,
    method: str = "pca",
    title: str | None = None,
    ax=None,
    seed: int = 0,
    palette: Sequence[str] | None = None,
):
    """Scatter ``(N, D)`` embeddings in 2-D, coloured by integer ``labels``.

    Args:
        embeddings: ``(N, D)`` tensor or array.
        labels: ``(N,)`` integer class ids.
        label_names: the legend text of each class id.
        method: ``"pca"`` or ``"tsne"``.
        title: the plot title (default: the method).
        ax: draw into this axes instead of a new figure.
        palette: a matplotlib colour per class id (e.g. the colour names of ShapesWorld's
            colours, so that "red" is drawn red); default: the tab10 or tab20 colour map.
    """
    labels = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if labels.shape != (len(embeddings),):
        raise ValueError(f"expected {len(embeddings)} labels, got shape {labels.shape}")
    if palette is not None and len(palette) <= labels.max():
        raise ValueError(
            f"palette has {len(palette)} colours, but the labels go up to {labels.max()}"
        )
    points = project_2d(embeddings, method, seed)
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 4.5))
    cmap = plt.get_cmap("tab10" if labels.max() < 10 else "tab20")
    for k in np.unique(labels):
        mask = labels == k
        name = label_names[k] if label_names is not None else str(k)
        ax.scatter(
            points[mask, 0],
            points[mask, 1],
            s=8,
            alpha=0.7,
            color=palette[k] if palette is not None else cmap(int(k) % cmap.N),
            label=name,
        )
    ax.set(
        title=title or f"{method.upper()} of the embeddings",
        xlabel=f"{method} 1",
        ylabel=f"{method} 2",
    )
    ax.legend(fontsize=7, markerscale=2, loc="best", ncol=1 + len(np.unique(labels)) // 10)
    if fig is not None:
        fig.tight_layout()
    return ax.figure
