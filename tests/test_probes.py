"""cmlib.probes: kNN and linear probes on embeddings, and the shared L-BFGS fit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cmlib.probes import fit_lbfgs, knn_accuracy, linear_probe_accuracy


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# ----------------------------------------------------------------- embedding evaluation
def _clusters(n_per_class=30, dim=5, classes=3, spread=0.1):
    centres = torch.eye(classes, dim) * 5
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    return centres[labels] + spread * torch.randn(len(labels), dim), labels


def test_knn_and_linear_probe_on_separable_clusters():
    train_x, train_y = _clusters()
    test_x, test_y = _clusters(10)
    assert knn_accuracy(train_x, train_y, test_x, test_y, k=5) == 1.0
    assert linear_probe_accuracy(train_x, train_y, test_x, test_y) == 1.0
    shuffled = test_y[torch.randperm(len(test_y))]
    assert knn_accuracy(train_x, train_y, test_x, shuffled) < 0.8


def test_embedding_metrics_reject_bad_input():
    x, y = _clusters()
    with pytest.raises(ValueError, match="expected train labels \\(90\\)"):
        knn_accuracy(x, y[:-1], x, y)
    with pytest.raises(ValueError, match="differ in width"):
        linear_probe_accuracy(x, y, x[:, :3], y)
    with pytest.raises(ValueError, match="k must be an int"):
        knn_accuracy(x, y, x, y, k=0)


def test_fit_lbfgs_solves_least_squares_and_refuses_divergence():
    x = torch.randn(50, 3)
    true = torch.tensor([[1.0], [-2.0], [0.5]])
    y = x @ true
    linear = nn.Linear(3, 1, bias=False)
    loss = fit_lbfgs(linear, lambda: (linear(x) - y).pow(2).mean(), max_iter=50)
    assert loss < 1e-8 and torch.allclose(linear.weight.T, true, atol=1e-4)
    with pytest.raises(RuntimeError, match="diverged"):
        fit_lbfgs(linear, lambda: (linear.weight * float("nan")).sum(), max_iter=2)
    with pytest.raises(TypeError, match="max_iter"):
        fit_lbfgs(linear, lambda: linear.weight.sum(), max_iter=2.5)
