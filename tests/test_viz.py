"""Plots: they draw, with titles, labels and legends, and reject bad input."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from cmlib.train import History
from cmlib.viz import plot_embedding_2d, plot_history, show_images


def test_show_images_with_captions():
    fig = show_images(torch.rand(5, 3, 8, 8), ["a", "b", "c", "d", "e"], ncols=3, title="grid")
    assert fig._suptitle.get_text() == "grid"
    assert [ax.get_title() for ax in fig.axes[:5]] == list("abcde")
    with pytest.raises(ValueError, match="captions"):
        show_images(torch.rand(2, 3, 8, 8), ["only one"])


def test_plot_history():
    history = History(
        train_loss=[1.0, 0.5, 0.25],
        metrics=[{"acc": 0.5}, {"acc": 0.9, "f1": 0.7}, {"acc": 0.95, "f1": 0.8}],
        seconds=[1, 1, 1],
    )
    ax = plot_history(history, title="curves").axes[0]
    assert ax.get_title() == "curves" and ax.get_xlabel() == "epoch"
    assert ax.get_ylabel() == "loss / metric"
    # each line is its series, against epochs counted from 1; a metric recorded only at some
    # epochs is drawn at those epochs
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"train loss", "acc", "f1"}
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(lines)
    assert list(lines["train loss"].get_xdata()) == [1, 2, 3]
    assert list(lines["train loss"].get_ydata()) == [1.0, 0.5, 0.25]
    assert list(lines["acc"].get_ydata()) == [0.5, 0.9, 0.95]
    assert list(lines["f1"].get_xdata()) == [2, 3] and list(lines["f1"].get_ydata()) == [0.7, 0.8]
    named = plot_history({"a": [3, 2], "b": [1]}, ylabel="metres").axes[0]
    assert named.get_ylabel() == "metres"
    assert [list(line.get_ydata()) for line in named.get_lines()] == [[3, 2], [1]]
    with pytest.raises(ValueError):
        plot_history({})


def test_plot_embedding_2d():
    emb, labels = np.random.default_rng(0).normal(size=(30, 5)), np.arange(30) % 3
    ax = plot_embedding_2d(emb, labels, ["x", "y", "z"]).axes[0]
    assert len(ax.get_legend().get_texts()) == 3 and ax.get_xlabel() == "pca 1"
    with pytest.raises(ValueError):
        plot_embedding_2d(emb, labels[:5])
    with pytest.raises(ValueError, match="pca"):
        plot_embedding_2d(emb, labels, method="umap")


def test_plot_embedding_2d_draws_each_class_in_its_palette_colour():
    from matplotlib.colors import to_rgba

    emb, labels = np.random.default_rng(0).normal(size=(30, 5)), np.arange(30) % 3
    ax = plot_embedding_2d(emb, labels, ["red", "green", "blue"], palette=["red", "green", "blue"])
    drawn = [tuple(c.get_facecolor()[0][:3]) for c in ax.axes[0].collections]
    assert drawn == [to_rgba(name)[:3] for name in ("red", "green", "blue")]
    with pytest.raises(ValueError, match="palette has 2 colours"):
        plot_embedding_2d(emb, labels, palette=["red", "green"])


def test_figure_bundle_carries_the_png_and_its_alt_text():
    import base64
    import html

    from cmlib.viz import figure_bundle

    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [1, 0])
    alt = 'Loss against epoch for the "small" CNN & its probe.'
    bundle, metadata = figure_bundle(fig, alt)
    png = base64.b64decode(bundle["image/png"])
    assert png.startswith(b"\x89PNG")
    assert f'alt="{html.escape(alt, quote=True)}"' in bundle["text/html"]
    assert bundle["image/png"] in bundle["text/html"]  # the same picture in both
    assert bundle["text/plain"] == alt and metadata == {"image/png": {"alt": alt}}
    with pytest.raises(ValueError, match="one non-empty line"):
        figure_bundle(fig, "  ")
    with pytest.raises(ValueError, match="one non-empty line"):
        figure_bundle(fig, "two\nlines")
    with pytest.raises(TypeError, match="alt must be a string"):
        figure_bundle(fig, None)
    with pytest.raises(TypeError, match="matplotlib Figure"):
        figure_bundle(ax, alt)
    plt.close(fig)


def test_show_displays_once_with_alt_text_and_closes_the_figure(monkeypatch):
    import IPython.display

    from cmlib import viz

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: shown.append((a, k)))
    fig, ax = plt.subplots()
    ax.set_title("t")
    viz.show(fig, "A test figure.")
    ((args, kwargs),) = shown
    assert args[0]["text/plain"] == "A test figure." and kwargs["raw"] is True
    assert not plt.fignum_exists(fig.number)  # the inline backend will not show it again


def test_a_widgets_first_view_describes_what_it_was_drawn_for():
    from cmlib.widgets.base import figure_title, static_alt

    fig, axes = plt.subplots(1, 2)
    axes[1].set_title("right panel")
    assert figure_title(fig) == "right panel"
    fig.suptitle("Captions for a scene")
    assert figure_title(fig) == "Captions for a scene"
    alt = static_alt(fig, {"prompt": "a red circle", "seed": 0})
    assert alt == (
        "Captions for a scene: the widget's first view, drawn for prompt 'a red circle', seed 0."
    )
    plt.close(fig)


def test_a_widgets_failed_first_view_leaves_no_half_drawn_figure(monkeypatch):
    import IPython.display

    from cmlib.widgets import base

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *a, **k: shown.append(a[0]))
    monkeypatch.setattr(base, "show", lambda fig, alt: shown.append((fig, alt)) or plt.close(fig))

    def draw(prompt):
        plt.subplots()  # opened, then the drawing fails
        raise ValueError("Type a prompt.")

    class Control:
        value = ""

        def observe(self, *args, **kwargs):
            pass

    before = set(plt.get_fignums())
    try:
        base.interactive_view(draw, prompt=Control())
    except Exception:  # the live part needs real ipywidgets controls; the static part is done
        pass
    assert set(plt.get_fignums()) <= before  # nothing left for the inline backend to show
    fig, alt = shown[0]
    assert "this view" in alt and "prompt ''" in alt
    with pytest.raises(TypeError, match="dict"):
        base.static_alt(fig, ["prompt"])
    assert base.static_alt(fig, {}).endswith("the widget's first view.")
