"""Aligning two embedding spaces with a rotation: Procrustes and CSLS (chapter 06, §4.1).

Two spaces trained separately — two languages' word vectors, an image encoder and a text
encoder — often differ by little more than a rotation. Given a few seed pairs, the best rotation
has a closed form (orthogonal Procrustes, Schönemann 1966); :func:`csls_scores` then ranks
translations with less "hubness" than the plain cosine (Conneau et al., 2018, "MUSE").

* :func:`procrustes` — W = argmin ‖XW − Y‖ over orthogonal W, via one SVD;
* :func:`csls_scores` — 2·cos(x, y) − r_T(x) − r_S(y);
* :func:`mutual_nearest_pairs` — a dictionary of pairs that pick each other;
* :func:`refine` — Procrustes on that dictionary, a few times over;
* :func:`precision_at_1` — the share of sources whose best match is their true partner.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..validate import check_int, check_tensor


def _check_pair(source: torch.Tensor, target: torch.Tensor) -> None:
    check_tensor("source", source, ("N", "D"), floating=True, nonempty=True)
    check_tensor("target", target, (len(source), source.shape[1]), floating=True)


def procrustes(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The orthogonal ``W`` ``(D, D)`` that best maps rows of ``source`` onto rows of ``target``.

    Minimises ‖source · W − target‖_F over WᵀW = I. With U S Vᵀ the SVD of sourceᵀ · target,
    W = U Vᵀ: the rotation part of the cross-covariance, its scale thrown away.

    Args:
        source: ``(N, D)`` seed vectors of the first space.
        target: ``(N, D)`` their partners in the second space.
    """
    _check_pair(source, target)
    u, _, vh = torch.linalg.svd(source.double().T @ target.double())
    return (u @ vh).to(source.dtype)


def _mean_top_k(similarity: torch.Tensor, k: int) -> torch.Tensor:
    return similarity.topk(min(k, similarity.shape[1]), dim=1).values.mean(dim=1)


def csls_scores(mapped: torch.Tensor, target: torch.Tensor, k: int = 10) -> torch.Tensor:
    """Cross-domain similarity local scaling: ``(N_source, N_target)`` scores.

    CSLS(x, y) = 2·cos(x, y) − r_T(x) − r_S(y), where r_T(x) is the mean cosine of x to its k
    nearest targets and r_S(y) that of y to its k nearest mapped sources. A "hub" — a vector
    near everything — has a large r and is marked down, so it stops being everyone's nearest
    neighbour.

    Args:
        mapped: ``(N, D)`` source vectors already mapped into the target space.
        target: ``(M, D)`` target vectors.
        k: neighbourhood size (at most the smaller of N and M).
    """
    check_tensor("mapped", mapped, ("N", "D"), floating=True, nonempty=True)
    check_tensor("target", target, ("M", mapped.shape[1]), floating=True, nonempty=True)
    check_int("k", k, 1, min(len(mapped), len(target)))
    cos = F.normalize(mapped, dim=1) @ F.normalize(target, dim=1).T
    return 2 * cos - _mean_top_k(cos, k)[:, None] - _mean_top_k(cos.T, k)[None, :]


def cosine_scores(mapped: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Plain cosine similarities ``(N, M)`` (the nearest-neighbour baseline to CSLS)."""
    check_tensor("mapped", mapped, ("N", "D"), floating=True, nonempty=True)
    check_tensor("target", target, ("M", mapped.shape[1]), floating=True, nonempty=True)
    return F.normalize(mapped, dim=1) @ F.normalize(target, dim=1).T


def precision_at_1(scores: torch.Tensor, truth: torch.Tensor | None = None) -> float:
    """Share of rows whose best-scored column is their partner (``truth[i]``, default ``i``)."""
    check_tensor("scores", scores, ("N", "M"), nonempty=True)
    truth = torch.arange(len(scores)) if truth is None else truth
    check_tensor("truth", truth, (len(scores),), floating=False)
    return (scores.argmax(dim=1) == truth).float().mean().item()


def mutual_nearest_pairs(scores: torch.Tensor) -> torch.Tensor:
    """Pairs ``(i, j)`` that are each other's best match: a ``(P, 2)`` long tensor."""
    check_tensor("scores", scores, ("N", "M"), nonempty=True)
    forward, backward = scores.argmax(dim=1), scores.argmax(dim=0)
    rows = torch.arange(len(scores))
    mutual = backward[forward] == rows
    return torch.stack([rows[mutual], forward[mutual]], dim=1)


def refine(
    w: torch.Tensor, source: torch.Tensor, target: torch.Tensor, num_iters: int = 5, k: int = 10
) -> torch.Tensor:
    """Procrustes refinement: build a dictionary of mutual CSLS neighbours under ``w``, solve
    Procrustes on it, repeat. Each round's dictionary is better than the last when ``w`` is
    roughly right; it cannot rescue a map that is wrong to begin with.

    Args:
        w: ``(D, D)`` the current map.
        source: ``(N, D)`` source vectors (no pairing assumed).
        target: ``(M, D)`` target vectors.
        num_iters: rounds.
        k: the CSLS neighbourhood.
    """
    check_tensor("w", w, (source.shape[1], source.shape[1]), floating=True)
    check_int("num_iters", num_iters)
    for _ in range(num_iters):
        pairs = mutual_nearest_pairs(csls_scores(source @ w, target, k))
        if len(pairs) < 2:
            break
        w = procrustes(source[pairs[:, 0]], target[pairs[:, 1]])
    return w
