"""Aligning two embedding spaces with no pairs by comparing *distances*, not vectors
(chapter 06, §4.1 跨模态循环网络).

An adversary (:mod:`~cmlib.alignment.unsupervised`) must first find a rotation before it can
compare anything, and starts from the identity. Distances inside each space need no rotation:
if Y is a rotated X, the two spaces' distance matrices are the same up to a reordering of the
points. Gromov–Wasserstein (Alvarez-Melis & Jaakkola, 2018) finds that reordering as a soft
matching; Procrustes turns the matching into a rotation; Wasserstein Procrustes (Grave et al.,
2019) alternates the two to sharpen it.

* :func:`sinkhorn` — entropic optimal transport: a soft matching with given masses;
* :func:`gromov_wasserstein` — the matching that best preserves distances within each space;
* :func:`wasserstein_procrustes` — alternate matching and rotation, from a first rotation;
* :func:`align_by_distances` — all three from a few random starts, keeping the lowest cost;
* :func:`distance_mismatch` — how well a given matching keeps distances (a diagnostic).

The assumption is the same as every unsupervised method's: the two spaces have (nearly) the
same shape. Where a wrong matching preserves distances as well as the right one, nothing
without pairs can tell them apart.
"""

from __future__ import annotations

import math

import torch

from ..validate import check_int, check_number, check_tensor
from .procrustes import cosine_scores, procrustes


def _check_space(name: str, x: torch.Tensor, dim: int | str = "D") -> None:
    check_tensor(name, x, ("N", dim), floating=True, nonempty=True)


def sinkhorn(
    cost: torch.Tensor,
    eps: float,
    num_iters: int = 200,
    source_mass: torch.Tensor | None = None,
    target_mass: torch.Tensor | None = None,
) -> torch.Tensor:
    """The entropic optimal transport plan for ``cost`` (log-domain Sinkhorn iterations).

    Args:
        cost: ``(N, M)`` cost of matching source i with target j.
        eps: entropy weight; smaller is sharper and slower to converge.
        num_iters: Sinkhorn iterations (each rescales rows, then columns).
        source_mass: ``(N,)`` non-negative masses summing to 1 (default uniform).
        target_mass: ``(M,)`` the same for the targets (default uniform).

    Returns:
        ``(N, M)`` plan whose rows sum to ``source_mass`` and columns to ``target_mass``.
    """
    check_tensor("cost", cost, ("N", "M"), floating=True, nonempty=True)
    check_number("eps", eps, 0.0, low_open=True)
    check_int("num_iters", num_iters)
    n, m = cost.shape
    log_p = _log_mass("source_mass", source_mass, n, cost)
    log_q = _log_mass("target_mass", target_mass, m, cost)
    log_kernel = -cost / eps
    u, v = torch.zeros_like(log_p), torch.zeros_like(log_q)
    for _ in range(num_iters):
        u = log_p - torch.logsumexp(log_kernel + v[None, :], dim=1)
        v = log_q - torch.logsumexp(log_kernel + u[:, None], dim=0)
    return torch.exp(log_kernel + u[:, None] + v[None, :])


def _log_mass(name: str, mass: torch.Tensor | None, size: int, like: torch.Tensor) -> torch.Tensor:
    if mass is None:
        return torch.full((size,), -math.log(size), dtype=like.dtype, device=like.device)
    check_tensor(name, mass, (size,), floating=True)
    total = mass.sum().item()
    if (mass < 0).any() or abs(total - 1.0) > 1e-4:
        raise ValueError(f"{name} must be non-negative and sum to 1, got sum {total:.4g}")
    return mass.to(like).log()


def cosine_distances(x: torch.Tensor) -> torch.Tensor:
    """``(N, N)`` cosine distances within one space, divided by their mean so that two spaces of
    different spread are compared on one scale."""
    _check_space("x", x)
    distances = (1 - cosine_scores(x, x)).clamp_min(0)
    return distances / distances.mean().clamp_min(1e-12)


def distance_mismatch(
    source_distances: torch.Tensor, target_distances: torch.Tensor, matching: torch.Tensor
) -> float:
    """Mean squared difference between the source's distances and the target's distances under
    a one-to-one ``matching`` (source i ↔ target ``matching[i]``): the Gromov–Wasserstein loss of
    a hard matching. Zero when the matching makes the two spaces copies of each other.

    Args:
        source_distances: ``(K, K)`` distances within the source (e.g. between class centres).
        target_distances: ``(K, K)`` distances within the target.
        matching: ``(K,)`` a permutation of ``range(K)``.
    """
    check_tensor("source_distances", source_distances, ("K", "K"), floating=True, nonempty=True)
    size = len(source_distances)
    check_tensor("target_distances", target_distances, (size, size), floating=True)
    check_tensor("matching", matching, (size,), floating=False)
    if sorted(matching.tolist()) != list(range(size)):
        raise ValueError(
            f"matching must be a permutation of range({size}), got {matching.tolist()}"
        )
    moved = target_distances[matching][:, matching]
    return ((source_distances - moved) ** 2).mean().item()


