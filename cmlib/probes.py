"""How good is an embedding? Probes (探针): small classifiers fitted on frozen features.

* :func:`knn_accuracy` — a k-nearest-neighbour vote (no training at all);
* :func:`linear_probe_accuracy` — a multinomial logistic regression fitted to convergence;
* :func:`fit_lbfgs` — the full-batch L-BFGS fit behind every probe of the course (this one and
  the modality probe of :mod:`cmlib.alignment`): deterministic for given features, and for a
  linear probe a convex problem, so its answer does not depend on the initialisation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .validate import check_int, check_number, check_tensor


def fit_lbfgs(module: nn.Module, loss_fn: Callable[[], torch.Tensor], max_iter: int = 100) -> float:
    """Minimise ``loss_fn()`` over ``module``'s parameters with full-batch L-BFGS; return the final
    loss.

    Args:
        module: the probe whose parameters are fitted.
        loss_fn: computes the full-batch loss from the current parameters.
        max_iter: L-BFGS iterations (strong-Wolfe line search, step size 1).

    Raises:
        RuntimeError: if the fit diverged (a non-finite parameter): its accuracy would mean nothing.
    """
    check_int("max_iter", max_iter)
    optimizer = torch.optim.LBFGS(
        module.parameters(), lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    if not all(torch.isfinite(p).all() for p in module.parameters()):
        raise RuntimeError("the probe's weights diverged; its accuracy would be meaningless")
    with torch.no_grad():
        return float(loss_fn())


def _check_split(train_x, train_y, test_x, test_y) -> None:
    for name, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        check_tensor(f"{name} features", x, ("N", "D"), nonempty=True)
        check_tensor(f"{name} labels", y, (len(x),), floating=False)
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(
            f"train and test features differ in width: {train_x.shape[1]} vs {test_x.shape[1]}"
        )


@torch.no_grad()
def knn_predict(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    k: int = 5,
    batch_size: int = 1024,
) -> torch.Tensor:
    """Majority vote of the ``k`` nearest training rows (Euclidean); ties go to the nearest."""
    check_int("k", k, 1, len(train_x))
    train_x, num_classes = train_x.float(), int(train_y.max()) + 1
    preds = []
    for i in range(0, len(test_x), batch_size):
        dist = torch.cdist(test_x[i : i + batch_size].float(), train_x)
        idx = dist.topk(k, dim=1, largest=False).indices  # (b, k), nearest first
        votes = nn.functional.one_hot(train_y[idx], num_classes).float()  # (b, k, C)
        weights = 1.0 + 1e-3 * torch.linspace(1, 0, k)  # tie-break by rank
        preds.append((votes * weights[None, :, None]).sum(1).argmax(1))
    return torch.cat(preds)


def knn_accuracy(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    k: int = 5,
) -> float:
    """Accuracy of a k-nearest-neighbour classifier on embeddings (k=5 by default)."""
    _check_split(train_x, train_y, test_x, test_y)
    return (knn_predict(train_x, train_y, test_x, k) == test_y).float().mean().item()


def linear_probe_accuracy(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    weight_decay: float = 1e-3,
    max_iter: int = 100,
) -> float:
    """Test accuracy of a multinomial logistic regression fitted on standardised embeddings.

    Fitted from zero weights by :func:`fit_lbfgs`, with an L2 penalty ``weight_decay``.
    """
    _check_split(train_x, train_y, test_x, test_y)
    check_number("weight_decay", weight_decay, low=0)
    mean, std = train_x.float().mean(0), train_x.float().std(0).clamp(min=1e-6)
    xtr, xte = (train_x.float() - mean) / std, (test_x.float() - mean) / std
    num_classes = int(train_y.max()) + 1
    linear = nn.Linear(xtr.shape[1], num_classes)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    fit_lbfgs(
        linear,
        lambda: (
            nn.functional.cross_entropy(linear(xtr), train_y)
            + weight_decay * linear.weight.pow(2).sum()
        ),
        max_iter,
    )
    with torch.no_grad():
        return (linear(xte).argmax(1) == test_y).float().mean().item()
