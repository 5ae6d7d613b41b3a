"""Aligning two embedding spaces with no pairs at all (MUSE, Conneau et al., 2018), with a
cycle between the two directions (chapter 06, §4.1 跨模态循环网络).

Two maps, W: source → target and V: target → source, each kept close to orthogonal. Each has a
discriminator that tells mapped vectors from real ones of its side; each map learns to fool its
discriminator. A cycle term asks V(W(x)) ≈ x and W(V(y)) ≈ y, so the two directions agree —
the same idea as CycleGAN's cycle, one level up: on embeddings instead of pixels. Then
:func:`~cmlib.alignment.procrustes.refine` turns the rough adversarial map into a sharp one.

It only works when the two spaces are nearly **isomorphic** (the same shape up to a rotation):
an adversary can only match distributions, and a rotation is all W can do.

* :class:`OrthogonalMap` — a linear map and its orthogonalisation step;
* :func:`train_adversarial_maps` — the adversarial game with the cycle term;
* :func:`mean_csls_similarity` — MUSE's unsupervised model-selection criterion;
* :func:`align_without_pairs` — game, then refinement, choosing by that criterion.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from ..train import History, progress_bar
from ..validate import check_int, check_number, check_tensor
from .procrustes import csls_scores, refine


class OrthogonalMap(nn.Module):
    """x ↦ x W, with W ``(D, D)`` started at the identity and kept near-orthogonal.

    Shapes:
        ``forward(x (B, D))`` → ``(B, D)``.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.eye(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight

    @torch.no_grad()
    def orthogonalize(self, beta: float = 0.01) -> None:
        """W ← (1 + β) W − β W Wᵀ W: one step towards the nearest orthogonal matrix (MUSE)."""
        w = self.weight
        w.copy_((1 + beta) * w - beta * w @ w.T @ w)


def _discriminator(dim: int, hidden: int) -> nn.Sequential:
    """MUSE's discriminator, smaller: input dropout, two hidden layers, one logit."""
    return nn.Sequential(
        nn.Dropout(0.1),
        nn.Linear(dim, hidden),
        nn.LeakyReLU(0.2),
        nn.Linear(hidden, hidden),
        nn.LeakyReLU(0.2),
        nn.Linear(hidden, 1),
    )


def _smoothed_bce(logits: torch.Tensor, real: bool, smoothing: float = 0.1) -> torch.Tensor:
    target = torch.full_like(logits, 1.0 - smoothing if real else smoothing)
    return F.binary_cross_entropy_with_logits(logits, target)


def _check_spaces(source: torch.Tensor, target: torch.Tensor) -> None:
    check_tensor("source", source, ("N", "D"), floating=True, nonempty=True)
    check_tensor("target", target, ("M", source.shape[1]), floating=True, nonempty=True)


def train_adversarial_maps(
    source: torch.Tensor,
    target: torch.Tensor,
    num_steps: int,
    batch_size: int = 128,
    lr: float = 0.1,
    cycle_weight: float = 1.0,
    hidden: int = 256,
    d_steps: int = 3,
    seed: int = 0,
    progress: bool = True,
) -> tuple[OrthogonalMap, OrthogonalMap, History]:
    """The adversarial game of two maps (W: source → target, V: target → source) and two
    discriminators, plus the cycle term ‖V(W(x)) − x‖² + ‖W(V(y)) − y‖².

    Args:
        source: ``(N, D)`` source vectors (centred and unit-length works best).
        target: ``(M, D)`` target vectors, *not* paired with the source.
        num_steps: map updates (each after ``d_steps`` discriminator updates).
        batch_size: vectors per side per step.
        lr: SGD learning rate of maps and discriminators (MUSE's 0.1).
        cycle_weight: weight of the cycle term (0: two independent MUSE runs).
        hidden: discriminator width.
        d_steps: discriminator updates per map update.
        seed: seeds the initial discriminators, dropout and the batches.
        progress: show a tqdm bar.

    Returns:
        ``(w, v, history)``, the history with per-step ``d_loss``, ``map_loss`` and ``cycle``.
    """
    _check_spaces(source, target)
    check_int("num_steps", num_steps)
    check_int("batch_size", batch_size, 1, min(len(source), len(target)))
    check_number("cycle_weight", cycle_weight, 0.0)
    dim = source.shape[1]
    torch.manual_seed(seed)
    w, v = OrthogonalMap(dim), OrthogonalMap(dim)
    d_target, d_source = _discriminator(dim, hidden), _discriminator(dim, hidden)
    opt_maps = torch.optim.SGD(list(w.parameters()) + list(v.parameters()), lr)
    opt_d = torch.optim.SGD(list(d_target.parameters()) + list(d_source.parameters()), lr)
    rng = torch.Generator().manual_seed(seed)

    def batch(x: torch.Tensor) -> torch.Tensor:
        return x[torch.randint(len(x), (batch_size,), generator=rng)]

    history, start = History(), time.perf_counter()
    for _ in progress_bar(range(num_steps), desc="adversarial maps", disable=not progress):
        for _ in range(d_steps):
            x, y = batch(source), batch(target)
            with torch.no_grad():
                wx, vy = w(x), v(y)
            d_loss = (
                _smoothed_bce(d_target(y).squeeze(1), True)
                + _smoothed_bce(d_target(wx).squeeze(1), False)
                + _smoothed_bce(d_source(x).squeeze(1), True)
                + _smoothed_bce(d_source(vy).squeeze(1), False)
            )
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        x, y = batch(source), batch(target)
        wx, vy = w(x), v(y)
        # The maps want their outputs called real; the discriminators are not updated here.
        map_loss = _smoothed_bce(d_target(wx).squeeze(1), True) + _smoothed_bce(
            d_source(vy).squeeze(1), True
        )
        cycle = ((v(wx) - x) ** 2).sum(1).mean() + ((w(vy) - y) ** 2).sum(1).mean()
        opt_maps.zero_grad(set_to_none=True)
        (map_loss + cycle_weight * cycle).backward()
        opt_maps.step()
        w.orthogonalize()
        v.orthogonalize()
        history.log_step({"loss": map_loss, "d_loss": d_loss, "cycle": cycle})
    history.train_loss.append(sum(history.steps["loss"]) / num_steps)
    history.metrics.append({})
    history.seconds.append(time.perf_counter() - start)
    return w.eval(), v.eval(), history


def mean_csls_similarity(mapped: torch.Tensor, target: torch.Tensor, k: int = 10) -> float:
    """MUSE's model-selection criterion, which needs no pairs: the mean cosine between each
    mapped source vector and its best CSLS match. A better map puts translations closer."""
    scores = csls_scores(mapped, target, k)
    best = scores.argmax(1)
    cos = F.cosine_similarity(mapped, target[best], dim=1)
    return cos.mean().item()


def align_without_pairs(
    source: torch.Tensor,
    target: torch.Tensor,
    num_steps: int,
    refine_iters: int = 5,
    k: int = 10,
    seed: int = 0,
    progress: bool = True,
    **game_options,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Adversarial maps, then Procrustes refinement; no pairs used anywhere.

    Both W and Vᵀ (the inverse of the backward map) are candidates for source → target; each is
    refined, and the one with the larger :func:`mean_csls_similarity` is returned.

    Returns:
        ``(w, criteria)``: the ``(D, D)`` map and each candidate's criterion.
    """
    w, v, _ = train_adversarial_maps(
        source, target, num_steps, seed=seed, progress=progress, **game_options
    )
    candidates = {
        "W (forward map)": w.weight.detach(),
        "Vᵀ (backward map, inverted)": v.weight.detach().T,
    }
    refined = {name: refine(m, source, target, refine_iters, k) for name, m in candidates.items()}
    criteria = {name: mean_csls_similarity(source @ m, target, k) for name, m in refined.items()}
    best = max(criteria, key=criteria.get)
    return refined[best], criteria
