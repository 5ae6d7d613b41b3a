"""Alignment by distances (cmlib.alignment.transport): Sinkhorn, Gromov–Wasserstein and
Wasserstein Procrustes, on point clouds whose answer is planted."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cmlib.alignment import (
    align_by_distances,
    cosine_distances,
    distance_mismatch,
    gromov_wasserstein,
    plan_rotation,
    sinkhorn,
    wasserstein_procrustes,
)


def _rotated_cloud(n: int = 60, dim: int = 6, noise: float = 0.0, seed: int = 2):
    """A random unit cloud, stretched along some axes so that its distances are distinctive, and
    the same cloud rotated and shuffled: (x, y, rotation, order).

    Gromov–Wasserstein from a random start can stop in a local minimum; on this cloud (seed 2)
    three starts find the right matching."""
    g = torch.Generator().manual_seed(seed)
    x = F.normalize(torch.randn(n, dim, generator=g) * torch.linspace(1, 0.1, dim), dim=1)
    rotation, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g))
    order = torch.randperm(n, generator=g)
    y = F.normalize(x @ rotation + noise * torch.randn(n, dim, generator=g), dim=1)[order]
    return x, y, rotation, order


def test_sinkhorn_plan_has_the_asked_marginals():
    g = torch.Generator().manual_seed(0)
    cost = torch.rand(5, 7, generator=g)
    p = torch.tensor([0.1, 0.2, 0.3, 0.2, 0.2])
    q = torch.full((7,), 1 / 7)
    plan = sinkhorn(cost, 0.05, 500, source_mass=p, target_mass=q)
    assert torch.allclose(plan.sum(1), p, atol=1e-4)
    assert torch.allclose(plan.sum(0), q, atol=1e-4)


def test_sinkhorn_with_small_eps_picks_the_cheap_permutation():
    cost = 1 - torch.eye(4)[[2, 0, 3, 1]]  # the zero-cost match is 0→2, 1→0, 2→3, 3→1
    plan = sinkhorn(cost, 0.01)
    assert plan.argmax(1).tolist() == [2, 0, 3, 1]


def test_cosine_distances_are_scaled_to_mean_one_and_rotation_invariant():
    x, y, _, order = _rotated_cloud()
    dx = cosine_distances(x)
    assert dx.mean().item() == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose(cosine_distances(y), dx[order][:, order], atol=1e-4)


def test_distance_mismatch_is_zero_for_the_true_matching_only():
    x, y, _, order = _rotated_cloud(n=10)
    dx, dy = cosine_distances(x), cosine_distances(y)
    truth = torch.argsort(order)  # x[i] is y[truth[i]]
    assert distance_mismatch(dx, dy, truth) == pytest.approx(0.0, abs=1e-8)
    swapped = truth.clone()
    swapped[[0, 1]] = swapped[[1, 0]]
    assert distance_mismatch(dx, dy, swapped) > 1e-3
    # A hand computation on two points: distances 1 and 3 → (1 − 3)² on both off-diagonal cells.
    a, b = torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([[0.0, 3.0], [3.0, 0.0]])
    assert distance_mismatch(a, b, torch.tensor([1, 0])) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="permutation"):
        distance_mismatch(dx, dy, torch.zeros(10, dtype=torch.long))


def test_gromov_wasserstein_finds_a_planted_shuffle():
    x, y, _, order = _rotated_cloud()
    plan, loss = min((gromov_wasserstein(x, y, seed=s) for s in range(3)), key=lambda r: r[1])
    # y[j] is x[order[j]], so source i should go to the j with order[j] == i.
    inverse = torch.argsort(order)
    assert (plan.argmax(1) == inverse).float().mean().item() >= 0.9
    assert loss >= 0


def test_plan_rotation_of_the_true_matching_is_the_rotation():
    x, y, rotation, order = _rotated_cloud()
    plan = torch.zeros(len(x), len(y))
    plan[order, torch.arange(len(y))] = 1 / len(x)
    assert torch.allclose(plan_rotation(x, y, plan), rotation, atol=1e-4)


def test_wasserstein_procrustes_sharpens_a_rough_rotation():
    x, y, rotation, _ = _rotated_cloud(n=200, noise=0.01)
    g = torch.Generator().manual_seed(1)
    u, _, vh = torch.linalg.svd(rotation + 0.1 * torch.randn(6, 6, generator=g))
    rough = u @ vh  # the nearest rotation to a perturbed truth
    w, cost = wasserstein_procrustes(rough, x, y)
    assert (w - rotation).norm() < 0.5 * (rough - rotation).norm()
    assert cost < wasserstein_procrustes(rough, x, y, num_iters=1)[1]


def test_align_by_distances_recovers_a_rotation_without_pairs():
    x, y, rotation, _ = _rotated_cloud(noise=0.01)
    w, runs = align_by_distances(x, y, num_starts=3, seed=0)
    assert len(runs) == 3 and {"gw_loss", "cost"} <= set(runs[0])
    assert (x @ w - x @ rotation).norm(dim=1).max() < 0.1


def test_bad_input_raises_value_error():
    x, y, _, _ = _rotated_cloud()
    with pytest.raises(ValueError, match="eps"):
        sinkhorn(torch.rand(3, 3), 0.0)
    with pytest.raises(ValueError, match="sum to 1"):
        sinkhorn(torch.rand(3, 3), 0.1, source_mass=torch.ones(3))
    with pytest.raises(ValueError):
        wasserstein_procrustes(torch.eye(6), x, y[:, :5])  # mismatched dimensions
    with pytest.raises(ValueError):
        plan_rotation(x, y, torch.rand(3, 3))  # a plan of the wrong shape
    with pytest.raises(ValueError):
        align_by_distances(x, y, num_starts=0)
    with pytest.raises(TypeError):
        gromov_wasserstein(x.numpy(), y)
