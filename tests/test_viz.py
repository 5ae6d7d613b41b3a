"""Plots: they draw, with titles, labels and legends, and reject bad input."""

import matplotlib

matplotlib.use("Agg")
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
    history = History(train_loss=[1.0, 0.5], metrics=[{"acc": 0.5}, {"acc": 0.9}], seconds=[1, 1])
    ax = plot_history(history, title="curves").axes[0]
    assert ax.get_title() == "curves" and ax.get_xlabel() == "epoch"
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"train loss", "acc"}
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