def gromov_wasserstein(
    source: torch.Tensor,
    target: torch.Tensor,
    eps: float = 0.01,
    num_iters: int = 50,
    seed: int = 0,
) -> tuple[torch.Tensor, float]:
    """Entropic Gromov–Wasserstein matching between two point clouds with uniform masses.

    It looks for a plan T that keeps pairs at the same distance: the squared-loss objective
    Σ (Cₛ[i,k] − Cₜ[j,l])² T[i,j] T[k,l], minimised by repeated Sinkhorn steps on its gradient
    (Peyré et al., 2016). It never compares a source vector with a target vector, so the two
    spaces may even differ in dimension.

    Args:
        source: ``(N, D)`` source vectors.
        target: ``(M, E)`` target vectors, unpaired.
        eps: entropy weight of each Sinkhorn step.
        num_iters: outer iterations.
        seed: seeds the random starting plan (the objective has many local minima).

    Returns:
        ``(plan, loss)``: the ``(N, M)`` plan and its objective value.
    """
    _check_space("source", source)
    _check_space("target", target, "E")
    check_int("num_iters", num_iters)
    c_source, c_target = cosine_distances(source), cosine_distances(target)
    n, m = len(source), len(target)
    # The part of the gradient that does not depend on the plan (uniform masses).
    constant = (c_source**2).mean(1, keepdim=True) + (c_target**2).mean(1)[None, :]
    generator = torch.Generator().manual_seed(seed)
    start = torch.rand(n, m, generator=generator).to(source)
    plan = sinkhorn(start, 1.0)
    for _ in range(num_iters):
        plan = sinkhorn(constant - 2 * c_source @ plan @ c_target.T, eps)
    loss = ((constant - 2 * c_source @ plan @ c_target.T) * plan).sum().item()
    return plan, loss


def plan_rotation(source: torch.Tensor, target: torch.Tensor, plan: torch.Tensor) -> torch.Tensor:
    """The orthogonal ``(D, D)`` map that best sends each source vector to its plan-weighted
    targets: Procrustes with soft pairs, since Xᵀ T Y = Xᵀ (T Y) pairs each source row with the
    plan's blend of targets."""
    _check_space("source", source)
    _check_space("target", target, source.shape[1])
    check_tensor("plan", plan, (len(source), len(target)), floating=True)
    return procrustes(source, plan @ target)


def wasserstein_procrustes(
    w: torch.Tensor,
    source: torch.Tensor,
    target: torch.Tensor,
    eps: float = 0.02,
    num_iters: int = 10,
) -> tuple[torch.Tensor, float]:
    """Alternate a transport plan between the rotated source and the target, and the rotation
    that fits that plan.

    Unlike refinement on mutual nearest neighbours, the plan must use every target as often as
    the target cloud holds it, so a frequent source cluster cannot settle on a rare target one.

    Args:
        w: ``(D, D)`` first rotation.
        source: ``(N, D)`` source vectors (unit length).
        target: ``(M, D)`` target vectors (unit length).
        eps: Sinkhorn's entropy weight.
        num_iters: alternations.

    Returns:
        ``(w, cost)``: the rotation and the transport cost under it (lower is a better fit).
    """
    _check_space("source", source)
    _check_space("target", target, source.shape[1])
    dim = source.shape[1]
    check_tensor("w", w, (dim, dim), floating=True)
    check_int("num_iters", num_iters)
    for _ in range(num_iters):
        plan = sinkhorn(1 - (source @ w) @ target.T, eps)
        w = plan_rotation(source, target, plan)
    cost = 1 - (source @ w) @ target.T
    return w, (cost * sinkhorn(cost, eps)).sum().item()


def align_by_distances(
    source: torch.Tensor,
    target: torch.Tensor,
    num_starts: int = 3,
    seed: int = 0,
    gw_options: dict | None = None,
    refine_options: dict | None = None,
) -> tuple[torch.Tensor, list[dict[str, float]]]:
    """Gromov–Wasserstein from ``num_starts`` random plans, each turned into a rotation and
    sharpened by Wasserstein Procrustes; the rotation with the lowest transport cost wins.
    No pairs are used anywhere, and the choice needs none either.

    Args:
        source: ``(N, D)`` source vectors (unit length).
        target: ``(M, D)`` target vectors (unit length), unpaired.
        num_starts: random starts.
        seed: seed of the first start (the others follow it).
        gw_options: keyword arguments for :func:`gromov_wasserstein`.
        refine_options: keyword arguments for :func:`wasserstein_procrustes`.

    Returns:
        ``(w, runs)``: the ``(D, D)`` rotation and, per start, its ``gw_loss`` and ``cost``.
    """
    _check_space("source", source)
    _check_space("target", target, source.shape[1])
    check_int("num_starts", num_starts)
    best, runs = None, []
    for start in range(num_starts):
        plan, gw_loss = gromov_wasserstein(source, target, seed=seed + start, **(gw_options or {}))
        w = plan_rotation(source, target, plan)
        w, cost = wasserstein_procrustes(w, source, target, **(refine_options or {}))
        runs.append({"gw_loss": gw_loss, "cost": cost})
        if best is None or cost < best[1]:
            best = (w, cost)
    return best[0], runs
