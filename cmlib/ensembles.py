"""Model-level fusion (模型融合) by ensembling: each member sees its own modality.

:func:`late_fusion` adds the members' log-probabilities (weighted) and can take a shared class
prior off once — the product-of-experts rule for members that see independent evidence.
:class:`LateFusionEnsemble` wraps unimodal models with it. Chapter 03, section 7.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def late_fusion(
    logits: Sequence[torch.Tensor],
    weights: Sequence[float] | None = None,
    log_prior: torch.Tensor | None = None,
) -> torch.Tensor:
    """Combine the members' predictions: a weighted sum of their log-probabilities.

    With ``log_prior`` (the log class frequencies), the prior counted once per extra
    member is taken off: ``Σ w_i log p_i(y|x_i) − (Σ w_i − 1) log p(y)`` — the
    product-of-experts rule for members that see independent evidence.

    Args:
        logits: ``M`` tensors ``(B, C)``.
        weights: ``M`` non-negative weights (default all 1).
        log_prior: ``(C,)``.

    Returns:
        ``(B, C)`` combined scores (argmax = the ensemble's answer).
    """
    if len(logits) == 0:
        raise ValueError("late_fusion needs at least one member's logits")
    shape = logits[0].shape
    if len(shape) != 2 or any(t.shape != shape for t in logits):
        raise ValueError(
            f"every member's logits must be (B, C) of one shape, got "
            f"{[tuple(t.shape) for t in logits]}"
        )
    weights = [1.0] * len(logits) if weights is None else list(weights)
    if len(weights) != len(logits) or any(w < 0 for w in weights):
        raise ValueError(f"expected {len(logits)} non-negative weights, got {weights}")
    score = sum(w * F.log_softmax(t, dim=1) for w, t in zip(weights, logits))
    if log_prior is not None:
        if log_prior.shape != shape[1:]:
            raise ValueError(f"log_prior must be ({shape[1]},), got {tuple(log_prior.shape)}")
        score = score - (sum(weights) - 1) * log_prior
    return score


class LateFusionEnsemble(nn.Module):
    """Model-level fusion (模型融合): each member sees its own modality; :func:`late_fusion`
    combines.

    Args:
        members: the unimodal models; member ``i`` is called on ``inputs[i]``.
        weights: one weight per member (default all 1).
        log_prior: ``(C,)`` log class frequencies to correct for (optional).

    Shapes:
        ``forward(inputs)`` with ``inputs[i]`` a tuple of member ``i``'s arguments → ``(B, C)``.
    """

    def __init__(
        self,
        members: Sequence[nn.Module],
        weights: Sequence[float] | None = None,
        log_prior: torch.Tensor | None = None,
    ):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two members, got {len(members)}")
        self.members = nn.ModuleList(members)
        self.weights = None if weights is None else list(weights)
        self.register_buffer("log_prior", log_prior)

    def forward(self, inputs: Sequence[tuple[torch.Tensor, ...]]) -> torch.Tensor:
        if len(inputs) != len(self.members):
            raise ValueError(
                f"expected one input tuple per member ({len(self.members)}), got {len(inputs)}"
            )
        logits = [m(*x) for m, x in zip(self.members, inputs)]
        return late_fusion(logits, self.weights, self.log_prior)
